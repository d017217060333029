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
// The top three bits of a record byte are 0 but for two keyed ops:
//   op 6, top bits 1: the peer's CURVE identity becomes the one the next
//           byte v describes (as if it had connected with that key):
//           v == 0xff: no key (a broker without keys, every role);
//           otherwise key "k<v & 3>" with roles v >> 2 & 7 (worker 1,
//           submit 2, admin 4) and countries by v >> 5 & 3: any, IT,
//           IT and DE, DE
//   op 4, top bits 1: the peer's key is revoked (RevokeKeys), as by a
//           reload that took its file away
// Peers start without a key. A broker with a key reloader set answers
// ReloadKeys with an empty change.
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
inline constexpr uint8_t kKeyedBit = 1 << 5;
inline constexpr uint8_t kNoKey = 0xff;

// The identity byte of op 6 with kKeyedBit: key "k<index>", its roles
// (worker 1, submit 2, admin 4) and countries (0 any, 1 IT, 2 IT+DE, 3 DE).
inline uint8_t IdentityByte(int key_index, uint8_t roles, uint8_t countries) {
  return uint8_t((key_index & 3) | ((roles & 7) << 2) | ((countries & 3) << 5));
}

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
  // The peer now speaks with this key (IdentityByte, or kNoKey).
  void Identity(int peer, uint8_t identity) {
    bytes_ += char(RecordByte(kOpTurn, peer) | kKeyedBit);
    bytes_ += char(identity);
  }
  void Revoke(int peer) {
    bytes_ += char(RecordByte(kOpDisconnect, peer) | kKeyedBit);
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

}  // namespace tq::fuzz
