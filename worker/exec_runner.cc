#include "worker/exec_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "worker/utf8.h"

extern char** environ;

namespace tq {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr Millis kIdleTick{60'000};
// The reaper's exit is seen as EOF on its socket a moment before it can be
// waited for; until then the worker polls waitpid with this cap.
constexpr Millis kMaxExitPoll{50};
// A reaper told to stop that is still there after this is killed outright.
constexpr Millis kReaperStopLimit{15'000};
// How long a reaper keeps killing before it gives up (unkillable processes).
constexpr int kReaperKillSeconds = 10;

// Reaper -> worker messages, one per SOCK_SEQPACKET packet.
enum : int32_t { kMsgStarted = 1, kMsgExited = 2, kMsgExecFailed = 3 };
struct ReaperMessage {
  int32_t type;
  int32_t value;  // the command's pid, its wait status, or exec's errno
};

// Fd layout inside the reaper.
constexpr int kReaperSock = 3;
constexpr int kReaperProcs = 4;  // the run's cgroup.procs, or closed
constexpr int kReaperKill = 5;   // the run's cgroup.kill, or closed
constexpr int kReaperFirstFree = 6;

// Everything the reaper needs, built before fork: a fork of a multithreaded
// process may only make async-signal-safe calls, so no allocation after it.
struct ReaperPlan {
  const char* path;  // argv[0] resolved against PATH
  char* const* argv;
  char* const* envp;
  int null_fd;
  int out_fd;
  int err_fd;
  int sock_fd;
  int procs_fd;
  int kill_fd;
  const char* cgroup_dir;  // removed once empty, or null
};

struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[1];
};

// Async-signal-safe helpers for the reaper.

void WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void Tell(int32_t type, int32_t value) {
  ReaperMessage m{type, value};
  ssize_t n;
  do {
    n = send(kReaperSock, &m, sizeof m, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
}

pid_t ParsePid(const char* s) {
  if (*s == '\0') return -1;
  long v = 0;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9' || v > 100'000'000) return -1;
    v = v * 10 + (*s - '0');
  }
  return static_cast<pid_t>(v);
}

// The parent of `pid` from /proc/<pid>/stat, or -1.
pid_t ParentOf(const char* pid_name) {
  char path[64] = "/proc/";
  size_t len = 6;
  for (const char* s = pid_name; *s && len < 50; ++s) path[len++] = *s;
  const char tail[] = "/stat";
  for (const char* s = tail; *s; ++s) path[len++] = *s;
  path[len] = '\0';
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[1024];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  // "pid (comm) S ppid ...": comm may hold ')', the rest cannot.
  char* p = nullptr;
  for (char* q = buf; *q; ++q) {
    if (*q == ')') p = q;
  }
  if (!p || p[1] != ' ' || p[2] == '\0' || p[3] != ' ') return -1;
  p += 4;
  long v = 0;
  for (; *p >= '0' && *p <= '9'; ++p) v = v * 10 + (*p - '0');
  return static_cast<pid_t>(v);
}

// Fills `out` with the pids of this process's children (live or zombie).
size_t ListChildren(pid_t self, pid_t* out, size_t cap) {
  int dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return 0;
  alignas(8) char buf[8192];
  size_t n = 0;
  for (;;) {
    long got = syscall(SYS_getdents64, dfd, buf, sizeof buf);
    if (got <= 0) break;
    for (long off = 0; off < got;) {
      auto* d = reinterpret_cast<LinuxDirent64*>(buf + off);
      off += d->d_reclen;
      if (ParsePid(d->d_name) <= 0) continue;
      if (ParentOf(d->d_name) == self && n < cap) {
        out[n++] = ParsePid(d->d_name);
      }
    }
  }
  close(dfd);
  return n;
}

void CloseFrom(int first) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, first, ~0U, 0) == 0) return;
#endif
  // Older kernels: close what /proc/self/fd lists, until a pass finds none.
  for (int pass = 0; pass < 8; ++pass) {
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
      for (int fd = first; fd < 65536; ++fd) close(fd);
      return;
    }
    bool closed = false;
    alignas(8) char buf[4096];
    for (;;) {
      long got = syscall(SYS_getdents64, dfd, buf, sizeof buf);
      if (got <= 0) break;
      for (long off = 0; off < got;) {
        auto* d = reinterpret_cast<LinuxDirent64*>(buf + off);
        off += d->d_reclen;
        const int fd = static_cast<int>(ParsePid(d->d_name));
        if (fd >= first && fd != dfd) {
          close(fd);
          closed = true;
        }
      }
    }
    close(dfd);
    if (!closed) return;
  }
}

