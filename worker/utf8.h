// proto3 `string` fields must hold valid UTF-8 (the peer refuses to parse
// otherwise), while child processes write arbitrary bytes.
#pragma once

#include <string>
#include <string_view>

namespace tq {

// Copies `bytes`, replacing each invalid UTF-8 sequence with U+FFFD.
std::string SanitizeUtf8(std::string_view bytes);

// The last (at most) `max_bytes` bytes of `bytes` as valid UTF-8: it starts
// on a character boundary and invalid sequences become U+FFFD (which may make
// the result a few bytes longer than max_bytes only if replacements occur).
std::string Utf8Tail(std::string_view bytes, size_t max_bytes);

}  // namespace tq
