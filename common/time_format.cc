#include "common/time_format.h"

#include <cstdio>
#include <ctime>

namespace tq {

std::string FormatUtcMs(int64_t epoch_ms) {
  if (epoch_ms <= 0) return "";
  const time_t seconds = static_cast<time_t>(epoch_ms / 1000);
  struct tm utc {};
  if (gmtime_r(&seconds, &utc) == nullptr) return "";
  char buf[40];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
           utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
           utc.tm_min, utc.tm_sec, static_cast<int>(epoch_ms % 1000));
  return buf;
}

}  // namespace tq