// Puts `fd` (or, if -1, nothing) at `target`, close-on-exec when asked.
void PlaceFd(int fd, int target, bool cloexec) {
  if (fd < 0) {
    close(target);
    return;
  }
  dup3(fd, target, cloexec ? O_CLOEXEC : 0);
}

long MonotonicSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long>(ts.tv_sec);
}

constexpr int kResetSignals[] = {SIGPIPE, SIGINT,  SIGTERM, SIGQUIT, SIGHUP,
                                 SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM};

// The forked reaper: starts the command, reports its status, and on the
// worker's word (or its death) kills everything below it. Never returns.
[[noreturn]] void RunReaper(const ReaperPlan& plan) {
  // Lift the fds above the final layout first, so dup3 cannot clobber one.
  int src[6] = {plan.null_fd, plan.out_fd,   plan.err_fd,
                plan.sock_fd, plan.procs_fd, plan.kill_fd};
  for (int& fd : src) {
    if (fd >= 0) fd = fcntl(fd, F_DUPFD_CLOEXEC, 16);
  }
  PlaceFd(src[0], 0, false);
  PlaceFd(src[1], 1, false);
  PlaceFd(src[2], 2, false);
  PlaceFd(src[3], kReaperSock, true);
  PlaceFd(src[4], kReaperProcs, true);
  PlaceFd(src[5], kReaperKill, true);
  // The worker's sockets, other runs' pipes and control sockets must not be
  // kept open by this process (no exec here closes them for us).
  CloseFrom(kReaperFirstFree);

  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  prctl(PR_SET_NAME, "tq-reaper", 0, 0, 0);

  // Only the worker decides when a run ends: terminal signals stay blocked
  // (the worker blocks SIGTERM/SIGINT already), SIGCHLD comes by signalfd.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGCHLD, &dfl, nullptr);
  struct sigaction ign = dfl;
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, nullptr);
  sigset_t blocked;
  sigemptyset(&blocked);
  for (int sig : {SIGCHLD, SIGINT, SIGTERM, SIGQUIT, SIGHUP}) {
    sigaddset(&blocked, sig);
  }
  sigprocmask(SIG_BLOCK, &blocked, nullptr);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  const int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);

  int exec_pipe[2] = {-1, -1};
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) {
    Tell(kMsgExecFailed, errno);
    _exit(0);
  }
  const pid_t reaper = getpid();
  const pid_t cmd = fork();
  if (cmd == 0) {
    close(exec_pipe[0]);
    // If the reaper itself is killed (say with the worker's whole process
    // group), the command goes too rather than running on unowned.
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != reaper) _exit(127);
    if (plan.procs_fd >= 0) WriteAll(kReaperProcs, "0", 1);  // "0" = myself
    for (int sig : kResetSignals) sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    setpgid(0, 0);
    execve(plan.path, plan.argv, plan.envp);
    const int err = errno;
    WriteAll(exec_pipe[1], &err, sizeof err);
    _exit(127);
  }
  close(exec_pipe[1]);
  // Let go of the run's pipes so their EOF means "the command's tree is done".
  dup2(0, 1);
  dup2(0, 2);
  if (cmd < 0) {
    Tell(kMsgExecFailed, errno);
    _exit(0);
  }
  int exec_err = 0;
  ssize_t got;
  do {
    got = read(exec_pipe[0], &exec_err, sizeof exec_err);
  } while (got < 0 && errno == EINTR);
  close(exec_pipe[0]);
  bool reported = false;
  const bool exec_failed = got == static_cast<ssize_t>(sizeof exec_err);
  if (exec_failed) {
    Tell(kMsgExecFailed, exec_err);
    reported = true;
  } else {
    Tell(kMsgStarted, cmd);
  }

  auto reap = [&] {
    for (;;) {
      int status = 0;
      const pid_t w = waitpid(-1, &status, WNOHANG);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return;
      if (w == cmd && !reported) {
        Tell(kMsgExited, status);
        reported = true;
      }
    }
  };
  auto drain_signals = [&] {
    signalfd_siginfo info;
    while (sfd >= 0 && read(sfd, &info, sizeof info) > 0) {
    }
  };

  // Run until the worker shuts its end of the socket down (or dies).
  while (!exec_failed) {
    pollfd pfds[2] = {{kReaperSock, POLLIN, 0}, {sfd, POLLIN, 0}};
    const int n = poll(pfds, sfd >= 0 ? 2 : 1, sfd >= 0 ? -1 : 50);
    if (n < 0 && errno != EINTR) break;
    drain_signals();
    reap();
    if (n > 0 && pfds[0].revents) {
      char byte;
      const ssize_t r = recv(kReaperSock, &byte, 1, MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) break;
    }
  }

  // The run is over: kill the whole tree. Orphans come to us, so "no child
  // left" means "no descendant left"; a child stays ours (its pid cannot be
  // reused) until we reap it, so no stranger gets the signal.
  if (plan.kill_fd >= 0) WriteAll(kReaperKill, "1", 1);
  static pid_t kids[4096];
  const long give_up = MonotonicSeconds() + kReaperKillSeconds;
  for (;;) {
    reap();
    const size_t n = ListChildren(getpid(), kids, sizeof kids / sizeof *kids);
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i) kill(kids[i], SIGKILL);
    if (MonotonicSeconds() >= give_up) break;
    pollfd p = {sfd, POLLIN, 0};
    poll(&p, sfd >= 0 ? 1 : 0, sfd >= 0 ? 100 : 5);
    drain_signals();
  }
  reap();
  // Also when the worker died without tidying up (kill -9).
  if (plan.cgroup_dir != nullptr) rmdir(plan.cgroup_dir);
  _exit(0);
}

