// A peer is trusted with a task only while it holds the task's lease: forged
// results and claims change nothing, and a peer that takes tasks and
// vanishes cannot burn a batch's attempts (issue #15, items 1, 2 and 10).
#include <catch2/catch.hpp>
#include <set>

#include "tests/broker/broker_harness.h"

namespace tq {
namespace {

using testing::Harness;
using testing::Urls;

wire::Task ForgedTask(uint64_t id, uint64_t token) {
  wire::Task t;
  t.set_task_id(id);
  t.set_token(token);
  return t;
}

const wire::ResultAck* AckTo(const std::vector<Outgoing>& out,
                             const std::string& peer) {
  const wire::Envelope* e =
      Harness::Find(out, peer, wire::Envelope::kResultAck);
  return e ? &e->result_ack() : nullptr;
}

TEST_CASE("ForgedResultWithTokenZeroForAQueuedTaskIsRefused", "[broker]") {
  Harness h;
  h.Submit("b", Urls(3));
  h.Turn();
  h.Hello("evil", "evil", "", 1);
  for (uint64_t id = 1; id <= 3; ++id) {
    h.Result("evil", ForgedTask(id, 0), true, 0, "forged");
  }
  auto out = h.Turn();
  const wire::ResultAck* ack = AckTo(out, "evil");
  REQUIRE(ack != nullptr);
  CHECK_FALSE(ack->accepted());
  CHECK(h.Finished("b").empty());
  CHECK(h.broker().pending_tasks() == 3);
  // The honest worker still gets all three.
  CHECK(h.Join("w1", "worker-1", "", 3).size() == 3);
}

TEST_CASE("HelloClaimingANeverLeasedTaskTakesNothing", "[broker]") {
  Harness h;
  h.Submit("b", Urls(2));
  h.Turn();
  h.Hello("evil", "evil", "", 2, {{1, 0}, {2, 0}});
  h.Turn();
  // Still queued: an honest worker gets both.
  auto t = h.Join("w1", "worker-1", "", 2);
  CHECK(t.size() == 2);
}

TEST_CASE("ResultOfALeaseHeldByAnotherSessionIsRefused", "[broker]") {
  Harness h;
  h.Submit("b", Urls(1));
  auto t = h.Join("w1", "worker-1", "", 1);
  REQUIRE(t.size() == 1);
  // Even with the right token, a session that does not hold the lease
  // cannot end it while its holder is alive.
  h.Hello("evil", "evil", "", 1);
  h.Result("evil", t[0], true, 0, "forged");
  auto out = h.Turn();
  const wire::ResultAck* ack = AckTo(out, "evil");
  REQUIRE(ack != nullptr);
  CHECK_FALSE(ack->accepted());
  CHECK(h.Finished("b").empty());
  h.Result("w1", t[0], true, 0, "honest");
  h.Turn();
  REQUIRE(h.Finished("b").size() == 1);
  CHECK(h.Finished("b")[0].output == "honest");
}

TEST_CASE("ReleaseFromAnotherSessionChangesNothing", "[broker]") {
  Harness h;
  h.Submit("b", Urls(1));
  auto t = h.Join("w1", "worker-1", "", 1);
  REQUIRE(t.size() == 1);
  h.Hello("evil", "evil", "", 1);
  h.Credit("evil", 1);
  wire::Envelope release;
  auto* l = release.mutable_release()->add_leases();
  l->set_task_id(t[0].task_id());
  l->set_token(t[0].token());
  h.Send("evil", release);
  // Not requeued: nobody else gets it.
  CHECK(Harness::Assigned(h.Turn(), "evil").empty());
}

TEST_CASE("RetriedDeadTaskCannotBeFinishedWithTokenZero", "[broker]") {
  Harness h;
  h.Submit("b", Urls(1), "generic", 0, /*max_attempts=*/1);
  auto t = h.Join("w1", "worker-1", "", 1);
  REQUIRE(t.size() == 1);
  h.Result("w1", t[0], false, 0);
  h.Turn();
  wire::Envelope retry;
  retry.mutable_retry_dead()->set_batch_id("b");
  h.Send("client", retry, 9);
  h.Turn();
  REQUIRE(h.broker().pending_tasks() == 1);
  h.Result("w1", ForgedTask(t[0].task_id(), 0), true, 0, "forged");
  h.Turn();
  CHECK(h.Finished("b").empty());
}

TEST_CASE("LeaseTokensAreDistinctAndNeverZero", "[broker]") {
  Harness h;
  h.Submit("b", Urls(64));
  auto t = h.Join("w1", "worker-1", "", 64);
  std::set<uint64_t> tokens;
  for (const wire::Task& task : t) tokens.insert(task.token());
  CHECK_FALSE(tokens.count(0));
  CHECK(tokens.size() == t.size());
}

TEST_CASE("NewSessionHoldsFewTasksUntilItDelivers", "[broker]") {
  Harness h;  // slow_start_window 4 by default
  h.Submit("b", Urls(100));
  auto t = h.Join("w1", "worker-1", "", 64);
  REQUIRE(t.size() == 4);
  h.Result("w1", t[0], true, /*credit=*/1);
  // One result: a window of 8, so 8 - 3 held = 5 more.
  auto more = Harness::Assigned(h.Turn(), "w1");
  CHECK(more.size() == 5);
}

TEST_CASE("GreedySessionsThatVanishDoNotKillABatch", "[broker]") {
  // Issue #15 item 2: Hello with 1024 slots, grant 1024, disconnect; three
  // rounds used to turn every task dead.
  Harness h;
  h.Submit("b", Urls(1000));
  for (int round = 0; round < 3; ++round) {
    const std::string peer = "greedy" + std::to_string(round);
    h.Hello(peer, peer, "", 1024);
    h.Credit(peer, 1024);
    auto taken = Harness::Assigned(h.Turn(), peer);
    CHECK(taken.size() <= 4);  // slow start
    h.broker().OnDisconnect(peer);
    h.Turn();
  }
  CHECK(h.Finished("b").empty());  // nothing dead
  // An honest worker then runs every task once, each on its first attempt.
  h.Hello("w1", "worker-1", "", 8);
  h.Credit("w1", 8);
  size_t done = 0;
  auto t = Harness::Assigned(h.Turn(), "w1");
  for (int turn = 0; turn < 2000 && !t.empty(); ++turn) {
    for (const wire::Task& task : t) {
      CHECK(task.attempt() == 1);
      h.Result("w1", task, true, 1);
      ++done;
    }
    t = Harness::Assigned(h.Turn(), "w1");
  }
  CHECK(done == 1000);
  auto finished = h.Finished("b");
  REQUIRE(finished.size() == 1000);
  for (const TaskResult& r : finished) CHECK(r.state == "done");
}

TEST_CASE("UnprovenLossesAreBoundedPerTask", "[broker]") {
  BrokerOptions o = testing::TestOptions();
  o.max_unproven_losses = 2;
  o.default_max_attempts = 1;
  o.loss_throttle_sessions = 100;  // not under test here
  Harness h(o);
  h.Submit("b", Urls(1));
  for (int i = 0; i < 2; ++i) {
    const std::string peer = "p" + std::to_string(i);
    REQUIRE(h.Join(peer, peer, "", 1).size() == 1);
    h.broker().OnDisconnect(peer);
    h.Turn();
    CHECK(h.Finished("b").empty());  // free losses
  }
  // The third loss counts: its only attempt is gone.
  REQUIRE(h.Join("p2", "p2", "", 1).size() == 1);
  h.broker().OnDisconnect("p2");
  h.Turn();
  REQUIRE(h.Finished("b").size() == 1);
  CHECK(h.Finished("b")[0].state == "dead");
}

TEST_CASE("PeerThatKeepsLosingLeasesTakesOneTaskAtATime", "[broker]") {
  Harness h;  // throttled after 3 such sessions
  h.Submit("b", Urls(100));
  for (int i = 0; i < 3; ++i) {
    const std::string peer = "greedy" + std::to_string(i);
    h.SetAddress(peer, "203.0.113.7");
    REQUIRE(h.Join(peer, peer, "", 16).size() == 4);
    h.broker().OnDisconnect(peer);
    h.Turn();
  }
  h.SetAddress("greedy3", "203.0.113.7");
  CHECK(h.Join("greedy3", "greedy3", "", 16).size() == 1);
  // Another address is not affected.
  h.SetAddress("honest", "198.51.100.1");
  CHECK(h.Join("honest", "honest", "", 16).size() == 4);
}

}  // namespace
}  // namespace tq

