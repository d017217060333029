#include "client/url_file.h"

#include <catch2/catch.hpp>
#include <sstream>
#include <string>

namespace tq {
namespace {

UrlFile Parse(const std::string& text, size_t cap = kMaxUrlBytes) {
  std::istringstream in(text);
  UrlFileLimits limits;
  limits.max_url_bytes = cap;
  return ParseUrlFile(in, limits);
}

UrlFile ParseWithin(const std::string& text, size_t max_lines,
                    uint64_t max_file_bytes) {
  std::istringstream in(text);
  UrlFileLimits limits;
  limits.max_lines = max_lines;
  limits.max_file_bytes = max_file_bytes;
  return ParseUrlFile(in, limits);
}

}  // namespace

TEST_CASE("ParseUrlFile keeps good lines with their physical line numbers",
          "[url_file]") {
  UrlFile f = Parse(
      "http://a.example/1\n"
      "\n"
      "# a comment\n"
      "https://b.example/2?q=1\n");
  REQUIRE(f.bad.empty());
  REQUIRE(f.urls.size() == 2);
  CHECK(f.urls[0].line_no == 1);
  CHECK(f.urls[0].url == "http://a.example/1");
  CHECK(f.urls[1].line_no == 4);
  CHECK(f.urls[1].url == "https://b.example/2?q=1");
}

TEST_CASE("ParseUrlFile skips blank, whitespace-only and comment lines",
          "[url_file]") {
  UrlFile f = Parse("\n   \n\t\n#x\n  # indented comment\n\r\n");
  CHECK(f.urls.empty());
  CHECK(f.bad.empty());
}

TEST_CASE("ParseUrlFile strips surrounding blanks and CRLF endings",
          "[url_file]") {
  UrlFile f = Parse("  http://a.example/x \t\r\n\thttps://b.example/\r\n");
  REQUIRE(f.bad.empty());
  REQUIRE(f.urls.size() == 2);
  CHECK(f.urls[0].url == "http://a.example/x");
  CHECK(f.urls[0].line_no == 1);
  CHECK(f.urls[1].url == "https://b.example/");
  CHECK(f.urls[1].line_no == 2);
}

TEST_CASE("ParseUrlFile reads a last line without a newline", "[url_file]") {
  UrlFile f = Parse("http://a.example/\nhttp://b.example/");
  REQUIRE(f.urls.size() == 2);
  CHECK(f.urls[1].line_no == 2);
}

TEST_CASE("ParseUrlFile reports bad lines with exact reasons and line numbers",
          "[url_file]") {
  UrlFile f = Parse(
      "http://ok.example/\n"          // 1
      "ftp://files.example/x\n"       // 2
      "example.com/x\n"               // 3
      "http://ctl.example/a\x01z\n"   // 4
      "http://\n"                     // 5
      "https://ok.example/again\n");  // 6
  REQUIRE(f.urls.size() == 2);
  CHECK(f.urls[0].line_no == 1);
  CHECK(f.urls[1].line_no == 6);
  REQUIRE(f.bad.size() == 4);
  CHECK(f.bad[0].line_no == 2);
  CHECK(f.bad[0].reason == "scheme 'ftp' is not http or https");
  CHECK(f.bad[1].line_no == 3);
  CHECK(f.bad[1].reason ==
        "not an absolute URL (no scheme; expected http:// or https://) (did "
        "you mean http://example.com/x?)");
  CHECK(f.bad[2].line_no == 4);
  CHECK(f.bad[2].reason == "control character at column 21");
  CHECK(f.bad[3].line_no == 5);
  CHECK(f.bad[3].reason == "URL has no host");
}

TEST_CASE("ParseUrlFile refuses a URL longer than the cap, giving its length",
          "[url_file]") {
  std::string long_url = "http://a.example/" + std::string(100, 'x');  // 117
  UrlFile f = Parse("http://a.example/\n" + long_url + "\n", 100);
  REQUIRE(f.urls.size() == 1);
  REQUIRE(f.bad.size() == 1);
  CHECK(f.bad[0].line_no == 2);
  CHECK(f.bad[0].reason == "URL is 117 bytes long (limit 100)");
}

TEST_CASE("ParseUrlFile measures a very long line without its blanks",
          "[url_file]") {
  std::string huge =
      "  http://a.example/" + std::string(1'000'000, 'y') + "   \r\n";
  UrlFile f = Parse(huge + "http://b.example/\n");
  REQUIRE(f.bad.size() == 1);
  CHECK(f.bad[0].reason == "URL is 1000017 bytes long (limit 4096)");
  REQUIRE(f.urls.size() == 1);
  CHECK(f.urls[0].line_no == 2);
}

TEST_CASE("ParseUrlFile accepts a URL exactly at the cap", "[url_file]") {
  std::string url = "http://a.example/" + std::string(83, 'x');  // 100 bytes
  UrlFile f = Parse(url + "  \n", 100);
  REQUIRE(f.bad.empty());
  REQUIRE(f.urls.size() == 1);
  CHECK(f.urls[0].url == url);
}

TEST_CASE("ParseUrlFile ends a line at a lone carriage return", "[url_file]") {
  UrlFile f = Parse("http://a.example/\rx\n");
  REQUIRE(f.urls.size() == 1);
  CHECK(f.urls[0].url == "http://a.example/");
  REQUIRE(f.bad.size() == 1);
  CHECK(f.bad[0].line_no == 2);
  CHECK(f.bad[0].reason ==
        "not an absolute URL (no scheme; expected http:// or https://)");
}

TEST_CASE("ParseUrlFile numbers lines ended by CR, LF and CRLF alike",
          "[url_file]") {
  UrlFile f = Parse(
      "http://a.example/1\r"      // 1
      "http://a.example/2\r\n"    // 2
      "\r"                        // 3
      "\r\n"                      // 4
      "http://a.example/5\n"      // 5
      "\n"                        // 6
      "ftp://a.example/7\r"       // 7
      "# 8\r"                     // 8
      "http://a.example/9\r\r\n"  // 9, then 10 blank
      "http://a.example/11\r");   // 11
  REQUIRE(f.bad.size() == 1);
  CHECK(f.bad[0].line_no == 7);
  REQUIRE(f.urls.size() == 5);
  CHECK(f.urls[0].line_no == 1);
  CHECK(f.urls[0].url == "http://a.example/1");
  CHECK(f.urls[1].line_no == 2);
  CHECK(f.urls[2].line_no == 5);
  CHECK(f.urls[3].line_no == 9);
  CHECK(f.urls[3].url == "http://a.example/9");
  CHECK(f.urls[4].line_no == 11);
  CHECK(f.urls[4].url == "http://a.example/11");
  CHECK(f.status.ok());
}

TEST_CASE("ParseUrlFile skips a UTF-8 byte-order mark at the start",
          "[url_file]") {
  UrlFile f = Parse("\xEF\xBB\xBFhttp://a.example/\nhttp://b.example/\n");
  REQUIRE(f.bad.empty());
  REQUIRE(f.urls.size() == 2);
  CHECK(f.urls[0].line_no == 1);
  CHECK(f.urls[0].url == "http://a.example/");
  // Also before a comment, a blank line, or nothing at all.
  CHECK(Parse("\xEF\xBB\xBF# c\n").bad.empty());
  CHECK(Parse("\xEF\xBB\xBF\r\n").bad.empty());
  CHECK(Parse("\xEF\xBB\xBF").bad.empty());
}

TEST_CASE("ParseUrlFile keeps bytes that only look like a byte-order mark",
          "[url_file]") {
  // Not at the start: a non-ASCII byte of line 2.
  UrlFile later = Parse("http://a.example/\n\xEF\xBB\xBFhttp://b.example/\n");
  REQUIRE(later.bad.size() == 1);
  CHECK(later.bad[0].line_no == 2);
  CHECK(later.bad[0].reason ==
        "non-ASCII byte at column 1 (only the host may be non-ASCII; "
        "percent-encode the rest)");
  // A mark cut short is kept as it is.
  for (std::string start : {"\xEF", "\xEF\xBB", "\xEF\xBBx"}) {
    UrlFile f = Parse(start + "http://a.example/\n");
    INFO(start.size());
    REQUIRE(f.bad.size() == 1);
    CHECK(f.bad[0].line_no == 1);
    CHECK(f.bad[0].reason.find("non-ASCII byte at column 1") == 0);
  }
}

TEST_CASE("ParseUrlFile converts IDN hosts to their xn-- form", "[url_file]") {
  UrlFile f = Parse(
      "http://b\xC3\xBC"
      "cher.example/\n"
      "  https://user@B\xC3\x9C"
      "CHER.example:8080/p?q#f \n"
      "http://a\xE2\x80\x8D"
      "b.example/\n");
  REQUIRE(f.urls.size() == 2);
  CHECK(f.urls[0].line_no == 1);
  CHECK(f.urls[0].url == "http://xn--bcher-kva.example/");
  CHECK(f.urls[1].line_no == 2);
  CHECK(f.urls[1].url == "https://user@xn--bcher-kva.example:8080/p?q#f");
  REQUIRE(f.bad.size() == 1);
  CHECK(f.bad[0].line_no == 3);
  CHECK(f.bad[0].reason.find("host 'a\xE2\x80\x8D"
                             "b.example' is not a valid internationalized "
                             "domain name: ") == 0);
}

TEST_CASE("ParseUrlFile refuses ports outside 1-65535", "[url_file]") {
  UrlFile f = Parse(
      "http://a.example:99999/\n"
      "http://a.example:0/\n"
      "http://a.example:65535/\n"
      "http://a.example:1/\n");
  REQUIRE(f.bad.size() == 2);
  CHECK(f.bad[0].line_no == 1);
  CHECK(f.bad[0].reason == "port 99999 is out of range (1-65535)");
  CHECK(f.bad[1].line_no == 2);
  CHECK(f.bad[1].reason == "port 0 is out of range (1-65535)");
  CHECK(f.urls.size() == 2);
}

TEST_CASE("ParseUrlFile stops at the byte limit and says what it read",
          "[url_file]") {
  const std::string text = "http://a.example/1\nhttp://a.example/2\n";  // 38
  UrlFile exact = ParseWithin(text, 100, 38);
  CHECK(exact.status.ok());
  CHECK(exact.urls.size() == 2);
  UrlFile over = ParseWithin(text, 100, 37);
  CHECK(over.status.code() == Status::Code::kTooLarge);
  CHECK(over.status.message() ==
        "is larger than the limit of 37 bytes; read 37 bytes (line 2) and "
        "stopped");
  // One endless line: the limit, not the line count, ends it.
  UrlFile endless =
      ParseWithin(std::string(3 * 1024 * 1024, '\0'), 10, 2 * 1024 * 1024);
  CHECK(endless.status.message() ==
        "is larger than the limit of 2097152 bytes (2 MiB); read 2097152 "
        "bytes (line 1) and stopped");
  CHECK(endless.bad.empty());
}

TEST_CASE("ParseUrlFile stops at the line limit and says what it read",
          "[url_file]") {
  const std::string text = "http://a.example/1\n\n# 3\n";  // 24 bytes
  UrlFile exact = ParseWithin(text, 3, kMaxUrlFileBytes);
  CHECK(exact.status.ok());
  CHECK(exact.urls.size() == 1);
  UrlFile over = ParseWithin(text + "x", 3, kMaxUrlFileBytes);
  CHECK(over.status.code() == Status::Code::kTooLarge);
  CHECK(over.status.message() ==
        "has more than the limit of 3 lines; read 3 lines (24 bytes) and "
        "stopped");
  // A last line without a line end counts as a line.
  CHECK(ParseWithin("a\nb\nc", 3, kMaxUrlFileBytes).status.ok());
  CHECK_FALSE(ParseWithin("a\nb\nc\nd", 3, kMaxUrlFileBytes).status.ok());
}

TEST_CASE("ParseUrlFile limits default to a million lines and 256 MiB",
          "[url_file]") {
  UrlFileLimits limits;
  CHECK(limits.max_lines == 1'000'000);
  CHECK(limits.max_file_bytes == 256ull * 1024 * 1024);
  CHECK(limits.max_url_bytes == kMaxUrlBytes);
}

TEST_CASE("ParseUrlFile refuses scheme-less and host-less URLs with reasons",
          "[url_file]") {
  UrlFile f = Parse("/x\nmailto:a@b\nhttp:/x\nHTTP://ok.example/\n");
  REQUIRE(f.bad.size() == 3);
  CHECK(f.bad[0].reason ==
        "not an absolute URL (no scheme; expected http:// or https://)");
  CHECK(f.bad[1].reason == "scheme 'mailto' is not http or https");
  CHECK(f.bad[2].reason == "URL has no host");
  REQUIRE(f.urls.size() == 1);
  CHECK(f.urls[0].line_no == 4);
}

}  // namespace tq

