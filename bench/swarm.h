// Many no-op workers in one thread: one DEALER socket each, speaking the
// worker side of the protocol just enough for dispatch benchmarks (Hello,
// Credit, instant Results with piggybacked credit, heartbeats).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace tq::bench {

class Swarm {
 public:
  // Starts `count` workers against `endpoint` in a background thread.
  Swarm(const std::string& endpoint, int count);
  ~Swarm();  // stops and joins
  Swarm(const Swarm&) = delete;
  Swarm& operator=(const Swarm&) = delete;

  int welcomed() const { return welcomed_.load(); }
  // Tasks finished per worker; read after Stop().
  std::vector<uint64_t> TasksPerWorker() const { return done_; }
  void Stop();

 private:
  void Run();

  const std::string endpoint_;
  const int count_;
  std::atomic<bool> stop_{false};
  std::atomic<int> welcomed_{0};
  std::vector<uint64_t> done_;  // owned by the thread until Stop() joins
  std::thread thread_;
};

}  // namespace tq::bench
