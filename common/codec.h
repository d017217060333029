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
  kEmpty,           // zero-length frame
  kTooLarge,        // over kMaxMessageBytes
  kMalformed,       // not a parseable Envelope
  kBadVersion,      // version != kProtocolVersion
  kNoBody,          // parsed, but no body we know (unset or from a newer peer)
  kWrongDirection,  // a body the receiver itself sends (a Welcome to the
                    // broker, a Submit to a worker): a mutated or confused peer
};

std::string_view DecodeErrorName(DecodeError e);

struct Decoded {
  DecodeError error = DecodeError::kNone;
  // Valid when error is kNone or kWrongDirection; otherwise seq is kept if
  // the bytes parsed.
  wire::Envelope envelope;
};

// Who sends a body, by the grammar in proto/tq.proto. Workers and clients
// are both "peers": the broker tells them apart by what they say.
enum class Direction {
  kUnclassified = 0,  // a body case missing from the table (a bug: see the
                      // codec test that walks every case of the oneof)
  kToBroker,          // sent by workers and clients only
  kFromBroker,        // sent by the broker only
  kEither,            // Heartbeat, and Error (a worker answers a bad message
                      // from the broker with Error too)
};

Direction BodyDirection(wire::Envelope::BodyCase body);

// "submit_ack": the field name of a body case, "none" when unset, "unknown"
// for a case this build does not know. For log lines.
std::string BodyCaseName(wire::Envelope::BodyCase body);

// Direction-blind: accepts any well-formed body.
Decoded Decode(std::string_view bytes, size_t max_bytes = kMaxMessageBytes);

// For the broker: as Decode, and refuses a body only the broker sends with
// kWrongDirection (the envelope is kept, so seq and body case can be logged).
Decoded DecodeFromPeer(std::string_view bytes,
                       size_t max_bytes = kMaxMessageBytes);
// For workers and clients: refuses a body only peers send.
Decoded DecodeFromBroker(std::string_view bytes,
                         size_t max_bytes = kMaxMessageBytes);

// Serializes with version set to kProtocolVersion.
std::string Encode(wire::Envelope& envelope);

// The Error reply for a message that failed to decode.
wire::Envelope ErrorReply(uint64_t seq, wire::ErrorCode code,
                          std::string message, bool retryable = false);
wire::ErrorCode ErrorCodeFor(DecodeError e);

}  // namespace tq
