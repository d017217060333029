#include "tests/support/fixture_server.h"

#include <chrono>
#include <sstream>
#include <stdexcept>

#include "tests/support/wait.h"

namespace tq::testing {

FixtureServer::FixtureServer(const TempDir& dir) {
  const std::string port_file = dir.File("fixture-port");
  process_ = std::make_unique<Process>(
      std::vector<std::string>{
          "/usr/bin/python3",
          std::string(TQ_SOURCE_DIR) + "/tests/support/fixture_server.py",
          port_file},
      "", dir.File("fixture-server.log"));
  const bool up = WaitUntil(
      [&] { return !ReadFile(port_file).empty() || !process_->Running(); },
      std::chrono::seconds(20));
  const std::string text = ReadFile(port_file);
  if (!up || text.empty()) {
    throw std::runtime_error("fixture server did not start: " +
                             ReadFile(dir.File("fixture-server.log")));
  }
  std::istringstream in(text);
  in >> port_ >> tls_port_;
}

std::string FixtureServer::TlsUrl(const std::string& path) const {
  return "https://127.0.0.1:" + std::to_string(tls_port_) + path;
}

std::string FixtureServer::Url(const std::string& path, int host) const {
  return "http://127.0.0." + std::to_string(host) + ":" +
         std::to_string(port_) + path;
}

}  // namespace tq::testing
