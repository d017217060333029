#include "client/url_file.h"

#include <catch2/catch.hpp>
#include <sstream>
#include <string>

namespace tq {
namespace {

UrlFile Parse(const std::string& text, size_t cap = kMaxUrlBytes) {
  std::istringstream in(text);
  return ParseUrlFile(in, cap);
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
        "not an absolute URL (no scheme; expected http:// or https://)");
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

TEST_CASE("ParseUrlFile treats a lone carriage return mid-line as bad",
          "[url_file]") {
  UrlFile f = Parse("http://a.example/\rx\n");
  REQUIRE(f.bad.size() == 1);
  CHECK(f.bad[0].reason == "control character at column 18");
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
