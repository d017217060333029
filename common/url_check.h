// Checks that a submitted URL is one a worker may fetch.
#pragma once

#include <string>
#include <string_view>

#include "common/defaults.h"
#include "common/status.h"

namespace tq {

// Ok for an absolute http:// or https:// URL with a host, at most max_bytes
// long, all ASCII, with no whitespace or control characters, and with a
// port, if one is given, in 1-65535. Otherwise the reason, e.g.
// "scheme 'ftp' is not http or https" or "port 99999 is out of range
// (1-65535)". A host in Unicode is refused: NormalizeUrl converts it.
Status ValidateUrl(std::string_view url, size_t max_bytes = kMaxUrlBytes);

// The URL as it should be queued: a host written in Unicode (an IDN, e.g.
// "http://bücher.example/") is converted to its ASCII form
// ("http://xn--bcher-kva.example/") by IDNA2008 with UTS #46 nontransitional
// processing (as browsers do: "ß" stays "ß"); the rest of the
// URL is kept byte for byte. The result must pass ValidateUrl. Otherwise the
// reason, e.g. "host 'a_ü.example' is not a valid internationalized domain
// name: ...". Columns in reasons count bytes of `url` as given.
Result<std::string> NormalizeUrl(std::string_view url,
                                 size_t max_bytes = kMaxUrlBytes);

}  // namespace tq
