// Checks that a submitted URL is one a worker may fetch.
#pragma once

#include <string_view>

#include "common/defaults.h"
#include "common/status.h"

namespace tq {

// Ok for an absolute http:// or https:// URL with a host, at most max_bytes
// long, with no whitespace or control characters. Otherwise the reason, e.g.
// "scheme 'ftp' is not http or https".
Status ValidateUrl(std::string_view url, size_t max_bytes = kMaxUrlBytes);

}  // namespace tq
