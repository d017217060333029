// Runs --exec commands as child processes without blocking: spawn, read their
// pipes, enforce time limits, kill whole process groups, reap. No sockets
// here; the owner polls the fds this class hands out and calls back.
//
// Not thread-safe: owned by the worker's loop thread.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "worker/task_outcome.h"

namespace tq {

inline constexpr size_t kDefaultMaxOutputBytes = 1024 * 1024;
inline constexpr size_t kStderrTailBytes = 4096;

struct ExecOptions {
  size_t max_output_bytes = kDefaultMaxOutputBytes;
  size_t stderr_tail_bytes = kStderrTailBytes;
  // After the child exits (or is killed), how long leftover processes may
  // hold its pipes open before the group is killed and the pipes closed.
  Millis pipe_grace{1000};
};

class ExecRunner {
 public:
  ExecRunner(const Clock& clock, ExecOptions options);
  ~ExecRunner();  // kills every running group (SIGKILL) and reaps
  ExecRunner(const ExecRunner&) = delete;
  ExecRunner& operator=(const ExecRunner&) = delete;

  // Starts argv (argv[0] looked up in PATH) in a new process group with stdin
  // from /dev/null and stdout/stderr piped back. `tag` comes back in the
  // outcome's task_id. If the command cannot be started the outcome (ok=false,
  // exit_code 127 for "not found") is ready at once in TakeFinished().
  void Start(uint64_t tag, const std::vector<std::string>& argv,
             Millis time_limit);

  size_t running() const { return children_.size(); }

  // The fds to poll for input; call OnReadable when one has any event
  // (readable, hang-up or error).
  void AppendPollFds(std::vector<int>* fds) const;
  void OnReadable(int fd);

  // Enforces time limits and reaps children that are done. Returns how long
  // the caller may wait (in poll) before calling again if no fd fires.
  Millis OnTick();

  // Outcomes of runs that ended since the last call, in completion order.
  void TakeFinished(std::vector<TaskOutcome>* out);
  bool has_finished() const { return !finished_.empty(); }

  // SIGKILLs every running group and reaps without producing outcomes.
  void KillAll();

 private:
  struct Child;

  void ReadPipe(Child* c, bool is_stdout);
  void ClosePipe(Child* c, int* fd);
  void CheckExited(Child* c);
  void Finish(size_t index);
  void FailToStart(uint64_t tag, const std::string& program, int err);

  // Constant after construction.
  const Clock& clock_;
  const ExecOptions options_;

  // Owned by the loop thread.
  std::vector<std::unique_ptr<Child>> children_;
  std::unordered_map<int, Child*> by_fd_;
  std::vector<TaskOutcome> finished_;
  std::vector<char> read_buffer_;
};

// "time limit of 2.0 s exceeded"
std::string TimeLimitMessage(Millis limit);

}  // namespace tq
