// Request/reply over one DEALER socket to the broker: seq matching, per
// attempt timeouts, resends and a window of pipelined requests.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "tq.pb.h"
#include "tq/client.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace tq {

// Maps a broker Error reply to a Status: STORE_UNAVAILABLE and SHUTTING_DOWN
// are kUnavailable, INVALID_ARGUMENT kInvalidArgument, NOT_FOUND kNotFound,
// anything else kInternal. The broker's message is kept.
Status StatusFromWireError(const wire::Error& error);

// "5 s", "1.5 s", "250 ms": durations in error messages.
std::string FormatDuration(std::chrono::milliseconds d);

// Not thread-safe: one owner, like the Client holding it.
class Channel {
 public:
  static Result<std::unique_ptr<Channel>> Open(const ClientOptions& options);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Sends `request` and returns the broker's reply. Each attempt waits
  // request_timeout + extra_wait; an Error reply becomes its Status.
  Result<wire::Envelope> Call(wire::Envelope request,
                              std::chrono::milliseconds extra_wait = {});

  // Sends every request, at most `window` awaiting a reply at a time, and
  // calls on_reply(i, reply) for requests[i] as replies arrive, in any order.
  // Stops at the first failure: a request out of attempts (kUnavailable), an
  // Error reply, or a non-ok Status from on_reply. Requests are resent
  // unchanged, so they must be idempotent.
  Status CallPipelined(
      std::vector<wire::Envelope>& requests, size_t window,
      std::chrono::milliseconds extra_wait,
      const std::function<Status(size_t, const wire::Envelope&)>& on_reply);

  // For a stream of messages the broker pushes (events): sends `message`
  // once under a fresh seq, waiting for nothing, and returns the seq.
  Result<uint64_t> Post(wire::Envelope message);
  // Waits up to `wait` for the next message from the broker, whatever its
  // seq; nullopt if none came. Errors of the socket only (an Error reply is
  // returned as a message).
  Result<std::optional<wire::Envelope>> Receive(std::chrono::milliseconds wait);

  const std::string& endpoint() const { return options_.endpoint; }

 private:
  Channel(const ClientOptions& options, std::shared_ptr<zmq::context_t> context,
          std::unique_ptr<zmq::socket_t> socket,
          std::unique_ptr<zmq::socket_t> monitor);
  Status SendFrame(const std::string& bytes);
  // Reads the socket monitor's events and reports changes through
  // options_.on_connection; also "no connection yet" once 1 s has passed.
  void DrainMonitor();
  void Report(ConnectionEvent::Kind kind, const std::string& message);
  // When DrainMonitor has something to say without an event (the 1 s mark),
  // else time_point::max().
  std::chrono::steady_clock::time_point NextMonitorDeadline() const;

  // Constant after construction.
  const ClientOptions options_;
  // The context outlives the socket: declared first, destroyed last.
  std::shared_ptr<zmq::context_t> context_;
  std::unique_ptr<zmq::socket_t> socket_;
  // PAIR reading socket_'s monitor events; null without on_connection.
  std::unique_ptr<zmq::socket_t> monitor_;
  const std::chrono::steady_clock::time_point opened_;
  // Owned by the caller's thread.
  uint64_t next_seq_ = 1;
  bool connected_ = false;
  bool reported_any_ = false;
  ConnectionEvent::Kind last_reported_ = ConnectionEvent::Kind::kConnected;
};

}  // namespace tq