std::string SignalMessage(int sig) {
  const char* name = strsignal(sig);
  return "killed by signal " + std::to_string(sig) + " (" +
         (name ? name : "unknown") + ")";
}

bool IsExecutableFile(const std::string& path, int* err) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    *err = errno;
    return false;
  }
  if (!S_ISREG(st.st_mode) || access(path.c_str(), X_OK) != 0) {
    *err = EACCES;
    return false;
  }
  return true;
}

// execvp's lookup, done before fork so "not found" is known at once. Returns
// 0 and the path, or the errno exec would give.
int ResolveProgram(const std::string& name, std::string* path) {
  int err = ENOENT;
  if (name.find('/') != std::string::npos) {
    *path = name;
    return IsExecutableFile(name, &err) ? 0 : err;
  }
  const char* env = std::getenv("PATH");
  const std::string dirs = env ? env : "/usr/local/bin:/bin:/usr/bin";
  int found_err = ENOENT;
  size_t begin = 0;
  while (begin <= dirs.size()) {
    size_t end = dirs.find(':', begin);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(begin, end - begin);
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    if (IsExecutableFile(candidate, &err)) {
      *path = candidate;
      return 0;
    }
    if (err == EACCES) found_err = EACCES;
    begin = end + 1;
  }
  return found_err;
}

