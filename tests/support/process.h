// Starting the real binaries for end-to-end tests and benchmarks: each child
// runs in its own process group with stdout/stderr in files, and is killed
// (the whole group) when the Process goes away.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace tq::testing {

// Path of a built binary, e.g. Binary("tq-broker").
std::string Binary(const std::string& name);

class Process {
 public:
  // From now on, children started by this thread get SIGKILL when it dies
  // (PR_SET_PDEATHSIG), however it dies: tq-bench's broker and workers must
  // not outlive a Ctrl-C, a SIGTERM or a crash of the bench. Off by default:
  // the signal follows the thread that forked, and tests fork from many.
  static void KillChildrenWithParent();

  // Starts argv[0] (a path) with argv; stdout and stderr go to the files
  // (empty: /dev/null). extra_env entries are "NAME=value".
  Process(std::vector<std::string> argv, const std::string& stdout_path,
          const std::string& stderr_path,
          const std::vector<std::string>& extra_env = {},
          const std::string& stdin_path = "");
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int signo);       // to the process
  void SignalGroup(int signo);  // to its whole process group
  // True while it has not exited (reaps it if it has).
  bool Running();
  // Waits up to `timeout` for it to exit; its exit code, or -signal, or
  // nullopt if it still runs.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  void Kill();  // SIGKILL to the group, then reap

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& text);

}  // namespace tq::testing
