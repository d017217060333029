// The worker's protocol brain: a state machine over the W side of the
// conversation in proto/tq.proto. It takes events (connected, message,
// task finished, signal, tick) and leaves actions for the loop (envelopes to
// send, tasks to start, open/close the socket, kill everything, exit). It
// includes no ZeroMQ header; time comes from the injected Clock.
//
//   kDisconnected --open--> kHelloSent --Welcome--> kReady
//        ^                      |  ^                   |
//        +---- silence ---------+  +-- NOT_REGISTERED -+
//        +---- silence ------------------------------ -+
//
// Not thread-safe: owned by the worker's loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/codec.h"
#include "tq.pb.h"
#include "worker/task_outcome.h"

namespace tq {

inline constexpr const char* kWorkerVersion = "0.1.0";
inline constexpr Millis kInitialReconnectDelay{100};
inline constexpr Millis kMaxReconnectDelay{5000};
// On top of the running tasks' time limits, how long a drain may wait for
// results to be acknowledged before giving up.
inline constexpr Millis kDrainGrace{5000};
// tq-worker's exit status when the broker refuses its Hello for good
// (PERMISSION_DENIED: its key lacks the worker role, may not serve its
// country, or another key holds its id): retrying cannot help.
inline constexpr int kWorkerExitRefused = 4;

struct WorkerConfig {
  std::string broker;  // endpoint, for log lines only
  std::string worker_id;
  std::string country;  // ISO code, "" for none (generic only)
  // --country auto: country is what the worker found itself ("" if nothing)
  // and country_source how ("worker-geoip") or why not ("none: ..."); the
  // broker fills in the rest and says so in its Welcome.
  bool country_auto = false;
  std::string country_source;
  std::string public_ip;  // --public-ip, for the broker's lookup
  // --no-generic (or --queues without generic): the country queue only.
  bool no_generic = false;
  uint32_t concurrency = 1;
  std::string hostname;
  uint32_t pid = 0;
};

enum class SessionState {
  kDisconnected,  // no socket; waiting out the reconnect back-off
  kHelloSent,     // socket open, Hello sent, no Welcome yet
  kReady,         // welcomed: credit, tasks and results flow
};

struct WorkerCounters {
  uint64_t tasks_started = 0;
  uint64_t tasks_finished = 0;
  uint64_t results_sent = 0;  // includes resends
  uint64_t results_acked = 0;
  uint64_t results_stale = 0;  // acked with accepted=false
  uint64_t tasks_released = 0;
  uint64_t tasks_terminated = 0;  // TerminateTask from the broker
  uint64_t refused_messages = 0;  // well-formed but not acceptable here
  uint64_t malformed_messages = 0;
  uint64_t reconnects = 0;
};

class WorkerCore {
 public:
  WorkerCore(WorkerConfig config, const Clock& clock);

  // --- Events ---
  // A fresh socket is connected: say Hello.
  void OnConnected();
  // Opening a new socket failed (not at startup): try again after back-off.
  void OnConnectFailed(const std::string& why);
  // A decoded envelope from the broker.
  void OnMessage(const wire::Envelope& envelope);
  // Bytes from the broker that did not decode.
  void OnBadMessage(uint64_t seq, DecodeError error);
  // A task started via TakeTasksToStart ended.
  void OnTaskFinished(TaskOutcome outcome);
  // SIGTERM/SIGINT: the first drains, the second aborts.
  void OnStopSignal();
  // Runs the timers (heartbeat, liveness, reconnect, resend, drain). Returns
  // how long the loop may sleep before the next call.
  Millis OnTick();

  // --- Actions for the loop ---
  void TakeOutbox(std::vector<wire::Envelope>* out);
  void TakeTasksToStart(std::vector<wire::Task>* out);
  bool TakeCloseSocket();  // drop the current socket (pending sends too)
  bool TakeOpenSocket();   // open + connect a new socket, then OnConnected()
  bool TakeKillAll();      // SIGKILL every running task, no results
  // Tasks whose handler the broker said to kill (TerminateTask): the loop
  // kills each as the time limit does; its outcome comes back as usual.
  void TakeTasksToTerminate(std::vector<uint64_t>* out);
  bool HasPendingActions() const;
  bool done() const { return done_; }
  int exit_code() const { return exit_code_; }

  // --- Introspection ---
  SessionState state() const { return state_; }
  bool draining() const { return draining_; }
  size_t running() const { return running_.size(); }
  size_t unacked() const { return unacked_.size(); }
  Millis heartbeat_interval() const { return interval_; }
  Millis reconnect_delay() const { return backoff_; }
  const WorkerCounters& counters() const { return counters_; }

 private:
  struct Running {
    uint64_t token = 0;
    TimePoint deadline;
  };
  struct Unacked {
    wire::Result result;
    uint64_t seq = 0;  // of the last send; 0 if not sent this session
  };
  struct Resend {
    TimePoint at;
    uint64_t task_id;
    uint64_t token;
  };

  uint64_t Send(wire::Envelope envelope);
  void SendReply(wire::Envelope envelope);
  void SendHello();
  void SendResult(Unacked* u, uint32_t credit);
  void OnWelcome(const wire::Welcome& welcome);
  void OnAssign(const wire::Assign& assign);
  void OnResultAck(const wire::ResultAck& ack);
  void OnTerminate(const wire::TerminateTask& terminate);
  void OnError(uint64_t seq, const wire::Error& error);
  void Refuse(uint64_t seq, const std::string& what);
  // The broker refused our Hello for good: stop, exit kWorkerExitRefused.
  void RefusedAtHello(const wire::Error& error);
  void LoseBroker(const std::string& why);
  void FinishDrain();
  void Abort(const std::string& why);
  bool connected() const { return state_ != SessionState::kDisconnected; }

  // Constant after construction.
  const WorkerConfig config_;
  const Clock& clock_;

  // Session.
  SessionState state_ = SessionState::kDisconnected;
  Millis interval_;
  uint32_t liveness_;
  TimePoint last_recv_;
  TimePoint last_sent_;
  Millis backoff_ = kInitialReconnectDelay;
  TimePoint reconnect_at_;
  uint64_t next_seq_ = 1;
  uint64_t hello_seq_ = 0;  // of the last Hello sent

  // Work in hand: running tasks, and results awaiting ResultAck.
  std::unordered_map<uint64_t, Running> running_;
  std::unordered_map<uint64_t, Unacked> unacked_;
  std::unordered_map<uint64_t, uint64_t> result_seq_;  // seq -> task_id
  std::deque<Resend> resends_;  // after STORE_UNAVAILABLE, in time order

  // Stopping.
  bool draining_ = false;
  TimePoint drain_deadline_;
  bool done_ = false;
  int exit_code_ = 0;

  // Pending actions.
  std::vector<wire::Envelope> outbox_;
  std::vector<wire::Task> to_start_;
  std::vector<uint64_t> to_terminate_;
  bool close_socket_ = false;
  bool open_socket_ = false;
  bool kill_all_ = false;

  WorkerCounters counters_;
};

}  // namespace tq