namespace tq {

TEST_CASE("ParseUrlFile queues a repeated URL once and counts it",
          "[url_file]") {
  UrlFile f = Parse(
      "http://a.example/x\n"
      "  http://a.example/x\t\n"  // the same once stripped
      "http://b.example/\n"
      "http://a.example/x\n");
  REQUIRE(f.urls.size() == 2);
  CHECK(f.urls[0].line_no == 1);
  CHECK(f.urls[1].line_no == 3);
  CHECK(f.duplicates == 2);

  std::istringstream in("http://a.example/x\nhttp://a.example/x\n");
  UrlFileLimits keep;
  keep.allow_duplicates = true;
  UrlFile kept = ParseUrlFile(in, keep);
  CHECK(kept.urls.size() == 2);
  CHECK(kept.duplicates == 1);
}

TEST_CASE("ParseUrlFile hints at a missing scheme", "[url_file]") {
  UrlFile f = Parse("127.0.0.1:8766/a.html\n");
  REQUIRE(f.bad.size() == 1);
  CHECK(f.bad[0].reason ==
        "not a valid URL (syntax error at column 10) (did you mean "
        "http://127.0.0.1:8766/a.html?)");
}

TEST_CASE("ParseUrlFile refuses a binary file at its first NUL byte",
          "[url_file]") {
  std::string text =
      "http://a.example/\n\x7f"
      "ELF";
  text.push_back('\0');
  text += "\x01\x02\n\xff\xfe\n";
  UrlFile f = Parse(text);
  CHECK(f.status.message() ==
        "is a binary file (a NUL byte on line 2), not a list of URLs");
  CHECK(f.bad.empty());
}

}  // namespace tq
