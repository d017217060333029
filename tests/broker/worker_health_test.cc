// Worker health in the broker core (#18), on the fake clock: per-worker
// accounting, the quarantine rule and its probes, retries on a different
// worker, and outcome counts.
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/broker/broker_harness.h"

namespace tq::testing {
namespace {

BrokerOptions HealthOptions(uint32_t after = 3, Millis probe = Millis(5'000)) {
  BrokerOptions o = TestOptions();
  o.default_max_attempts = 3;
  o.health.quarantine_after = after;
  o.health.quarantine_window = Millis(60'000);
  o.health.probe_backoff = probe;
  o.health.max_probe_backoff = probe * 4;
  return o;
}

// Decides each attempt: (worker id, url) -> ok.
using Verdict = std::function<bool(const std::string&, const std::string&)>;

struct Run {
  // task id -> worker ids whose attempts at it were assigned, in order
  std::map<uint64_t, std::vector<std::string>> attempts;
  std::map<std::string, int> assigned;  // per worker
};

// Workers answer every task at once, as `verdict` says; the clock moves on
// past retry back-offs. Stops when a turn assigns nothing and no retry is
// due soon, or after `max_turns`.
Run Drive(Harness& h, const std::map<std::string, std::string>& peers,
          const Verdict& verdict, int max_turns = 400,
          const std::map<std::string, std::string>& outcome = {}) {
  Run run;
  int idle = 0;
  for (int turn = 0; turn < max_turns && idle < 5; ++turn) {
    for (const auto& [peer, id] : peers) h.Heartbeat(peer);
    std::vector<Outgoing> out = h.Turn();
    bool any = false;
    for (const auto& [peer, id] : peers) {
      for (const wire::Task& t : Harness::Assigned(out, peer)) {
        any = true;
        run.attempts[t.task_id()].push_back(id);
        ++run.assigned[id];
        const bool ok = verdict(id, t.url());
        wire::Envelope e;
        auto* r = e.mutable_result();
        r->set_task_id(t.task_id());
        r->set_token(t.token());
        r->set_ok(ok);
        r->set_error(ok ? "" : "exited with status 1");
        r->set_credit(1);
        if (ok) {
          auto o = outcome.find(t.url());
          if (o != outcome.end()) r->set_outcome(o->second);
        }
        h.Send(peer, e, 5);
      }
    }
    idle = any ? 0 : idle + 1;
    h.clock().Advance(Millis(300));
  }
  return run;
}

std::map<std::string, wire::WorkerInfo> Workers(Harness& h) {
  wire::Envelope e;
  e.mutable_list_workers();
  h.Send("ctl", e, 9);
  std::map<std::string, wire::WorkerInfo> workers;
  for (const Outgoing& o : h.Turn()) {
    if (o.peer != "ctl" || !o.envelope.has_worker_list()) continue;
    for (const auto& w : o.envelope.worker_list().workers()) {
      workers[w.worker_id()] = w;
    }
  }
  return workers;
}

wire::BatchCounts Counts(Harness& h, const std::string& batch) {
  wire::Envelope e;
  e.mutable_batch_status_request()->set_batch_id(batch);
  h.Send("ctl", e, 10);
  for (const Outgoing& o : h.Turn()) {
    if (o.peer == "ctl" && o.envelope.has_batch_status()) {
      return o.envelope.batch_status().counts();
    }
  }
  FAIL("no batch status");
  return {};
}

// Lets `d` of fake time pass in steps, the workers heartbeating (and
// answering nothing); returns what was sent meanwhile.
std::vector<Outgoing> Pass(Harness& h, const std::vector<std::string>& peers,
                           Millis d) {
  std::vector<Outgoing> all;
  for (Millis left = d; left.count() > 0; left -= Millis(500)) {
    h.clock().Advance(std::min(left, Millis(500)));
    for (const std::string& p : peers) h.Heartbeat(p);
    for (Outgoing& o : h.Turn()) all.push_back(std::move(o));
  }
  return all;
}

void JoinAll(Harness& h, const std::map<std::string, std::string>& peers) {
  for (const auto& [peer, id] : peers) {
    h.Hello(peer, id, "", 1);
    h.Credit(peer, 1);
  }
}

}  // namespace

TEST_CASE("WorkerThatFailsWhatOthersCompleteIsQuarantined",
          "[broker][health]") {
  Harness h(HealthOptions(3));
  const std::map<std::string, std::string> peers = {
      {"pg1", "good1"}, {"pg2", "good2"}, {"pbad", "bad"}};
  JoinAll(h, peers);
  h.Submit("b1", Urls(60));
  Run run = Drive(h, peers, [](const std::string& w, const std::string&) {
    return w != "bad";
  });

  auto workers = Workers(h);
  CHECK(workers["bad"].state() == "quarantined");
  CHECK(workers["bad"].state_reason().find("failed attempts in a row") !=
        std::string::npos);
  CHECK(workers["bad"].last_failure() == "exited with status 1");
  CHECK(workers["good1"].state() == "active");
  CHECK(workers["good2"].state() == "active");
  // It failed a few in a row before the proof came, then nothing more
  // (bar the probes, which fail too).
  CHECK(workers["bad"].failed() >= 3);
  CHECK(workers["bad"].tasks_done() == 0);
  CHECK(run.assigned["bad"] < 12);

  // Every task done, none dead: each failure was retried elsewhere.
  const wire::BatchCounts c = Counts(h, "b1");
  CHECK(c.done() == 60);
  CHECK(c.dead() == 0);
  for (const TaskResult& r : h.Finished("b1")) {
    CHECK(r.worker != "bad");
    REQUIRE_FALSE(r.history.empty());
    CHECK(r.history.back().worker == r.worker);
    CHECK(r.history.back().ok);
  }
}

TEST_CASE("TaskThatFailsOnEveryWorkerQuarantinesNoOne", "[broker][health]") {
  Harness h(HealthOptions(2));
  const std::map<std::string, std::string> peers = {
      {"p1", "w1"}, {"p2", "w2"}, {"p3", "w3"}};
  JoinAll(h, peers);
  // Bad URLs among good ones, so successes elsewhere are plentiful.
  std::vector<std::string> urls = Urls(30, "good");
  for (const std::string& u : Urls(20, "bad")) urls.push_back(u);
  h.Submit("b1", urls);
  Run run = Drive(h, peers, [](const std::string&, const std::string& url) {
    return url.find("/bad") == std::string::npos;
  });

  for (const auto& [id, w] : Workers(h)) {
    CHECK(w.state() == "active");
  }
  const wire::BatchCounts c = Counts(h, "b1");
  CHECK(c.done() == 30);
  CHECK(c.dead() == 20);
  // Each dead task was tried once on each worker.
  for (const TaskResult& r : h.Finished("b1")) {
    if (r.state != "dead") continue;
    REQUIRE(r.history.size() == 3);
    std::set<std::string> distinct;
    for (const AttemptRecord& a : r.history) distinct.insert(a.worker);
    CHECK(distinct.size() == 3);
  }
}

TEST_CASE("RetryGoesToAWorkerThatHasNotFailedTheTask", "[broker][health]") {
  Harness h(HealthOptions(100));
  const std::map<std::string, std::string> peers = {{"pa", "a"}, {"pb", "b"}};
  JoinAll(h, peers);
  h.Submit("b1", Urls(10));
  // "a" fails everything it gets; "b" succeeds.
  Run run = Drive(h, peers, [](const std::string& w, const std::string&) {
    return w == "b";
  });
  for (const auto& [task, workers] : run.attempts) {
    // Never twice on "a".
    CHECK(std::count(workers.begin(), workers.end(), "a") <= 1);
    CHECK(workers.back() == "b");
  }
  CHECK(Counts(h, "b1").done() == 10);
}

TEST_CASE("QuarantinedWorkerGetsOneProbeAndIsReleasedWhenItSucceeds",
          "[broker][health]") {
  // A probe wait far beyond the first batch's run.
  Harness h(HealthOptions(3, Millis(60'000)));
  const std::map<std::string, std::string> peers = {{"pg", "good"},
                                                    {"pbad", "bad"}};
  JoinAll(h, peers);
  h.Submit("b1", Urls(20));
  Drive(h, peers,
        [](const std::string& w, const std::string&) { return w != "bad"; });
  REQUIRE(Workers(h)["bad"].state() == "quarantined");

  // Nothing for it until the probe is due, then exactly one task.
  h.Submit("b2", Urls(10, "more"));
  std::vector<Outgoing> out = h.Turn();
  CHECK(Harness::Assigned(out, "pbad").empty());
  out = Pass(h, {"pg", "pbad"}, Millis(61'000));
  std::vector<wire::Task> probe = Harness::Assigned(out, "pbad");
  REQUIRE(probe.size() == 1);
  CHECK(Workers(h)["bad"].state_reason().find("probe task") !=
        std::string::npos);
  h.Result("pbad", probe[0], true);
  h.Turn();
  auto workers = Workers(h);
  CHECK(workers["bad"].state() == "active");
  CHECK(workers["bad"].tasks_done() == 1);
  CHECK(workers["bad"].consecutive_failures() == 0);
}

TEST_CASE("FailedProbeDoublesTheWaitForTheNext", "[broker][health]") {
  Harness h(HealthOptions(3, Millis(60'000)));
  const std::map<std::string, std::string> peers = {{"pg", "good"},
                                                    {"pbad", "bad"}};
  JoinAll(h, peers);
  h.Submit("b1", Urls(20));
  Drive(h, peers,
        [](const std::string& w, const std::string&) { return w != "bad"; });
  REQUIRE(Workers(h)["bad"].state() == "quarantined");
  h.Submit("b2", Urls(40, "more"));

  std::vector<wire::Task> probe =
      Harness::Assigned(Pass(h, {"pg", "pbad"}, Millis(61'000)), "pbad");
  REQUIRE(probe.size() == 1);
  h.Result("pbad", probe[0], false);
  h.Turn();
  // 60 s was the first wait; the next is 120 s.
  CHECK(Harness::Assigned(Pass(h, {"pg", "pbad"}, Millis(115'000)), "pbad")
            .empty());
  CHECK(Harness::Assigned(Pass(h, {"pg", "pbad"}, Millis(6'000)), "pbad")
            .size() == 1);
  CHECK(Workers(h)["bad"].state() == "quarantined");
}

TEST_CASE("ReleaseWorkerEndsAQuarantineAtOnce", "[broker][health]") {
  Harness h(HealthOptions(3));
  const std::map<std::string, std::string> peers = {{"pg", "good"},
                                                    {"pbad", "bad"}};
  JoinAll(h, peers);
  h.Submit("b1", Urls(20));
  Drive(h, peers,
        [](const std::string& w, const std::string&) { return w != "bad"; });
  REQUIRE(Workers(h)["bad"].state() == "quarantined");

  wire::Envelope release;
  release.mutable_release_worker()->set_worker_id("bad");
  h.Send("ctl", release, 11);
  std::vector<Outgoing> out = h.Turn();
  const wire::Envelope* ack =
      Harness::Find(out, "ctl", wire::Envelope::kAdminAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->admin_ack().affected() == 1);
  CHECK(Workers(h)["bad"].state() == "active");

  // Releasing a worker that is not quarantined is NOT_FOUND.
  h.Send("ctl", release, 12);
  out = h.Turn();
  const wire::Envelope* err = Harness::Find(out, "ctl", wire::Envelope::kError);
  REQUIRE(err != nullptr);
  INFO(err->error().message());
  CHECK(err->error().code() == wire::NOT_FOUND);

  // It takes work again at once.
  h.Submit("b2", Urls(5, "more"));
  CHECK(Harness::Assigned(h.Turn(), "pbad").size() == 1);
}

TEST_CASE("QuarantineGivesHeldTasksBackToTheHeadOfTheirQueue",
          "[broker][health]") {
  Harness h(HealthOptions(2));
  // The bad worker has 4 slots: it holds tasks when the proof arrives.
  h.Hello("pbad", "bad", "", 4);
  h.Credit("pbad", 4);
  h.Hello("pg", "good", "", 1);
  h.Credit("pg", 1);
  h.Submit("b1", Urls(12));
  std::vector<Outgoing> out = h.Turn();
  std::vector<wire::Task> bad = Harness::Assigned(out, "pbad");
  std::vector<wire::Task> good = Harness::Assigned(out, "pg");
  REQUIRE(bad.size() == 4);
  REQUIRE(good.size() == 1);
  // Two failures in a row, then its first failed task succeeds on "good".
  h.Result("pbad", bad[0], false);
  h.Result("pbad", bad[1], false);
  h.Result("pg", good[0], true);
  h.clock().Advance(Millis(600));  // past the retry back-off
  out = h.Turn();
  std::vector<wire::Task> retry = Harness::Assigned(out, "pg");
  REQUIRE(retry.size() == 1);
  CHECK(retry[0].task_id() == bad[0].task_id());
  h.Result("pg", retry[0], true);
  // What it held (bad[2], bad[3]) went back, ahead of newer work, and
  // its late failures of them are refused without costing an attempt.
  h.Result("pbad", bad[2], false);
  out = h.Turn();
  REQUIRE(Workers(h)["bad"].state() == "quarantined");
  const wire::Envelope* ack =
      Harness::Find(out, "pbad", wire::Envelope::kResultAck);
  REQUIRE(ack != nullptr);
  CHECK_FALSE(ack->result_ack().accepted());
  std::vector<uint64_t> next;
  for (int turn = 0; turn < 20 && next.size() < 3; ++turn) {
    std::vector<wire::Task> got = Harness::Assigned(out, "pg");
    for (const wire::Task& t : got) {
      next.push_back(t.task_id());
      h.Result("pg", t, true);
    }
    if (got.empty()) h.clock().Advance(Millis(300));
    h.Heartbeat("pbad");
    h.Heartbeat("pg");
    out = h.Turn();
  }
  INFO("bad " << bad[0].task_id() << " " << bad[1].task_id() << " "
              << bad[2].task_id() << " " << bad[3].task_id());
  for (uint64_t id : next) UNSCOPED_INFO("next " << id);
  CHECK(std::find(next.begin(), next.end(), bad[2].task_id()) != next.end());
  CHECK(std::find(next.begin(), next.end(), bad[3].task_id()) != next.end());
}

TEST_CASE("WorkerAccountingIsDurableAndCountsOnlySuccessesAsDone",
          "[broker][health]") {
  Harness h(HealthOptions(100));
  h.Hello("p1", "w1", "", 1);
  h.Credit("p1", 1);
  h.Submit("b1", Urls(3), "generic", 0, /*max_attempts=*/1);
  for (int i = 0; i < 3; ++i) {
    std::vector<wire::Task> got = Harness::Assigned(h.Turn(), "p1");
    REQUIRE(got.size() == 1);
    h.Result("p1", got[0], i == 0);  // one success, two failures
  }
  h.Turn();
  auto before = Workers(h)["w1"];
  CHECK(before.tasks_done() == 1);
  CHECK(before.succeeded() == 1);
  CHECK(before.failed() == 2);
  CHECK(before.retried() == 0);  // max_attempts 1: no retry
  CHECK(before.consecutive_failures() == 2);
  CHECK(before.first_seen_ms() > 0);

  h.Restart();
  h.Hello("p1", "w1", "", 1);
  auto after = Workers(h)["w1"];
  CHECK(after.succeeded() == 1);
  CHECK(after.failed() == 2);
  CHECK(after.consecutive_failures() == 2);
  CHECK(after.last_failure() == "exited with status 1");
  CHECK(after.first_seen_ms() == before.first_seen_ms());
}

TEST_CASE("DoneTasksAreCountedByOutcomeAcrossARestart", "[broker][health]") {
  Harness h(HealthOptions(100));
  const std::map<std::string, std::string> peers = {{"p1", "w1"}};
  JoinAll(h, peers);
  std::vector<std::string> urls = Urls(4);
  h.Submit("b1", urls);
  const std::map<std::string, std::string> outcome = {
      {urls[0], "unreachable"}, {urls[1], "http_error"}, {urls[2], "timeout"}};
  Drive(
      h, peers, [](const std::string&, const std::string&) { return true; }, 50,
      outcome);
  auto check = [&] {
    const wire::BatchCounts c = Counts(h, "b1");
    CHECK(c.done() == 4);
    CHECK(c.ok() == 1);  // urls[3]: the worker said nothing, so "ok"
    CHECK(c.unreachable() == 1);
    CHECK(c.http_error() == 1);
    CHECK(c.timeout() == 1);
  };
  check();
  std::map<std::string, std::string> by_url;
  for (const TaskResult& r : h.Finished("b1")) by_url[r.url] = r.outcome;
  CHECK(by_url[urls[0]] == "unreachable");
  CHECK(by_url[urls[3]] == "ok");
  h.Restart();
  check();
}

}  // namespace tq::testing
