// Reading the URL files given to tq-submit: one URL per line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "common/defaults.h"
#include "common/status.h"

namespace tq {

// Bounds on one URL file. A line limit alone does not bound a file (one
// endless line), so there is a byte limit as well; 256 MiB holds 1,000,000
// URLs of 268 bytes each.
inline constexpr size_t kMaxUrlFileLines = 1'000'000;
inline constexpr uint64_t kMaxUrlFileBytes = 256ull * 1024 * 1024;

struct UrlFileLimits {
  size_t max_url_bytes = kMaxUrlBytes;
  size_t max_lines = kMaxUrlFileLines;
  uint64_t max_file_bytes = kMaxUrlFileBytes;
  // Keep a URL seen earlier in the file (after normalising) as another task.
  bool allow_duplicates = false;
};

struct UrlLine {
  size_t line_no = 0;  // 1-based physical line
  std::string url;     // as queued: an IDN host in its xn-- form
};

struct BadLine {
  size_t line_no = 0;
  std::string reason;  // e.g. "scheme 'ftp' is not http or https"
};

struct UrlFile {
  std::vector<UrlLine> urls;
  std::vector<BadLine> bad;
  // Lines whose URL an earlier line already had: not in urls unless
  // allow_duplicates, counted either way.
  size_t duplicates = 0;
  // Not ok when reading stopped at a limit of UrlFileLimits (or the stream
  // failed); urls and bad then hold only what came before and should not be
  // submitted. The message says which limit and how much was read, e.g.
  // "is larger than the limit of 268435456 bytes (256 MiB); read 268435456
  // bytes (line 1) and stopped" (it reads after the file's name). A NUL byte
  // stops it too: "is a binary file (a NUL byte on line 3), not a list of
  // URLs".
  Status status;
};

// Lines end at \n, \r\n or a lone \r. A UTF-8 byte-order mark at the start is
// skipped. Each line is stripped of surrounding spaces and tabs; blank lines
// and lines starting with '#' are skipped; every other line must pass
// NormalizeUrl, and is kept in its normalised form; a bad line without a
// scheme that would pass with http:// says so ("did you mean http://...?"). A
// line longer than max_url_bytes is bad without being held in memory whole.
// Reads `in` to its end (eofbit is set) unless a limit stops it first.
UrlFile ParseUrlFile(std::istream& in, const UrlFileLimits& limits = {});

}  // namespace tq
