// The broker core driven directly: fake clock, no sockets. The store is the
// real SQLite one on a temp file, wrapped so tests can make commits fail.
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>

#include "tests/broker/broker_harness.h"

namespace tq {
namespace {

using testing::Harness;
using testing::TempDir;
using testing::TestOptions;
using testing::Urls;

TEST_CASE("SubmitIsAcknowledgedOnlyAfterCommit", "[broker]") {
  Harness h;
  h.Submit("b1", Urls(3));
  // Flush gives what may leave before the commit: no SubmitAck among it.
  std::vector<Outgoing> early = h.broker().Flush();
  CHECK(Harness::Find(early, "client", wire::Envelope::kSubmitAck) == nullptr);
  std::vector<Outgoing> late = h.broker().Commit();
  const wire::Envelope* ack =
      Harness::Find(late, "client", wire::Envelope::kSubmitAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->seq() == 77);
  CHECK(ack->submit_ack().accepted() == 3);
  CHECK(h.store().commit_calls() >= 1);
}

TEST_CASE("FailedCommitSendsNoAcknowledgementAndRefusesSubmissions",
          "[broker]") {
  Harness h;
  h.store().FailCommits(true, "database or disk is full");
  h.Submit("b1", Urls(2));
  auto out = h.Turn();
  CHECK(Harness::Find(out, "client", wire::Envelope::kSubmitAck) == nullptr);
  const wire::Envelope* err =
      Harness::Find(out, "client", wire::Envelope::kError);
  REQUIRE(err != nullptr);
  CHECK(err->error().code() == wire::STORE_UNAVAILABLE);
  CHECK(err->error().retryable());
  CHECK(err->error().message().find("disk is full") != std::string::npos);
  CHECK_FALSE(h.broker().store_ok());
  CHECK(h.broker().pending_tasks() == 0);  // nothing kept in memory either

  // While the store refuses writes, a new submission is refused at once.
  h.Submit("b2", Urls(1));
  out = h.Turn();
  err = Harness::Find(out, "client", wire::Envelope::kError);
  REQUIRE(err != nullptr);
  CHECK(err->error().code() == wire::STORE_UNAVAILABLE);

  // Once the store takes writes again (probe), submissions are accepted.
  h.store().FailCommits(false);
  h.clock().Advance(Millis(1500));
  h.Turn();
  CHECK(h.broker().store_ok());
  h.Submit("b3", Urls(1));
  out = h.Turn();
  const wire::Envelope* ack =
      Harness::Find(out, "client", wire::Envelope::kSubmitAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->submit_ack().accepted() == 1);
}

TEST_CASE("ResultIsAcknowledgedOnlyAfterItsCommit", "[broker]") {
  Harness h;
  h.Submit("b1", Urls(1));
  auto tasks = h.Join("w1", "worker-1", "", 1);
  REQUIRE(tasks.size() == 1);
  h.store().FailCommits(true);
  h.Result("w1", tasks[0], true);
  auto out = h.Turn();
  CHECK(Harness::Find(out, "w1", wire::Envelope::kResultAck) == nullptr);
  const wire::Envelope* err = Harness::Find(out, "w1", wire::Envelope::kError);
  REQUIRE(err != nullptr);
  CHECK(err->error().code() == wire::STORE_UNAVAILABLE);
  CHECK(h.Finished("b1").empty());

  // The worker resends after the store recovers; the same lease still holds.
  h.store().FailCommits(false);
  h.clock().Advance(Millis(1500));
  h.Heartbeat("w1");
  h.Turn();
  h.Result("w1", tasks[0], true);
  out = h.Turn();
  const wire::Envelope* ack =
      Harness::Find(out, "w1", wire::Envelope::kResultAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->result_ack().accepted());
  REQUIRE(h.Finished("b1").size() == 1);
}

TEST_CASE("DispatchIsHighestPriorityThenOldestFirst", "[broker]") {
  Harness h;
  h.Submit("b1", {"http://a.example/1", "http://a.example/2"}, "generic", 0);
  h.Submit("b2", {"http://a.example/urgent"}, "generic", 5);
  h.Submit("b3", {"http://a.example/3"}, "generic", 0);
  h.Turn();
  h.Hello("w1", "worker-1", "", 1);
  std::vector<std::string> order;
  h.Credit("w1", 1);
  for (int i = 0; i < 4; ++i) {
    auto tasks = Harness::Assigned(h.Turn(), "w1");
    REQUIRE(tasks.size() == 1);
    order.push_back(tasks[0].url());
    h.Result("w1", tasks[0], true);
  }
  CHECK(order == std::vector<std::string>{
                     "http://a.example/urgent", "http://a.example/1",
                     "http://a.example/2", "http://a.example/3"});
}

TEST_CASE("RequeuedTaskRunsBeforeNewerWorkAndCancelledTasksAreSkipped",
          "[broker]") {
  Harness h;
  h.Submit("a", Urls(2, "a"));
  h.Submit("b", Urls(2, "b"));
  h.Submit("c", Urls(2, "c"));
  auto first = h.Join("w1", "worker-1", "", 1);
  REQUIRE(first.size() == 1);
  CHECK(first[0].url() == "http://example.com/a0");
  h.broker().OnDisconnect("w1");  // a0 comes back, older than all the rest
  wire::Envelope cancel;
  cancel.mutable_cancel_batch()->set_batch_id("b");  // the middle of the queue
  h.Send("client", cancel, 4);
  h.Turn();

  auto drain = [&h](const std::string& peer) {
    std::vector<std::string> order;
    h.Hello(peer, "worker-" + peer, "", 1);
    h.Credit(peer, 1);
    for (int i = 0; i < 10; ++i) {
      auto tasks = Harness::Assigned(h.Turn(), peer);
      if (tasks.empty()) break;
      REQUIRE(tasks.size() == 1);
      order.push_back(tasks[0].url());
      h.Result(peer, tasks[0], true);
    }
    return order;
  };
  SECTION("now") {
    CHECK(drain("w2") == std::vector<std::string>{
                             "http://example.com/a0", "http://example.com/a1",
                             "http://example.com/c0", "http://example.com/c1"});
  }
  SECTION("after a restart") {
    h.Restart();
    CHECK(drain("w2") == std::vector<std::string>{
                             "http://example.com/a0", "http://example.com/a1",
                             "http://example.com/c0", "http://example.com/c1"});
  }
  CHECK(h.broker().pending_tasks() == 0);
}

TEST_CASE("WorkerTakesItsCountryQueueBeforeGeneric", "[broker]") {
  Harness h;
  h.Submit("g", Urls(2, "g"), "generic");
  h.Submit("it", Urls(2, "it"), "IT");
  h.Hello("w1", "worker-it", "IT", 4);
  auto out = h.Turn();
  const wire::Envelope* welcome =
      Harness::Find(out, "w1", wire::Envelope::kWelcome);
  REQUIRE(welcome != nullptr);
  CHECK(std::vector<std::string>(welcome->welcome().queues().begin(),
                                 welcome->welcome().queues().end()) ==
        std::vector<std::string>{"IT", "generic"});
  h.Credit("w1", 4);
  auto tasks = Harness::Assigned(h.Turn(), "w1");
  REQUIRE(tasks.size() == 4);
  CHECK(tasks[0].queue() == "IT");
  CHECK(tasks[1].queue() == "IT");
  CHECK(tasks[2].queue() == "generic");
  CHECK(tasks[3].queue() == "generic");
}

TEST_CASE("CountryTaskNeverReachesAWorkerOfAnotherCountry", "[broker]") {
  Harness h;
  h.Submit("b", Urls(5), "IT");
  h.Hello("w-de", "worker-de", "DE", 4);
  h.Hello("w-none", "worker-none", "", 4);
  h.Credit("w-de", 4);
  h.Credit("w-none", 4);
  auto out = h.Turn();
  CHECK(Harness::Assigned(out, "w-de").empty());
  CHECK(Harness::Assigned(out, "w-none").empty());
  h.Hello("w-it", "worker-it", "IT", 2);
  h.Credit("w-it", 2);
  out = h.Turn();
  CHECK(Harness::Assigned(out, "w-it").size() == 2);
  CHECK(Harness::Assigned(out, "w-de").empty());

  // generic work reaches anyone.
  h.Submit("g", Urls(2, "g"), "generic");
  out = h.Turn();
  CHECK(Harness::Assigned(out, "w-de").size() +
            Harness::Assigned(out, "w-none").size() ==
        2);
}

TEST_CASE("CreditIsNeverExceeded", "[broker]") {
  Harness h;
  h.Submit("b", Urls(20));
  h.Hello("w1", "worker-1", "", 2);
  // A worker that grants more than its slots is clamped to its slots.
  h.Credit("w1", 5);
  auto tasks = Harness::Assigned(h.Turn(), "w1");
  CHECK(tasks.size() == 2);
  h.Credit("w1", 1);  // no free slot in the broker's view: nothing more
  CHECK(Harness::Assigned(h.Turn(), "w1").empty());
  h.Result("w1", tasks[0], true, /*credit=*/1);
  auto more = Harness::Assigned(h.Turn(), "w1");
  CHECK(more.size() == 1);
  // Without credit, a finished task brings no new one.
  h.Result("w1", tasks[1], true, /*credit=*/0);
  CHECK(Harness::Assigned(h.Turn(), "w1").empty());
}

TEST_CASE("SlowWorkerDoesNotHoardTasks", "[broker]") {
  Harness h;
  h.Submit("b", Urls(10));
  h.Hello("slow", "slow", "", 1);
  h.Hello("fast", "fast", "", 1);
  h.Credit("slow", 1);
  h.Credit("fast", 1);
  auto out = h.Turn();
  REQUIRE(Harness::Assigned(out, "slow").size() == 1);
  auto fast_task = Harness::Assigned(out, "fast");
  REQUIRE(fast_task.size() == 1);
  int fast_done = 0;
  for (int i = 0; i < 9 && !fast_task.empty(); ++i) {
    h.Result("fast", fast_task[0], true);
    ++fast_done;
    out = h.Turn();
    CHECK(Harness::Assigned(out, "slow").empty());
    fast_task = Harness::Assigned(out, "fast");
  }
  CHECK(fast_done ==
        9);  // the fast worker took everything the slow one did not hold
}

TEST_CASE("SilentWorkerIsDeclaredLostAndItsTasksRequeued", "[broker]") {
  Harness h;
  h.Submit("b", Urls(2));
  h.Hello("w1", "worker-1", "", 1);
  h.Hello("w2", "worker-2", "", 1);
  h.Credit("w1", 1);
  // w1 proves itself with one result (a lease lost by a session that never
  // finished anything costs no attempt: UnprovenLossesDoNotBurnAttempts).
  auto t0 = Harness::Assigned(h.Turn(), "w1");
  REQUIRE(t0.size() == 1);
  h.Result("w1", t0[0], true);
  auto t1 = Harness::Assigned(h.Turn(), "w1");
  REQUIRE(t1.size() == 1);
  // w2 stays alive with heartbeats, w1 goes silent.
  for (int i = 0; i < 2; ++i) {
    h.clock().Advance(Millis(1000));
    h.Heartbeat("w2");
    h.Turn();
    CHECK(h.broker().worker_count() == 2);
  }
  h.clock().Advance(Millis(1000));
  h.Heartbeat("w2");
  h.Credit("w2", 1);
  auto out = h.Turn();
  CHECK(h.broker().worker_count() == 1);
  auto t2 = Harness::Assigned(out, "w2");
  REQUIRE(t2.size() == 1);
  CHECK(t2[0].task_id() == t1[0].task_id());
  CHECK(t2[0].attempt() == 2);
  CHECK(t2[0].token() != t1[0].token());
}

TEST_CASE("BrokerSendsHeartbeatsToIdleWorkers", "[broker]") {
  Harness h;
  h.Hello("w1", "worker-1", "", 1);
  h.Turn();
  h.clock().Advance(Millis(1000));
  auto out = h.Turn();
  CHECK(Harness::Find(out, "w1", wire::Envelope::kHeartbeat) != nullptr);
}

TEST_CASE("DisconnectRequeuesAtOnce", "[broker]") {
  Harness h;
  h.Submit("b", Urls(1));
  auto t1 = h.Join("w1", "worker-1", "", 1);
  REQUIRE(t1.size() == 1);
  h.Hello("w2", "worker-2", "", 1);
  h.Credit("w2", 1);
  h.broker().OnDisconnect("w1");
  auto t2 = Harness::Assigned(h.Turn(), "w2");
  REQUIRE(t2.size() == 1);
  CHECK(t2[0].task_id() == t1[0].task_id());
}

TEST_CASE("ExpiredLeaseRequeuesTask", "[broker]") {
  Harness h;
  h.Submit("b", Urls(1));
  auto t1 = h.Join("w1", "worker-1", "", 1);
  REQUIRE(t1.size() == 1);
  h.Hello("w2", "worker-2", "", 1);
  h.Credit("w2", 1);
  // w1 keeps heartbeating but never finishes: time limit 10 s + grace 2 s.
  for (int i = 0; i < 11; ++i) {
    h.clock().Advance(Millis(1000));
    h.Heartbeat("w1");
    h.Heartbeat("w2");
    CHECK(Harness::Assigned(h.Turn(), "w2").empty());
  }
  h.clock().Advance(Millis(1001));
  h.Heartbeat("w1");
  h.Heartbeat("w2");
  auto t2 = Harness::Assigned(h.Turn(), "w2");
  REQUIRE(t2.size() == 1);
  CHECK(t2[0].task_id() == t1[0].task_id());
}

TEST_CASE("LateResultFromOldLeaseIsRejected", "[broker]") {
  Harness h;
  h.Submit("b", Urls(1));
  auto t1 = h.Join("w1", "worker-1", "", 1);
  REQUIRE(t1.size() == 1);
  h.broker().OnDisconnect("w1");  // w1 "lost"; the task goes to w2
  auto t2 = h.Join("w2", "worker-2", "", 1);
  REQUIRE(t2.size() == 1);
  h.Result("w2", t2[0], true, 1, "second");
  h.Turn();
  // The old lease's result arrives late (w1 came back under a new session).
  h.Hello("w1b", "worker-1", "", 1);
  h.Result("w1b", t1[0], true, 1, "first");
  auto out = h.Turn();
  const wire::Envelope* ack =
      Harness::Find(out, "w1b", wire::Envelope::kResultAck);
  REQUIRE(ack != nullptr);
  CHECK_FALSE(ack->result_ack().accepted());
  auto finished = h.Finished("b");
  REQUIRE(finished.size() == 1);
  CHECK(finished[0].output == "second");
  CHECK(finished[0].worker == "worker-2");
}

TEST_CASE("LateResultBeforeReleaseIsAcceptedOnce", "[broker]") {
  // A worker declared lost whose result arrives before anyone else took the
  // task: the work is done, keep it, and do not run it again.
  Harness h;
  h.Submit("b", Urls(1));
  auto t1 = h.Join("w1", "worker-1", "", 1);
  REQUIRE(t1.size() == 1);
  h.broker().OnDisconnect("w1");
  h.Turn();
  h.Hello("w1", "worker-1", "", 1);
  h.Result("w1", t1[0], true);
  auto out = h.Turn();
  const wire::Envelope* ack =
      Harness::Find(out, "w1", wire::Envelope::kResultAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->result_ack().accepted());
  CHECK(h.Finished("b").size() == 1);
  CHECK(h.broker().pending_tasks() == 0);
}

TEST_CASE("FailedAttemptsBackOffThenEndDeadWithLastError", "[broker]") {
  Harness h;
  h.Submit("b", Urls(1), "generic", 0, /*max_attempts=*/2);
  auto t = h.Join("w1", "worker-1", "", 1);
  REQUIRE(t.size() == 1);
  h.Result("w1", t[0], false);
  CHECK(Harness::Assigned(h.Turn(), "w1").empty());  // backing off
  h.clock().Advance(Millis(499));
  h.Heartbeat("w1");
  CHECK(Harness::Assigned(h.Turn(), "w1").empty());
  h.clock().Advance(Millis(2));
  h.Heartbeat("w1");
  t = Harness::Assigned(h.Turn(), "w1");
  REQUIRE(t.size() == 1);
  CHECK(t[0].attempt() == 2);
  h.Result("w1", t[0], false);
  h.Turn();
  auto finished = h.Finished("b");
  REQUIRE(finished.size() == 1);
  CHECK(finished[0].state == "dead");
  CHECK(finished[0].attempts == 2);
  CHECK(finished[0].error == "exited with status 1");
}

TEST_CASE("LostWorkerAttemptsCountTowardsDead", "[broker]") {
  Harness h;
  h.Submit("b", Urls(2), "generic", 0, /*max_attempts=*/1);
  h.Hello("w1", "worker-1", "", 1);
  h.Credit("w1", 1);
  auto first = Harness::Assigned(h.Turn(), "w1");
  REQUIRE(first.size() == 1);
  h.Result("w1", first[0], true);  // a worker that has delivered
  REQUIRE(Harness::Assigned(h.Turn(), "w1").size() == 1);
  h.broker().OnDisconnect("w1");
  h.Turn();
  auto finished = h.Finished("b");
  REQUIRE(finished.size() == 2);
  CHECK(finished[1].state == "dead");
  CHECK(finished[1].error.find("worker-1 lost") != std::string::npos);
}

TEST_CASE("ReconnectWithSameIdReplacesSessionAndReclaimsHeldTasks",
          "[broker]") {
  Harness h;
  h.Submit("b", Urls(2));
  auto held = h.Join("old", "worker-1", "", 2);
  REQUIRE(held.size() == 2);
  // Same identity, new connection, still running the first task only.
  h.Hello("new", "worker-1", "", 2, {{held[0].task_id(), held[0].token()}});
  h.Hello("other", "worker-2", "", 1);
  h.Credit("other", 1);
  auto out = h.Turn();
  CHECK(h.broker().worker_count() == 2);
  auto other = Harness::Assigned(out, "other");
  REQUIRE(other.size() == 1);  // the task not held any more went back
  CHECK(other[0].task_id() == held[1].task_id());
  // The reclaimed lease is still good.
  h.Result("new", held[0], true);
  out = h.Turn();
  const wire::Envelope* ack =
      Harness::Find(out, "new", wire::Envelope::kResultAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->result_ack().accepted());
  // Messages from the replaced connection are no longer a session.
  h.Heartbeat("old");
  out = h.Turn();
  const wire::Envelope* err = Harness::Find(out, "old", wire::Envelope::kError);
  REQUIRE(err != nullptr);
  CHECK(err->error().code() == wire::NOT_REGISTERED);
}

TEST_CASE("ReleasedTaskIsRequeuedWithoutCountingAnAttempt", "[broker]") {
  Harness h;
  h.Submit("b", Urls(1), "generic", 0, /*max_attempts=*/1);
  auto t = h.Join("w1", "worker-1", "", 1);
  REQUIRE(t.size() == 1);
  wire::Envelope pause;
  pause.mutable_credit()->set_pause(true);
  h.Send("w1", pause);
  wire::Envelope rel;
  auto* l = rel.mutable_release()->add_leases();
  l->set_task_id(t[0].task_id());
  l->set_token(t[0].token());
  h.Send("w1", rel);
  CHECK(Harness::Assigned(h.Turn(), "w1").empty());  // draining: no more
  auto t2 = h.Join("w2", "worker-2", "", 1);
  REQUIRE(t2.size() == 1);
  CHECK(t2[0].attempt() == 1);
}

TEST_CASE("ResubmittingABatchIdDoesNotDuplicate", "[broker]") {
  Harness h;
  h.Submit("b", Urls(3));
  h.Turn();
  h.Submit("b", Urls(3));
  auto out = h.Turn();
  const wire::Envelope* ack =
      Harness::Find(out, "client", wire::Envelope::kSubmitAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->submit_ack().accepted() == 0);
  CHECK(ack->submit_ack().duplicates() == 3);
  CHECK(h.broker().pending_tasks() == 3);
}

TEST_CASE("InvalidQueueAndUrlAreRefusedPerItem", "[broker]") {
  Harness h;
  wire::Envelope e;
  auto* s = e.mutable_submit();
  s->set_batch_id("b");
  auto add = [&](uint32_t i, std::string url, std::string queue) {
    auto* item = s->add_items();
    item->set_index(i);
    item->set_url(url);
    item->set_queue(queue);
  };
  add(0, "http://ok.example/", "generic");
  add(1, "ftp://bad.example/", "generic");
  add(2, "http://ok.example/", "it");
  add(3, "http://ok.example/", "XX");
  h.Send("client", e, 3);
  auto out = h.Turn();
  const wire::Envelope* ack =
      Harness::Find(out, "client", wire::Envelope::kSubmitAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->submit_ack().accepted() == 1);
  REQUIRE(ack->submit_ack().errors_size() == 3);
  CHECK(ack->submit_ack().errors(0).index() == 1);
  CHECK(ack->submit_ack().errors(0).reason().find("ftp") != std::string::npos);
  CHECK(ack->submit_ack().errors(1).reason().find("upper case") !=
        std::string::npos);
  CHECK(ack->submit_ack().errors(2).reason().find("ISO 3166") !=
        std::string::npos);
}

TEST_CASE("RestartServesQueuedAndRedeliversLeasedTasks", "[broker]") {
  Harness h;
  h.Submit("b", Urls(3));
  auto leased = h.Join("w1", "worker-1", "", 1);
  REQUIRE(leased.size() == 1);
  h.Restart();
  CHECK(h.broker().pending_tasks() == 3);
  auto t = h.Join("w2", "worker-2", "", 3);
  CHECK(t.size() == 2);  // the leased one waits for its worker to reclaim it
  // Nobody reclaims it within the window: it is delivered again.
  for (int i = 0; i < 5; ++i) {
    h.clock().Advance(Millis(1000));
    h.Heartbeat("w2");
    for (const auto& task : Harness::Assigned(h.Turn(), "w2"))
      t.push_back(task);
  }
  REQUIRE(t.size() == 3);
  CHECK((t[2].task_id() == leased[0].task_id()));
  CHECK(t[2].attempt() == 1);  // the interrupted attempt did not count
}

TEST_CASE("WorkerReclaimsItsLeaseAfterBrokerRestart", "[broker]") {
  Harness h;
  h.Submit("b", Urls(1));
  auto t = h.Join("w1", "worker-1", "", 1);
  REQUIRE(t.size() == 1);
  h.Restart();
  h.Heartbeat("w1");
  auto out = h.Turn();
  const wire::Envelope* err = Harness::Find(out, "w1", wire::Envelope::kError);
  REQUIRE(err != nullptr);
  CHECK(err->error().code() == wire::NOT_REGISTERED);
  h.Hello("w1", "worker-1", "", 1, {{t[0].task_id(), t[0].token()}});
  h.Result("w1", t[0], true);
  out = h.Turn();
  const wire::Envelope* ack =
      Harness::Find(out, "w1", wire::Envelope::kResultAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->result_ack().accepted());
  CHECK(h.Finished("b").size() == 1);
}

TEST_CASE("FetchResultsWaitsForTheNextResult", "[broker]") {
  Harness h;
  h.Submit("b", Urls(2));
  h.Turn();
  wire::Envelope f;
  f.mutable_fetch_results()->set_batch_id("b");
  f.mutable_fetch_results()->set_limit(10);
  f.mutable_fetch_results()->set_wait_ms(5000);
  h.Send("client", f, 9);
  CHECK(Harness::Find(h.Turn(), "client", wire::Envelope::kResults) == nullptr);
  auto t = h.Join("w1", "worker-1", "", 1);
  REQUIRE(t.size() == 1);
  h.Result("w1", t[0], true, 0, "hello");
  auto out = h.Turn();
  const wire::Envelope* r =
      Harness::Find(out, "client", wire::Envelope::kResults);
  REQUIRE(r != nullptr);
  CHECK(r->seq() == 9);
  REQUIRE(r->results().tasks_size() == 1);
  CHECK(r->results().tasks(0).output() == "hello");
  CHECK(r->results().counts().done() == 1);
  CHECK(r->results().counts().total() == 2);
  // Parked fetches that see nothing are answered, empty, at their deadline.
  f.mutable_fetch_results()->set_after(r->results().cursor());
  h.Send("client", f, 10);
  CHECK(Harness::Find(h.Turn(), "client", wire::Envelope::kResults) == nullptr);
  h.clock().Advance(Millis(5000));
  r = Harness::Find(h.Turn(), "client", wire::Envelope::kResults);
  REQUIRE(r != nullptr);
  CHECK(r->results().tasks_size() == 0);
}

TEST_CASE("CancelPurgeAndRetryDead", "[broker]") {
  Harness h;
  h.Submit("b", Urls(3));
  h.Submit("c", Urls(2, "c"), "FR", 0, 1);
  h.Turn();
  wire::Envelope cancel;
  cancel.mutable_cancel_batch()->set_batch_id("b");
  h.Send("client", cancel, 4);
  auto out = h.Turn();
  const wire::Envelope* ack =
      Harness::Find(out, "client", wire::Envelope::kAdminAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->admin_ack().affected() == 3);
  CHECK(h.Finished("b").size() == 3);
  CHECK(h.Finished("b")[0].state == "cancelled");

  // Make c's tasks dead, then retry them.
  auto t = h.Join("w", "worker-fr", "FR", 2);
  REQUIRE(t.size() == 2);
  h.Result("w", t[0], false, 0);
  h.Result("w", t[1], false, 0);
  h.Turn();
  REQUIRE(h.Finished("c").size() == 2);
  wire::Envelope retry;
  retry.mutable_retry_dead()->set_queue("FR");
  h.Send("client", retry, 5);
  out = h.Turn();
  ack = Harness::Find(out, "client", wire::Envelope::kAdminAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->admin_ack().affected() == 2);
  CHECK(h.Finished("c").empty());
  CHECK(h.broker().pending_tasks() == 2);

  wire::Envelope purge;
  purge.mutable_purge_queue()->set_queue("FR");
  h.Send("client", purge, 6);
  out = h.Turn();
  ack = Harness::Find(out, "client", wire::Envelope::kAdminAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->admin_ack().affected() == 2);
  CHECK(h.broker().pending_tasks() == 0);
}

TEST_CASE("WorkerMessageBeforeHelloGetsNotRegistered", "[broker]") {
  Harness h;
  h.Credit("stranger", 1);
  auto out = h.Turn();
  const wire::Envelope* err =
      Harness::Find(out, "stranger", wire::Envelope::kError);
  REQUIRE(err != nullptr);
  CHECK(err->error().code() == wire::NOT_REGISTERED);
}

TEST_CASE("BadMessagesAreCountedAnsweredAndServiceGoesOn", "[broker]") {
  Harness h;
  h.broker().OnBadMessage("evil", DecodeError::kMalformed);
  h.broker().OnBadMessage("evil", DecodeError::kBadVersion);
  wire::Envelope odd;
  odd.mutable_welcome();  // a broker-to-worker message sent to the broker
  h.Send("evil", odd);
  auto out = h.Turn();
  CHECK(h.broker().stats().bad_messages == 3);
  int errors = 0;
  for (const Outgoing& o : out) {
    if (o.peer == "evil" && o.envelope.has_error()) ++errors;
  }
  CHECK(errors == 3);
  h.Submit("b", Urls(1));
  out = h.Turn();
  CHECK(Harness::Find(out, "client", wire::Envelope::kSubmitAck) != nullptr);
}

TEST_CASE("ShutdownRefusesSubmissions", "[broker]") {
  Harness h;
  h.broker().BeginShutdown();
  h.Submit("b", Urls(1));
  auto out = h.Turn();
  const wire::Envelope* err =
      Harness::Find(out, "client", wire::Envelope::kError);
  REQUIRE(err != nullptr);
  CHECK(err->error().code() == wire::SHUTTING_DOWN);
}

TEST_CASE("RetentionSweepDeletesOldResultsTheirFilesAndTheirCounts",
          "[broker]") {
  BrokerOptions options = TestOptions();
  options.keep_results = Millis(10'000);
  Harness h(options);
  h.Submit("b1", Urls(1));
  auto tasks = h.Join("w1", "worker-1", "", 1);
  REQUIRE(tasks.size() == 1);
  h.Send("w1",
         Harness::ResultWithFile(tasks[0], "sample.exe", "MZ sample",
                                 "not-what-the-broker-computes"),
         5);
  h.Turn();
  const std::string sha = DigestSha256("MZ sample");
  const std::string stored = h.StoredPath("MZ sample");
  REQUIRE(h.Finished("b1").size() == 1);
  CHECK(h.Finished("b1")[0].files[0].sha256 == sha);
  CHECK(std::filesystem::exists(stored));

  // Younger than the period: kept, however often the sweep runs.
  h.clock().Advance(Millis(9'000));
  h.Heartbeat("w1");
  h.Turn();
  CHECK(h.Finished("b1").size() == 1);

  h.clock().Advance(Millis(2'000));
  h.Heartbeat("w1");
  h.Turn();
  CHECK(h.Finished("b1").empty());
  // The batch is gone from the in-memory counts too.
  wire::Envelope status;
  status.mutable_batch_status_request()->set_batch_id("b1");
  h.Send("client", status, 9);
  auto out = h.Turn();
  const wire::Envelope* err =
      Harness::Find(out, "client", wire::Envelope::kError);
  REQUIRE(err != nullptr);
  CHECK(err->error().code() == wire::NOT_FOUND);
  wire::Envelope list;
  list.mutable_list_queues();
  h.Send("client", list, 10);
  out = h.Turn();
  const wire::Envelope* queues =
      Harness::Find(out, "client", wire::Envelope::kQueueList);
  REQUIRE(queues != nullptr);
  for (const auto& q : queues->queue_list().queues()) {
    CHECK(q.counts().done() == 0);
    CHECK(q.counts().total() == 0);
  }

  // The file goes at the next step, once the deletion is committed.
  h.clock().Advance(Millis(500));
  h.Heartbeat("w1");
  h.Turn();
  CHECK_FALSE(std::filesystem::exists(stored));
}

TEST_CASE("FilesOfAResultWhoseCommitFailedAreRemovedUntilItIsResent",
          "[broker]") {
  Harness h;
  h.Submit("b1", Urls(1));
  auto tasks = h.Join("w1", "worker-1", "", 1);
  REQUIRE(tasks.size() == 1);
  const wire::Envelope e =
      Harness::ResultWithFile(tasks[0], "page.html", "<html>");
  const std::string stored = h.StoredPath("<html>");

  h.store().FailCommits(true);
  h.Send("w1", e, 5);
  auto out = h.Turn();
  CHECK(Harness::Find(out, "w1", wire::Envelope::kResultAck) == nullptr);
  CHECK_FALSE(std::filesystem::exists(stored));

  h.store().FailCommits(false);
  h.clock().Advance(Millis(1500));
  h.Heartbeat("w1");
  h.Turn();
  h.Send("w1", e, 6);
  out = h.Turn();
  const wire::Envelope* ack =
      Harness::Find(out, "w1", wire::Envelope::kResultAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->result_ack().accepted());
  CHECK(std::filesystem::exists(stored));
  REQUIRE(h.Finished("b1").size() == 1);
  CHECK(h.Finished("b1")[0].files.size() == 1);
}

}  // namespace
}  // namespace tq