// The worker's own cgroup v2 directory, if runs can be put below it.
std::string FindCgroupBase() {
  std::ifstream groups("/proc/self/cgroup");
  std::string line, rel;
  while (std::getline(groups, line)) {
    if (line.rfind("0::", 0) == 0) rel = line.substr(3);
  }
  if (rel.empty() || rel.find(" (deleted)") != std::string::npos) return "";
  std::ifstream mounts("/proc/self/mountinfo");
  std::string base;
  while (std::getline(mounts, line)) {
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, dev, root, point;
    head >> id >> parent >> dev >> root >> point;
    if (root != "/" && rel.rfind(root, 0) != 0) continue;
    const std::string inside = root == "/" ? rel : rel.substr(root.size());
    base = point + (inside == "/" ? "" : inside);
    break;
  }
  if (base.empty()) return "";
  // Writable here? (Read-only in many containers; delegated under systemd.)
  const std::string probe = base + "/tq-probe-" + std::to_string(getpid());
  if (mkdir(probe.c_str(), 0755) != 0) return "";
  const bool usable = access((probe + "/cgroup.procs").c_str(), W_OK) == 0;
  rmdir(probe.c_str());
  return usable ? base : "";
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
  std::string program;  // argv[0], for messages
  pid_t pid = -1;       // the reaper
  pid_t cmd_pid = -1;   // the command, also its process group id
  int sock_fd = -1;     // to and from the reaper
  int out_fd = -1;
  int err_fd = -1;
  std::string cgroup;  // the run's cgroup directory, or empty
  TimePoint started;
  TimePoint deadline;
  Millis time_limit{0};
  bool timed_out = false;  // also set by Terminate: the run is over
  std::string terminated;  // Terminate's reason, "" if not terminated
  bool exited = false;     // the command is gone (status known or lost)
  bool has_status = false;
  int wait_status = 0;
  int exec_errno = 0;      // exec failed in the reaper
  TimePoint ended;         // when the command exited or was killed
  bool stop_sent = false;  // the reaper was told to kill the tree
  TimePoint stop_at;
  bool reaper_closed = false;  // EOF on its socket: it is exiting
  bool reaped = false;
  Millis next_poll{1};  // back-off of waitpid polling after EOF
  TimePoint poll_at;
  std::string output;
  bool truncated = false;
  std::string err;  // grows to 2x the tail, then is trimmed
};

ExecRunner::ExecRunner(const Clock& clock, ExecOptions options)
    : clock_(clock), options_(options), read_buffer_(kReadChunk) {
  if (options_.use_cgroups) cgroup_base_ = FindCgroupBase();
  if (cgroup_base_.empty()) return;
  // Cgroups of runs whose worker and reaper were killed outright: end what
  // is left in them and remove them.
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(cgroup_base_, ec)) {
    const std::string name = entry.path().filename().string();
    int owner = 0, run = 0;
    char tail = 0;
    if (std::sscanf(name.c_str(), "tq-%d-%d%c", &owner, &run, &tail) != 2 ||
        owner <= 0 || owner == getpid()) {
      continue;
    }
    if (kill(owner, 0) == 0 || errno != ESRCH) continue;  // its worker lives
    std::ofstream(entry.path() / "cgroup.kill") << "1";
    RemoveCgroup(entry.path().string());
  }
}

ExecRunner::~ExecRunner() {
  KillAll();
  for (const auto& dir : stale_cgroups_) rmdir(dir.c_str());
}

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
  std::string path;
  if (int e = ResolveProgram(argv[0], &path); e != 0) {
    FailToStart(tag, argv[0], e);
    return;
  }
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, sock[2] = {-1, -1};
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto close_all = [&] {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], sock[0],
                   sock[1], null_fd}) {
      if (fd >= 0) close(fd);
    }
  };
  if (null_fd < 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
      pipe2(err_pipe, O_CLOEXEC) != 0 ||
      socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sock) != 0) {
    const int e = errno;
    close_all();
    FailToStart(tag, argv[0], e);
    return;
  }
  // Only our ends are non-blocking; the child gets ordinary blocking pipes.
  fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
  fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
  fcntl(sock[0], F_SETFL, O_NONBLOCK);

  std::string cgroup;
  int procs_fd = -1, kill_fd = -1;
  if (!cgroup_base_.empty()) {
    cgroup = cgroup_base_ + "/tq-" + std::to_string(getpid()) + "-" +
             std::to_string(++runs_started_);
    if (mkdir(cgroup.c_str(), 0755) == 0) {
      procs_fd = open((cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
      // cgroup.kill needs Linux 5.14; without it the reaper's sweep suffices.
      kill_fd = open((cgroup + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC);
    } else {
      cgroup.clear();
    }
  }

  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const ReaperPlan plan{
      path.c_str(), cargv.data(),
      environ,      null_fd,
      out_pipe[1],  err_pipe[1],
      sock[1],      procs_fd,
      kill_fd,      cgroup.empty() ? nullptr : cgroup.c_str()};

  const TimePoint now = clock_.Now();
  const pid_t pid = fork();
  if (pid == 0) RunReaper(plan);
  const int fork_err = errno;
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(sock[1]);
  close(null_fd);
  if (procs_fd >= 0) close(procs_fd);
  if (kill_fd >= 0) close(kill_fd);
  if (pid < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    close(sock[0]);
    if (!cgroup.empty()) rmdir(cgroup.c_str());
    FailToStart(tag, argv[0], fork_err);
    return;
  }

  auto c = std::make_unique<Child>();
  c->tag = tag;
  c->program = argv[0];
  c->pid = pid;
  c->sock_fd = sock[0];
  c->out_fd = out_pipe[0];
  c->err_fd = err_pipe[0];
  c->cgroup = std::move(cgroup);
  c->started = now;
  c->time_limit = time_limit;
  c->deadline = now + time_limit;
  by_fd_[c->out_fd] = c.get();
  by_fd_[c->err_fd] = c.get();
  by_fd_[c->sock_fd] = c.get();
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
  } else if (fd == c->sock_fd) {
    ReadReaper(c);
  }
}

void ExecRunner::ClosePipe(int* fd) {
  if (*fd < 0) return;
  by_fd_.erase(*fd);
  close(*fd);
  *fd = -1;
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
    ClosePipe(fd);  // EOF or a read error
  }
}

