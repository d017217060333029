// A peer that speaks the tq protocol directly over a DEALER socket, for
// tests of the broker's edge: raw frames, crafted Envelopes (encoded with
// common/codec.h), seeded junk (random bytes, truncated and bit-flipped
// messages, multi-frame junk, unknown bodies and versions, wrong-direction
// bodies) and oversized frames. Not thread-safe: one HostilePeer per thread
// (like any ZeroMQ socket); many may share a zmq::context_t.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "tq.pb.h"

namespace tq::testing {

struct HostilePeerOptions {
  // ZeroMQ's defaults (1000 messages each way) unless set.
  std::optional<int> sndhwm;
  std::optional<int> rcvhwm;
  // ZMQ_IMMEDIATE: queue nothing until the connection is up, so that
  // WaitConnected() can tell when it is.
  bool immediate = false;
};

class HostilePeer {
 public:
  HostilePeer(zmq::context_t& context, const std::string& endpoint,
              HostilePeerOptions options = {});
  ~HostilePeer();
  HostilePeer(const HostilePeer&) = delete;
  HostilePeer& operator=(const HostilePeer&) = delete;

  // Queues the frames as one message without blocking; false if the socket
  // would block (its send queue is full, or not connected with immediate).
  bool SendFrames(const std::vector<std::string>& frames);
  bool SendEnvelope(wire::Envelope envelope);  // Encode()d: version 1

  // The next message, decoded direction-blind; nullopt after `timeout` or if
  // it does not parse.
  std::optional<wire::Envelope> Receive(std::chrono::milliseconds timeout);
  // Reads whatever has arrived, without waiting; how many messages.
  size_t DrainReplies();
  // With options.immediate: waits until the connection is up (writable).
  bool WaitConnected(std::chrono::milliseconds timeout);

  // --- the worker conversation, spoken honestly or not ---
  // Sends Hello and waits for Welcome; false on Error or timeout.
  bool SayHello(const wire::Hello& hello, std::chrono::milliseconds timeout);
  bool SendCredit(uint32_t grant);
  // Reads Assigns until `want` tasks came or nothing arrived for `quiet`
  // (bounded by `timeout` overall); the tasks taken.
  std::vector<wire::Task> TakeTasks(size_t want,
                                    std::chrono::milliseconds quiet,
                                    std::chrono::milliseconds timeout);

  // Closes the socket now (linger 0): the broker sees a disconnect.
  void Close();

  uint64_t sent() const { return sent_; }

 private:
  zmq::socket_t socket_;
  uint64_t seq_ = 0;
  uint64_t sent_ = 0;
};

// What a piece of junk is, for counting and for messages.
enum class JunkKind {
  kRandomBytes,
  kTruncated,       // a valid Submit/Result/Hello cut short
  kBitFlipped,      // a valid Submit/Result/Hello with 1-3 bits flipped
  kMultiFrame,      // 2-4 frames in one message
  kEmptyFrame,      // a zero-length frame
  kUnknownBody,     // version 1 and a field number no Envelope has
  kBadVersion,      // a valid ListQueues with version 0 or 2..
  kWrongDirection,  // a body only the broker sends (SubmitAck, Welcome, ...)
  kCount,
};

std::string_view JunkKindName(JunkKind kind);

// Seeded junk: the same seed gives the same sequence.
class JunkFactory {
 public:
  // Results, Assigns and ResultAcks name task ids in [first_task_id,
  // first_task_id + task_ids): ids are sequential from 1, so an attacker can
  // guess the live ones, or a test can keep junk away from them.
  explicit JunkFactory(uint64_t seed, uint64_t first_task_id = 1,
                       uint64_t task_ids = 1000);

  // Whether mutations start from Results too (the default) or only from
  // Submits and Hellos.
  void set_mutate_results(bool on) { mutate_results_ = on; }

  // One message of a random kind (its frames), and which kind.
  std::vector<std::string> Next(JunkKind* kind = nullptr);
  std::vector<std::string> Make(JunkKind kind);

  // The valid messages that mutations start from.
  std::string ValidSubmit();
  std::string ValidResult();
  std::string ValidHello();

 private:
  std::string RandomBytes(size_t min, size_t max);
  std::string ValidTemplate();
  uint64_t Uniform(uint64_t lo, uint64_t hi);  // [lo, hi]
  uint64_t TaskId();

  std::mt19937_64 rng_;
  const uint64_t first_task_id_;
  const uint64_t task_ids_;
  bool mutate_results_ = true;
};

// A frame over the broker's default cap plus ZeroMQ's slack (16 MiB +
// 64 KiB): ZeroMQ cuts the connection that sends it.
std::string OversizedFrame();

// VmRSS of a process in KiB, from /proc/PID/status; 0 if unreadable.
uint64_t ResidentKiB(int pid);

}  // namespace tq::testing
