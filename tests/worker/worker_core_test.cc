#include "worker/worker_core.h"

#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/defaults.h"

namespace tq {
namespace {

using Envelopes = std::vector<wire::Envelope>;

// The core logs lifecycle lines at info; keep test output to real trouble.
const bool kQuietLogs = [] {
  spdlog::set_level(spdlog::level::err);
  return true;
}();

WorkerConfig Config(uint32_t concurrency) {
  WorkerConfig c;
  c.broker = "tcp://127.0.0.1:1";
  c.worker_id = "w1";
  c.country = "IT";
  c.concurrency = concurrency;
  c.hostname = "host";
  c.pid = 1234;
  return c;
}

wire::Task MakeTask(uint64_t id, uint64_t token, uint32_t limit_ms = 2000) {
  wire::Task t;
  t.set_task_id(id);
  t.set_token(token);
  t.set_url("http://example.com/" + std::to_string(id));
  t.set_queue("IT");
  t.set_attempt(1);
  t.set_time_limit_ms(limit_ms);
  return t;
}

TaskOutcome Ok(uint64_t id) {
  TaskOutcome o;
  o.task_id = id;
  o.ok = true;
  o.output = "out";
  o.duration_ms = 5;
  return o;
}

struct Harness {
  explicit Harness(uint32_t concurrency = 2)
      : core(Config(concurrency), clock) {}

  Envelopes Out() {
    Envelopes v;
    core.TakeOutbox(&v);
    return v;
  }
  std::vector<wire::Task> Started() {
    std::vector<wire::Task> v;
    core.TakeTasksToStart(&v);
    return v;
  }
  void Connect() {
    core.OnTick();
    REQUIRE(core.TakeOpenSocket());
    core.OnConnected();
  }
  void Welcome(uint32_t interval_ms = 1000, uint32_t liveness = 3) {
    wire::Envelope e;
    auto* w = e.mutable_welcome();
    w->add_queues("IT");
    w->add_queues("generic");
    w->set_heartbeat_interval_ms(interval_ms);
    w->set_heartbeat_liveness(liveness);
    core.OnMessage(e);
  }
  // Connected, welcomed, outbox emptied.
  void Ready(uint32_t interval_ms = 1000, uint32_t liveness = 3) {
    Connect();
    Welcome(interval_ms, liveness);
    Out();
  }
  void Assign(std::vector<wire::Task> tasks) {
    wire::Envelope e;
    for (auto& t : tasks) *e.mutable_assign()->add_tasks() = t;
    core.OnMessage(e);
  }
  void Ack(uint64_t id, uint64_t token, bool accepted = true) {
    wire::Envelope e;
    e.mutable_result_ack()->set_task_id(id);
    e.mutable_result_ack()->set_token(token);
    e.mutable_result_ack()->set_accepted(accepted);
    core.OnMessage(e);
  }
  void Error(wire::ErrorCode code, uint64_t seq = 0) {
    wire::Envelope e;
    e.set_seq(seq);
    e.mutable_error()->set_code(code);
    e.mutable_error()->set_retryable(true);
    core.OnMessage(e);
  }
  void Heartbeat() {
    wire::Envelope e;
    e.mutable_heartbeat();
    core.OnMessage(e);
  }
  void Advance(Millis d) {
    clock.Advance(d);
    core.OnTick();
  }

  FakeClock clock;
  WorkerCore core;
};

const wire::Envelope* Find(const Envelopes& v, wire::Envelope::BodyCase c) {
  for (const auto& e : v) {
    if (e.body_case() == c) return &e;
  }
  return nullptr;
}

size_t Count(const Envelopes& v, wire::Envelope::BodyCase c) {
  size_t n = 0;
  for (const auto& e : v) n += e.body_case() == c;
  return n;
}

TEST_CASE("StartupOpensASocketAndSaysHelloWithItsIdentity", "[worker_core]") {
  Harness h(4);
  h.Connect();
  auto out = h.Out();
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].has_hello());
  const auto& hello = out[0].hello();
  CHECK(hello.worker_id() == "w1");
  CHECK(hello.country() == "IT");
  CHECK(hello.concurrency() == 4);
  CHECK(hello.held_size() == 0);
  CHECK(hello.hostname() == "host");
  CHECK(hello.pid() == 1234);
  CHECK(hello.version() == "0.1.0");
  CHECK(out[0].seq() > 0);
  CHECK(h.core.state() == SessionState::kHelloSent);
}

