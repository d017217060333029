// The ZAP handler (rfc.zeromq.org/spec:27): libzmq asks it, over
// inproc://zeromq.zap.01 in the socket's context, whether a CURVE client key
// may connect. One thread owns the REP socket and answers from the current
// AuthorizedKeys table: 200 with the key's name as User-Id (and its Z85
// public key as the X-Curve-Key property), or 400 (unknown key, another
// mechanism, another domain), counted and logged with the client's address.
//
// The broker's loop never waits on it: the handshake happens in libzmq's I/O
// threads, and SetKeys swaps the table under a mutex held for a pointer copy.
//
// Order matters. libzmq 4.3 (without the draft ZMQ_ZAP_ENFORCE_DOMAIN) admits
// EVERY client key on a CURVE server socket when nothing is bound on
// inproc://zeromq.zap.01. So: Start the handler before binding the CURVE
// sockets of its context, and Stop it (or destroy it) only after they are
// closed.
#pragma once

#include <zmq.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "broker/authorized_keys.h"
#include "common/status.h"

namespace tq {

inline constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
// Properties of every frame an admitted peer sends (zmq_msg_gets).
inline constexpr const char* kUserIdProperty = "User-Id";  // the key's name
inline constexpr const char* kCurveKeyProperty = "X-Curve-Key";  // Z85
inline constexpr const char* kPeerAddressProperty = "Peer-Address";

struct ZapOptions {
  // When set, requests for another ZAP domain (ZMQ_ZAP_DOMAIN of the server
  // socket) are refused; empty serves every domain.
  std::string domain;
  // Refusal log lines: up to `log_burst` at once, then `log_per_second`;
  // the lines left out are counted in the next one.
  int log_burst = 20;
  double log_per_second = 1.0;
};

class ZapHandler {
 public:
  // Binds inproc://zeromq.zap.01 in `zmq_context` (a libzmq context handle,
  // e.g. zmq::context_t::handle()) and starts the thread: once this returns,
  // every CURVE handshake in that context is answered from `keys`. Fails if
  // another handler is bound there (one per context) or CURVE is missing.
  static Result<std::unique_ptr<ZapHandler>> Start(void* zmq_context,
                                                   AuthorizedKeysPtr keys,
                                                   ZapOptions options = {});
  ~ZapHandler();  // Stop()
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Thread-safe. Handshakes from now on use `keys`; connections already
  // admitted stay open (closing revoked sessions is the broker's job:
  // AuthorizedKeys::Revoked tells which).
  void SetKeys(AuthorizedKeysPtr keys);
  AuthorizedKeysPtr keys() const;

  // Thread-safe counters since Start.
  uint64_t accepted() const { return accepted_.load(); }
  uint64_t refused() const { return refused_.load(); }

  // Ends the thread and closes its socket; idempotent. Also safe after the
  // context was shut down or terminated (the thread has then left on ETERM).
  // See the note on order at the top of this file.
  void Stop();

 private:
  ZapHandler(void* socket, int stop_read, int stop_write,
             AuthorizedKeysPtr keys, ZapOptions options);
  void Run();
  void HandleRequest();
  void LogRefusal(const std::string& line);

  // Constant after construction.
  const ZapOptions options_;
  const int stop_read_;  // pipe: Stop() writes a byte, the thread wakes
  const int stop_write_;

  // Owned by the handler thread.
  void* socket_;  // REP on kZapEndpoint
  double log_tokens_;
  std::chrono::steady_clock::time_point log_refilled_;
  uint64_t unlogged_refusals_ = 0;

  // Shared.
  mutable std::mutex keys_mu_;
  AuthorizedKeysPtr keys_;  // guarded by keys_mu_
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
  std::mutex stop_mu_;  // Stop() against Stop()
  std::thread thread_;
};

// A property of a received frame (zmq_msg_gets), or nullopt when it has none:
// e.g. User-Id on a connection without ZAP, or any property on the routing-id
// frame a ROUTER socket prepends itself (read it from the next frame).
std::optional<std::string> MessageProperty(zmq_msg_t* message,
                                           const char* name);

}  // namespace tq
