// Times for people: ISO-8601 in UTC with milliseconds and a Z, the one
// format of result lines, tq-ctl tables and logs alike.
#pragma once

#include <cstdint>
#include <string>

namespace tq {

// 1700000000123 -> "2023-11-14T22:13:20.123Z". 0 or less: "" (unknown).
std::string FormatUtcMs(int64_t epoch_ms);

}  // namespace tq