TEST_CASE("WelcomeGrantsEveryFreeSlot", "[worker_core]") {
  Harness h(4);
  h.Connect();
  h.Out();
  h.Welcome(250, 4);
  CHECK(h.core.state() == SessionState::kReady);
  CHECK(h.core.heartbeat_interval() == Millis(250));
  auto out = h.Out();
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].has_credit());
  CHECK(out[0].credit().grant() == 4);
  CHECK_FALSE(out[0].credit().pause());
}

TEST_CASE("SeqNumbersIncreaseOnEverythingSent", "[worker_core]") {
  Harness h(1);
  h.Connect();
  h.Welcome();
  auto out = h.Out();
  REQUIRE(out.size() == 2);
  CHECK(out[1].seq() > out[0].seq());
}

TEST_CASE("AssignedTaskStartsAndItsResultCarriesOneCredit", "[worker_core]") {
  Harness h(2);
  h.Ready();
  h.Assign({MakeTask(7, 70)});
  auto started = h.Started();
  REQUIRE(started.size() == 1);
  CHECK(started[0].url() == "http://example.com/7");
  CHECK(h.core.running() == 1);
  CHECK(h.Out().empty());

  TaskOutcome o = Ok(7);
  o.output_truncated = true;
  o.stderr_tail = "warn";
  h.core.OnTaskFinished(o);
  auto out = h.Out();
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].has_result());
  const auto& r = out[0].result();
  CHECK(r.task_id() == 7);
  CHECK(r.token() == 70);
  CHECK(r.ok());
  CHECK(r.output() == "out");
  CHECK(r.output_truncated());
  CHECK(r.stderr_tail() == "warn");
  CHECK(r.duration_ms() == 5);
  CHECK(r.credit() == 1);
  CHECK(h.core.running() == 0);
  CHECK(h.core.unacked() == 1);
}

TEST_CASE("NextTaskRunsWithoutWaitingForTheAck", "[worker_core]") {
  Harness h(1);
  h.Ready();
  h.Assign({MakeTask(1, 1)});
  h.Started();
  h.core.OnTaskFinished(Ok(1));
  h.Assign({MakeTask(2, 2)});
  CHECK(h.Started().size() == 1);
  CHECK(h.core.unacked() == 1);
}

TEST_CASE("ResultIsKeptUntilAcked", "[worker_core]") {
  Harness h(1);
  h.Ready();
  h.Assign({MakeTask(1, 11)});
  h.core.OnTaskFinished(Ok(1));
  h.Ack(1, 99);  // another lease's ack does not count
  CHECK(h.core.unacked() == 1);
  h.Ack(1, 11);
  CHECK(h.core.unacked() == 0);
  CHECK(h.core.counters().results_acked == 1);
}

TEST_CASE("StaleLeaseAckDropsTheResult", "[worker_core]") {
  Harness h(1);
  h.Ready();
  h.Assign({MakeTask(1, 11)});
  h.core.OnTaskFinished(Ok(1));
  h.Ack(1, 11, false);
  CHECK(h.core.unacked() == 0);
  CHECK(h.core.counters().results_stale == 1);
}

TEST_CASE("TaskBeyondTheCreditIsReleasedAtOnce", "[worker_core]") {
  Harness h(1);
  h.Ready();
  h.Assign({MakeTask(1, 11), MakeTask(2, 22)});
  CHECK(h.Started().size() == 1);
  auto out = h.Out();
  const auto* rel = Find(out, wire::Envelope::kRelease);
  REQUIRE(rel);
  REQUIRE(rel->release().leases_size() == 1);
  CHECK(rel->release().leases(0).task_id() == 2);
  CHECK(rel->release().leases(0).token() == 22);
  CHECK(h.core.counters().refused_messages == 1);
  CHECK(h.core.counters().tasks_released == 1);
}

TEST_CASE("DuplicateAssignOfARunningLeaseIsIgnored", "[worker_core]") {
  Harness h(2);
  h.Ready();
  h.Assign({MakeTask(1, 11)});
  h.Assign({MakeTask(1, 11)});
  CHECK(h.Started().size() == 1);
  CHECK(h.core.running() == 1);
  CHECK(h.Out().empty());
}

