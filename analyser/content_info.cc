#include "analyser/content_info.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>

namespace tq {
namespace {

std::string Hex(const unsigned char* p, unsigned int n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (unsigned int i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 0xf];
  }
  return out;
}

std::string Digest(const EVP_MD* md, std::string_view data) {
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), buf, &n, md, nullptr) != 1) {
    return "";
  }
  return Hex(buf, n);
}

bool StartsWith(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

std::string LowerPrefix(std::string_view data, size_t n) {
  std::string out(data.substr(0, n));
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace

Digests ComputeDigests(std::string_view data) {
  return {Digest(EVP_md5(), data), Digest(EVP_sha1(), data),
          Digest(EVP_sha256(), data)};
}

std::string Sha256Hex(std::string_view data) {
  return Digest(EVP_sha256(), data);
}

std::string SniffMime(std::string_view data) {
  if (data.empty()) return "";
  if (StartsWith(data, "MZ")) return "application/x-dosexec";
  if (StartsWith(data,
                 "\x7f"
                 "ELF")) {
    return "application/x-executable";
  }
  if (StartsWith(data, "%PDF-")) return "application/pdf";
  if (StartsWith(data, "PK\x03\x04")) return "application/zip";
  if (StartsWith(data, "\x1f\x8b")) return "application/gzip";
  if (StartsWith(data, "\xca\xfe\xba\xbe")) return "application/java-vm";
  if (StartsWith(data, "CWS") || StartsWith(data, "FWS") ||
      StartsWith(data, "ZWS")) {
    return "application/x-shockwave-flash";
  }
  // Text: skip a BOM and leading blanks, then look at the first markup.
  size_t i = StartsWith(data, "\xef\xbb\xbf") ? 3 : 0;
  while (i < data.size() && std::isspace(static_cast<unsigned char>(data[i]))) {
    ++i;
  }
  const std::string head = LowerPrefix(data.substr(i), 512);
  for (std::string_view tag : {"<!doctype html", "<html", "<head", "<body",
                               "<script", "<iframe", "<title", "<!--"}) {
    if (StartsWith(head, tag)) return "text/html";
  }
  const size_t sample = std::min<size_t>(data.size(), 4096);
  size_t binary = 0;
  for (size_t k = 0; k < sample; ++k) {
    const auto c = static_cast<unsigned char>(data[k]);
    if (c == 0 || (c < 0x20 && c != '\n' && c != '\r' && c != '\t' &&
                   c != '\f' && c != 0x1b)) {
      ++binary;
    }
  }
  if (binary * 20 > sample) return "application/octet-stream";
  for (std::string_view js : {"function", "var ", "let ", "const ", "document.",
                              "window.", "eval(", "(function", "!function"}) {
    if (head.find(js) != std::string::npos) return "application/javascript";
  }
  if (head.find("<html") != std::string::npos) return "text/html";
  return "text/plain";
}

bool IsExecutableMime(std::string_view mime) {
  static constexpr std::array<std::string_view, 7> kExecutable = {
      "application/x-dosexec",
      "application/x-executable",
      "application/x-msdownload",
      "application/x-msdos-program",
      "application/x-ms-installer",
      "application/vnd.microsoft.portable-executable",
      "application/x-sharedlib"};
  const std::string_view base = mime.substr(0, mime.find(';'));
  return std::find(kExecutable.begin(), kExecutable.end(), base) !=
         kExecutable.end();
}

double ShannonEntropy(std::string_view data) {
  if (data.empty()) return 0;
  std::array<size_t, 256> counts{};
  for (char c : data) ++counts[static_cast<unsigned char>(c)];
  double h = 0;
  const double n = static_cast<double>(data.size());
  for (size_t c : counts) {
    if (c == 0) continue;
    const double p = static_cast<double>(c) / n;
    h -= p * std::log2(p);
  }
  return h;
}

}  // namespace tq
