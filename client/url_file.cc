#include "client/url_file.h"

#include <cctype>
#include <optional>
#include <unordered_set>

#include "common/url_check.h"

namespace tq {
namespace {

using Traits = std::char_traits<char>;

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// The bytes of a stream, at most `max_bytes` of them, with a little room to
// give bytes back (the start of a byte-order mark that was not one).
class ByteReader {
 public:
  ByteReader(std::streambuf& buf, uint64_t max_bytes)
      : buf_(buf), max_bytes_(max_bytes) {}

  // The next byte, or nothing at the end of input or at the byte limit
  // (over_limit() then says it was the limit).
  std::optional<char> Get() {
    if (pushed_ > 0) {
      ++read_;
      return back_[--pushed_];
    }
    if (AtEnd()) return std::nullopt;
    if (read_ == max_bytes_) {
      over_limit_ = true;
      return std::nullopt;
    }
    ++read_;
    return Traits::to_char_type(buf_.sbumpc());
  }
  // Takes the next byte if it is `c`.
  bool Take(char c) {
    if (pushed_ > 0 ? back_[pushed_ - 1] != c
                    : AtEnd() || buf_.sgetc() != Traits::to_int_type(c)) {
      return false;
    }
    return Get().has_value();
  }
  void PutBack(char c) {
    back_[pushed_++] = c;
    --read_;
  }
  bool AtEnd() {
    return pushed_ == 0 && Traits::eq_int_type(buf_.sgetc(), Traits::eof());
  }
  bool over_limit() const { return over_limit_; }
  uint64_t read() const { return read_; }

 private:
  std::streambuf& buf_;
  const uint64_t max_bytes_;
  uint64_t read_ = 0;
  bool over_limit_ = false;
  char back_[2] = {};
  int pushed_ = 0;
};

void SkipByteOrderMark(ByteReader& in) {
  if (!in.Take('\xEF')) return;
  if (!in.Take('\xBB')) {
    in.PutBack('\xEF');
    return;
  }
  if (in.Take('\xBF')) return;
  in.PutBack('\xBB');
  in.PutBack('\xEF');
}

// One physical line, stripped, with at most `cap` + 1 bytes kept so that a
// huge line costs no memory; `length` is the stripped length in full.
struct Line {
  std::string text;
  size_t length = 0;
  bool blank = true;
  bool has_nul = false;
};

// Returns nothing at end of input (or at the byte limit before any byte).
std::optional<Line> ReadLine(ByteReader& in, size_t cap) {
  std::optional<char> c = in.Get();
  if (!c) return std::nullopt;
  Line line;
  size_t pos = 0;
  std::optional<size_t> first;  // first non-leading-blank position
  std::optional<size_t> last;   // last non-trailing-blank position
  for (; c && *c != '\n' && *c != '\r'; c = in.Get(), ++pos) {
    if (*c == '\0') line.has_nul = true;
    if (!first && IsBlank(*c)) continue;
    if (!first) first = pos;
    if (!IsBlank(*c)) last = pos;
    if (line.text.size() <= cap) line.text.push_back(*c);
  }
  if (c == '\r') in.Take('\n');
  if (!first) return line;  // blank (a NUL is not blank: it stays seen)
  line.blank = false;
  line.length = *last - *first + 1;
  if (line.text.size() > line.length) line.text.resize(line.length);
  return line;
}

std::string Plural(uint64_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string Mib(uint64_t bytes) {
  return bytes % (1024 * 1024) == 0
             ? " (" + std::to_string(bytes / (1024 * 1024)) + " MiB)"
             : "";
}

// " (did you mean http://127.0.0.1:8766/a.html?)" for a line that lacks
// only its scheme, else "".
std::string SchemeHint(const std::string& text, const UrlFileLimits& limits) {
  if (text.find("://") != std::string::npos) return "";
  // "mailto:x" or "http:/x" name a scheme already; "host:8080/" does not.
  const size_t colon = text.find(':');
  if (colon != std::string::npos && colon + 1 < text.size() &&
      !std::isdigit(static_cast<unsigned char>(text[colon + 1]))) {
    return "";
  }
  // Only what looks like a host: a dot or a port before the path ("x" is
  // more likely a stray word than a host).
  const std::string host = text.substr(0, text.find('/'));
  if (host.find('.') == std::string::npos &&
      host.find(':') == std::string::npos) {
    return "";
  }
  auto fixed = NormalizeUrl("http://" + text, limits.max_url_bytes);
  if (!fixed.ok()) return "";
  return " (did you mean " + *fixed + "?)";
}

}  // namespace

UrlFile ParseUrlFile(std::istream& in, const UrlFileLimits& limits) {
  UrlFile file;
  std::streambuf* buf = in.rdbuf();
  if (buf == nullptr) return file;
  ByteReader reader(*buf, limits.max_file_bytes);
  SkipByteOrderMark(reader);
  size_t line_no = 0;
  std::unordered_set<std::string> seen;
  for (;;) {
    if (line_no == limits.max_lines && !reader.AtEnd()) {
      file.status = Status::TooLarge(
          "has more than the limit of " + Plural(limits.max_lines, "line") +
          "; read " + Plural(line_no, "line") + " (" +
          Plural(reader.read(), "byte") + ") and stopped");
      return file;
    }
    std::optional<Line> line = ReadLine(reader, limits.max_url_bytes);
    if (reader.over_limit()) {
      file.status = Status::TooLarge(
          "is larger than the limit of " +
          Plural(limits.max_file_bytes, "byte") + Mib(limits.max_file_bytes) +
          "; read " + Plural(reader.read(), "byte") + " (line " +
          std::to_string(line_no + 1) + ") and stopped");
      return file;
    }
    if (!line) break;
    ++line_no;
    if (line->has_nul) {
      // Text has no NUL bytes; one bad-line message per garbage line would
      // bury the point.
      file.status = Status::InvalidArgument(
          "is a binary file (a NUL byte on line " + std::to_string(line_no) +
          "), not a list of URLs");
      return file;
    }
    if (line->blank || line->text[0] == '#') continue;
    if (line->length > limits.max_url_bytes) {
      file.bad.push_back({line_no, "URL is " + std::to_string(line->length) +
                                       " bytes long (limit " +
                                       std::to_string(limits.max_url_bytes) +
                                       ")"});
      continue;
    }
    auto url = NormalizeUrl(line->text, limits.max_url_bytes);
    if (!url.ok()) {
      file.bad.push_back(
          {line_no, url.status().message() + SchemeHint(line->text, limits)});
      continue;
    }
    if (!seen.insert(*url).second) {
      ++file.duplicates;
      if (!limits.allow_duplicates) continue;
    }
    file.urls.push_back({line_no, std::move(url).value()});
  }
  in.setstate(std::ios::eofbit);
  return file;
}

}  // namespace tq
