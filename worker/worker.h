// The tq-worker process: one single-threaded poll loop over the DEALER
// socket, the stop-signal fd and the children's pipes. It does I/O only;
// protocol decisions are WorkerCore's, child processes are ExecRunner's.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "tq/client.h"
#include "worker/command_line.h"
#include "worker/exec_runner.h"
#include "worker/worker_core.h"

namespace tq {

enum class Handler {
  kNoop,     // completes every task at once (benchmarks)
  kExec,     // runs `command` per task
  kAnalyse,  // runs the built-in analyser in a child (`self_exe`)
};

struct WorkerOptions {
  WorkerConfig identity;
  std::string endpoint;
  Handler handler = Handler::kExec;
  bool noop = false;  // true overrides `handler` with kNoop
  CommandTemplate command;
  std::string self_exe;  // this binary, for kAnalyse
  // Per-task {outdir} directories are made under it and removed after.
  std::string work_dir;
  bool remove_work_dir = false;  // made by us: removed at exit if empty
  size_t max_output_bytes = kDefaultMaxOutputBytes;
  CurveClientKeys curve;  // empty: plain TCP
};

class Worker {
 public:
  // `signal_fd` (not owned) becomes readable on SIGTERM/SIGINT; the caller
  // blocked those signals before any thread (ZeroMQ's) was started.
  Worker(WorkerOptions options, int signal_fd);
  ~Worker();

  // Runs until stopped. Returns the exit code: 0 after a clean stop, 2 if the
  // endpoint is unusable, 1 on a fatal error.
  int Run();

 private:
  Status ApplyActions();
  Status OpenSocket();
  void CloseSocket();
  void StartTask(const wire::Task& task);
  void Queue(wire::Envelope& envelope);
  Status FlushSends();
  Status Poll(Millis wait);
  void ReceiveAll();
  void ReadSignals();
  void CollectFinished();
  void FinishOutcome(TaskOutcome* outcome);
  void RemoveOutdirs();
  void Shutdown();

  // Constant after construction.
  const WorkerOptions options_;
  const int signal_fd_;
  SystemClock clock_;

  // Owned by the loop thread (the only thread).
  WorkerCore core_;
  std::unique_ptr<ExecRunner> runner_;                 // null with --noop
  std::unordered_map<uint64_t, std::string> outdirs_;  // task id -> {outdir}
  zmq::context_t context_;
  zmq::socket_t socket_;
  std::vector<zmq::message_t> pending_;  // encoded, not yet accepted by zmq
  size_t pending_head_ = 0;
  bool opened_once_ = false;

  // Scratch, reused every turn to keep the hot path allocation-light.
  std::vector<zmq_pollitem_t> items_;
  std::vector<int> fds_;
  std::vector<wire::Envelope> out_;
  std::vector<wire::Task> tasks_;
  std::vector<uint64_t> terminate_;
  std::vector<TaskOutcome> outcomes_;
  std::vector<std::string> argv_;
};

}  // namespace tq
