#include "common/log_limiter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <utility>

namespace tq {
namespace {

std::string_view Truncated(std::string_view s) {
  return s.substr(0, LogLimiter::kMaxKeyPart);
}

// "60.0 s"
std::string SpanText(Millis d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", double(d.count()) / 1000.0);
  return buf;
}

std::string MapKey(std::string_view subject, std::string_view kind) {
  std::string key(subject);
  key += '\0';
  key += kind;
  return key;
}

// Keeps at most `max` per-key summaries (largest counts first) and folds the
// rest, with any aggregate already there, into one aggregate at the end.
void Fold(std::vector<LogSummary>& v, size_t max) {
  LogSummary agg;
  agg.keys = 0;
  std::vector<LogSummary> keyed;
  for (auto& s : v) {
    if (s.subject.empty() && s.kind.empty()) {
      agg.suppressed += s.suppressed;
      agg.keys += s.keys;
      agg.span = std::max(agg.span, s.span);
    } else {
      keyed.push_back(std::move(s));
    }
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const LogSummary& a, const LogSummary& b) {
                     return a.suppressed > b.suppressed;
                   });
  for (size_t i = max; i < keyed.size(); ++i) {
    agg.suppressed += keyed[i].suppressed;
    agg.keys += keyed[i].keys;
    agg.span = std::max(agg.span, keyed[i].span);
  }
  if (keyed.size() > max) keyed.resize(max);
  if (agg.suppressed > 0) keyed.push_back(std::move(agg));
  v = std::move(keyed);
}

}  // namespace

std::string FormatCount(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string FormatLogSummary(const LogSummary& s, std::string_view label) {
  const char* noun = s.suppressed == 1 ? "warning" : "warnings";
  std::string line;
  if (s.subject.empty() && s.kind.empty()) {
    line = FormatCount(s.suppressed) + " more " + noun + " from " +
           FormatCount(s.keys) + " other " + std::string(label) +
           (s.keys == 1 ? "" : "s");
  } else {
    line = std::string(label) + (label.empty() ? "" : " ") + s.subject + ": " +
           FormatCount(s.suppressed) + " more '" + s.kind + "' " + noun;
  }
  return line + " in the last " + SpanText(s.span);
}

LogLimiter::LogLimiter(LogLimiterOptions options)
    : options_(std::move(options)) {}

bool LogLimiter::Allow(std::string_view subject, std::string_view kind,
                       TimePoint now) {
  Roll(now);
  if (!window_start_) window_start_ = now;
  subject = Truncated(subject);
  kind = Truncated(kind);

  std::string key = MapKey(subject, kind);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (options_.max_keys == 0) {  // track nothing: everything is "other"
      ++suppressed_;
      ++evicted_suppressed_;
      ++evicted_keys_;
      return false;
    }
    while (entries_.size() >= options_.max_keys) Evict();
    order_.push_back(key);
    Entry e;
    e.subject = std::string(subject);
    e.kind = std::string(kind);
    e.order = std::prev(order_.end());
    it = entries_.emplace(std::move(key), std::move(e)).first;
  }
  Entry& e = it->second;
  if (e.allowed < options_.burst && lines_ < options_.max_lines) {
    ++e.allowed;
    ++lines_;
    return true;
  }
  ++e.suppressed;
  ++suppressed_;
  return false;
}

void LogLimiter::Evict() {
  auto it = entries_.find(order_.front());
  if (it->second.suppressed > 0) {
    evicted_suppressed_ += it->second.suppressed;
    ++evicted_keys_;
  }
  entries_.erase(it);
  order_.pop_front();
}

void LogLimiter::Roll(TimePoint now) {
  if (!window_start_ || now < *window_start_ + options_.interval) return;
  if (suppressed_ > 0) {
    for (const auto& key : order_) {
      const Entry& e = entries_.at(key);
      if (e.suppressed == 0) continue;
      ready_.push_back({e.subject, e.kind, e.suppressed, 1, options_.interval});
    }
    if (evicted_suppressed_ > 0) {
      ready_.push_back(
          {"", "", evicted_suppressed_, evicted_keys_, options_.interval});
    }
    // Bounded even if TakeDue was not called for several windows.
    Fold(ready_, options_.max_summaries);
    if (!ready_.empty()) ready_at_ = *window_start_ + options_.interval;
  }
  window_start_.reset();
  entries_.clear();
  order_.clear();
  lines_ = 0;
  suppressed_ = 0;
  evicted_suppressed_ = 0;
  evicted_keys_ = 0;
}

std::vector<LogSummary> LogLimiter::TakeDue(TimePoint now) {
  Roll(now);
  return std::exchange(ready_, {});
}

void LogLimiter::LogDue(TimePoint now) {
  for (const auto& s : TakeDue(now)) {
    spdlog::warn("{}", FormatLogSummary(s, options_.label));
  }
}

std::optional<TimePoint> LogLimiter::NextDue() const {
  if (!ready_.empty()) return ready_at_;  // due already
  if (window_start_ && suppressed_ > 0) {
    return *window_start_ + options_.interval;
  }
  return std::nullopt;
}

}  // namespace tq