namespace tq {
namespace {

size_t CountBody(const std::vector<Outgoing>& out, const std::string& peer,
                 wire::Envelope::BodyCase body) {
  size_t n = 0;
  for (const Outgoing& o : out) {
    if (o.peer == peer && o.envelope.body_case() == body) ++n;
  }
  return n;
}

TEST_CASE("PeerAskingForListsTooFastIsAnsweredRateLimited", "[broker]") {
  BrokerOptions o = testing::TestOptions();
  o.reads_per_second = 10;
  o.read_burst = 5;
  testing::Harness h(o);
  wire::Envelope list;
  list.mutable_list_queues();
  for (int i = 0; i < 10; ++i) h.Send("eager", list, 100 + i);
  h.Send("calm", list, 1);
  auto out = h.Turn();
  CHECK(CountBody(out, "eager", wire::Envelope::kQueueList) == 5);
  CHECK(CountBody(out, "eager", wire::Envelope::kError) == 5);
  const wire::Envelope* error =
      testing::Harness::Find(out, "eager", wire::Envelope::kError);
  REQUIRE(error != nullptr);
  CHECK(error->error().code() == wire::RATE_LIMITED);
  CHECK(error->error().retryable());
  CHECK(CountBody(out, "calm", wire::Envelope::kQueueList) == 1);
  // A second later its bucket has refilled by ten.
  h.clock().Advance(Millis(1000));
  for (int i = 0; i < 5; ++i) h.Send("eager", list, 200 + i);
  CHECK(CountBody(h.Turn(), "eager", wire::Envelope::kQueueList) == 5);
}

}  // namespace
}  // namespace tq
