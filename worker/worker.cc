#include "worker/worker.h"

#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>
#include <system_error>
#include <utility>

#include "analyser/analyse_one_main.h"
#include "common/codec.h"
#include "common/curve_keys.h"
#include "common/defaults.h"
#include "worker/handler_outcome.h"
#include "worker/outdir_gather.h"

namespace tq {
namespace {

constexpr int kLingerMs = 1000;
constexpr int64_t kMaxMessageSlack = 64 * 1024;
constexpr Millis kIdleWait{60'000};
// Messages taken per poll turn, so children's pipes are not starved.
constexpr int kMaxReceivesPerTurn = 4096;

WorkerOptions Normalized(WorkerOptions o) {
  if (o.noop) o.handler = Handler::kNoop;
  return o;
}

}  // namespace

Worker::Worker(WorkerOptions options, int signal_fd)
    : options_(Normalized(std::move(options))),
      signal_fd_(signal_fd),
      core_(options_.identity, clock_),
      context_(1) {
  if (options_.handler != Handler::kNoop) {
    ExecOptions exec;
    exec.max_output_bytes = options_.max_output_bytes;
    runner_ = std::make_unique<ExecRunner>(clock_, exec);
  }
}

Worker::~Worker() {
  runner_.reset();  // kills what is still running
  RemoveOutdirs();
  if (options_.remove_work_dir) {
    std::error_code ec;
    std::filesystem::remove(options_.work_dir, ec);  // only if left empty
  }
  CloseSocket();
}

void Worker::RemoveOutdirs() {
  std::error_code ec;
  for (const auto& [id, dir] : outdirs_) std::filesystem::remove_all(dir, ec);
  outdirs_.clear();
}

Status Worker::OpenSocket() {
  CloseSocket();
  try {
    socket_ = zmq::socket_t(context_, zmq::socket_type::dealer);
    socket_.set(zmq::sockopt::linger, kLingerMs);
    socket_.set(zmq::sockopt::maxmsgsize, kMaxMessageBytes + kMaxMessageSlack);
    socket_.set(zmq::sockopt::ipv6, 1);  // brokers at IPv6 addresses
    if (options_.curve.enabled()) {
      CurveCert own;
      own.public_key = options_.curve.client_public_key;
      own.secret_key = options_.curve.client_secret_key;
      Status s = ApplyCurveClient(socket_.handle(), own,
                                  options_.curve.broker_public_key);
      if (!s.ok()) {
        CloseSocket();
        return Status::InvalidArgument("CURVE keys: " + s.message());
      }
    }
    socket_.connect(options_.endpoint);
  } catch (const zmq::error_t& e) {
    CloseSocket();
    if (e.num() == EINVAL || e.num() == EPROTONOSUPPORT) {
      return Status::InvalidArgument("bad broker endpoint '" +
                                     options_.endpoint + "': " + e.what());
    }
    return Status::IoError("cannot open a socket to " + options_.endpoint +
                           ": " + e.what());
  }
  return Status::Ok();
}

void Worker::CloseSocket() {
  pending_.clear();
  pending_head_ = 0;
  if (socket_) socket_.close();
}

void Worker::StartTask(const wire::Task& task) {
  if (options_.handler == Handler::kNoop) {
    TaskOutcome done;
    done.task_id = task.task_id();
    done.ok = true;
    core_.OnTaskFinished(std::move(done));
    return;
  }
  const Millis limit(task.time_limit_ms());
  if (options_.handler == Handler::kAnalyse) {
    // A child per task: the loop never blocks on the network, and time
    // limits, group kills and output capture are the runner's.
    const nlohmann::json opts(std::map<std::string, std::string>(
        task.options().begin(), task.options().end()));
    argv_ = {options_.self_exe,
             "--analyse-one",
             task.url(),
             "--options-json",
             opts.dump(),
             "--time-limit-ms",
             std::to_string(task.time_limit_ms()),
             "--max-output",
             std::to_string(options_.max_output_bytes)};
    runner_->Start(task.task_id(), argv_, limit);
    return;
  }
  Placeholders values;
  values.url = task.url();
  auto option = [&](const char* key) {
    auto it = task.options().find(key);
    return it == task.options().end() ? std::string() : it->second;
  };
  values.referer = option("referer");
  values.useragent = option("user_agent");
  values.proxy = option("proxy");
  values.timeout = option("timeout");
  if (values.timeout.empty()) {
    values.timeout =
        std::to_string(std::max<uint32_t>(1, task.time_limit_ms() / 1000));
  }
  if (options_.command.uses_outdir()) {
    std::error_code ec;
    std::filesystem::create_directories(options_.work_dir, ec);
    std::string pattern = options_.work_dir + "/task-" +
                          std::to_string(task.task_id()) + "-XXXXXX";
    if (ec || mkdtemp(pattern.data()) == nullptr) {
      TaskOutcome failed;
      failed.task_id = task.task_id();
      failed.exit_code = -1;
      failed.error = "cannot make an output directory under " +
                     options_.work_dir + ": " +
                     (ec ? ec.message() : std::string(strerror(errno)));
      core_.OnTaskFinished(std::move(failed));
      return;
    }
    values.outdir = pattern;
    outdirs_[task.task_id()] = pattern;
  }
  options_.command.ExpandInto(values, &argv_);
  runner_->Start(task.task_id(), argv_, limit);
}

void Worker::FinishOutcome(TaskOutcome* o) {
  if (options_.handler == Handler::kAnalyse &&
      o->exit_code == kExitAnalyseNetworkError) {
    auto doc = nlohmann::json::parse(o->output, nullptr, false);
    std::string why = "network error";
    if (!doc.is_discarded() && doc.contains("error") &&
        doc["error"].is_string()) {
      why += ": " + doc["error"].get<std::string>();
    }
    o->error = why + " (counted as a failed attempt: retry_on_network_error)";
    return;
  }
  auto it = outdirs_.find(o->task_id);
  if (it == outdirs_.end()) return;
  AttachLimits limits;
  // The files travel in the Result beside an output of up to --max-output:
  // together they stay under the message cap.
  const size_t room = kMaxMessageBytes - 1024 * 1024 -
                      std::min<size_t>(options_.max_output_bytes,
                                       kMaxMessageBytes - 1024 * 1024);
  limits.max_total_bytes = std::min(limits.max_total_bytes, room);
  limits.max_file_bytes =
      std::min(limits.max_file_bytes, limits.max_total_bytes);
  o->files.clear();
  nlohmann::json gathered = GatherOutdirFiles(it->second, limits, &o->files);
  if (gathered.contains("file_errors")) {
    for (const auto& why : gathered["file_errors"]) {
      o->error += o->error.empty() ? "" : "; ";
      o->error += why.get<std::string>();
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(it->second, ec);
  outdirs_.erase(it);
  std::string report = ExecReport(*o, std::move(gathered));
  if (report.size() > options_.max_output_bytes) {
    gathered = nlohmann::json::object();
    o->error += o->error.empty() ? "" : "; ";
    o->error += "the gathered output exceeds --max-output";
    report = ExecReport(
        *o,
        nlohmann::json{{"files_omitted", "the report exceeded --max-output"}});
  }
  o->output = std::move(report);
  o->output_truncated = false;
}

void Worker::Queue(wire::Envelope& envelope) {
  if (!socket_) return;
  const std::string bytes = Encode(envelope);
  pending_.emplace_back(bytes.data(), bytes.size());
}

Status Worker::FlushSends() {
  if (!socket_) {
    pending_.clear();
    pending_head_ = 0;
    return Status::Ok();
  }
  try {
    while (pending_head_ < pending_.size()) {
      // Non-blocking: past the high-water mark we wait for POLLOUT instead.
      if (!socket_.send(pending_[pending_head_], zmq::send_flags::dontwait)) {
        break;
      }
      ++pending_head_;
    }
  } catch (const zmq::error_t& e) {
    return Status::IoError(std::string("send failed: ") + e.what());
  }
  if (pending_head_ == pending_.size()) {
    pending_.clear();
    pending_head_ = 0;
  }
  return Status::Ok();
}

Status Worker::ApplyActions() {
  while (core_.HasPendingActions()) {
    if (core_.TakeKillAll() && runner_) {
      runner_->KillAll();
      RemoveOutdirs();
    }
    if (core_.TakeCloseSocket()) CloseSocket();
    if (core_.TakeOpenSocket()) {
      Status s = OpenSocket();
      if (s.ok()) {
        core_.OnConnected();
        opened_once_ = true;
      } else if (!opened_once_) {
        return s;  // a bad endpoint at startup is the user's to fix
      } else {
        core_.OnConnectFailed(s.message());
      }
    }
    core_.TakeTasksToTerminate(&terminate_);
    for (uint64_t id : terminate_) {
      if (runner_) runner_->Terminate(id, "terminated by an operator");
    }
    terminate_.clear();
    core_.TakeTasksToStart(&tasks_);
    for (const auto& t : tasks_) StartTask(t);
    tasks_.clear();
    core_.TakeOutbox(&out_);
    for (auto& e : out_) Queue(e);
    out_.clear();
  }
  return FlushSends();
}

void Worker::CollectFinished() {
  if (!runner_) return;
  runner_->TakeFinished(&outcomes_);
  for (auto& o : outcomes_) {
    FinishOutcome(&o);
    ApplyHandlerOutcome(options_.handler, &o);
    core_.OnTaskFinished(std::move(o));
  }
  outcomes_.clear();
}

void Worker::ReceiveAll() {
  for (int i = 0; i < kMaxReceivesPerTurn && socket_; ++i) {
    zmq::message_t msg;
    if (!socket_.recv(msg, zmq::recv_flags::dontwait)) return;
    if (msg.more()) {
      // The protocol is one frame per message: drop the rest of this one.
      zmq::message_t rest;
      while (msg.more() && socket_.recv(rest, zmq::recv_flags::dontwait)) {
        msg.swap(rest);
      }
      core_.OnBadMessage(0, DecodeError::kMalformed);
      continue;
    }
    Decoded d =
        DecodeFromBroker(std::string_view(msg.data<char>(), msg.size()));
    if (d.error != DecodeError::kNone) {
      core_.OnBadMessage(d.envelope.seq(), d.error);
    } else {
      core_.OnMessage(d.envelope);
    }
  }
}

void Worker::ReadSignals() {
  signalfd_siginfo info;
  while (read(signal_fd_, &info, sizeof info) == sizeof info) {
    spdlog::info("received signal {} ({})", info.ssi_signo,
                 strsignal(static_cast<int>(info.ssi_signo)));
    core_.OnStopSignal();
  }
}

Status Worker::Poll(Millis wait) {
  items_.clear();
  int socket_index = -1;
  if (socket_) {
    socket_index = static_cast<int>(items_.size());
    short events = ZMQ_POLLIN;
    if (pending_head_ < pending_.size()) events |= ZMQ_POLLOUT;
    items_.push_back({socket_.handle(), 0, events, 0});
  }
  const size_t signal_index = items_.size();
  items_.push_back({nullptr, signal_fd_, ZMQ_POLLIN, 0});
  const size_t first_child = items_.size();
  if (runner_) {
    fds_.clear();
    runner_->AppendPollFds(&fds_);
    for (int fd : fds_) items_.push_back({nullptr, fd, ZMQ_POLLIN, 0});
  }

  int rc = zmq_poll(items_.data(), static_cast<int>(items_.size()),
                    static_cast<long>(wait.count()));
  if (rc < 0) {
    if (zmq_errno() == EINTR) return Status::Ok();
    return Status::IoError(std::string("poll failed: ") +
                           zmq_strerror(zmq_errno()));
  }
  if (rc == 0) return Status::Ok();
  if (items_[signal_index].revents) ReadSignals();
  if (socket_index >= 0) {
    const short revents = items_[socket_index].revents;
    if (revents & ZMQ_POLLIN) ReceiveAll();
    if (revents & ZMQ_POLLOUT) {
      Status s = FlushSends();
      if (!s.ok()) return s;
    }
  }
  for (size_t i = first_child; i < items_.size(); ++i) {
    // POLLHUP shows up as ZMQ_POLLERR; either way, read to EOF.
    if (items_[i].revents) runner_->OnReadable(items_[i].fd);
  }
  return Status::Ok();
}

void Worker::Shutdown() {
  if (socket_ && pending_head_ < pending_.size()) {
    try {
      // Last words (Release, Goodbye): wait a little for room if need be.
      socket_.set(zmq::sockopt::sndtimeo, kLingerMs);
      while (pending_head_ < pending_.size() &&
             socket_.send(pending_[pending_head_], zmq::send_flags::none)) {
        ++pending_head_;
      }
    } catch (const zmq::error_t&) {
    }
  }
  CloseSocket();  // linger delivers what is queued, for up to kLingerMs
  const WorkerCounters& c = core_.counters();
  spdlog::info(
      "exit: {} tasks run, {} results acknowledged ({} stale), {} released, "
      "{} refused and {} malformed messages from the broker, {} reconnects",
      c.tasks_finished, c.results_acked, c.results_stale, c.tasks_released,
      c.refused_messages, c.malformed_messages, c.reconnects);
}

int Worker::Run() {
  try {
    while (true) {
      Millis wait = kIdleWait;
      if (runner_) wait = std::min(wait, runner_->OnTick());
      CollectFinished();
      wait = std::min(wait, core_.OnTick());
      Status s = ApplyActions();
      if (!s.ok()) {
        spdlog::critical("{}", s.message());
        Shutdown();
        return s.code() == Status::Code::kInvalidArgument ? 2 : 1;
      }
      if (core_.done()) break;
      // A spawn that failed at once already has its outcome: no sleeping.
      if (runner_ && runner_->has_finished()) continue;
      s = Poll(wait);
      if (!s.ok()) {
        spdlog::critical("{}", s.message());
        Shutdown();
        return 1;
      }
    }
  } catch (const std::exception& e) {
    spdlog::critical("fatal: {}", e.what());
    Shutdown();
    return 1;
  }
  Shutdown();
  return core_.exit_code();
}

}  // namespace tq
