// The ZeroMQ side of the broker: one ROUTER socket, one thread, one loop.
// Each turn: wait (until the core's next deadline, a message, a signal or the
// syncer), receive everything waiting, decode, hand it to the core, send what
// the core says may leave now, commit, send the acknowledgements whose commit
// is durable.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>
#include <zmq.hpp>

#include "broker/authorized_keys.h"
#include "broker/broker.h"
#include "broker/commit_syncer.h"
#include "broker/peer_limits.h"
#include "broker/zap_handler.h"
#include "common/clock.h"
#include "common/curve_keys.h"
#include "common/log_limiter.h"
#include "common/status.h"

namespace tq {

struct ServerOptions {
  std::string listen = kDefaultEndpoint;  // port 0 or * picks a free port
  std::string ready_file;  // if set, the bound endpoint is written here
  // The database, for the sizes StatusRequest reports ("" leaves them 0).
  std::string db_path;
  // More endpoints for the same socket (the web console's ipc://).
  std::vector<std::string> also_listen;
  // The codec refuses (and answers) messages over this; ZeroMQ drops frames
  // over this plus kZmqSlackBytes with their connection.
  int64_t max_message_bytes = kMaxMessageBytes;
  size_t max_messages_per_turn = 4096;
  // Per peer: requests received and not yet answered (PeerInFlight); more
  // are answered RATE_LIMITED without reaching the core.
  size_t max_in_flight = 64;
  // Per peer and direction: messages ZeroMQ queues for a peer that does not
  // read (or does not keep up) before it refuses more. With max_in_flight
  // this bounds what one peer holds in the broker. Not much lower: libzmq
  // learns late what a peer has read, so at 1,000 the bursts of
  // acknowledgements to busy honest workers overflowed it (tq-bench 2x8).
  int max_queued_messages = 10000;
  // A peer whose queue was full has its requests refused for this long.
  Millis full_queue_backoff{1000};
  // A transaction stays open across loop turns for up to this long, so one
  // commit (and one burst of acknowledgements) carries the work of many
  // turns. 0 commits at the end of every turn.
  Millis commit_interval{0};
  // With a syncer, commits are made durable off the loop thread: the
  // acknowledgements of a turn are held until the syncer has synced the
  // commit they depend on (commit_count() right after the turn's commit).
  // Not owned; outlives the server.
  CommitSyncer* syncer = nullptr;
  std::function<uint64_t()> commit_count;
  // CURVE (docs/security.md): with a secret key set, every connection is
  // encrypted and only the keys of `authorized_keys_dir` are admitted, each
  // with its roles. Without one the broker is key-free: every peer has every
  // role.
  CurveCert curve_key;
  std::string authorized_keys_dir;
  // Keys admitted besides the directory's, at every (re)load: the web
  // console's own key pair, made at start-up.
  std::vector<AuthorizedKey> builtin_keys;
  // On shutdown, how long to wait for the last commit to become durable
  // before stopping with its acknowledgements unsent.
  Millis shutdown_sync_wait{5000};
  // Called on a turn with nothing to do (no message, no commit or
  // acknowledgement pending), at most once a second: the store's idle
  // checkpoint.
  std::function<void()> on_idle;
};

class BrokerServer {
 public:
  // ZeroMQ's own cap is this much above max_message_bytes, so that a message
  // just over the codec's cap still arrives and is answered TOO_LARGE.
  static constexpr int64_t kZmqSlackBytes = 64 * 1024;

  // `core` and `clock` are not owned and outlive the server; the loop reads
  // time only from `clock` (the core should be given the same one).
  BrokerServer(Broker& core, const Clock& clock, ServerOptions options);
  ~BrokerServer();
  BrokerServer(const BrokerServer&) = delete;
  BrokerServer& operator=(const BrokerServer&) = delete;

  // Binds the ROUTER socket; after it, endpoint() is the concrete address.
  Status Bind();
  const std::string& endpoint() const { return endpoint_; }

  // Serves until SIGTERM or SIGINT (which must be blocked in the calling
  // thread, and in every other thread for a process-directed signal: they
  // are read from a signalfd), then finishes the turn, commits, waits (up to
  // shutdown_sync_wait) for that commit to be durable and returns. Returns an
  // error, with the held acknowledgements unsent, if the syncer fails.
  Status Run();

