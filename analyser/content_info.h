// What the analyser learns from a resource's bytes alone: digests, the MIME
// type its first bytes suggest, and how random a string looks.
#pragma once

#include <string>
#include <string_view>

namespace tq {

struct Digests {
  std::string md5;  // lower-case hex
  std::string sha1;
  std::string sha256;
};

// OpenSSL EVP digests of `data`.
Digests ComputeDigests(std::string_view data);
std::string Sha256Hex(std::string_view data);

// The MIME type the leading bytes suggest ("application/x-dosexec" for MZ,
// "application/x-executable" for ELF, "application/pdf", "application/zip",
// "application/gzip", "text/html", "application/javascript", "text/plain"),
// or "application/octet-stream" when nothing matches; "" for empty data.
std::string SniffMime(std::string_view data);

// True for MIME types that run as programs (sniffed or declared).
bool IsExecutableMime(std::string_view mime);

// Shannon entropy in bits per byte (0 for empty input).
double ShannonEntropy(std::string_view data);

}  // namespace tq
