#include "worker/exec_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "worker/utf8.h"

extern char** environ;

namespace tq {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr Millis kIdleTick{60'000};
// Without a pidfd, exits are noticed by polling waitid; this caps the wait.
constexpr Millis kMaxExitPoll{50};

int OpenPidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
#else
  (void)pid;
  return -1;
#endif
}

std::string SignalMessage(int sig) {
  const char* name = strsignal(sig);
  return "killed by signal " + std::to_string(sig) + " (" +
         (name ? name : "unknown") + ")";
}

}  // namespace

std::string TimeLimitMessage(Millis limit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "time limit of %.1f s exceeded",
                static_cast<double>(limit.count()) / 1000.0);
  return buf;
}

struct ExecRunner::Child {
  uint64_t tag = 0;
  pid_t pid = -1;  // also the process group id
  int pidfd = -1;
  int out_fd = -1;
  int err_fd = -1;
  TimePoint started;
  TimePoint deadline;
  Millis time_limit{0};
  bool timed_out = false;
  bool exited = false;  // a zombie: not reaped yet, so its pgid stays ours
  TimePoint ended;      // when it exited or was killed
  Millis next_poll{1};  // back-off of waitid polling without a pidfd
  TimePoint poll_at;
  std::string output;
  bool truncated = false;
  std::string err;  // grows to 2x the tail, then is trimmed
};

ExecRunner::ExecRunner(const Clock& clock, ExecOptions options)
    : clock_(clock), options_(options), read_buffer_(kReadChunk) {}

ExecRunner::~ExecRunner() { KillAll(); }

void ExecRunner::FailToStart(uint64_t tag, const std::string& program,
                             int err) {
  TaskOutcome o;
  o.task_id = tag;
  o.ok = false;
  if (err == ENOENT) {
    o.exit_code = 127;  // what a shell reports for "not found"
    o.error = SanitizeUtf8("command not found: " + program);
  } else {
    o.exit_code = (err == EACCES || err == ENOEXEC) ? 126 : -1;
    o.error = SanitizeUtf8("cannot run " + program + ": " + strerror(err));
  }
  o.stderr_tail = o.error;
  finished_.push_back(std::move(o));
}

void ExecRunner::Start(uint64_t tag, const std::vector<std::string>& argv,
                       Millis time_limit) {
  if (argv.empty() || argv[0].empty()) {
    FailToStart(tag, "''", ENOENT);
    return;
  }
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    FailToStart(tag, argv[0], errno);
    return;
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    int e = errno;
    close(out_pipe[0]);
    close(out_pipe[1]);
    FailToStart(tag, argv[0], e);
    return;
  }
  // Only our ends are non-blocking; the child gets ordinary blocking pipes.
  fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
  fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // A group of its own so a time-out kills everything the command started;
  // the worker blocks SIGTERM/SIGINT for its signalfd, children must not.
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                      POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGUSR1,
                  SIGUSR2, SIGALRM}) {
    sigaddset(&defaults, sig);
  }
  posix_spawnattr_setsigdefault(&attr, &defaults);

  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  pid_t pid = -1;
  const TimePoint now = clock_.Now();
  // glibc reports exec failures (ENOENT, EACCES) here, synchronously.
  int rc = posix_spawnp(&pid, cargv[0], &actions, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    FailToStart(tag, argv[0], rc);
    return;
  }

  auto c = std::make_unique<Child>();
  c->tag = tag;
  c->pid = pid;
  c->pidfd = OpenPidfd(pid);
  c->out_fd = out_pipe[0];
  c->err_fd = err_pipe[0];
  c->started = now;
  c->time_limit = time_limit;
  c->deadline = now + time_limit;
  c->poll_at = now + c->next_poll;
  by_fd_[c->out_fd] = c.get();
  by_fd_[c->err_fd] = c.get();
  if (c->pidfd >= 0) by_fd_[c->pidfd] = c.get();
  children_.push_back(std::move(c));
}

void ExecRunner::AppendPollFds(std::vector<int>* fds) const {
  for (const auto& [fd, child] : by_fd_) fds->push_back(fd);
}

void ExecRunner::OnReadable(int fd) {
  auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return;
  Child* c = it->second;
  if (fd == c->out_fd) {
    ReadPipe(c, true);
  } else if (fd == c->err_fd) {
    ReadPipe(c, false);
  } else if (fd == c->pidfd) {
    CheckExited(c);
  }
}

void ExecRunner::ClosePipe(Child* c, int* fd) {
  if (*fd < 0) return;
  by_fd_.erase(*fd);
  close(*fd);
  *fd = -1;
  (void)c;
}

