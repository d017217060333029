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

}  // namespace
}  // namespace tq