TEST_CASE("TaskWithoutTimeLimitGetsTheDefault", "[worker_core]") {
  Harness h(1);
  h.Ready();
  h.Assign({MakeTask(1, 11, 0)});
  auto started = h.Started();
  REQUIRE(started.size() == 1);
  CHECK(started[0].time_limit_ms() == kDefaultTimeLimitMs);
}

TEST_CASE("HeartbeatGoesOutAfterAnIntervalWithoutTraffic", "[worker_core]") {
  Harness h(1);
  h.Ready(1000, 3);
  h.Assign({MakeTask(1, 11, 60'000)});  // every slot busy
  h.Advance(Millis(999));
  CHECK(h.Out().empty());
  h.Heartbeat();  // keeps the broker alive, not our sending timer
  h.Advance(Millis(1));
  auto out = h.Out();
  REQUIRE(out.size() == 1);
  CHECK(out[0].has_heartbeat());
  // Sending something else postpones the next heartbeat.
  h.Advance(Millis(500));
  h.core.OnTaskFinished(Ok(1));
  h.Out();
  h.Heartbeat();
  h.Advance(Millis(999));
  CHECK(h.Out().empty());
  h.Advance(Millis(1));
  CHECK(Count(h.Out(), wire::Envelope::kHeartbeat) == 1);
}

TEST_CASE("OnTickReturnsTheTimeToTheNextHeartbeat", "[worker_core]") {
  Harness h(1);
  h.Ready(1000, 3);
  h.clock.Advance(Millis(300));
  CHECK(h.core.OnTick() == Millis(700));
}

TEST_CASE("AnyBrokerMessageRefreshesLiveness", "[worker_core]") {
  Harness h(1);
  h.Ready(100, 3);
  for (int i = 0; i < 10; ++i) {
    h.Advance(Millis(250));
    h.Heartbeat();
  }
  CHECK(h.core.state() == SessionState::kReady);
  CHECK_FALSE(h.core.TakeCloseSocket());
}

TEST_CASE("SilenceBeyondLivenessReconnectsWithCappedExponentialBackoff",
          "[worker_core]") {
  Harness h(1);
  h.Ready(100, 3);
  h.Advance(Millis(299));
  CHECK(h.core.state() == SessionState::kReady);
  h.Advance(Millis(1));
  CHECK(h.core.state() == SessionState::kDisconnected);
  CHECK(h.core.TakeCloseSocket());

  // Each failed attempt (no Welcome within interval * liveness) doubles the
  // wait before the next one, up to the cap.
  Millis expected = kInitialReconnectDelay;
  for (int attempt = 0; attempt < 9; ++attempt) {
    h.Advance(expected - Millis(1));
    CHECK_FALSE(h.core.TakeOpenSocket());
    h.Advance(Millis(1));
    REQUIRE(h.core.TakeOpenSocket());
    h.core.OnConnected();
    CHECK(h.core.state() == SessionState::kHelloSent);
    h.Advance(Millis(100 * 3));
    CHECK(h.core.state() == SessionState::kDisconnected);
    CHECK(h.core.TakeCloseSocket());
    expected = std::min(expected * 2, kMaxReconnectDelay);
  }
  CHECK(h.core.reconnect_delay() == kMaxReconnectDelay);

  // A Welcome resets the back-off.
  h.Advance(kMaxReconnectDelay);
  REQUIRE(h.core.TakeOpenSocket());
  h.core.OnConnected();
  h.Welcome(100, 3);
  CHECK(h.core.reconnect_delay() == kInitialReconnectDelay);
}

TEST_CASE("FailedSocketOpenIsRetriedAfterBackoff", "[worker_core]") {
  Harness h(1);
  h.Ready();
  h.Advance(Millis(3000));
  REQUIRE(h.core.TakeCloseSocket());
  h.Advance(kInitialReconnectDelay);
  REQUIRE(h.core.TakeOpenSocket());
  h.core.OnConnectFailed("no more fds");
  CHECK_FALSE(h.core.TakeCloseSocket());
  CHECK(h.core.state() == SessionState::kDisconnected);
  h.Advance(kInitialReconnectDelay * 2 - Millis(1));
  CHECK_FALSE(h.core.TakeOpenSocket());
  h.Advance(Millis(1));
  CHECK(h.core.TakeOpenSocket());
}

TEST_CASE("ReconnectSaysHelloWithHeldLeasesAndResendsUnackedResults",
          "[worker_core]") {
  Harness h(3);
  h.Ready(100, 3);
  h.Assign({MakeTask(1, 11, 60'000), MakeTask(2, 22, 60'000)});
  h.Started();
  h.core.OnTaskFinished(Ok(2));
  h.Out();
  h.Advance(Millis(300));  // broker silent
  REQUIRE(h.core.TakeCloseSocket());
  h.Advance(kInitialReconnectDelay);
  REQUIRE(h.core.TakeOpenSocket());
  h.core.OnConnected();
  auto out = h.Out();
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].has_hello());
  REQUIRE(out[0].hello().held_size() == 1);  // task 1 still running
  CHECK(out[0].hello().held(0).task_id() == 1);
  CHECK(out[0].hello().held(0).token() == 11);

  h.Welcome(100, 3);
  out = h.Out();
  REQUIRE(out.size() == 2);
  REQUIRE(out[0].has_credit());
  CHECK(out[0].credit().grant() == 2);  // 3 slots - 1 running
  REQUIRE(out[1].has_result());
  CHECK(out[1].result().task_id() == 2);
  CHECK(out[1].result().token() == 22);
  CHECK(out[1].result().credit() == 0);  // the grant covered that slot
}

TEST_CASE("ResultFinishedWhileDisconnectedGoesOutAfterWelcome",
          "[worker_core]") {
  Harness h(1);
  h.Ready(100, 3);
  h.Assign({MakeTask(1, 11, 60'000)});
  h.Started();
  h.Advance(Millis(300));
  REQUIRE(h.core.TakeCloseSocket());
  h.core.OnTaskFinished(Ok(1));
  CHECK(h.Out().empty());
  h.Advance(kInitialReconnectDelay);
  REQUIRE(h.core.TakeOpenSocket());
  h.core.OnConnected();
  h.core.OnTaskFinished(Ok(1));  // late duplicate is ignored
  auto out = h.Out();
  REQUIRE(out.size() == 1);
  CHECK(out[0].hello().held_size() == 0);
  h.Welcome(100, 3);
  out = h.Out();
  CHECK(Count(out, wire::Envelope::kResult) == 1);
  CHECK(Find(out, wire::Envelope::kCredit)->credit().grant() == 1);
}

TEST_CASE("NotRegisteredErrorSaysHelloAgainOnTheSameSocket", "[worker_core]") {
  Harness h(2);
  h.Ready();
  h.Assign({MakeTask(1, 11, 60'000)});
  h.Started();
  h.Error(wire::NOT_REGISTERED);
  CHECK_FALSE(h.core.TakeCloseSocket());
  CHECK_FALSE(h.core.TakeOpenSocket());
  auto out = h.Out();
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].has_hello());
  CHECK(out[0].hello().held_size() == 1);
  CHECK(h.core.state() == SessionState::kHelloSent);
  h.Welcome();
  out = h.Out();
  REQUIRE(out.size() == 1);
  CHECK(out[0].credit().grant() == 1);
}

TEST_CASE("BurstOfNotRegisteredErrorsSaysHelloOnce", "[worker_core]") {
  Harness h(2);
  h.Ready();
  for (int i = 0; i < 5; ++i) h.Error(wire::NOT_REGISTERED, 10 + i);
  auto out = h.Out();
  CHECK(out.size() == 1);
  CHECK(Count(out, wire::Envelope::kHello) == 1);
  h.Welcome();
  CHECK(h.core.state() == SessionState::kReady);
  CHECK(Find(h.Out(), wire::Envelope::kCredit)->credit().grant() == 2);
}

TEST_CASE("StoreUnavailableResendsTheResultAfterOneInterval", "[worker_core]") {
  Harness h(2);
  h.Ready(1000, 3);
  h.Assign({MakeTask(1, 11), MakeTask(2, 22)});
  h.core.OnTaskFinished(Ok(1));
  h.core.OnTaskFinished(Ok(2));
  auto out = h.Out();
  REQUIRE(out.size() == 2);
  const uint64_t seq_of_1 = out[0].seq();
  h.Error(wire::STORE_UNAVAILABLE, seq_of_1);
  h.Advance(Millis(999));
  h.Heartbeat();
  CHECK(Count(h.Out(), wire::Envelope::kResult) == 0);
  h.Advance(Millis(1));
  out = h.Out();
  REQUIRE(Count(out, wire::Envelope::kResult) == 1);
  const auto* r = Find(out, wire::Envelope::kResult);
  CHECK(r->result().task_id() == 1);
  CHECK(r->result().credit() == 0);
  CHECK(h.core.unacked() == 2);
}

TEST_CASE("FirstSignalDrainsThenSaysGoodbye", "[worker_core]") {
  Harness h(2);
  h.Ready();
  h.Assign({MakeTask(1, 11)});
  h.Started();
  h.core.OnStopSignal();
  CHECK(h.core.draining());
  auto out = h.Out();
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].has_credit());
  CHECK(out[0].credit().pause());

  h.Assign({MakeTask(2, 22)});  // was already on the wire
  CHECK(h.Started().empty());
  out = h.Out();
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].has_release());
  CHECK(out[0].release().leases(0).task_id() == 2);

  h.core.OnTaskFinished(Ok(1));
  out = h.Out();
  REQUIRE(out.size() == 1);
  CHECK(out[0].result().credit() == 0);
  h.core.OnTick();
  CHECK_FALSE(h.core.done());  // waits for the ack
  h.Ack(1, 11);
  h.core.OnTick();
  CHECK(h.core.done());
  CHECK(h.core.exit_code() == 0);
  out = h.Out();
  REQUIRE(out.size() == 1);
  CHECK(out[0].has_goodbye());
}

TEST_CASE("SecondSignalKillsRunningTasksAndReleasesThem", "[worker_core]") {
  Harness h(2);
  h.Ready();
  h.Assign({MakeTask(1, 11, 60'000), MakeTask(2, 22, 60'000)});
  h.Started();
  h.core.OnStopSignal();
  h.Out();
  h.core.OnStopSignal();
  CHECK(h.core.done());
  CHECK(h.core.exit_code() == 0);
  CHECK(h.core.TakeKillAll());
  auto out = h.Out();
  REQUIRE(out.size() == 2);
  REQUIRE(out[0].has_release());
  CHECK(out[0].release().leases_size() == 2);
  CHECK(out[1].has_goodbye());
}

TEST_CASE("DrainGivesUpAfterTheTimeLimitsPlusGrace", "[worker_core]") {
  Harness h(1);
  h.Ready(1000, 1000);  // the broker stays "alive" throughout
  h.Assign({MakeTask(1, 11, 2000)});
  h.Started();
  h.core.OnStopSignal();
  h.Out();
  h.Advance(Millis(2000) + kDrainGrace - Millis(1));
  CHECK_FALSE(h.core.done());
  h.Advance(Millis(1));
  CHECK(h.core.done());
  CHECK(h.core.TakeKillAll());
  auto out = h.Out();
  CHECK(Find(out, wire::Envelope::kRelease));
  CHECK(Find(out, wire::Envelope::kGoodbye));
}

TEST_CASE("SignalWhileIdleStopsAtOnce", "[worker_core]") {
  Harness h(1);
  h.Ready();
  h.core.OnStopSignal();
  h.core.OnTick();
  CHECK(h.core.done());
  auto out = h.Out();
  REQUIRE(out.size() == 2);
  CHECK(out[0].credit().pause());
  CHECK(out[1].has_goodbye());
}

TEST_CASE("WelcomeWhileDrainingPausesInsteadOfGranting", "[worker_core]") {
  Harness h(2);
  h.Connect();
  h.Out();
  h.core.OnStopSignal();
  h.core.OnTaskFinished(Ok(5));  // unknown task: ignored
  h.Welcome();
  auto out = h.Out();
  REQUIRE(out.size() == 1);
  CHECK(out[0].credit().pause());
  CHECK(out[0].credit().grant() == 0);
}

TEST_CASE("UnexpectedBodyIsRefusedWithUnsupported", "[worker_core]") {
  Harness h(1);
  h.Ready();
  wire::Envelope e;
  e.set_seq(77);
  e.mutable_submit()->set_batch_id("b");
  h.core.OnMessage(e);
  CHECK(h.core.counters().refused_messages == 1);
  auto out = h.Out();
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].has_error());
  CHECK(out[0].seq() == 77);
  CHECK(out[0].error().code() == wire::UNSUPPORTED);
}

