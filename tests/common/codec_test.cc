#include "common/codec.h"

#include <catch2/catch.hpp>

#include "common/defaults.h"

namespace tq {
namespace {

wire::Envelope SampleSubmit() {
  wire::Envelope env;
  env.set_seq(42);
  auto* s = env.mutable_submit();
  s->set_batch_id("batch-1");
  auto* item = s->add_items();
  item->set_index(7);
  item->set_url("http://example.com/");
  item->set_queue("IT");
  return env;
}

TEST_CASE("EncodeDecodeRoundTrips", "[codec]") {
  wire::Envelope env = SampleSubmit();
  std::string bytes = Encode(env);
  Decoded d = Decode(bytes);
  REQUIRE(d.error == DecodeError::kNone);
  CHECK(d.envelope.version() == kProtocolVersion);
  CHECK(d.envelope.seq() == 42);
  REQUIRE(d.envelope.has_submit());
  CHECK(d.envelope.submit().items(0).url() == "http://example.com/");
  CHECK(d.envelope.submit().items(0).index() == 7);
}

TEST_CASE("EmptyFrameIsRefused", "[codec]") {
  CHECK(Decode("").error == DecodeError::kEmpty);
}

TEST_CASE("GarbageBytesAreRefused", "[codec]") {
  // 0xff... is an invalid tag/wire type sequence for protobuf.
  std::string garbage(64, '\xff');
  CHECK(Decode(garbage).error == DecodeError::kMalformed);
  CHECK(ErrorCodeFor(DecodeError::kMalformed) == wire::BAD_MESSAGE);
}

TEST_CASE("TruncatedMessageIsRefused", "[codec]") {
  wire::Envelope env = SampleSubmit();
  std::string bytes = Encode(env);
  // Every strict prefix that cuts into the nested submit must fail to parse
  // or decode to something other than a full, valid message.
  int refused = 0;
  for (size_t n = 1; n < bytes.size(); ++n) {
    Decoded d = Decode(std::string_view(bytes).substr(0, n));
    if (d.error != DecodeError::kNone) ++refused;
  }
  CHECK(refused == int(bytes.size()) - 1);
}

TEST_CASE("OversizedFrameIsRefused", "[codec]") {
  wire::Envelope env = SampleSubmit();
  std::string bytes = Encode(env);
  CHECK(Decode(bytes, bytes.size() - 1).error == DecodeError::kTooLarge);
  CHECK(Decode(bytes, bytes.size()).error == DecodeError::kNone);
  CHECK(ErrorCodeFor(DecodeError::kTooLarge) == wire::TOO_LARGE);
}

TEST_CASE("WrongVersionIsRefused", "[codec]") {
  wire::Envelope env = SampleSubmit();
  std::string bytes = Encode(env);
  Decoded ok = Decode(bytes);
  ok.envelope.set_version(2);
  std::string v2 = ok.envelope.SerializeAsString();
  Decoded d = Decode(v2);
  CHECK(d.error == DecodeError::kBadVersion);
  CHECK(d.envelope.seq() == 42);  // kept so the error reply can echo it
}

TEST_CASE("MessageWithUnknownBodyIsRefused", "[codec]") {
  // Version 1, seq 5, and a field number no body uses (field 500, varint).
  std::string bytes;
  bytes += char(0x08);  // field 1 varint
  bytes += char(0x01);
  bytes += char(0x10);  // field 2 varint
  bytes += char(0x05);
  bytes += "\xa0\x1f\x01";  // field 500, varint 1
  Decoded d = Decode(bytes);
  CHECK(d.error == DecodeError::kNoBody);
  CHECK(ErrorCodeFor(DecodeError::kNoBody) == wire::UNSUPPORTED);
}

TEST_CASE("ErrorReplyCarriesCodeAndSeq", "[codec]") {
  wire::Envelope e = ErrorReply(9, wire::NOT_FOUND, "no batch 'x'", true);
  CHECK(e.seq() == 9);
  CHECK(e.error().code() == wire::NOT_FOUND);
  CHECK(e.error().retryable());
  CHECK(Decode(Encode(e)).error == DecodeError::kNone);
}

}  // namespace
}  // namespace tq
