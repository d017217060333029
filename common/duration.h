// Durations as people type them on command lines: "90", "1.5", "250ms",
// "30s", "5m", "2h", "1d" (a bare number is seconds).
#pragma once

#include <chrono>
#include <string_view>

#include "common/status.h"

namespace tq {

// InvalidArgument, naming the accepted forms, for anything else or for a
// negative or absurd (> 100 years) value.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

}  // namespace tq
