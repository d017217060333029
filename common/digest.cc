#include "common/digest.h"

#include <openssl/evp.h>

namespace tq {
namespace {

std::string HexDigest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), out, &n, md, nullptr) != 1) {
    return "";
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(n * 2);
  for (unsigned int i = 0; i < n; ++i) {
    hex += kDigits[out[i] >> 4];
    hex += kDigits[out[i] & 0xf];
  }
  return hex;
}

}  // namespace

std::string DigestSha256(std::string_view data) {
  return HexDigest(EVP_sha256(), data);
}

std::string DigestMd5(std::string_view data) {
  return HexDigest(EVP_md5(), data);
}

}  // namespace tq
