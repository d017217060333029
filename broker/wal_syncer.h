// Group commit without blocking the loop: the loop commits with
// synchronous=OFF (the WAL frames reach the OS), then asks the syncer to make
// commit N durable. A background thread fdatasyncs the WAL file, covering
// every commit written before the call, and wakes the loop through an
// eventfd; the loop sends the acknowledgements of commits up to durable().
//
// Threads: the CommitSyncer methods are called from the loop thread while
// the syncer thread runs; mu_ guards what the two share.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "broker/commit_syncer.h"
#include "common/latency_histogram.h"
#include "common/status.h"

namespace tq {

class WalSyncer final : public CommitSyncer {
 public:
  // Each fdatasync's duration goes to `latency` when given (not owned).
  explicit WalSyncer(std::string wal_path, LatencyHistogram* latency = nullptr);
  ~WalSyncer() override;  // finishes a sync in progress, then joins
  WalSyncer(const WalSyncer&) = delete;
  WalSyncer& operator=(const WalSyncer&) = delete;

  void Request(uint64_t commit) override;
  uint64_t durable() const override;
  int notify_fd() const override { return event_fd_; }
  void Drain() override;
  Status error() const override;

 private:
  void Run();

  // Constant after construction.
  const std::string wal_path_;
  LatencyHistogram* const latency_;
  int event_fd_ = -1;

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable wake_;
  uint64_t requested_ = 0;
  uint64_t durable_ = 0;
  Status error_;
  bool stop_ = false;

  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace tq