void ExecRunner::ReadPipe(Child* c, bool is_stdout) {
  int* fd = is_stdout ? &c->out_fd : &c->err_fd;
  // Bounded so one chatty child cannot starve the loop.
  for (int round = 0; round < 16 && *fd >= 0; ++round) {
    ssize_t n = read(*fd, read_buffer_.data(), read_buffer_.size());
    if (n > 0) {
      const size_t got = static_cast<size_t>(n);
      if (is_stdout) {
        const size_t room = options_.max_output_bytes - c->output.size();
        if (got > room) c->truncated = true;
        c->output.append(read_buffer_.data(), std::min(got, room));
      } else {
        c->err.append(read_buffer_.data(), got);
        const size_t keep = options_.stderr_tail_bytes;
        if (c->err.size() > 2 * keep + kReadChunk) {
          c->err.erase(0, c->err.size() - keep - 8);
        }
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    ClosePipe(c, fd);  // EOF or a read error
  }
}

void ExecRunner::CheckExited(Child* c) {
  if (c->exited) return;
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  // WNOWAIT: leave the zombie so its pid (our pgid) cannot be reused before
  // we are done signalling the group.
  if (waitid(P_PID, static_cast<id_t>(c->pid), &info,
             WEXITED | WNOHANG | WNOWAIT) == 0 &&
      info.si_pid == c->pid) {
    c->exited = true;
    if (!c->timed_out) c->ended = clock_.Now();
    if (c->pidfd >= 0) {
      by_fd_.erase(c->pidfd);
      close(c->pidfd);
      c->pidfd = -1;
    }
  }
}

Millis ExecRunner::OnTick() {
  TimePoint now = clock_.Now();
  Millis wait = kIdleTick;
  auto until = [&](TimePoint t) {
    wait = std::min(wait, std::max(Millis(0), t - now));
  };
  for (size_t i = 0; i < children_.size();) {
    Child* c = children_[i].get();
    if (!c->exited && !c->timed_out && now >= c->deadline) {
      kill(-c->pid, SIGKILL);
      c->timed_out = true;
      c->ended = now;
    }
    if (!c->exited && c->pidfd < 0 && now >= c->poll_at) {
      CheckExited(c);
      c->next_poll = std::min(c->next_poll * 2, kMaxExitPoll);
      c->poll_at = now + c->next_poll;
    }
    const bool pipes_open = c->out_fd >= 0 || c->err_fd >= 0;
    if (pipes_open && (c->exited || c->timed_out) &&
        now >= c->ended + options_.pipe_grace) {
      // Leftover processes hold the pipes: the run is over all the same.
      kill(-c->pid, SIGKILL);
      ClosePipe(c, &c->out_fd);
      ClosePipe(c, &c->err_fd);
    }
    if (c->exited && c->out_fd < 0 && c->err_fd < 0) {
      Finish(i);  // swaps the last child into slot i
      continue;
    }
    if (!c->exited && !c->timed_out) until(c->deadline);
    if (!c->exited && c->pidfd < 0) until(c->poll_at);
    if ((c->exited || c->timed_out) && (c->out_fd >= 0 || c->err_fd >= 0)) {
      until(c->ended + options_.pipe_grace);
    }
    ++i;
  }
  return wait;
}

void ExecRunner::Finish(size_t index) {
  std::unique_ptr<Child> c = std::move(children_[index]);
  children_[index] = std::move(children_.back());
  children_.pop_back();

  // Background processes of a finished command must not outlive its task.
  // The zombie still holds the pgid, so this cannot hit a stranger.
  kill(-c->pid, SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = waitpid(c->pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (c->pidfd >= 0) {
    by_fd_.erase(c->pidfd);
    close(c->pidfd);
  }

  TaskOutcome o;
  o.task_id = c->tag;
  o.duration_ms = static_cast<uint32_t>(
      std::max<int64_t>(0, (c->ended - c->started).count()));
  o.output = std::move(c->output);
  o.output_truncated = c->truncated;
  o.stderr_tail = Utf8Tail(c->err, options_.stderr_tail_bytes);
  if (c->timed_out) {
    o.ok = false;
    o.exit_code = -1;
    o.error = TimeLimitMessage(c->time_limit);
  } else if (r != c->pid) {
    o.ok = false;
    o.exit_code = -1;
    o.error = "lost track of the child process";
  } else if (WIFEXITED(status)) {
    o.exit_code = WEXITSTATUS(status);
    o.ok = o.exit_code == 0;
    if (!o.ok) o.error = "exited with status " + std::to_string(o.exit_code);
  } else if (WIFSIGNALED(status)) {
    o.ok = false;
    o.exit_code = -1;
    o.error = SignalMessage(WTERMSIG(status));
  } else {
    o.ok = false;
    o.exit_code = -1;
    o.error = "ended with wait status " + std::to_string(status);
  }
  finished_.push_back(std::move(o));
}

void ExecRunner::TakeFinished(std::vector<TaskOutcome>* out) {
  for (auto& o : finished_) out->push_back(std::move(o));
  finished_.clear();
}

void ExecRunner::KillAll() {
  for (auto& c : children_) kill(-c->pid, SIGKILL);
  // Bounded: a process stuck in uninterruptible sleep must not hang exit.
  const auto give_up = std::chrono::steady_clock::now() + Millis(2000);
  for (auto& c : children_) {
    while (true) {
      pid_t r = waitpid(c->pid, nullptr, WNOHANG);
      if (r == c->pid || (r < 0 && errno != EINTR)) break;
      if (std::chrono::steady_clock::now() >= give_up) break;
      if (c->pidfd >= 0) {
        struct pollfd p = {c->pidfd, POLLIN, 0};
        poll(&p, 1, 10);
      } else {
        struct pollfd none = {-1, 0, 0};
        poll(&none, 1, 1);
      }
    }
    for (int fd : {c->out_fd, c->err_fd, c->pidfd}) {
      if (fd >= 0) close(fd);
    }
  }
  children_.clear();
  by_fd_.clear();
}

}  // namespace tq
