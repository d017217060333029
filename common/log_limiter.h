// Rate limit for repeated warnings, so a hostile or broken peer cannot flood
// the log: the first few warnings per (subject, kind) per interval are logged
// as they come, the rest are counted and reported in one summary line per
// (subject, kind) at the end of the interval:
//
//   peer 1.2.3.4: 3,214 more 'malformed message' warnings in the last 60.0 s
//
// Use from one thread (the loop that owns it):
//
//   if (limiter_.Allow(address, DecodeErrorName(error), now))
//     spdlog::warn("refused a message from {}: ...", address, ...);
//   ...
//   limiter_.LogDue(now);  // in OnTick; NextDue() bounds the poll timeout
//
// Windows are fixed and shared by all keys ([start, start + interval), the
// first Allow starts one), so all summaries of a window come out together
// and the state is cleared once per interval. A key that starts warning just
// before a window ends can therefore log 2 * burst lines in a short span.
//
// Memory and output stay bounded when keys churn (a peer that reconnects
// under new identities, many addresses):
// - at most max_keys keys are tracked per window; a new key beyond that
//   evicts the oldest (first seen). The evicted key's suppressed count is
//   kept in the window's "other" total, reported in one aggregate line; its
//   allowed count is forgotten, so if it comes back in the same window it
//   gets a fresh burst (still within max_lines).
// - at most max_lines warnings per window are allowed across all keys; the
//   rest are counted as suppressed even for keys within their burst.
// - at most max_summaries summary lines per window (largest counts first);
//   the others are folded into the aggregate line:
//   "5,000 more warnings from 2,500 other peers in the last 60.0 s".
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"

namespace tq {

struct LogLimiterOptions {
  uint32_t burst = 5;          // allowed per key per interval
  Millis interval{60'000};     // window length
  size_t max_keys = 10'000;    // keys tracked per window
  uint32_t max_lines = 100;    // allowed across all keys per interval
  size_t max_summaries = 20;   // summary lines per window, + 1 aggregate
  std::string label = "peer";  // what a subject is, for the summary lines
};

struct LogSummary {
  std::string subject;  // empty for the aggregate of evicted / folded keys
  std::string kind;     // empty for the aggregate
  uint64_t suppressed = 0;
  uint64_t keys = 1;  // keys folded into the aggregate
  Millis span{0};     // the window length
};

// "peer 1.2.3.4: 3,214 more 'malformed message' warnings in the last 60.0 s",
// or for the aggregate "5,000 more warnings from 2,500 other peers in ...".
std::string FormatLogSummary(const LogSummary& s, std::string_view label);

// "3,214": a count as the summary lines show it.
std::string FormatCount(uint64_t n);

class LogLimiter {
 public:
  explicit LogLimiter(LogLimiterOptions options = {});

  // True: log this warning now. False: it has been counted for a summary.
  // Subjects and kinds longer than kMaxKeyPart bytes are truncated (memory).
  bool Allow(std::string_view subject, std::string_view kind, TimePoint now);

  // The summaries of the windows that ended by `now`, and forgets them.
  // Call at least once per interval (from the loop's tick).
  std::vector<LogSummary> TakeDue(TimePoint now);

  // TakeDue, each line logged with spdlog::warn.
  void LogDue(TimePoint now);

  // When TakeDue next has something to return; nullopt while nothing has
  // been suppressed.
  std::optional<TimePoint> NextDue() const;

  size_t tracked_keys() const { return entries_.size(); }
  const LogLimiterOptions& options() const { return options_; }

  static constexpr size_t kMaxKeyPart = 256;

 private:
  struct Entry {
    std::string subject;
    std::string kind;
    uint32_t allowed = 0;
    uint64_t suppressed = 0;
    std::list<std::string>::iterator order;  // position in order_
  };

  // Closes the current window if it ended by `now`: its summaries go to
  // ready_.
  void Roll(TimePoint now);
  void Evict();

  // Constant after construction.
  const LogLimiterOptions options_;

  // The current window; empty while none is open.
  std::optional<TimePoint> window_start_;
  std::unordered_map<std::string, Entry> entries_;  // by subject '\0' kind
  std::list<std::string> order_;  // entries_ keys, oldest first
  uint32_t lines_ = 0;            // allowed in this window, all keys
  uint64_t suppressed_ = 0;       // in this window, all keys
  uint64_t evicted_suppressed_ = 0;
  uint64_t evicted_keys_ = 0;  // evicted with a pending count

  // Summaries of closed windows not yet taken, due since ready_at_.
  std::vector<LogSummary> ready_;
  TimePoint ready_at_{};
};

}  // namespace tq