TEST_CASE("MalformedMessageIsCountedAndAnswered", "[worker_core]") {
  Harness h(1);
  h.Ready();
  h.core.OnBadMessage(5, DecodeError::kBadVersion);
  CHECK(h.core.counters().malformed_messages == 1);
  auto out = h.Out();
  REQUIRE(out.size() == 1);
  CHECK(out[0].error().code() == wire::BAD_VERSION);
}

TEST_CASE("OtherBrokerErrorsAreCountedNotAnswered", "[worker_core]") {
  Harness h(1);
  h.Ready();
  h.Error(wire::UNSUPPORTED, 3);
  CHECK(h.core.counters().refused_messages == 1);
  CHECK(h.Out().empty());
  CHECK(h.core.state() == SessionState::kReady);
}

TEST_CASE("PermissionDeniedHelloStopsTheWorkerWithExitFour", "[worker_core]") {
  Harness h(2);
  h.Connect();
  auto out = h.Out();
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].has_hello());
  h.Error(wire::PERMISSION_DENIED, out[0].seq());
  CHECK(h.core.done());
  CHECK(h.core.exit_code() == kWorkerExitRefused);
  CHECK(kWorkerExitRefused == 4);
  CHECK(h.core.TakeCloseSocket());
  // No second Hello, ever.
  h.clock.Advance(Millis(60'000));
  h.core.OnTick();
  CHECK_FALSE(h.core.TakeOpenSocket());
  CHECK(Count(h.Out(), wire::Envelope::kHello) == 0);
}

TEST_CASE("OtherRefusalsAtHelloAndLaterPermissionDeniedsDoNotStopTheWorker",
          "[worker_core]") {
  Harness h(2);
  h.Connect();
  auto out = h.Out();
  REQUIRE(out.size() == 1);
  // Transient or not about the Hello: the worker goes on (and, on silence,
  // reconnects and says Hello again).
  h.Error(wire::SHUTTING_DOWN, out[0].seq());
  h.Error(wire::PERMISSION_DENIED, out[0].seq() + 100);
  CHECK_FALSE(h.core.done());
  CHECK(h.core.state() == SessionState::kHelloSent);
  h.Welcome();
  h.Error(wire::PERMISSION_DENIED, out[0].seq());
  CHECK_FALSE(h.core.done());
  CHECK(h.core.state() == SessionState::kReady);
  CHECK(h.core.counters().refused_messages == 3);
}

}  // namespace
}  // namespace tq

