#include "worker/utf8.h"

#include <catch2/catch.hpp>
#include <string>

namespace tq {
namespace {

TEST_CASE("ValidUtf8IsKeptAsIs", "[utf8]") {
  const std::string s = "ascii \xC3\xA8 \xE2\x82\xAC \xF0\x9F\x98\x80";
  CHECK(SanitizeUtf8(s) == s);
}

TEST_CASE("InvalidUtf8BytesBecomeReplacementCharacters", "[utf8]") {
  CHECK(SanitizeUtf8("a\xFF"
                     "b") ==
        "a\xEF\xBF\xBD"
        "b");
  CHECK(SanitizeUtf8("\xC3") == "\xEF\xBF\xBD");                  // truncated
  CHECK(SanitizeUtf8("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  CHECK(SanitizeUtf8("\xED\xA0\x80").find("\xED") == std::string::npos);
}

TEST_CASE("Utf8TailStartsOnACharacterBoundary", "[utf8]") {
  const std::string s =
      "xx\xE2\x82\xAC"
      "abc";                       // euro sign then abc
  CHECK(Utf8Tail(s, 5) == "abc");  // cut inside the euro sign
  CHECK(Utf8Tail(s, 6) ==
        "\xE2\x82\xAC"
        "abc");
  CHECK(Utf8Tail(s, 100) == s);
}

}  // namespace
}  // namespace tq
