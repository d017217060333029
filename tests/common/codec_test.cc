#include "common/codec.h"

#include <google/protobuf/descriptor.h>

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

// One envelope per body case of the oneof, each with its body set (empty)
// through reflection, so a body added to tq.proto is covered here unasked.
std::vector<wire::Envelope> EveryBody() {
  const auto* oneof = wire::Envelope::descriptor()->FindOneofByName("body");
  REQUIRE(oneof != nullptr);
  std::vector<wire::Envelope> out;
  for (int i = 0; i < oneof->field_count(); ++i) {
    wire::Envelope env;
    env.set_seq(1000 + i);
    env.GetReflection()->MutableMessage(&env, oneof->field(i));
    REQUIRE(int(env.body_case()) == oneof->field(i)->number());
    out.push_back(std::move(env));
  }
  return out;
}

TEST_CASE("EveryBodyCaseHasADirection", "[codec]") {
  int to_broker = 0, from_broker = 0, either = 0;
  for (const auto& env : EveryBody()) {
    const Direction dir = BodyDirection(env.body_case());
    INFO("body " << BodyCaseName(env.body_case()));
    CHECK(dir != Direction::kUnclassified);
    to_broker += dir == Direction::kToBroker;
    from_broker += dir == Direction::kFromBroker;
    either += dir == Direction::kEither;
  }
  CHECK(BodyDirection(wire::Envelope::BODY_NOT_SET) ==
        Direction::kUnclassified);
  // Spot checks against the grammar in proto/tq.proto.
  using B = wire::Envelope;
  CHECK(BodyDirection(B::kHello) == Direction::kToBroker);
  CHECK(BodyDirection(B::kResult) == Direction::kToBroker);
  CHECK(BodyDirection(B::kSubmit) == Direction::kToBroker);
  CHECK(BodyDirection(B::kPurgeQueue) == Direction::kToBroker);
  CHECK(BodyDirection(B::kWelcome) == Direction::kFromBroker);
  CHECK(BodyDirection(B::kAssign) == Direction::kFromBroker);
  CHECK(BodyDirection(B::kSubmitAck) == Direction::kFromBroker);
  CHECK(BodyDirection(B::kResults) == Direction::kFromBroker);
  CHECK(BodyDirection(B::kHeartbeat) == Direction::kEither);
  CHECK(BodyDirection(B::kError) == Direction::kEither);
  CHECK(to_broker > 0);
  CHECK(from_broker > 0);
  CHECK(either > 0);
}

TEST_CASE("EveryBodyRoundTripsAndIsRefusedOnlyInTheWrongDirection", "[codec]") {
  for (wire::Envelope& env : EveryBody()) {
    const auto body = env.body_case();
    INFO("body " << BodyCaseName(body));
    const std::string bytes = Encode(env);
    const Direction dir = BodyDirection(body);

    Decoded any = Decode(bytes);
    CHECK(any.error == DecodeError::kNone);
    CHECK(any.envelope.body_case() == body);

    Decoded at_broker = DecodeFromPeer(bytes);
    CHECK(at_broker.envelope.body_case() == body);
    CHECK(at_broker.envelope.seq() == env.seq());
    CHECK(at_broker.error == (dir == Direction::kFromBroker
                                  ? DecodeError::kWrongDirection
                                  : DecodeError::kNone));

    Decoded at_peer = DecodeFromBroker(bytes);
    CHECK(at_peer.envelope.body_case() == body);
    CHECK(at_peer.error == (dir == Direction::kToBroker
                                ? DecodeError::kWrongDirection
                                : DecodeError::kNone));
  }
}

TEST_CASE("WrongDirectionIsRefusedAsUnsupported", "[codec]") {
  wire::Envelope welcome;
  welcome.set_seq(3);
  welcome.mutable_welcome()->add_queues("generic");
  Decoded d = DecodeFromPeer(Encode(welcome));
  CHECK(d.error == DecodeError::kWrongDirection);
  CHECK(d.envelope.seq() == 3);  // kept so the error reply can echo it
  CHECK(DecodeErrorName(d.error) == "message of the wrong direction");
  CHECK(ErrorCodeFor(d.error) == wire::UNSUPPORTED);

  wire::Envelope submit = SampleSubmit();
  CHECK(DecodeFromBroker(Encode(submit)).error == DecodeError::kWrongDirection);
  CHECK(DecodeFromPeer(Encode(submit)).error == DecodeError::kNone);
}

TEST_CASE("MutatedSubmitThatParsesAsSubmitAckIsRefusedByTheBroker", "[codec]") {
  // The fuzz run's case: one bit changes the body tag from Submit (field 20)
  // to SubmitAck (field 21), same wire type, and protobuf still parses it
  // (the mismatched inner fields become unknown fields).
  wire::Envelope env = SampleSubmit();
  std::string bytes = Encode(env);
  const std::string submit_tag = "\xa2\x01";  // (20 << 3) | 2, as a varint
  const size_t at = bytes.find(submit_tag);
  REQUIRE(at != std::string::npos);
  bytes[at] = '\xaa';  // (21 << 3) | 2

  Decoded blind = Decode(bytes);
  REQUIRE(blind.error == DecodeError::kNone);
  CHECK(blind.envelope.has_submit_ack());
  CHECK(DecodeFromPeer(bytes).error == DecodeError::kWrongDirection);
}

TEST_CASE("DirectedDecodeKeepsTheOtherRefusals", "[codec]") {
  CHECK(DecodeFromPeer("").error == DecodeError::kEmpty);
  CHECK(DecodeFromBroker("").error == DecodeError::kEmpty);
  std::string garbage(64, '\xff');
  CHECK(DecodeFromPeer(garbage).error == DecodeError::kMalformed);
  CHECK(DecodeFromBroker(garbage).error == DecodeError::kMalformed);
  wire::Envelope env = SampleSubmit();
  std::string bytes = Encode(env);
  CHECK(DecodeFromPeer(bytes, bytes.size() - 1).error ==
        DecodeError::kTooLarge);
  wire::Envelope none;
  none.set_seq(1);
  CHECK(DecodeFromPeer(Encode(none)).error == DecodeError::kNoBody);
  CHECK(DecodeFromBroker(Encode(none)).error == DecodeError::kNoBody);
}

TEST_CASE("BodyCaseNamesAreTheFieldNames", "[codec]") {
  CHECK(BodyCaseName(wire::Envelope::kSubmitAck) == "submit_ack");
  CHECK(BodyCaseName(wire::Envelope::kHello) == "hello");
  CHECK(BodyCaseName(wire::Envelope::BODY_NOT_SET) == "none");
  CHECK(BodyCaseName(static_cast<wire::Envelope::BodyCase>(500)) == "unknown");
}

}  // namespace
}  // namespace tq
