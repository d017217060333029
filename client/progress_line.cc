#include "client/progress_line.h"

#include <cmath>
#include <cstdio>
#include <utility>

namespace tq {

std::string FormatEta(double seconds) {
  // Over 100 hours is as good as unknown.
  if (!(seconds >= 0) || seconds > 100.0 * 3600) return "--:--";
  auto s = static_cast<long long>(std::ceil(seconds));
  char buf[32];
  if (s >= 3600) {
    snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60,
             s % 60);
  } else {
    snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

std::string FormatProgressLine(const BatchProgress& p, double rate,
                               size_t bar_width) {
  const uint64_t finished = p.finished();
  size_t filled = 0;
  if (p.total > 0) {
    filled = static_cast<size_t>(std::min<uint64_t>(finished, p.total) *
                                 bar_width / p.total);
  }
  std::string line = "[" + std::string(filled, '#') +
                     std::string(bar_width - filled, '.') + "] ";
  line += std::to_string(p.done) + " done  " + std::to_string(p.dead) + " dead";
  if (p.cancelled > 0)
    line += "  " + std::to_string(p.cancelled) + " cancelled";
  line += " / " + std::to_string(p.total);
  char buf[64];
  snprintf(buf, sizeof buf, "  %.1f tasks/s", std::isfinite(rate) ? rate : 0.0);
  line += buf;
  double eta = -1;
  if (p.total > 0 && finished >= p.total) {
    eta = 0;
  } else if (rate > 0 && std::isfinite(rate)) {
    eta = static_cast<double>(p.total - finished) / rate;
  }
  line += "  ETA " + FormatEta(eta);
  return line;
}

std::string FormatBatchSummary(const BatchProgress& p) {
  std::string line =
      std::to_string(p.done) + " done: " + std::to_string(p.ok) + " ok";
  const std::pair<const char*, uint64_t> others[] = {
      {"unreachable", p.unreachable},
      {"http_error", p.http_error},
      {"timeout", p.timeout}};
  for (const auto& [name, n] : others) {
    if (n > 0) line += ", " + std::to_string(n) + " " + name;
  }
  line += "; " + std::to_string(p.dead) + " dead, " +
          std::to_string(p.cancelled) + " cancelled of " +
          std::to_string(p.total);
  return line;
}

}  // namespace tq
