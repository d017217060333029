#include "common/codec.h"

#include "common/defaults.h"

namespace tq {

std::string_view DecodeErrorName(DecodeError e) {
  switch (e) {
    case DecodeError::kNone:
      return "ok";
    case DecodeError::kEmpty:
      return "empty message";
    case DecodeError::kTooLarge:
      return "message too large";
    case DecodeError::kMalformed:
      return "malformed message";
    case DecodeError::kBadVersion:
      return "unsupported protocol version";
    case DecodeError::kNoBody:
      return "unknown or missing message body";
    case DecodeError::kWrongDirection:
      return "message of the wrong direction";
  }
  return "unknown error";
}

Decoded Decode(std::string_view bytes, size_t max_bytes) {
  Decoded d;
  if (bytes.empty()) {
    d.error = DecodeError::kEmpty;
    return d;
  }
  if (bytes.size() > max_bytes) {
    d.error = DecodeError::kTooLarge;
    return d;
  }
  if (!d.envelope.ParseFromArray(bytes.data(),
                                 static_cast<int>(bytes.size()))) {
    d.envelope.Clear();
    d.error = DecodeError::kMalformed;
    return d;
  }
  if (d.envelope.version() != kProtocolVersion) {
    d.error = DecodeError::kBadVersion;
  } else if (d.envelope.body_case() == wire::Envelope::BODY_NOT_SET) {
    d.error = DecodeError::kNoBody;
  }
  return d;
}

Direction BodyDirection(wire::Envelope::BodyCase body) {
  using B = wire::Envelope;
  // No default: -Wswitch names a new body case here at compile time, and
  // the codec test fails for it at run time.
  switch (body) {
    case B::kHello:
    case B::kCredit:
    case B::kResult:
    case B::kRelease:
    case B::kGoodbye:
    case B::kSubmit:
    case B::kFetchResults:
    case B::kBatchStatusRequest:
    case B::kCancelBatch:
    case B::kListQueues:
    case B::kListWorkers:
    case B::kRetryDead:
    case B::kPurgeQueue:
    case B::kDrainWorker:
    case B::kDisconnectWorker:
    case B::kReleaseWorker:
    case B::kReloadKeys:
    case B::kSubscribe:
    case B::kEventsAck:
    case B::kUnsubscribe:
    case B::kCancelTask:
    case B::kPauseQueue:
    case B::kStatusRequest:
    case B::kListBatches:
    case B::kTaskRequest:
    case B::kListActive:
      return Direction::kToBroker;
    case B::kWelcome:
    case B::kAssign:
    case B::kResultAck:
    case B::kSubmitAck:
    case B::kResults:
    case B::kBatchStatus:
    case B::kQueueList:
    case B::kWorkerList:
    case B::kAdminAck:
    case B::kKeysReloaded:
    case B::kSubscribed:
    case B::kEvents:
    case B::kTerminateTask:
    case B::kBrokerStatus:
    case B::kBatchList:
    case B::kTaskReport:
    case B::kActiveList:
      return Direction::kFromBroker;
    case B::kHeartbeat:
    case B::kError:
      return Direction::kEither;
    case B::BODY_NOT_SET:
      break;
  }
  return Direction::kUnclassified;
}

std::string BodyCaseName(wire::Envelope::BodyCase body) {
  if (body == wire::Envelope::BODY_NOT_SET) return "none";
  const auto* field =
      wire::Envelope::descriptor()->FindFieldByNumber(static_cast<int>(body));
  return field ? std::string(field->name()) : "unknown";
}

namespace {

// `refused` is the direction the receiver itself sends.
Decoded DecodeDirected(std::string_view bytes, size_t max_bytes,
                       Direction refused) {
  Decoded d = Decode(bytes, max_bytes);
  if (d.error != DecodeError::kNone) return d;
  const Direction dir = BodyDirection(d.envelope.body_case());
  if (dir == Direction::kUnclassified) {
    d.error = DecodeError::kNoBody;  // known to protobuf, not to the grammar
  } else if (dir == refused) {
    d.error = DecodeError::kWrongDirection;
  }
  return d;
}

}  // namespace

Decoded DecodeFromPeer(std::string_view bytes, size_t max_bytes) {
  return DecodeDirected(bytes, max_bytes, Direction::kFromBroker);
}

Decoded DecodeFromBroker(std::string_view bytes, size_t max_bytes) {
  return DecodeDirected(bytes, max_bytes, Direction::kToBroker);
}

std::string Encode(wire::Envelope& envelope) {
  envelope.set_version(kProtocolVersion);
  return envelope.SerializeAsString();
}

wire::Envelope ErrorReply(uint64_t seq, wire::ErrorCode code,
                          std::string message, bool retryable) {
  wire::Envelope env;
  env.set_version(kProtocolVersion);
  env.set_seq(seq);
  auto* err = env.mutable_error();
  err->set_code(code);
  err->set_message(std::move(message));
  err->set_retryable(retryable);
  return env;
}

wire::ErrorCode ErrorCodeFor(DecodeError e) {
  switch (e) {
    case DecodeError::kBadVersion:
      return wire::BAD_VERSION;
    case DecodeError::kNoBody:
    case DecodeError::kWrongDirection:  // "a body this receiver does not
                                        // handle"
      return wire::UNSUPPORTED;
    case DecodeError::kTooLarge:
      return wire::TOO_LARGE;
    default:
      return wire::BAD_MESSAGE;
  }
}

}  // namespace tq