 private:
  // One loop turn, and its steps.
  Status Turn();
  Status Wait();
  // Returns whether a stop signal (SIGTERM, SIGINT) was read; SIGHUP
  // reloads the authorized keys.
  bool ReadSignals();

  // CURVE: reads --authorized-keys (at Bind, on SIGHUP, for ReloadKeys) and
  // swaps the new table in for the ZAP handler and for Identify(). A key
  // gone, replaced, or whose roles or countries changed is in `revoked`.
  Result<KeyReload> ReloadKeys();
  void UseKeys(AuthorizedKeysPtr keys);
  // Who sent `frame`: from the properties the ZAP handler gave its
  // connection. A key no longer in the table gets no role.
  const PeerIdentity& Identify(zmq::message_t& frame);
  // Returns whether everything waiting was read (the per-turn cap not hit).
  bool ReceiveAll();
  void Receive(zmq::message_t& identity);
  // The remote IP of the connection `frame` came on ("" if unknown).
  static std::string PeerAddress(zmq::message_t& frame);
  void CommitIfDue();
  void RunIdleWork();
  void SendAll(std::vector<Outgoing> messages);
  // What only the process knows, for StatusRequest (Broker::SetStatusFiller).
  void FillStatus(wire::BrokerStatus* status) const;
  // Sends one message now; a full queue drops it (counted, logged).
  void SendNow(const std::string& peer, wire::Envelope envelope);
  // Whether a message of this kind is a request that gets one answer, and
  // so counts against its peer's in-flight limit.
  static bool IsRequest(const wire::Envelope& envelope);
  // A request over its peer's in-flight limit: RATE_LIMITED, counted, logged.
  void RefuseBusy(const std::string& peer, uint64_t seq, zmq::message_t& frame);
  void Disconnected(const std::string& peer);

  // Connection events (socket monitor). libzmq 4.3 drops a frame over its
  // cap with the connection and reports only ZMQ_EVENT_DISCONNECTED, as for
  // any close (a failed handshake, e.g. a port probe, comes first with its
  // own event). So a connection that completed its handshake and closed
  // before a single message from it arrived is counted as a refused message.
  // Not seen: an oversized frame from a peer that already spoke (its close
  // looks like any other). Counted too: a ZeroMQ peer that left silently.
  void DrainMonitor();
  void CountSilentCloses();

  // Acknowledgements wait for their commit to be durable.
  void Hold(std::vector<Outgoing> messages);
  Status ReleaseDurable();
  // Stopping: waits on the syncer's fd, up to a deadline, for the held
  // acknowledgements.
  Status FinishHeld();

  // Constant after construction.
  Broker& core_;
  const Clock& clock_;
  const ServerOptions options_;

  // Owned by the loop thread.
  zmq::context_t context_;
  // Started before router_ binds, stopped after it is closed (~BrokerServer):
  // see zap_handler.h on why the order matters.
  std::unique_ptr<ZapHandler> zap_;
  AuthorizedKeysPtr keys_;
  std::unordered_map<std::string, PeerIdentity> identities_;  // by Z85 key
  PeerIdentity stranger_;  // a key not (or no longer) in the table
  zmq::socket_t router_;
  zmq::socket_t monitor_;  // connection events of router_
  std::string endpoint_;
  int signal_fd_ = -1;
  bool stopping_ = false;
  TimePoint commit_due_ = TimePoint::max();  // set while a commit is pending
  bool woken_ = false;  // the last Wait() saw something to read
  TimePoint next_idle_{};
  std::unordered_map<int, std::string> peer_by_fd_;  // for disconnect events
  // The last monitor event was a failed handshake: the disconnect that
  // follows it is not a peer's refused message.
  bool handshake_failed_ = false;
  // Connections (by fd) closed before any message from them was seen; those
  // still silent once everything waiting has been read are counted.
  std::unordered_set<int> silent_closes_;
  std::deque<std::pair<uint64_t, Outgoing>> held_;  // (commit, message)
  PeerInFlight in_flight_;
  LogLimiter warnings_;        // about peers over their limits
  uint64_t refused_busy_ = 0;  // requests over the in-flight limit
  uint64_t dropped_full_ = 0;  // messages dropped: the peer's queue was full
};

}  // namespace tq
