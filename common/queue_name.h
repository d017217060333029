// Queue names: "generic" or an ISO 3166-1 alpha-2 country code in upper case.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace tq {

bool IsIsoCountryCode(std::string_view code);

// Ok for "generic" and assigned ISO 3166-1 alpha-2 codes ("IT"); otherwise a
// message saying what is wrong ("it" is refused: codes are upper case).
Status ValidateQueueName(std::string_view name);

}  // namespace tq
