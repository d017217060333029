#include "worker/self_check.h"

#include <curl/curl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "worker/exec_runner.h"
#include "worker/handler_outcome.h"

namespace tq {
namespace {

constexpr int kExitPass = 0;
constexpr int kExitFail = 2;

bool IsExecutableFile(const std::string& path, int* err) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    *err = errno;
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *err = EISDIR;
    return false;
  }
  if (access(path.c_str(), X_OK) != 0) {
    *err = errno;
    return false;
  }
  return true;
}

// The work dir, or its nearest existing ancestor when it is still to be
// made, takes a file.
Status CheckWritable(const std::string& work_dir) {
  std::filesystem::path dir = work_dir.empty() ? "." : work_dir;
  std::error_code ec;
  while (!std::filesystem::exists(dir, ec) && dir.has_parent_path() &&
         dir.parent_path() != dir) {
    dir = dir.parent_path();
  }
  std::string probe = (dir / ".tq-write-check-XXXXXX").string();
  const int fd = mkstemp(probe.data());
  if (fd < 0) {
    return Status::InvalidArgument("work dir " + work_dir +
                                   " is not writable (" + dir.string() + ": " +
                                   std::strerror(errno) + ")");
  }
  const bool wrote = write(fd, "x", 1) == 1;
  close(fd);
  unlink(probe.c_str());
  if (!wrote) {
    return Status::InvalidArgument("work dir " + work_dir +
                                   ": cannot write a file");
  }
  return Status::Ok();
}

Status CheckFetcher() {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    return Status::InvalidArgument("--analyse: libcurl does not initialise");
  }
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    return Status::InvalidArgument("--analyse: libcurl cannot make a handle");
  }
  curl_easy_cleanup(curl);
  return Status::Ok();
}

// Runs `argv` under the runner until it ends (bounded by the time limit
// and the runner's grace).
TaskOutcome RunOnce(const std::vector<std::string>& argv, Millis limit) {
  SystemClock clock;
  ExecRunner runner(clock, ExecOptions{});
  runner.Start(1, argv, limit);
  const auto give_up =
      std::chrono::steady_clock::now() + limit + std::chrono::seconds(10);
  std::vector<TaskOutcome> done;
  while (!runner.has_finished() && std::chrono::steady_clock::now() < give_up) {
    std::vector<int> fds;
    runner.AppendPollFds(&fds);
    std::vector<pollfd> polls;
    for (int fd : fds) polls.push_back({fd, POLLIN, 0});
    const Millis wait = std::min<Millis>(runner.OnTick(), Millis(200));
    poll(polls.data(), polls.size(), int(std::max<int64_t>(1, wait.count())));
    for (const pollfd& p : polls) {
      if (p.revents != 0) runner.OnReadable(p.fd);
    }
    runner.OnTick();
  }
  runner.TakeFinished(&done);
  if (done.empty()) {
    TaskOutcome o;
    o.exit_code = -1;
    o.error = "the probe did not end in time";
    runner.KillAll();
    return o;
  }
  return std::move(done.front());
}

}  // namespace

std::string SearchPath() {
  const char* path = std::getenv("PATH");
  if (path != nullptr) return path;
  const size_t n = confstr(_CS_PATH, nullptr, 0);
  std::string def(n, '\0');
  if (n > 0) confstr(_CS_PATH, def.data(), n);
  if (!def.empty() && def.back() == '\0') def.pop_back();
  return def.empty() ? "/usr/bin:/bin" : def;
}

Result<std::string> ResolveProgram(const std::string& program,
                                   const std::string& path) {
  int err = 0;
  if (program.find('/') != std::string::npos) {
    if (IsExecutableFile(program, &err)) return program;
    if (err == ENOENT || err == ENOTDIR) {
      return Status::NotFound("--exec: program " + program + " does not exist");
    }
    return Status::InvalidArgument(
        "--exec: program " + program +
        " cannot be executed: " + std::strerror(err));
  }
  std::string found_unrunnable;
  size_t begin = 0;
  while (begin <= path.size()) {
    size_t end = path.find(':', begin);
    if (end == std::string::npos) end = path.size();
    const std::string dir = path.substr(begin, end - begin);
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (IsExecutableFile(candidate, &err)) return candidate;
    if (err != ENOENT && err != ENOTDIR && found_unrunnable.empty()) {
      found_unrunnable = candidate + " (" + std::strerror(err) + ")";
    }
    begin = end + 1;
  }
  if (!found_unrunnable.empty()) {
    return Status::InvalidArgument("--exec: program " + program +
                                   " cannot be executed: " + found_unrunnable +
                                   "; PATH=" + path);
  }
  return Status::NotFound("--exec: program " + program +
                          " not found on PATH=" + path);
}

