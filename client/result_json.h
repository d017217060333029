// Helpers behind ToJsonLine (tq/client.h), exposed for tests.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace tq {

// Strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF.
bool IsValidUtf8(std::string_view bytes);

// The handler's output as JSON when it is a JSON object or array (surrounding
// whitespace allowed), else nothing: the result line then holds it as text.
std::optional<nlohmann::ordered_json> ParseJsonOutput(std::string_view output);

// Standard base64 (RFC 4648) with '=' padding.
std::string Base64Encode(std::string_view bytes);

}  // namespace tq
