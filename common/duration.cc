#include "common/duration.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

namespace tq {

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  const std::string s(text);
  auto bad = [&] {
    return Status::InvalidArgument(
        "'" + s +
        "' is not a duration: expected e.g. 90 (seconds), 250ms, 30s, 5m, "
        "2h or 1d");
  };
  if (s.empty()) return bad();
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || errno != 0 || !std::isfinite(value) || value < 0) {
    return bad();
  }
  const std::string unit(end);
  double ms_per_unit = 0;
  if (unit.empty() || unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "m") {
    ms_per_unit = 60'000;
  } else if (unit == "h") {
    ms_per_unit = 3'600'000;
  } else if (unit == "d") {
    ms_per_unit = 86'400'000;
  } else {
    return bad();
  }
  const double ms = value * ms_per_unit;
  if (ms > 100.0 * 365 * 86'400'000) return bad();
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(ms)));
}

}  // namespace tq
