#include "client/url_file.h"

#include <optional>

#include "common/url_check.h"

namespace tq {
namespace {

bool IsLeadingSpace(char c) { return c == ' ' || c == '\t'; }
// A \r anywhere in the trailing run is the tail of a CRLF line ending (or
// harmless); elsewhere it is a control character for ValidateUrl to report.
bool IsTrailingSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// One physical line, stripped, with at most `cap` + 1 bytes kept so that a
// huge line costs no memory; `length` is the stripped length in full.
struct Line {
  std::string text;
  size_t length = 0;
  bool blank = true;
};

// Returns nothing at end of input.
std::optional<Line> ReadLine(std::streambuf& buf, size_t cap) {
  using Traits = std::char_traits<char>;
  Line line;
  int ch = buf.sbumpc();
  if (Traits::eq_int_type(ch, Traits::eof())) return std::nullopt;
  size_t pos = 0;
  std::optional<size_t> first;  // first non-leading-space position
  std::optional<size_t> last;   // last non-trailing-space position
  for (; !Traits::eq_int_type(ch, Traits::eof()) && ch != '\n';
       ch = buf.sbumpc(), ++pos) {
    char c = Traits::to_char_type(ch);
    if (!first && IsLeadingSpace(c)) continue;
    if (!first) first = pos;
    if (!IsTrailingSpace(c)) last = pos;
    if (line.text.size() <= cap) line.text.push_back(c);
  }
  if (!first || !last) return line;  // blank
  line.blank = false;
  line.length = *last - *first + 1;
  if (line.text.size() > line.length) line.text.resize(line.length);
  return line;
}

}  // namespace

UrlFile ParseUrlFile(std::istream& in, size_t max_url_bytes) {
  UrlFile file;
  std::streambuf* buf = in.rdbuf();
  if (buf == nullptr) return file;
  size_t line_no = 0;
  while (auto line = ReadLine(*buf, max_url_bytes)) {
    ++line_no;
    if (line->blank || line->text[0] == '#') continue;
    if (line->length > max_url_bytes) {
      file.bad.push_back({line_no, "URL is " + std::to_string(line->length) +
                                       " bytes long (limit " +
                                       std::to_string(max_url_bytes) + ")"});
      continue;
    }
    if (Status s = ValidateUrl(line->text, max_url_bytes); !s.ok()) {
      file.bad.push_back({line_no, s.message()});
      continue;
    }
    file.urls.push_back({line_no, std::move(line->text)});
  }
  in.setstate(std::ios::eofbit);
  return file;
}

}  // namespace tq
