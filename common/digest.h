// Hex digests of in-memory data (OpenSSL EVP).
#pragma once

#include <string>
#include <string_view>

namespace tq {

// Lower-case hex SHA-256 of `data`.
std::string DigestSha256(std::string_view data);
// Lower-case hex MD5 of `data` (Thug names its output directories by it).
std::string DigestMd5(std::string_view data);

}  // namespace tq
