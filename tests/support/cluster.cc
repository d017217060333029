#include "tests/support/cluster.h"

#include <stdexcept>

#include "tests/support/wait.h"

namespace tq::testing {

BrokerProcess::BrokerProcess(const TempDir& dir,
                             std::vector<std::string> extra_args, int port)
    : dir_(dir), extra_args_(std::move(extra_args)), port_(port) {
  Start();
}

void BrokerProcess::Start() {
  const std::string ready =
      dir_.File("broker.endpoint." + std::to_string(++generation_));
  std::vector<std::string> argv = {Binary("tq-broker"),
                                   "--db",
                                   dir_.File("tq.db"),
                                   "--listen",
                                   "tcp://127.0.0.1:" + std::to_string(port_),
                                   "--ready-file",
                                   ready,
                                   "--log-level",
                                   "debug"};
  for (const auto& a : extra_args_) argv.push_back(a);
  process_ = std::make_unique<Process>(argv, "", dir_.File("broker.log"));
  const bool up = WaitUntil(
      [&] { return !ReadFile(ready).empty() || !process_->Running(); },
      std::chrono::seconds(20));
  std::string text = ReadFile(ready);
  if (!up || text.empty()) {
    throw std::runtime_error("tq-broker did not start:\n" + Log());
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
    text.pop_back();
  endpoint_ = text;
  port_ = std::stoi(endpoint_.substr(endpoint_.rfind(':') + 1));
}

void BrokerProcess::KillAndRestart() {
  process_->Kill();
  Start();
}

std::string BrokerProcess::Log() const {
  return ReadFile(dir_.File("broker.log"));
}

std::unique_ptr<Process> StartWorker(const TempDir& dir,
                                     const std::string& endpoint,
                                     const WorkerSpec& spec) {
  std::vector<std::string> argv = {Binary("tq-worker"),
                                   "--broker",
                                   endpoint,
                                   "--id",
                                   spec.id,
                                   "--country",
                                   spec.country,
                                   "--concurrency",
                                   std::to_string(spec.concurrency),
                                   "--log-level",
                                   "debug"};
  for (const auto& a : spec.handler) argv.push_back(a);
  return std::make_unique<Process>(argv, "",
                                   dir.File("worker-" + spec.id + ".log"));
}

}  // namespace tq::testing
