// What the loop needs from whoever makes commits durable off the loop thread:
// it asks for commit N, waits on notify_fd() and sends the acknowledgements
// of commits up to durable(). WalSyncer fdatasyncs the WAL; tests inject a
// fake that holds durability back or fails on command.
//
// Threads: every method is called from the loop thread only; implementations
// may advance durable() and error() from another thread.
#pragma once

#include <cstdint>

#include "common/status.h"

namespace tq {

class CommitSyncer {
 public:
  virtual ~CommitSyncer() = default;

  // Asks that commits up to `commit` become durable. Does not block.
  virtual void Request(uint64_t commit) = 0;
  // Highest commit known durable.
  virtual uint64_t durable() const = 0;
  // Readable whenever durable() advanced or a sync failed; the loop polls it
  // and then calls Drain() to make it unreadable again.
  virtual int notify_fd() const = 0;
  virtual void Drain() = 0;
  // Sticky: once a sync failed, nothing after it can be trusted durable.
  virtual Status error() const = 0;
};

}  // namespace tq
