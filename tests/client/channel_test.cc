#include "client/channel.h"

#include <catch2/catch.hpp>

namespace tq {
namespace {

wire::Error MakeError(wire::ErrorCode code, const std::string& message) {
  wire::Error e;
  e.set_code(code);
  e.set_message(message);
  return e;
}

}  // namespace

TEST_CASE("Broker errors map to Status codes with the broker's message",
          "[channel]") {
  Status store = StatusFromWireError(
      MakeError(wire::STORE_UNAVAILABLE, "disk full; try later"));
  CHECK(store.code() == Status::Code::kUnavailable);
  CHECK(store.message() == "disk full; try later");
  CHECK(StatusFromWireError(MakeError(wire::SHUTTING_DOWN, "bye")).code() ==
        Status::Code::kUnavailable);
  Status invalid =
      StatusFromWireError(MakeError(wire::INVALID_ARGUMENT, "bad limit"));
  CHECK(invalid.code() == Status::Code::kInvalidArgument);
  CHECK(invalid.message() == "bad limit");
  Status missing =
      StatusFromWireError(MakeError(wire::NOT_FOUND, "no batch 'x'"));
  CHECK(missing.code() == Status::Code::kNotFound);
  CHECK(missing.message() == "no batch 'x'");
}

TEST_CASE("Other broker errors become Internal, keeping the message",
          "[channel]") {
  Status s = StatusFromWireError(MakeError(wire::UNSUPPORTED, "what?"));
  CHECK(s.code() == Status::Code::kInternal);
  CHECK(s.message().find("what?") != std::string::npos);
  CHECK(s.message().find("UNSUPPORTED") != std::string::npos);
}

TEST_CASE("An error without a message is described by its code", "[channel]") {
  CHECK(StatusFromWireError(MakeError(wire::NOT_FOUND, "")).message() ==
        "NOT_FOUND");
}

TEST_CASE("FormatDuration prints seconds, tenths or milliseconds",
          "[channel]") {
  using std::chrono::milliseconds;
  CHECK(FormatDuration(milliseconds(5000)) == "5 s");
  CHECK(FormatDuration(milliseconds(1500)) == "1.5 s");
  CHECK(FormatDuration(milliseconds(250)) == "250 ms");
}

}  // namespace tq
