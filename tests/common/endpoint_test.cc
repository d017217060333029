#include "common/endpoint.h"

#include <catch2/catch.hpp>

#include "common/country_names.h"
#include "common/duration.h"
#include "common/queue_name.h"

namespace tq {
namespace {

using std::chrono::milliseconds;

TEST_CASE("ParseEndpointTakesTcpHostPort", "[endpoint]") {
  auto e = ParseEndpoint("tcp://127.0.0.1:7070", EndpointUse::kConnect);
  REQUIRE(e.ok());
  CHECK(e->host == "127.0.0.1");
  CHECK(e->port == 7070);
  CHECK(e->ToZmq() == "tcp://127.0.0.1:7070");
  auto v6 = ParseEndpoint("tcp://[::1]:1", EndpointUse::kConnect);
  REQUIRE(v6.ok());
  CHECK(v6->host == "[::1]");
  CHECK(
      ParseEndpoint("tcp://broker.example:65535", EndpointUse::kConnect).ok());
}

TEST_CASE("ParseEndpointLetsOnlyABindAskForAnyPort", "[endpoint]") {
  CHECK(ParseEndpoint("tcp://127.0.0.1:0", EndpointUse::kBind)->ToZmq() ==
        "tcp://127.0.0.1:*");
  CHECK(ParseEndpoint("tcp://*:*", EndpointUse::kBind).ok());
  CHECK(ParseEndpoint("tcp://127.0.0.1:0", EndpointUse::kConnect)
            .status()
            .message() ==
        "'tcp://127.0.0.1:0': port 0 is out of range 1-65535 (0 only for "
        "--listen)");
  CHECK_FALSE(ParseEndpoint("tcp://*:7070", EndpointUse::kConnect).ok());
}

TEST_CASE("ParseEndpointNamesTheExpectedFormAndAGuess", "[endpoint]") {
  CHECK(ParseEndpoint("127.0.0.1:7070", EndpointUse::kConnect)
            .status()
            .message() ==
        "'127.0.0.1:7070' is not a broker endpoint (no scheme): expected "
        "tcp://HOST:PORT, e.g. tcp://127.0.0.1:7070");
  CHECK(ParseEndpoint("localhost:9000", EndpointUse::kConnect)
            .status()
            .message() ==
        "'localhost:9000' is not a broker endpoint (no scheme): expected "
        "tcp://HOST:PORT, e.g. tcp://127.0.0.1:7070 (did you mean "
        "tcp://localhost:9000?)");
  CHECK(ParseEndpoint("tcp://localhost", EndpointUse::kConnect)
            .status()
            .message() ==
        "'tcp://localhost' is not a broker endpoint (no port): expected "
        "tcp://HOST:PORT, e.g. tcp://127.0.0.1:7070 (did you mean "
        "tcp://localhost:7070?)");
  CHECK(ParseEndpoint("ipc:///tmp/x", EndpointUse::kConnect)
            .status()
            .message()
            .find("scheme 'ipc' is not tcp") != std::string::npos);
  CHECK_FALSE(ParseEndpoint("", EndpointUse::kConnect).ok());
  CHECK_FALSE(ParseEndpoint("tcp://:7070", EndpointUse::kConnect).ok());
  CHECK_FALSE(ParseEndpoint("tcp://h:70x", EndpointUse::kConnect).ok());
}

TEST_CASE("ParseEndpointRefusesPortsThatWouldWrap", "[endpoint]") {
  for (const char* text : {"tcp://127.0.0.1:70000", "tcp://127.0.0.1:65536",
                           "tcp://127.0.0.1:99999999999"}) {
    INFO(text);
    auto e = ParseEndpoint(text, EndpointUse::kBind);
    REQUIRE_FALSE(e.ok());
    CHECK(e.status().message().find("is out of range 1-65535") !=
          std::string::npos);
  }
}

TEST_CASE("ParseDurationTakesUnits", "[duration]") {
  CHECK(*ParseDuration("90") == milliseconds(90'000));
  CHECK(*ParseDuration("1.5") == milliseconds(1'500));
  CHECK(*ParseDuration("250ms") == milliseconds(250));
  CHECK(*ParseDuration("30s") == milliseconds(30'000));
  CHECK(*ParseDuration("5m") == milliseconds(300'000));
  CHECK(*ParseDuration("2h") == milliseconds(7'200'000));
  CHECK(*ParseDuration("1d") == milliseconds(86'400'000));
  CHECK(ParseDuration("5x").status().message() ==
        "'5x' is not a duration: expected e.g. 90 (seconds), 250ms, 30s, 5m, "
        "2h or 1d");
  CHECK_FALSE(ParseDuration("").ok());
  CHECK_FALSE(ParseDuration("-1s").ok());
}

TEST_CASE("CountryNamesMapToTheirCodes", "[country]") {
  CHECK(CountryCodeForName("italy") == "IT");
  CHECK(CountryCodeForName("Italy") == "IT");
  CHECK(CountryCodeForName("UK") == "GB");
  CHECK(CountryCodeForName("united kingdom") == "GB");
  CHECK(CountryCodeForName("DEU") == "DE");
  CHECK(CountryCodeForName("South Korea") == "KR");
  CHECK_FALSE(CountryCodeForName("IT").has_value());
  CHECK_FALSE(CountryCodeForName("atlantis").has_value());
  CHECK(ValidateQueueName("UK").message() ==
        "queue 'UK' is not an ISO 3166-1 alpha-2 country code (use 'GB')");
}

}  // namespace
}  // namespace tq
