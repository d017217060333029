// Real tq binaries on loopback for end-to-end tests and benchmarks: a broker
// on an ephemeral port in a temp dir, workers attached to it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace tq::testing {

class BrokerProcess {
 public:
  // Starts tq-broker on dir/tq.db and an ephemeral loopback port; waits
  // (bounded) until it listens. `port` 0 picks one; a restart reuses it.
  BrokerProcess(const TempDir& dir, std::vector<std::string> extra_args = {},
                int port = 0);
  const std::string& endpoint() const { return endpoint_; }
  int port() const { return port_; }
  Process& process() { return *process_; }
  // SIGKILL, then start again on the same database and port.
  void KillAndRestart();
  std::string Log() const;

 private:
  void Start();
  const TempDir& dir_;
  std::vector<std::string> extra_args_;
  int port_ = 0;
  int generation_ = 0;
  std::string endpoint_;
  std::unique_ptr<Process> process_;
};

struct WorkerSpec {
  std::string id;
  std::string country = "none";
  int concurrency = 1;
  // Handler arguments, e.g. {"--noop"} or {"--exec", "sh -c '...' sh {url}"}.
  std::vector<std::string> handler = {"--noop"};
};

std::unique_ptr<Process> StartWorker(const TempDir& dir,
                                     const std::string& endpoint,
                                     const WorkerSpec& spec);

}  // namespace tq::testing
