// Reading the URL files given to tq-submit: one URL per line.
#pragma once

#include <cstddef>
#include <istream>
#include <string>
#include <vector>

#include "common/defaults.h"

namespace tq {

struct UrlLine {
  size_t line_no = 0;  // 1-based physical line
  std::string url;
};

struct BadLine {
  size_t line_no = 0;
  std::string reason;  // e.g. "scheme 'ftp' is not http or https"
};

struct UrlFile {
  std::vector<UrlLine> urls;
  std::vector<BadLine> bad;
};

// Each line is stripped of surrounding spaces and tabs (and a trailing \r);
// blank lines and lines starting with '#' are skipped; every other line must
// pass ValidateUrl. A line longer than max_url_bytes is bad without being
// held in memory whole. Reads `in` to its end (eofbit is set).
UrlFile ParseUrlFile(std::istream& in, size_t max_url_bytes = kMaxUrlBytes);

}  // namespace tq
