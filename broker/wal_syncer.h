// Group commit without blocking the loop: the loop commits with
// synchronous=OFF (the WAL frames reach the OS), then asks the syncer to make
// commit N durable. A background thread fdatasyncs the WAL file, covering
// every commit written before the call, and wakes the loop through an
// eventfd; the loop sends the acknowledgements of commits up to durable().
//
// Threads: Request(), durable(), error() and notify_fd() are safe to call
// from the loop thread while the syncer thread runs.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"

namespace tq {

class WalSyncer {
 public:
  explicit WalSyncer(std::string wal_path);
  ~WalSyncer();  // finishes a sync in progress, then joins
  WalSyncer(const WalSyncer&) = delete;
  WalSyncer& operator=(const WalSyncer&) = delete;

  // Asks that commits up to `commit` become durable.
  void Request(uint64_t commit);
  // Highest commit known durable.
  uint64_t durable() const;
  // Readable whenever durable() advanced or a sync failed; the loop polls it
  // and calls Drain().
  int notify_fd() const { return event_fd_; }
  void Drain();
  // Sticky: once a sync failed, nothing after it can be trusted durable.
  Status error() const;

 private:
  void Run();

  // Constant after construction.
  const std::string wal_path_;
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