void ExecRunner::ReadReaper(Child* c) {
  for (int round = 0; round < 16 && c->sock_fd >= 0; ++round) {
    ReaperMessage m;
    const ssize_t n = recv(c->sock_fd, &m, sizeof m, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n != static_cast<ssize_t>(sizeof m)) {
      // EOF: the reaper is exiting (its files close just before it can be
      // waited for).
      ClosePipe(&c->sock_fd);
      c->reaper_closed = true;
      c->poll_at = clock_.Now();
      TryReap(c);
      return;
    }
    if (m.type == kMsgStarted) {
      c->cmd_pid = m.value;
    } else if (m.type == kMsgExited || m.type == kMsgExecFailed) {
      if (m.type == kMsgExited) {
        c->has_status = true;
        c->wait_status = m.value;
      } else {
        c->exec_errno = m.value != 0 ? m.value : ENOEXEC;
      }
      if (!c->exited && !c->timed_out) c->ended = clock_.Now();
      c->exited = true;
    }
  }
}

void ExecRunner::StopReaper(Child* c) {
  if (c->stop_sent) return;
  c->stop_sent = true;
  c->stop_at = clock_.Now();
  if (c->sock_fd >= 0) shutdown(c->sock_fd, SHUT_WR);
}

void ExecRunner::TryReap(Child* c) {
  if (c->reaped) return;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(c->pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != c->pid && !(r < 0 && errno == ECHILD)) return;
  c->reaped = true;
  if (!c->exited) {
    // The reaper died before the command's end was reported (killed from
    // outside): clean up what we still can reach.
    if (!c->timed_out) c->ended = clock_.Now();
    c->exited = true;
    if (c->cmd_pid > 0) kill(-c->cmd_pid, SIGKILL);
  }
  if (!c->cgroup.empty() && !(c->has_status || c->exec_errno)) {
    std::ofstream kill_file(c->cgroup + "/cgroup.kill");
    kill_file << "1";
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
      c->timed_out = true;
      c->ended = now;
      StopReaper(c);
    }
    const bool over = c->exited || c->timed_out;
    bool pipes_open = c->out_fd >= 0 || c->err_fd >= 0;
    if (over && pipes_open && now >= c->ended + options_.pipe_grace) {
      // Leftover processes hold the pipes: the run is over all the same.
      StopReaper(c);
      ClosePipe(&c->out_fd);
      ClosePipe(&c->err_fd);
      pipes_open = false;
    }
    // The command is done and nothing writes any more: sweep what is left.
    if (c->exited && !pipes_open) StopReaper(c);
    if (c->reaper_closed && !c->reaped && now >= c->poll_at) {
      TryReap(c);
      c->next_poll = std::min(c->next_poll * 2, kMaxExitPoll);
      c->poll_at = now + c->next_poll;
    }
    if (c->stop_sent && !c->reaped && now >= c->stop_at + kReaperStopLimit) {
      kill(c->pid, SIGKILL);  // still our child, so still this process
      c->stop_at = now;
    }
    if (c->reaped && c->exited && !pipes_open) {
      Finish(i);  // swaps the last child into slot i
      continue;
    }
    if (!over) until(c->deadline);
    if (over && pipes_open) until(c->ended + options_.pipe_grace);
    if (c->reaper_closed && !c->reaped) until(c->poll_at);
    if (c->stop_sent && !c->reaped) until(c->stop_at + kReaperStopLimit);
    ++i;
  }
  for (size_t i = 0; i < stale_cgroups_.size();) {
    if (rmdir(stale_cgroups_[i].c_str()) == 0 || errno == ENOENT) {
      stale_cgroups_[i] = std::move(stale_cgroups_.back());
      stale_cgroups_.pop_back();
      continue;
    }
    until(now + Millis(1000));
    ++i;
  }
  return wait;
}

