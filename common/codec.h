// Frames <-> Envelope, apart from dispatch. No sockets here.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/defaults.h"
#include "common/status.h"
#include "tq.pb.h"

namespace tq {

enum class DecodeError {
  kNone = 0,
  kEmpty,       // zero-length frame
  kTooLarge,    // over kMaxMessageBytes
  kMalformed,   // not a parseable Envelope
  kBadVersion,  // version != kProtocolVersion
  kNoBody,      // parsed, but no body we know (unset or from a newer peer)
};

std::string_view DecodeErrorName(DecodeError e);

struct Decoded {
  DecodeError error = DecodeError::kNone;
  wire::Envelope envelope;  // valid when error is kNone (seq kept if parsed)
};

Decoded Decode(std::string_view bytes, size_t max_bytes = kMaxMessageBytes);

// Serializes with version set to kProtocolVersion.
std::string Encode(wire::Envelope& envelope);

// The Error reply for a message that failed to decode.
wire::Envelope ErrorReply(uint64_t seq, wire::ErrorCode code,
                          std::string message, bool retryable = false);
wire::ErrorCode ErrorCodeFor(DecodeError e);

}  // namespace tq
