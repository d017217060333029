// spdlog set-up shared by every binary: one line per event on stderr.
#pragma once

#include <string>

#include "common/status.h"

namespace tq {

// level: trace, debug, info, warn, error, critical, off.
Status SetupLogging(const std::string& program, const std::string& level);

}  // namespace tq