namespace tq {
namespace {

TEST_CASE("TerminateTaskNamesTheRunningLeaseForTheLoopToKill",
          "[worker_core]") {
  Harness h(2);
  h.Ready();
  h.Assign({MakeTask(7, 70), MakeTask(8, 80)});
  h.Started();
  auto terminate = [&](uint64_t id, uint64_t token) {
    wire::Envelope e;
    e.mutable_terminate_task()->set_task_id(id);
    e.mutable_terminate_task()->set_token(token);
    e.mutable_terminate_task()->set_reason("cancelled by an operator");
    h.core.OnMessage(e);
  };
  terminate(7, 999);  // another lease of it: not this run
  terminate(9, 90);   // not running here
  CHECK_FALSE(h.core.HasPendingActions());
  terminate(7, 70);
  CHECK(h.core.HasPendingActions());
  std::vector<uint64_t> kill;
  h.core.TakeTasksToTerminate(&kill);
  CHECK(kill == std::vector<uint64_t>{7});
  CHECK(h.core.counters().tasks_terminated == 1);
  // The killed run ends as usual: its result goes out and frees the slot.
  TaskOutcome o = Ok(7);
  o.ok = false;
  o.error = "terminated by an operator";
  h.core.OnTaskFinished(o);
  auto out = h.Out();
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].has_result());
  CHECK_FALSE(out[0].result().ok());
  CHECK(out[0].result().credit() == 1);
  CHECK(h.core.running() == 1);
}

TEST_CASE("HelloSaysWhetherTheWorkerServesGeneric", "[worker_core]") {
  WorkerConfig config = Config(1);
  config.country = "IT";
  config.no_generic = true;
  FakeClock clock;
  WorkerCore core(config, clock);
  core.OnTick();
  REQUIRE(core.TakeOpenSocket());
  core.OnConnected();
  Envelopes out;
  core.TakeOutbox(&out);
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].has_hello());
  CHECK(out[0].hello().country() == "IT");
  CHECK(out[0].hello().no_generic());
}

}  // namespace
}  // namespace tq
