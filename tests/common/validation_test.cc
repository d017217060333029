#include <catch2/catch.hpp>

#include "common/queue_name.h"
#include "common/url_check.h"

namespace tq {
namespace {

TEST_CASE("QueueNamesAreGenericOrIsoCountryCodes", "[validation]") {
  CHECK(ValidateQueueName("generic").ok());
  CHECK(ValidateQueueName("IT").ok());
  CHECK(ValidateQueueName("GB").ok());
  Status lower = ValidateQueueName("it");
  CHECK_FALSE(lower.ok());
  CHECK(lower.message().find("upper case (use 'IT')") != std::string::npos);
  CHECK_FALSE(ValidateQueueName("XX").ok());
  CHECK_FALSE(ValidateQueueName("UK").ok());  // not an ISO code: GB is
  CHECK_FALSE(ValidateQueueName("").ok());
  CHECK_FALSE(ValidateQueueName("ITA").ok());
  CHECK_FALSE(ValidateQueueName("Generic").ok());
}

TEST_CASE("UrlsMustBeAbsoluteHttpOrHttps", "[validation]") {
  CHECK(ValidateUrl("http://example.com/").ok());
  CHECK(ValidateUrl("HTTPS://example.com/a?b=c#d").ok());
  CHECK(ValidateUrl("http://127.0.0.1:8080/x").ok());
  CHECK(ValidateUrl("http://[::1]/").ok());
  CHECK(ValidateUrl("ftp://example.com/").message() ==
        "scheme 'ftp' is not http or https");
  CHECK(ValidateUrl("example.com/page").message().find("not an absolute URL") !=
        std::string::npos);
  CHECK(ValidateUrl("http://").message() == "URL has no host");
  CHECK(ValidateUrl("http://exa mple.com/").message() == "space at column 11");
  CHECK(ValidateUrl(std::string("http://a.com/\x01")).message() ==
        "control character at column 14");
  CHECK(ValidateUrl("http://a.com/" + std::string(5000, 'a'))
            .message()
            .find("bytes long (limit 4096)") != std::string::npos);
  CHECK(ValidateUrl("").message() == "empty URL");
}

TEST_CASE("PortsMustBeInOneTo65535", "[validation]") {
  CHECK(ValidateUrl("http://a.example:1/").ok());
  CHECK(ValidateUrl("http://a.example:65535/").ok());
  CHECK(ValidateUrl("https://[::1]:443/").ok());
  CHECK(ValidateUrl("http://a.example:08080/").ok());  // leading zero
  CHECK(ValidateUrl("http://a.example:/").ok());       // empty: the default
  CHECK(ValidateUrl("http://a.example:99999/").message() ==
        "port 99999 is out of range (1-65535)");
  CHECK(ValidateUrl("http://a.example:65536").message() ==
        "port 65536 is out of range (1-65535)");
  CHECK(ValidateUrl("http://a.example:0/").message() ==
        "port 0 is out of range (1-65535)");
  CHECK(ValidateUrl("http://a.example:000/").message() ==
        "port 000 is out of range (1-65535)");
  CHECK(ValidateUrl("http://u@[::1]:123456789012345678901/").message() ==
        "port 123456789012345678901 is out of range (1-65535)");
  CHECK(
      ValidateUrl("http://a.example:80x/").message().find("not a valid URL") ==
      0);
}

TEST_CASE("NonAsciiUrlsAreRefusedWithAReason", "[validation]") {
  // What the broker checks: an IDN must arrive in its xn-- form.
  CHECK(ValidateUrl("http://xn--bcher-kva.example/").ok());
  CHECK(ValidateUrl("http://b\xC3\xBC"
                    "cher.example/")
            .message() ==
        "host is not ASCII (an internationalized domain name must be sent in "
        "its xn-- form)");
  CHECK(ValidateUrl("http://a.example/\xC3\xBC").message() ==
        "non-ASCII byte at column 18 (percent-encode it)");
}

TEST_CASE("NormalizeUrlConvertsIdnHostsToPunycode", "[validation]") {
  auto ascii = NormalizeUrl("http://example.com/a b");
  CHECK(ascii.status().message() == "space at column 21");
  CHECK(NormalizeUrl("http://example.com/").value() == "http://example.com/");
  // Unchanged when ASCII, even upper case.
  CHECK(NormalizeUrl("HTTP://Example.COM/").value() == "HTTP://Example.COM/");
  CHECK(NormalizeUrl("http://b\xC3\xBC"
                     "cher.example/")
            .value() == "http://xn--bcher-kva.example/");
  // TR46 maps upper case, NFC composes, and ideographic full stops are dots.
  CHECK(NormalizeUrl("http://B\xC3\x9C"
                     "CHER.example/")
            .value() == "http://xn--bcher-kva.example/");
  CHECK(NormalizeUrl("http://bu\xCC\x88"
                     "cher.example/")
            .value() == "http://xn--bcher-kva.example/");
  CHECK(NormalizeUrl("http://b\xC3\xBC"
                     "cher\xE3\x80\x82"
                     "example/")
            .value() == "http://xn--bcher-kva.example/");
  // Nontransitional: sharp s is kept (transitional would give "fass").
  CHECK(NormalizeUrl("http://fa\xC3\x9F.de/").value() ==
        "http://xn--fa-hia.de/");
  // User, port, path, query and fragment are kept byte for byte.
  CHECK(NormalizeUrl("https://u:p@\xE4\xBE\x8B\xE5\xAD\x90.example:8443/"
                     "A%20b?x=1#F")
            .value() == "https://u:p@xn--fsqu00a.example:8443/A%20b?x=1#F");
  CHECK(NormalizeUrl("http://b\xC3\xBC"
                     "cher.example")
            .value() == "http://xn--bcher-kva.example");
  CHECK(NormalizeUrl("http://b\xC3\xBC"
                     "cher.example.:80")
            .value() == "http://xn--bcher-kva.example.:80");
}

TEST_CASE("NormalizeUrlNamesWhatIsWrongWithAnIdn", "[validation]") {
  const std::string invalid =
      "' is not a valid internationalized domain name: ";
  // A zero-width joiner outside its context (CONTEXTJ).
  auto zwj = NormalizeUrl(
      "http://a\xE2\x80\x8D"
      "b.example/");
  CHECK(zwj.status().message().find("host 'a\xE2\x80\x8D"
                                    "b.example" +
                                    invalid) == 0);
  // Fullwidth solidus would map to '/': refused by STD3 rules, so the
  // host cannot move where the path begins.
  auto slash = NormalizeUrl(
      "http://evil.example\xEF\xBC\x8F"
      "b\xC3\xBC"
      "cher.example/");
  CHECK(slash.status().message().find(invalid) != std::string::npos);
  CHECK(slash.status().message() ==
        "host 'evil.example\xEF\xBC\x8F"
        "b\xC3\xBC"
        "cher.example' is not a valid internationalized domain name: A-label "
        "roundtrip failed");
  CHECK(NormalizeUrl("http://evil.example\xEF\xBC\x8F"
                     "b.example/")
            .status()
            .message() ==
        "host 'evil.example\xEF\xBC\x8F"
        "b.example' is not a valid internationalized domain name: it maps to "
        "'evil.example/b.example', not letters, digits, '-' and '.'");
  CHECK(NormalizeUrl("http://a_\xC3\xBC.example/").status().message() ==
        "host 'a_\xC3\xBC.example' is not a valid internationalized domain "
        "name: it maps to 'xn--a_-yka.example', not letters, digits, '-' and "
        "'.'");
  // Not UTF-8 at all.
  auto latin1 = NormalizeUrl(
      "http://b\xFC"
      "cher.example/");
  CHECK(latin1.status().message().find("host 'b\xFC"
                                       "cher.example" +
                                       invalid) == 0);
  // A label over 63 bytes once converted.
  auto label =
      NormalizeUrl("http://" + std::string(60, 'a') + "\xC3\xBC.example/");
  CHECK(label.status().message().find(invalid) != std::string::npos);
  // Non-ASCII outside the host is refused with its column.
  CHECK(NormalizeUrl("http://b\xC3\xBC"
                     "cher.example/\xC3\xBC")
            .status()
            .message() ==
        "non-ASCII byte at column 24 (only the host may be non-ASCII; "
        "percent-encode the rest)");
  CHECK(NormalizeUrl("http://\xC3\xBC"
                     "ser@a.example/")
            .status()
            .message()
            .find("non-ASCII byte at column 8") == 0);
  CHECK(NormalizeUrl("http://[\xC3\xBC]/")
            .status()
            .message()
            .find("non-ASCII byte at column 9") == 0);
  // Other checks still apply, at the columns of the URL as given.
  CHECK(NormalizeUrl("ftp://b\xC3\xBC"
                     "cher.example/")
            .status()
            .message() == "scheme 'ftp' is not http or https");
  CHECK(NormalizeUrl("http://b\xC3\xBC"
                     "cher.example:99999/")
            .status()
            .message() == "port 99999 is out of range (1-65535)");
  CHECK(NormalizeUrl("http://b\xC3\xBC"
                     "cher.example/a\"b")
            .status()
            .message() == "not a valid URL (syntax error at column 25)");
  // The limit holds for the converted URL too.
  auto grown = NormalizeUrl(
      "http://b\xC3\xBC"
      "cher.example/",
      25);
  CHECK(grown.status().message() ==
        "URL is 29 bytes long with its host in xn-- form (limit 25)");
}

}  // namespace
}  // namespace tq
