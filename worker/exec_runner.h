// Runs --exec commands as child processes without blocking: spawn, read their
// pipes, enforce time limits, kill every process a command started, reap. No
// network sockets here; the owner polls the fds this class hands out and
// calls back.
//
// Each run gets its own reaper: a small forked process that is a subreaper
// (PR_SET_CHILD_SUBREAPER) and the parent of the command. Whatever the command
// starts stays below it, even after setsid or a double fork, because orphans
// are re-parented to the nearest subreaper. So the worker never has to guess
// which orphan belongs to which run: when the run ends (the command exited
// and its pipes closed, the pipe grace ran out, the time limit hit, or the
// worker went away) the reaper kills its children level by level until it has
// none, then exits. Where a cgroup v2 subtree is writable, the command also
// runs in a cgroup of its own and the reaper first writes cgroup.kill, which
// ends even a fork bomb at once.
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
  // Put each run in a cgroup v2 child of the worker's own cgroup when that is
  // writable; the reaper alone is the fallback and always applies.
  bool use_cgroups = true;
};

class ExecRunner {
 public:
  ExecRunner(const Clock& clock, ExecOptions options);
  ~ExecRunner();  // kills every run's processes (SIGKILL) and reaps
  ExecRunner(const ExecRunner&) = delete;
  ExecRunner& operator=(const ExecRunner&) = delete;

  // Starts argv (argv[0] looked up in PATH) under a reaper of its own, in a new
  // process group, with stdin from /dev/null and stdout/stderr piped back.
  // `tag` comes back in the outcome's task_id. If the command cannot be started
  // the outcome (ok=false, exit_code 127 for "not found") is ready at once in
  // TakeFinished().
  void Start(uint64_t tag, const std::vector<std::string>& argv,
             Millis time_limit);

  size_t running() const { return children_.size(); }

  // The cgroup directory runs are created under, empty when cgroups are not
  // used (disabled, or not writable here).
  const std::string& cgroup_base() const { return cgroup_base_; }

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

  // Kills the processes of the run `tag` as its time limit would (the
  // reaper ends the whole tree, cgroup first); its outcome comes later from
  // TakeFinished, failed with `reason` as its error. False if no such run
  // is going.
  bool Terminate(uint64_t tag, const std::string& reason);

  // Kills every run's processes (SIGKILL) and reaps without producing
  // outcomes. Blocks for at most about two seconds.
  void KillAll();

 private:
  struct Child;

  void ReadPipe(Child* c, bool is_stdout);
  void ClosePipe(int* fd);
  void ReadReaper(Child* c);
  void StopReaper(Child* c);
  void TryReap(Child* c);
  void Finish(size_t index);
  void FailToStart(uint64_t tag, const std::string& program, int err);
  void RemoveCgroup(const std::string& dir);

  // Constant after construction.
  const Clock& clock_;
  const ExecOptions options_;
  std::string cgroup_base_;  // empty: no cgroups

  // Owned by the loop thread.
  std::vector<std::unique_ptr<Child>> children_;
  std::unordered_map<int, Child*> by_fd_;
  std::vector<TaskOutcome> finished_;
  std::vector<char> read_buffer_;
  uint64_t runs_started_ = 0;               // names the runs' cgroups
  std::vector<std::string> stale_cgroups_;  // rmdir failed: retried on ticks
};

// "time limit of 2.0 s exceeded"
std::string TimeLimitMessage(Millis limit);

}  // namespace tq
