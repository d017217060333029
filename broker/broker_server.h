// The ZeroMQ side of the broker: one ROUTER socket, one thread, one loop.
// Each turn: wait (until the core's next deadline, a message, or a signal),
// receive everything waiting, decode, hand it to the core, send what the core
// says may leave now, commit, send the acknowledgements.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <zmq.hpp>

#include "broker/broker.h"
#include "broker/wal_syncer.h"
#include "common/status.h"

namespace tq {

struct ServerOptions {
  std::string listen = kDefaultEndpoint;  // port 0 or * picks a free port
  std::string ready_file;  // if set, the bound endpoint is written here
  int64_t max_message_bytes = kMaxMessageBytes;
  size_t max_messages_per_turn = 4096;
  // A transaction stays open across loop turns for up to this long, so one
  // commit (and one burst of acknowledgements) carries the work of many
  // turns. 0 commits at the end of every turn.
  Millis commit_interval{0};
  // With a syncer, commits are made durable off the loop thread: the
  // acknowledgements of a turn are held until the syncer has synced the
  // commit they depend on (commit_count() right after the turn's commit).
  WalSyncer* syncer = nullptr;
  std::function<uint64_t()> commit_count;
};

class BrokerServer {
 public:
  BrokerServer(Broker& core, ServerOptions options);
  ~BrokerServer();

  // Binds the ROUTER socket; after it, endpoint() is the concrete address.
  Status Bind();
  const std::string& endpoint() const { return endpoint_; }

  // Serves until SIGTERM or SIGINT (which must be blocked in every thread
  // before calling: they are read from a signalfd), then finishes the turn,
  // commits and returns.
  Status Run();

 private:
  void ReceiveAll();
  void SendAll(std::vector<Outgoing> messages);
  void DrainMonitor();
  // Acknowledgements wait for their commit to be durable.
  void Hold(std::vector<Outgoing> messages);
  Status ReleaseDurable();

  // Constant after construction.
  Broker& core_;
  const ServerOptions options_;

  // Owned by the loop thread.
  zmq::context_t context_;
  zmq::socket_t router_;
  zmq::socket_t monitor_;  // disconnect events of router_
  std::string endpoint_;
  int signal_fd_ = -1;
  std::unordered_map<int, std::string> peer_by_fd_;  // for disconnect events
  std::deque<std::pair<uint64_t, Outgoing>> held_;   // (commit, message)
};

}  // namespace tq
