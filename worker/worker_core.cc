#include "worker/worker_core.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "common/defaults.h"
#include "common/result_wire.h"

namespace tq {
namespace {

constexpr Millis kForever{3'600'000};

// A broker gone wrong could send garbage at full speed: warn about the first
// few, then every thousandth, so the log stays readable.
bool ShouldWarn(uint64_t count) { return count <= 10 || count % 1000 == 0; }

std::string JoinQueues(const wire::Welcome& w) {
  std::string s;
  for (const auto& q : w.queues()) {
    if (!s.empty()) s += ", ";
    s += q;
  }
  return s.empty() ? "(none)" : s;
}

std::string BodyName(const wire::Envelope& e) {
  const auto* field = wire::Envelope::descriptor()->FindFieldByNumber(
      static_cast<int>(e.body_case()));
  return field ? std::string(field->name()) : "unknown";
}

}  // namespace

WorkerCore::WorkerCore(WorkerConfig config, const Clock& clock)
    : config_(std::move(config)),
      clock_(clock),
      interval_(kDefaultHeartbeatIntervalMs),
      liveness_(kDefaultHeartbeatLiveness) {
  const TimePoint now = clock_.Now();
  last_recv_ = last_sent_ = reconnect_at_ = now;
  open_socket_ = true;  // connect straight away
  running_.reserve(config_.concurrency * 2);
}

uint64_t WorkerCore::Send(wire::Envelope envelope) {
  const uint64_t seq = next_seq_++;
  envelope.set_seq(seq);
  outbox_.push_back(std::move(envelope));
  last_sent_ = clock_.Now();
  return seq;
}

void WorkerCore::SendReply(wire::Envelope envelope) {
  // A reply echoes the requester's seq instead of taking one of ours.
  outbox_.push_back(std::move(envelope));
  last_sent_ = clock_.Now();
}

void WorkerCore::SendHello() {
  wire::Envelope env;
  auto* hello = env.mutable_hello();
  hello->set_worker_id(config_.worker_id);
  hello->set_country(config_.country);
  hello->set_country_auto(config_.country_auto);
  hello->set_country_source(config_.country_source);
  hello->set_public_ip(config_.public_ip);
  hello->set_no_generic(config_.no_generic);
  hello->set_concurrency(config_.concurrency);
  for (const auto& [task_id, r] : running_) {
    auto* lease = hello->add_held();
    lease->set_task_id(task_id);
    lease->set_token(r.token);
  }
  hello->set_hostname(config_.hostname);
  hello->set_pid(config_.pid);
  hello->set_version(kWorkerVersion);
  // Sends made for the old session will never be answered.
  result_seq_.clear();
  resends_.clear();
  for (auto& [id, u] : unacked_) u.seq = 0;
  state_ = SessionState::kHelloSent;
  hello_seq_ = Send(std::move(env));
}

void WorkerCore::OnConnected() {
  last_recv_ = clock_.Now();  // the Welcome has interval * liveness to come
  SendHello();
}

void WorkerCore::OnConnectFailed(const std::string& why) {
  LoseBroker(why);
  close_socket_ = false;  // there is none
}

void WorkerCore::SendResult(Unacked* u, uint32_t credit) {
  if (u->seq != 0) result_seq_.erase(u->seq);
  wire::Envelope env;
  *env.mutable_result() = u->result;
  env.mutable_result()->set_credit(credit);
  u->seq = Send(std::move(env));
  result_seq_[u->seq] = u->result.task_id();
  ++counters_.results_sent;
}

void WorkerCore::OnMessage(const wire::Envelope& envelope) {
  last_recv_ = clock_.Now();  // any message shows the broker is alive
  switch (envelope.body_case()) {
    case wire::Envelope::kWelcome:
      OnWelcome(envelope.welcome());
      break;
    case wire::Envelope::kAssign:
      OnAssign(envelope.assign());
      break;
    case wire::Envelope::kResultAck:
      OnResultAck(envelope.result_ack());
      break;
    case wire::Envelope::kHeartbeat:
      break;
    case wire::Envelope::kTerminateTask:
      OnTerminate(envelope.terminate_task());
      break;
    case wire::Envelope::kError:
      OnError(envelope.seq(), envelope.error());
      break;
    default: {
      Refuse(envelope.seq(), "unexpected " + BodyName(envelope) + " message");
      if (connected()) {
        SendReply(ErrorReply(envelope.seq(), wire::UNSUPPORTED,
                             "a worker does not handle " + BodyName(envelope)));
      }
      break;
    }
  }
}

void WorkerCore::OnBadMessage(uint64_t seq, DecodeError error) {
  last_recv_ = clock_.Now();
  ++counters_.malformed_messages;
  if (ShouldWarn(counters_.malformed_messages)) {
    spdlog::warn("bad message from broker: {} ({} so far)",
                 DecodeErrorName(error), counters_.malformed_messages);
  }
  if (connected()) {
    SendReply(ErrorReply(seq, ErrorCodeFor(error),
                         std::string(DecodeErrorName(error))));
  }
}

void WorkerCore::Refuse(uint64_t seq, const std::string& what) {
  ++counters_.refused_messages;
  if (ShouldWarn(counters_.refused_messages)) {
    spdlog::warn("refused message from broker (seq {}): {} ({} so far)", seq,
                 what, counters_.refused_messages);
  }
}

void WorkerCore::OnWelcome(const wire::Welcome& welcome) {
  if (state_ != SessionState::kHelloSent) {
    Refuse(0, "Welcome without a pending Hello");
    return;
  }
  interval_ = Millis(welcome.heartbeat_interval_ms() > 0
                         ? welcome.heartbeat_interval_ms()
                         : kDefaultHeartbeatIntervalMs);
  liveness_ = welcome.heartbeat_liveness() > 0 ? welcome.heartbeat_liveness()
                                               : kDefaultHeartbeatLiveness;
  state_ = SessionState::kReady;
  backoff_ = kInitialReconnectDelay;
  const std::string& source = welcome.country_source();
  if (welcome.country().empty() && config_.country_auto) {
    // Never silent: say why this worker serves generic only.
    spdlog::warn("no country for --country auto, serving generic only: {}",
                 source.rfind("none: ", 0) == 0 ? source.substr(6) : source);
  }
  spdlog::info("connected to {}, country {}, serving queues {}", config_.broker,
               welcome.country().empty()
                   ? std::string("none")
                   : welcome.country() + " (" + source + ")",
               JoinQueues(welcome));

  wire::Envelope credit;
  if (draining_) {
    credit.mutable_credit()->set_pause(true);
    Send(std::move(credit));
  } else {
    const uint32_t free_slots =
        config_.concurrency - static_cast<uint32_t>(running_.size());
    if (free_slots > 0) {
      credit.mutable_credit()->set_grant(free_slots);
      Send(std::move(credit));
    }
  }
  // The new session's grant already counts these slots as free: no credit.
  for (auto& [id, u] : unacked_) SendResult(&u, 0);
}

void WorkerCore::OnAssign(const wire::Assign& assign) {
  wire::Envelope release_env;
  wire::Release* release = nullptr;
  auto hand_back = [&](const wire::Task& t) {
    if (!release) release = release_env.mutable_release();
    auto* lease = release->add_leases();
    lease->set_task_id(t.task_id());
    lease->set_token(t.token());
    ++counters_.tasks_released;
  };
  const TimePoint now = clock_.Now();
  for (const auto& task : assign.tasks()) {
    if (draining_) {
      spdlog::debug("task {} released: draining", task.task_id());
      hand_back(task);
      continue;
    }
    auto it = running_.find(task.task_id());
    if (it != running_.end()) {
      if (it->second.token == task.token()) {
        Refuse(0, "task " + std::to_string(task.task_id()) +
                      " assigned twice with the same lease");
      } else {
        Refuse(0, "task " + std::to_string(task.task_id()) +
                      " assigned while an older lease of it is running");
        hand_back(task);
      }
      continue;
    }
    if (running_.size() >= config_.concurrency) {
      Refuse(0, "task " + std::to_string(task.task_id()) +
                    " assigned beyond the credit granted");
      hand_back(task);
      continue;
    }
    const uint32_t limit_ms =
        task.time_limit_ms() > 0 ? task.time_limit_ms() : kDefaultTimeLimitMs;
    running_.emplace(task.task_id(),
                     Running{task.token(), now + Millis(limit_ms)});
    to_start_.push_back(task);
    if (to_start_.back().time_limit_ms() == 0) {
      to_start_.back().set_time_limit_ms(limit_ms);
    }
    ++counters_.tasks_started;
    spdlog::debug("task {} started (attempt {}, queue {})", task.task_id(),
                  task.attempt(), task.queue());
  }
  if (release && connected()) Send(std::move(release_env));
}

void WorkerCore::OnTaskFinished(TaskOutcome outcome) {
  auto it = running_.find(outcome.task_id);
  if (it == running_.end()) return;  // aborted meanwhile
  const uint64_t token = it->second.token;
  running_.erase(it);
  ++counters_.tasks_finished;
  spdlog::debug("task {} finished: {} in {} ms", outcome.task_id,
                outcome.ok ? "ok" : outcome.error, outcome.duration_ms);

  Unacked& u = unacked_[outcome.task_id];
  if (u.seq != 0) result_seq_.erase(u.seq);
  u.seq = 0;
  wire::Result& r = u.result;
  r.Clear();
  r.set_task_id(outcome.task_id);
  r.set_token(token);
  ToWire(std::move(outcome), &r);
  // Otherwise it goes out after the next Welcome, whose grant covers the slot.
  if (state_ == SessionState::kReady) SendResult(&u, draining_ ? 0 : 1);
}

void WorkerCore::OnResultAck(const wire::ResultAck& ack) {
  auto it = unacked_.find(ack.task_id());
  if (it == unacked_.end() || it->second.result.token() != ack.token()) {
    spdlog::debug("ack for unknown result of task {} ignored", ack.task_id());
    return;
  }
  if (it->second.seq != 0) result_seq_.erase(it->second.seq);
  unacked_.erase(it);
  if (ack.accepted()) {
    ++counters_.results_acked;
  } else {
    ++counters_.results_stale;
    spdlog::info("result of task {} dropped by the broker: stale lease{}{}",
                 ack.task_id(), ack.reason().empty() ? "" : ": ", ack.reason());
  }
}

void WorkerCore::OnTerminate(const wire::TerminateTask& terminate) {
  auto it = running_.find(terminate.task_id());
  if (it == running_.end() || it->second.token != terminate.token()) {
    spdlog::debug("terminate for task {} not running here ignored",
                  terminate.task_id());
    return;
  }
  ++counters_.tasks_terminated;
  spdlog::info("task {}: the broker says to terminate its handler ({})",
               terminate.task_id(), terminate.reason());
  to_terminate_.push_back(terminate.task_id());
}

void WorkerCore::OnError(uint64_t seq, const wire::Error& error) {
  switch (error.code()) {
    case wire::NOT_REGISTERED:
      // Everything we sent before our Hello earns one of these: answer the
      // first only, or each extra Hello would reset the session's credit.
      if (state_ != SessionState::kReady) return;
      spdlog::info(
          "broker {} does not know us (restarted?): saying Hello again",
          config_.broker);
      SendHello();
      return;
    case wire::PERMISSION_DENIED:
      // Our Hello refused: the key or its countries are wrong, and saying
      // Hello again would be refused again. Later messages' refusals are
      // counted like any other error.
      if (state_ == SessionState::kHelloSent && seq == hello_seq_) {
        RefusedAtHello(error);
        return;
      }
      break;
    case wire::STORE_UNAVAILABLE: {
      const TimePoint at = clock_.Now() + interval_;
      auto it = result_seq_.find(seq);
      if (it != result_seq_.end()) {
        auto u = unacked_.find(it->second);
        if (u != unacked_.end()) {
          resends_.push_back({at, u->first, u->second.result.token()});
        }
      } else {
        // Not matched to one result: retry them all rather than lose any.
        for (const auto& [id, u] : unacked_) {
          if (u.seq != 0) resends_.push_back({at, id, u.result.token()});
        }
      }
      spdlog::debug("broker store unavailable ({}); result resent in {} ms",
                    error.message(), interval_.count());
      return;
    }
    default:
      break;
  }
  Refuse(seq, "broker error " + wire::ErrorCode_Name(error.code()) + ": " +
                  error.message());
}

void WorkerCore::RefusedAtHello(const wire::Error& error) {
  spdlog::critical(
      "broker {} refused this worker (id '{}'): {}; not retrying, exit {}. "
      "Give the key the worker role (and the countries it serves) in the "
      "broker's --authorized-keys, or change --country / --id",
      config_.broker, config_.worker_id, error.message(), kWorkerExitRefused);
  // Tasks still running from an earlier session are not ours any more.
  kill_all_ = !running_.empty();
  running_.clear();
  close_socket_ = true;
  state_ = SessionState::kDisconnected;
  done_ = true;
  exit_code_ = kWorkerExitRefused;
}

void WorkerCore::OnStopSignal() {
  if (done_) return;
  if (draining_) {
    Abort("second stop signal");
    return;
  }
  draining_ = true;
  const TimePoint now = clock_.Now();
  TimePoint last = now;
  for (const auto& [id, r] : running_) last = std::max(last, r.deadline);
  drain_deadline_ = last + kDrainGrace;
  spdlog::info("draining: {} running tasks, {} results awaiting ack",
               running_.size(), unacked_.size());
  if (state_ == SessionState::kReady) {
    wire::Envelope env;
    env.mutable_credit()->set_pause(true);
    Send(std::move(env));
  }
}

void WorkerCore::Abort(const std::string& why) {
  spdlog::info("stopping now ({}): killing {} running tasks", why,
               running_.size());
  kill_all_ = !running_.empty();
  if (connected()) {
    if (!running_.empty()) {
      wire::Envelope env;
      auto* release = env.mutable_release();
      for (const auto& [id, r] : running_) {
        auto* lease = release->add_leases();
        lease->set_task_id(id);
        lease->set_token(r.token);
        ++counters_.tasks_released;
      }
      Send(std::move(env));
    }
    wire::Envelope bye;
    bye.mutable_goodbye();
    Send(std::move(bye));
  }
  running_.clear();
  if (!unacked_.empty()) {
    spdlog::warn("{} results were not acknowledged by the broker",
                 unacked_.size());
  }
  done_ = true;
  exit_code_ = 0;
}

void WorkerCore::FinishDrain() {
  if (connected()) {
    wire::Envelope bye;
    bye.mutable_goodbye();
    Send(std::move(bye));
  }
  spdlog::info("drained: every result acknowledged");
  done_ = true;
  exit_code_ = 0;
}

void WorkerCore::LoseBroker(const std::string& why) {
  spdlog::warn("lost broker {}: {}; reconnecting in {} ms", config_.broker, why,
               backoff_.count());
  state_ = SessionState::kDisconnected;
  close_socket_ = true;
  outbox_.clear();
  result_seq_.clear();
  resends_.clear();
  reconnect_at_ = clock_.Now() + backoff_;
  backoff_ = std::min(backoff_ * 2, kMaxReconnectDelay);
}

Millis WorkerCore::OnTick() {
  if (done_) return Millis(0);
  const TimePoint now = clock_.Now();
  TimePoint next = now + kForever;

  if (draining_) {
    if (running_.empty() && unacked_.empty()) {
      FinishDrain();
      return Millis(0);
    }
    if (now >= drain_deadline_) {
      Abort("drain time limit reached");
      return Millis(0);
    }
    next = std::min(next, drain_deadline_);
  }

  if (state_ == SessionState::kDisconnected) {
    if (!open_socket_ && now >= reconnect_at_) {
      spdlog::info("reconnecting to {}", config_.broker);
      ++counters_.reconnects;
      open_socket_ = true;
    } else {
      next = std::min(next, reconnect_at_);
    }
  } else {
    const TimePoint lost_at = last_recv_ + interval_ * liveness_;
    if (now >= lost_at) {
      LoseBroker("nothing heard for " +
                 std::to_string((now - last_recv_).count()) + " ms");
      next = std::min(next, reconnect_at_);
    } else {
      next = std::min(next, lost_at);
      if (state_ == SessionState::kReady) {
        // Heartbeat even when every slot is busy: it is how the broker knows
        // we are still here.
        if (now >= last_sent_ + interval_) {
          wire::Envelope hb;
          hb.mutable_heartbeat();
          Send(std::move(hb));
        }
        next = std::min(next, last_sent_ + interval_);
        while (!resends_.empty() && resends_.front().at <= now) {
          const Resend r = resends_.front();
          resends_.pop_front();
          auto it = unacked_.find(r.task_id);
          if (it != unacked_.end() && it->second.result.token() == r.token) {
            SendResult(&it->second, 0);
          }
        }
        if (!resends_.empty()) next = std::min(next, resends_.front().at);
      }
    }
  }
  return std::max(Millis(0), std::chrono::duration_cast<Millis>(next - now));
}

void WorkerCore::TakeOutbox(std::vector<wire::Envelope>* out) {
  for (auto& e : outbox_) out->push_back(std::move(e));
  outbox_.clear();
}

void WorkerCore::TakeTasksToStart(std::vector<wire::Task>* out) {
  for (auto& t : to_start_) out->push_back(std::move(t));
  to_start_.clear();
}

bool WorkerCore::TakeCloseSocket() {
  return std::exchange(close_socket_, false);
}
bool WorkerCore::TakeOpenSocket() { return std::exchange(open_socket_, false); }
bool WorkerCore::TakeKillAll() { return std::exchange(kill_all_, false); }

void WorkerCore::TakeTasksToTerminate(std::vector<uint64_t>* out) {
  for (uint64_t id : to_terminate_) out->push_back(id);
  to_terminate_.clear();
}

bool WorkerCore::HasPendingActions() const {
  return !outbox_.empty() || !to_start_.empty() || close_socket_ ||
         open_socket_ || kill_all_ || !to_terminate_.empty();
}

}  // namespace tq
