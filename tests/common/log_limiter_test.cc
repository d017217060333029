#include "common/log_limiter.h"

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "common/clock.h"

namespace tq {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kMalformed = "malformed message";

int CountAllowed(LogLimiter& l, std::string_view subject, std::string_view kind,
                 int n, TimePoint now) {
  int allowed = 0;
  for (int i = 0; i < n; ++i) allowed += l.Allow(subject, kind, now) ? 1 : 0;
  return allowed;
}

TEST_CASE("FirstWarningsAreLoggedThenCountedIntoOneSummary", "[log_limiter]") {
  FakeClock clock;
  LogLimiter l;
  CHECK(CountAllowed(l, "1.2.3.4", kMalformed, 3219, clock.Now()) == 5);
  clock.Advance(59'999ms);
  CHECK(l.TakeDue(clock.Now()).empty());  // the window has not ended

  clock.Advance(1ms);
  auto due = l.TakeDue(clock.Now());
  REQUIRE(due.size() == 1);
  CHECK(due[0].subject == "1.2.3.4");
  CHECK(due[0].kind == kMalformed);
  CHECK(due[0].suppressed == 3214);
  CHECK(FormatLogSummary(due[0], "peer") ==
        "peer 1.2.3.4: 3,214 more 'malformed message' warnings in the last "
        "60.0 s");
  CHECK(l.TakeDue(clock.Now()).empty());  // taken once
  CHECK(l.tracked_keys() == 0);           // state cleared per window
}

TEST_CASE("NextWindowGivesAFreshBurst", "[log_limiter]") {
  FakeClock clock;
  LogLimiter l;
  CHECK(CountAllowed(l, "a", kMalformed, 10, clock.Now()) == 5);
  clock.Advance(60s);
  CHECK(l.TakeDue(clock.Now()).size() == 1);
  CHECK(CountAllowed(l, "a", kMalformed, 10, clock.Now()) == 5);
}

TEST_CASE("SubjectsAndKindsAreLimitedSeparately", "[log_limiter]") {
  FakeClock clock;
  LogLimiter l;
  const TimePoint t = clock.Now();
  CHECK(CountAllowed(l, "a", kMalformed, 7, t) == 5);
  CHECK(CountAllowed(l, "b", kMalformed, 8, t) == 5);
  CHECK(CountAllowed(l, "a", "unsupported", 9, t) == 5);
  clock.Advance(60s);
  auto due = l.TakeDue(clock.Now());
  REQUIRE(due.size() == 3);  // largest count first
  CHECK((due[0].subject == "a" && due[0].kind == "unsupported" &&
         due[0].suppressed == 4));
  CHECK((due[1].subject == "b" && due[1].suppressed == 3));
  CHECK((due[2].subject == "a" && due[2].kind == kMalformed &&
         due[2].suppressed == 2));
}

TEST_CASE("QuietWindowHasNoSummaryAndNothingDue", "[log_limiter]") {
  FakeClock clock;
  LogLimiter l;
  CHECK(!l.NextDue());
  CHECK(CountAllowed(l, "a", kMalformed, 5, clock.Now()) == 5);
  CHECK(!l.NextDue());  // nothing suppressed: no summary to wait for
  clock.Advance(60s);
  CHECK(l.TakeDue(clock.Now()).empty());
  CHECK(l.tracked_keys() == 0);
}

TEST_CASE("NextDueIsTheEndOfTheWindow", "[log_limiter]") {
  FakeClock clock;
  LogLimiter l({.interval = 10s});
  const TimePoint start = clock.Now();
  l.Allow("a", kMalformed, start);
  clock.Advance(3s);
  CHECK(CountAllowed(l, "a", kMalformed, 10, clock.Now()) == 4);
  REQUIRE(l.NextDue());
  CHECK(*l.NextDue() == start + 10s);
  clock.Advance(7s);
  auto due = l.TakeDue(clock.Now());
  REQUIRE(due.size() == 1);
  CHECK(due[0].suppressed == 6);
  CHECK(FormatLogSummary(due[0], "peer") ==
        "peer a: 6 more 'malformed message' warnings in the last 10.0 s");
  CHECK(!l.NextDue());
}

TEST_CASE("LateTakeDueStillReportsTheEndedWindow", "[log_limiter]") {
  FakeClock clock;
  LogLimiter l;
  CHECK(CountAllowed(l, "a", kMalformed, 6, clock.Now()) == 5);
  clock.Advance(90s);
  // The window is rolled by Allow too: no permanent suppression if the tick
  // is late, and the old window's count waits for TakeDue.
  CHECK(l.Allow("a", kMalformed, clock.Now()));
  REQUIRE(l.NextDue());
  CHECK(*l.NextDue() <= clock.Now());
  auto due = l.TakeDue(clock.Now());
  REQUIRE(due.size() == 1);
  CHECK(due[0].suppressed == 1);
  CHECK(FormatLogSummary(due[0], "peer") ==
        "peer a: 1 more 'malformed message' warning in the last 60.0 s");
}

TEST_CASE("OldestKeyIsEvictedAndItsCountGoesToTheAggregate", "[log_limiter]") {
  FakeClock clock;
  LogLimiter l({.burst = 1, .max_keys = 3});
  const TimePoint t = clock.Now();
  CHECK(CountAllowed(l, "a", kMalformed, 4, t) == 1);  // 3 pending
  CHECK(CountAllowed(l, "b", kMalformed, 2, t) == 1);
  CHECK(CountAllowed(l, "c", kMalformed, 1, t) == 1);  // nothing pending
  CHECK(l.tracked_keys() == 3);
  CHECK(CountAllowed(l, "d", kMalformed, 2, t) == 1);  // evicts a
  CHECK(l.tracked_keys() == 3);
  CHECK(CountAllowed(l, "e", kMalformed, 1, t) == 1);  // evicts b
  // An evicted key that comes back is a new key (a fresh burst).
  CHECK(CountAllowed(l, "a", kMalformed, 1, t) == 1);  // evicts c
  clock.Advance(60s);
  auto due = l.TakeDue(clock.Now());
  REQUIRE(due.size() == 2);
  CHECK((due[0].subject == "d" && due[0].suppressed == 1));
  CHECK(due[1].subject.empty());
  CHECK(due[1].suppressed == 4);  // a's 3 and b's 1
  CHECK(due[1].keys == 2);
  CHECK(FormatLogSummary(due[1], "peer") ==
        "4 more warnings from 2 other peers in the last 60.0 s");
}

TEST_CASE("AllowedLinesAreCappedAcrossKeys", "[log_limiter]") {
  FakeClock clock;
  LogLimiter l({.max_lines = 10});
  int allowed = 0;
  for (int i = 0; i < 100; ++i) {
    allowed += l.Allow("peer-" + std::to_string(i), kMalformed, clock.Now());
  }
  CHECK(allowed == 10);
}

TEST_CASE("SummaryLinesAreCappedLargestFirst", "[log_limiter]") {
  FakeClock clock;
  LogLimiter l({.burst = 0, .max_summaries = 2});
  for (int i = 1; i <= 5; ++i) {
    CountAllowed(l, "p" + std::to_string(i), kMalformed, i, clock.Now());
  }
  clock.Advance(60s);
  auto due = l.TakeDue(clock.Now());
  REQUIRE(due.size() == 3);
  CHECK((due[0].subject == "p5" && due[0].suppressed == 5));
  CHECK((due[1].subject == "p4" && due[1].suppressed == 4));
  CHECK(due[2].subject.empty());
  CHECK(due[2].suppressed == 1 + 2 + 3);
  CHECK(due[2].keys == 3);
}

TEST_CASE("ChurningKeysCannotFloodTheLog", "[log_limiter]") {
  // The flood: 40,000 bad messages, here each from a new identity,
  // spread over two minutes.
  FakeClock clock;
  LogLimiter l;
  const auto& o = l.options();
  size_t lines = 0;
  size_t most_keys = 0;
  bool aggregate = false;
  for (int i = 0; i < 40'000; ++i) {
    if (l.Allow("peer-" + std::to_string(i), kMalformed, clock.Now())) ++lines;
    most_keys = std::max(most_keys, l.tracked_keys());
    if (i % 1000 == 999) {
      clock.Advance(3s);
      for (const auto& s : l.TakeDue(clock.Now())) {
        ++lines;
        if (s.subject.empty()) aggregate = true;
      }
    }
  }
  clock.Advance(60s);
  lines += l.TakeDue(clock.Now()).size();
  CHECK(most_keys == o.max_keys);
  // Two windows: each at most max_lines warnings + max_summaries + 1.
  CHECK(lines <= 2 * (o.max_lines + o.max_summaries + 1));
  CHECK(aggregate);
}

TEST_CASE("SummariesStayBoundedWhenNeverTaken", "[log_limiter]") {
  FakeClock clock;
  LogLimiter l({.burst = 0, .interval = 1s, .max_summaries = 3});
  for (int w = 0; w < 50; ++w) {
    for (int k = 0; k < 10; ++k) {
      l.Allow("p" + std::to_string(k), kMalformed, clock.Now());
    }
    clock.Advance(1s);
  }
  auto due = l.TakeDue(clock.Now());
  REQUIRE(due.size() == 4);
  uint64_t total = 0;
  for (const auto& s : due) total += s.suppressed;
  CHECK(total == 500);  // nothing lost, only folded
}

TEST_CASE("LongSubjectsAreTruncated", "[log_limiter]") {
  FakeClock clock;
  LogLimiter l({.burst = 0});
  const std::string big(100'000, 'x');
  l.Allow(big, kMalformed, clock.Now());
  l.Allow(big + "y", kMalformed, clock.Now());  // same key once truncated
  clock.Advance(60s);
  auto due = l.TakeDue(clock.Now());
  REQUIRE(due.size() == 1);
  CHECK(due[0].subject.size() == LogLimiter::kMaxKeyPart);
  CHECK(due[0].suppressed == 2);
}

TEST_CASE("LogDueWritesOneWarningPerSummary", "[log_limiter]") {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  sink->set_pattern("%l %v");
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("t", sink));

  FakeClock clock;
  LogLimiter l;
  CountAllowed(l, "1.2.3.4", kMalformed, 7, clock.Now());
  clock.Advance(60s);
  l.LogDue(clock.Now());
  l.LogDue(clock.Now());  // nothing left: no second line
  std::vector<std::string> lines = sink->last_formatted();
  spdlog::set_default_logger(previous);

  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("warning peer 1.2.3.4: 2 more 'malformed message' "
                      "warnings in the last 60.0 s") == 0);
}

TEST_CASE("CountsAreGroupedByThousands", "[log_limiter]") {
  CHECK(FormatCount(0) == "0");
  CHECK(FormatCount(999) == "999");
  CHECK(FormatCount(1000) == "1,000");
  CHECK(FormatCount(3214) == "3,214");
  CHECK(FormatCount(1234567) == "1,234,567");
  CHECK(FormatCount(18446744073709551615u) == "18,446,744,073,709,551,615");
}

}  // namespace
}  // namespace tq
