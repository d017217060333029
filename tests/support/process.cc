#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace tq::testing {
namespace {
bool g_kill_with_parent = false;
}  // namespace

void Process::KillChildrenWithParent() { g_kill_with_parent = true; }

std::string Binary(const std::string& name) {
  return std::string(TQ_BIN_DIR) + "/" + name;
}

Process::Process(std::vector<std::string> argv, const std::string& stdout_path,
                 const std::string& stderr_path,
                 const std::vector<std::string>& extra_env,
                 const std::string& stdin_path) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  for (const auto& e : extra_env) env.push_back(e);
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    setpgid(0, 0);
    if (g_kill_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      // The parent may have died before prctl: then nobody would signal.
      if (getppid() != parent) _exit(127);
    }
    // Tests block no signals, but a parent that did must not leak the mask.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    auto redirect = [](const std::string& path, int fd, int flags) {
      int f = open(path.empty() ? "/dev/null" : path.c_str(), flags, 0644);
      if (f >= 0) {
        dup2(f, fd);
        close(f);
      }
    };
    redirect(stdin_path, 0, O_RDONLY);
    redirect(stdout_path, 1, O_WRONLY | O_CREAT | O_APPEND);
    redirect(stderr_path, 2, O_WRONLY | O_CREAT | O_APPEND);
    std::vector<char*> args, envp;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    execve(args[0], args.data(), envp.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  setpgid(pid_, pid_);  // also from the parent, to avoid a race with kill
}

Process::~Process() { Kill(); }

void Process::Signal(int signo) {
  if (!status_) ::kill(pid_, signo);
}

void Process::SignalGroup(int signo) {
  if (!status_) ::kill(-pid_, signo);
}

bool Process::Running() {
  if (status_) return false;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    return false;
  }
  return true;
}

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status_;
}

void Process::Kill() {
  if (pid_ <= 0) return;
  ::kill(-pid_, SIGKILL);  // the group: children of the child too
  if (!status_) {
    ::kill(pid_, SIGKILL);
    Wait(std::chrono::milliseconds(5000));
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

}  // namespace tq::testing
