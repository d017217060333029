// Helpers behind ToJsonLine (tq/client.h), exposed for tests.
#pragma once

#include <string>
#include <string_view>

namespace tq {

// Strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF.
bool IsValidUtf8(std::string_view bytes);

// Standard base64 (RFC 4648) with '=' padding.
std::string Base64Encode(std::string_view bytes);

}  // namespace tq
