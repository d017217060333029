#include "broker/wal_syncer.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tq {

WalSyncer::WalSyncer(std::string wal_path, LatencyHistogram* latency)
    : wal_path_(std::move(wal_path)),
      latency_(latency),
      event_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      thread_([this] { Run(); }) {}

WalSyncer::~WalSyncer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  if (event_fd_ >= 0) close(event_fd_);
}

void WalSyncer::Request(uint64_t commit) {
  {
    std::lock_guard lock(mu_);
    if (commit <= requested_) return;
    requested_ = commit;
  }
  wake_.notify_one();
}

uint64_t WalSyncer::durable() const {
  std::lock_guard lock(mu_);
  return durable_;
}

Status WalSyncer::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

void WalSyncer::Drain() {
  uint64_t n;
  while (read(event_fd_, &n, sizeof n) == sizeof n) {
  }
}

void WalSyncer::Run() {
  int fd = -1;
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait(lock,
               [&] { return stop_ || (requested_ > durable_ && error_.ok()); });
    if (requested_ <= durable_ || !error_.ok()) break;  // stopping
    // Every commit up to `target` has written its frames before this point,
    // so one fdatasync covers them all.
    const uint64_t target = requested_;
    lock.unlock();
    std::string failure;
    if (fd < 0) fd = open(wal_path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      failure = "cannot open " + wal_path_ + ": " + std::strerror(errno);
    } else {
      ScopedLatency timed(latency_);
      if (fdatasync(fd) != 0) {
        failure = "fdatasync " + wal_path_ + ": " + std::strerror(errno);
      }
    }
    lock.lock();
    if (failure.empty()) {
      durable_ = target;
    } else {
      error_ = Status::IoError(failure);
    }
    const uint64_t one = 1;
    (void)!write(event_fd_, &one, sizeof one);
  }
  if (fd >= 0) close(fd);
}

}  // namespace tq