Status CheckHandler(const WorkerOptions& options) {
  switch (options.noop ? Handler::kNoop : options.handler) {
    case Handler::kNoop:
      return Status::Ok();
    case Handler::kExec: {
      const auto& words = options.command.words();
      if (words.empty()) return Status::InvalidArgument("--exec: no command");
      auto program = ResolveProgram(words.front(), SearchPath());
      return program.ok() ? Status::Ok() : program.status();
    }
    case Handler::kAnalyse:
      if (Status s = CheckFetcher(); !s.ok()) return s;
      return CheckWritable(options.work_dir);
  }
  return Status::Ok();
}

int RunSelfCheck(const WorkerOptions& options, const std::string& probe_url,
                 Millis time_limit, std::FILE* out) {
  const Handler handler = options.noop ? Handler::kNoop : options.handler;
  const char* name = handler == Handler::kNoop   ? "noop"
                     : handler == Handler::kExec ? "exec"
                                                 : "analyse";
  Status st = CheckHandler(options);
  if (!st.ok()) {
    std::fprintf(out, "check handler %s: FAIL: %s\nverdict: FAIL\n", name,
                 st.message().c_str());
    return kExitFail;
  }
  if (handler == Handler::kExec) {
    auto program =
        ResolveProgram(options.command.words().front(), SearchPath());
    std::fprintf(out, "check handler exec: ok (program %s)\n",
                 program.ok() ? program->c_str() : "?");
  } else if (handler == Handler::kAnalyse) {
    std::fprintf(out,
                 "check handler analyse: ok (libcurl initialises, work dir "
                 "%s writable)\n",
                 options.work_dir.c_str());
  } else {
    std::fprintf(out, "check handler noop: ok\n");
  }
  if (probe_url.empty() || handler == Handler::kNoop) {
    std::fprintf(out, "verdict: PASS%s\n",
                 probe_url.empty() ? " (static checks; no --check-url)" : "");
    return kExitPass;
  }

  std::vector<std::string> argv;
  std::string outdir;
  if (handler == Handler::kAnalyse) {
    argv = {options.self_exe,
            "--analyse-one",
            probe_url,
            "--options-json",
            "{}",
            "--time-limit-ms",
            std::to_string(time_limit.count()),
            "--max-output",
            std::to_string(options.max_output_bytes)};
  } else {
    Placeholders values;
    values.url = probe_url;
    values.timeout =
        std::to_string(std::max<int64_t>(1, time_limit.count() / 1000));
    if (options.command.uses_outdir()) {
      std::error_code ec;
      std::filesystem::create_directories(options.work_dir, ec);
      std::string pattern = options.work_dir + "/check-XXXXXX";
      if (!ec && mkdtemp(pattern.data()) != nullptr) outdir = pattern;
      values.outdir = outdir;
    }
    options.command.ExpandInto(values, &argv);
  }
  TaskOutcome o = RunOnce(argv, time_limit);
  if (!outdir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(outdir, ec);
  }
  ApplyHandlerOutcome(handler, &o);
  const bool pass = o.ok && o.outcome == "ok";
  if (o.ok) {
    std::fprintf(out, "check probe %s: %s (outcome %s%s%s, %u ms)\n",
                 probe_url.c_str(), pass ? "ok" : "FAIL", o.outcome.c_str(),
                 o.outcome_reason.empty() ? "" : ": ", o.outcome_reason.c_str(),
                 o.duration_ms);
  } else {
    std::fprintf(out, "check probe %s: FAIL: %s (exit code %d)%s%s\n",
                 probe_url.c_str(), o.error.c_str(), o.exit_code,
                 o.stderr_tail.empty() ? "" : "; stderr: ",
                 o.stderr_tail.substr(0, 500).c_str());
  }
  std::fprintf(out, "verdict: %s\n", pass ? "PASS" : "FAIL");
  return pass ? kExitPass : kExitFail;
}

}  // namespace tq
