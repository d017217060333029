// The analyser tests' web server (tests/support/fixture_server.py): the same
// fixture pages on 127.0.0.1, .2 and .3, one ephemeral port chosen by the
// server (and a TLS port). Killed with its process group when this object goes
// away.
#pragma once

#include <memory>
#include <string>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace tq::testing {

class FixtureServer {
 public:
  // Starts the server and waits (bounded) until all three addresses listen.
  explicit FixtureServer(const TempDir& dir);
  int port() const { return port_; }
  // "http://127.0.0.<host>:<port><path>"
  std::string Url(const std::string& path, int host = 1) const;
  // "https://127.0.0.1:<tls port><path>", served with a self-signed
  // certificate.
  std::string TlsUrl(const std::string& path) const;

 private:
  std::unique_ptr<Process> process_;
  int port_ = 0;
  int tls_port_ = 0;
};

}  // namespace tq::testing
