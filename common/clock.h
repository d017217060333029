// Time is an input: the broker core and the worker read it through Clock so
// tests can drive leases, heartbeats and back-off with a fake one.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace tq {

using Millis = std::chrono::milliseconds;
// Monotonic time since an arbitrary origin.
using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Millis>;

// "2.5 s": a duration as log lines show it.
inline std::string FormatSeconds(Millis d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", double(d.count()) / 1000.0);
  return buf;
}

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;   // monotonic, for deadlines
  virtual int64_t WallMs() const = 0;  // ms since the Unix epoch, for records
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override {
    return std::chrono::time_point_cast<Millis>(
        std::chrono::steady_clock::now());
  }
  int64_t WallMs() const override {
    return std::chrono::duration_cast<Millis>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

class FakeClock final : public Clock {
 public:
  TimePoint Now() const override { return now_; }
  int64_t WallMs() const override {
    return kWallOrigin + now_.time_since_epoch().count();
  }
  void Advance(Millis d) { now_ += d; }

 private:
  static constexpr int64_t kWallOrigin = 1'700'000'000'000;
  TimePoint now_{Millis(1'000'000)};
};

}  // namespace tq