void ExecRunner::RemoveCgroup(const std::string& dir) {
  if (dir.empty()) return;
  if (rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    if (stale_cgroups_.size() < 1024) stale_cgroups_.push_back(dir);
  }
}

void ExecRunner::Finish(size_t index) {
  std::unique_ptr<Child> c = std::move(children_[index]);
  children_[index] = std::move(children_.back());
  children_.pop_back();
  ClosePipe(&c->sock_fd);
  RemoveCgroup(c->cgroup);

  TaskOutcome o;
  o.task_id = c->tag;
  o.duration_ms = static_cast<uint32_t>(
      std::max<int64_t>(0, (c->ended - c->started).count()));
  o.output = std::move(c->output);
  o.output_truncated = c->truncated;
  o.stderr_tail = Utf8Tail(c->err, options_.stderr_tail_bytes);
  const int status = c->wait_status;
  if (c->exec_errno != 0) {
    FailToStart(c->tag, c->program, c->exec_errno);
    return;
  }
  if (!c->terminated.empty()) {
    o.ok = false;
    o.exit_code = -1;
    o.error = c->terminated;
  } else if (c->timed_out) {
    o.ok = false;
    o.exit_code = -1;
    o.error = TimeLimitMessage(c->time_limit);
  } else if (!c->has_status) {
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

bool ExecRunner::Terminate(uint64_t tag, const std::string& reason) {
  for (auto& c : children_) {
    if (c->tag != tag) continue;
    if (c->exited || c->timed_out) return true;  // ending anyway
    c->timed_out = true;
    c->terminated = reason.empty() ? "terminated" : reason;
    c->ended = clock_.Now();
    StopReaper(c.get());
    return true;
  }
  return false;
}

void ExecRunner::KillAll() {
  // Each reaper kills its tree when told; its exit shows as EOF.
  for (auto& c : children_) StopReaper(c.get());
  // Bounded: a process stuck in uninterruptible sleep must not hang exit.
  const auto give_up = std::chrono::steady_clock::now() + Millis(2000);
  for (auto& c : children_) {
    while (!c->reaped) {
      int status;
      pid_t r = waitpid(c->pid, &status, WNOHANG);
      if (r == c->pid || (r < 0 && errno != EINTR)) break;
      if (std::chrono::steady_clock::now() >= give_up) {
        kill(c->pid, SIGKILL);
        if (c->cmd_pid > 0) kill(-c->cmd_pid, SIGKILL);
        waitpid(c->pid, &status, WNOHANG);
        break;
      }
      struct pollfd p = {c->sock_fd, POLLIN, 0};
      poll(&p, c->sock_fd >= 0 ? 1 : 0, 10);
      if (c->sock_fd >= 0 && (p.revents & (POLLHUP | POLLERR))) {
        ClosePipe(&c->sock_fd);
      }
    }
    for (int* fd : {&c->out_fd, &c->err_fd, &c->sock_fd}) ClosePipe(fd);
    RemoveCgroup(c->cgroup);
  }
  children_.clear();
  by_fd_.clear();
}

}  // namespace tq
