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
      return wire::UNSUPPORTED;
    case DecodeError::kTooLarge:
      return wire::TOO_LARGE;
    default:
      return wire::BAD_MESSAGE;
  }
}

}  // namespace tq
