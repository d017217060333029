// libFuzzer target: any bytes through the codec. What decodes must encode
// and decode again to the same envelope, and the three decoders must agree
// with each other and with the direction table.
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "common/codec.h"

namespace {

using tq::Decoded;
using tq::DecodeError;
using tq::Direction;

#define TQ_FUZZ_CHECK(cond)                                                 \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                  \
      std::abort();                                                         \
    }                                                                       \
  } while (0)

bool Same(const tq::wire::Envelope& a, const tq::wire::Envelope& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

// What decoded once must survive Encode -> Decode unchanged.
void CheckRoundTrip(const Decoded& d) {
  tq::wire::Envelope copy = d.envelope;
  const std::string bytes = tq::Encode(copy);
  // Re-encoding never grows a message past what the decoders accept, but
  // the cap is not what this checks.
  const Decoded again = tq::Decode(bytes, bytes.size() + 1);
  TQ_FUZZ_CHECK(again.error == DecodeError::kNone);
  TQ_FUZZ_CHECK(Same(again.envelope, d.envelope));
  TQ_FUZZ_CHECK(tq::Encode(copy).size() == bytes.size());
}

void CheckDirected(const Decoded& any, const Decoded& d, Direction refused) {
  if (any.error != DecodeError::kNone) {
    // The directed decoders only add refusals to what Decode accepts.
    TQ_FUZZ_CHECK(d.error == any.error);
    return;
  }
  const Direction dir = tq::BodyDirection(any.envelope.body_case());
  if (dir == Direction::kUnclassified) {
    TQ_FUZZ_CHECK(d.error == DecodeError::kNoBody);
  } else if (dir == refused) {
    TQ_FUZZ_CHECK(d.error == DecodeError::kWrongDirection);
  } else {
    TQ_FUZZ_CHECK(d.error == DecodeError::kNone);
  }
  if (d.error == DecodeError::kNone ||
      d.error == DecodeError::kWrongDirection) {
    TQ_FUZZ_CHECK(Same(d.envelope, any.envelope));
    CheckRoundTrip(d);
  }
}

void CheckErrorReply(const Decoded& d) {
  const tq::wire::ErrorCode code = tq::ErrorCodeFor(d.error);
  TQ_FUZZ_CHECK(tq::wire::ErrorCode_IsValid(code));
  TQ_FUZZ_CHECK(!tq::DecodeErrorName(d.error).empty());
  TQ_FUZZ_CHECK(!tq::BodyCaseName(d.envelope.body_case()).empty());
  tq::wire::Envelope reply = tq::ErrorReply(
      d.envelope.seq(), code, std::string(tq::DecodeErrorName(d.error)));
  const std::string bytes = tq::Encode(reply);
  // Every endpoint must be able to read the broker's Error replies.
  TQ_FUZZ_CHECK(tq::DecodeFromBroker(bytes).error == DecodeError::kNone);
  TQ_FUZZ_CHECK(tq::DecodeFromPeer(bytes).error == DecodeError::kNone);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Invalid UTF-8 in a string field is a parse failure that protobuf also
  // logs; at thousands of inputs a second that is noise.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const Decoded any = tq::Decode(bytes);
  if (any.error == DecodeError::kNone) CheckRoundTrip(any);
  CheckErrorReply(any);
  CheckDirected(any, tq::DecodeFromPeer(bytes), Direction::kFromBroker);
  CheckDirected(any, tq::DecodeFromBroker(bytes), Direction::kToBroker);

  // The size cap: one byte under the size refuses, at the size accepts as
  // the default cap does.
  if (size > 0 && size <= size_t(tq::kMaxMessageBytes)) {
    TQ_FUZZ_CHECK(tq::Decode(bytes, size - 1).error == DecodeError::kTooLarge);
    TQ_FUZZ_CHECK(tq::Decode(bytes, size).error == any.error);
  } else if (size == 0) {
    TQ_FUZZ_CHECK(any.error == DecodeError::kEmpty);
  }
  return 0;
}
