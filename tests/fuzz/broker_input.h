// The record format of the broker fuzz target's input, shared by the target
// and by the program that writes its seed corpus.
//
// An input is a sequence of records; each starts with one byte: the low
// three bits are the op, the next two a peer (0..3, routing id "p0".."p3").
//   op 0-3  a frame from the peer: a 2-byte little-endian length, then that
//           many bytes (fewer if the input ends), decoded with
//           DecodeFromPeer as the server does
//   op 4    the peer's connection is gone (OnDisconnect)
//   op 5    the clock moves on by v*v*4 ms, v the next byte (up to ~4 min)
//   op 6    a loop turn: OnTick, Flush, then Commit if one is pending;
//           peer 3 means the commit is left for a later turn
//   op 7    peer 3: BeginShutdown; otherwise as op 6
// The input ends with one more turn.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tq::fuzz {

inline constexpr int kPeers = 4;

enum Op : uint8_t {
  kOpMessage = 0,
  kOpDisconnect = 4,
  kOpAdvance = 5,
  kOpTurn = 6,
  kOpTurnOrShutdown = 7,
};

inline uint8_t RecordByte(uint8_t op, int peer) {
  return uint8_t(op | ((peer & 3) << 3));
}

// Builds inputs for the seed corpus.
class BrokerInput {
 public:
  void Message(int peer, std::string_view frame) {
    bytes_ += char(RecordByte(kOpMessage, peer));
    bytes_ += char(frame.size() & 0xff);
    bytes_ += char((frame.size() >> 8) & 0xff);
    bytes_ += frame;
  }
  void Disconnect(int peer) { bytes_ += char(RecordByte(kOpDisconnect, peer)); }
  void Advance(uint8_t v) {
    bytes_ += char(RecordByte(kOpAdvance, 0));
    bytes_ += char(v);
  }
  void Turn(bool commit = true) {
    bytes_ += char(RecordByte(kOpTurn, commit ? 0 : 3));
  }
  void Shutdown() { bytes_ += char(RecordByte(kOpTurnOrShutdown, 3)); }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

}  // namespace tq::fuzz
