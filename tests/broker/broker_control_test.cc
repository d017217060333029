// The broker core's operator controls, driven with a fake clock: live
// events (what they say, when they leave, their lease and their bound),
// per-task cancel and terminate, queue pause, and workers that serve their
// country only.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "broker/authorized_keys.h"
#include "tests/broker/broker_harness.h"

namespace tq {
namespace {

using B = wire::Envelope;
using testing::Harness;
using testing::Urls;

void Subscribe(Harness& h, const std::string& peer,
               const std::string& batch = "", const std::string& queue = "",
               const std::string& worker = "", uint32_t lease_ms = 0) {
  B e;
  auto* s = e.mutable_subscribe();
  s->set_batch_id(batch);
  s->set_queue(queue);
  s->set_worker_id(worker);
  s->set_lease_ms(lease_ms);
  h.Send(peer, e, 40);
}

void Ack(Harness& h, const std::string& peer, uint64_t number) {
  B e;
  e.mutable_events_ack()->set_number(number);
  h.Send(peer, e, 41);
}

// The events `peer` was sent in `out`, in order, as "kind:task" strings
// ("kind" alone for events of no task).
std::vector<std::string> Kinds(const std::vector<Outgoing>& out,
                               const std::string& peer) {
  std::vector<std::string> kinds;
  for (const Outgoing& o : out) {
    if (o.peer != peer || !o.envelope.has_events()) continue;
    for (const auto& e : o.envelope.events().events()) {
      kinds.push_back(e.task_id()
                          ? e.event() + ":" + std::to_string(e.task_id())
                          : e.event());
    }
  }
  return kinds;
}

std::vector<wire::Event> Events(const std::vector<Outgoing>& out,
                                const std::string& peer) {
  std::vector<wire::Event> events;
  for (const Outgoing& o : out) {
    if (o.peer != peer || !o.envelope.has_events()) continue;
    for (const auto& e : o.envelope.events().events()) events.push_back(e);
  }
  return events;
}

void CancelTask(Harness& h, uint64_t id, bool terminate = false) {
  B e;
  e.mutable_cancel_task()->set_task_id(id);
  e.mutable_cancel_task()->set_terminate(terminate);
  h.Send("ops", e, 50);
}

void Pause(Harness& h, const std::string& queue, bool paused) {
  B e;
  e.mutable_pause_queue()->set_queue(queue);
  e.mutable_pause_queue()->set_paused(paused);
  h.Send("ops", e, 60);
}

TEST_CASE("EventsFollowATaskFromSubmitToFinish", "[broker][events]") {
  Harness h;
  Subscribe(h, "tail");
  auto out = h.Turn();
  const B* sub = Harness::Find(out, "tail", B::kSubscribed);
  REQUIRE(sub != nullptr);
  CHECK(sub->seq() == 40);
  CHECK(sub->subscribed().lease_ms() == 10'000);
  CHECK(sub->subscribed().window() == EventFeed::kWindow);

  h.Submit("b1", {"http://a.example/1"});
  out = h.Turn();
  CHECK(Kinds(out, "tail") == std::vector<std::string>{"submitted:1"});
  // Events carry the Subscribe's seq and come out of the commit only.
  const B* ev = Harness::Find(out, "tail", B::kEvents);
  REQUIRE(ev != nullptr);
  CHECK(ev->seq() == 40);
  CHECK(ev->events().number() == 1);
  const wire::Event& submitted = ev->events().events(0);
  CHECK(submitted.batch_id() == "b1");
  CHECK(submitted.queue() == "generic");
  CHECK(submitted.count() == 1);
  CHECK(submitted.url() == "http://a.example/1");
  CHECK(submitted.time_ms() == h.clock().WallMs());

  Ack(h, "tail", 1);
  auto tasks = h.Join("w1", "worker-1", "", 1);
  REQUIRE(tasks.size() == 1);
  h.Result("w1", tasks[0], true);
  out = h.Turn();
  auto events = Events(h.Turn(), "tail");  // nothing new
  CHECK(events.empty());
}

TEST_CASE("EventsOfAWorkerLostAndTheRedeliveryInOrder", "[broker][events]") {
  Harness h;
  h.Submit("b1", Urls(2));
  h.Turn();
  // w1 proves itself (one result), so losing it costs the other an attempt.
  auto first = h.Join("w1", "worker-1", "", 1);
  REQUIRE(first.size() == 1);
  h.Result("w1", first[0], true);
  auto second = Harness::Assigned(h.Turn(), "w1");
  REQUIRE(second.size() == 1);

  Subscribe(h, "tail", "b1");
  h.Turn();
  h.broker().OnDisconnect("w1");
  auto out = h.Turn();
  const std::string id = std::to_string(second[0].task_id());
  CHECK(Kinds(out, "tail") ==
        std::vector<std::string>{"worker_lost", "failed:" + id});
  auto events = Events(out, "tail");
  REQUIRE(events.size() == 2);
  CHECK(events[0].worker_id() == "worker-1");
  CHECK(events[0].error() == "connection closed");
  CHECK(events[0].count() == 1);
  CHECK(events[1].url() == second[0].url());
  CHECK(events[1].attempt() == 1);
  CHECK(events[1].error().find("worker worker-1 lost") == 0);

  Ack(h, "tail", 1);
  h.Hello("w2", "worker-2", "", 1);
  h.Credit("w2", 1);
  out = h.Turn();
  auto again = Harness::Assigned(out, "w2");
  REQUIRE(again.size() == 1);
  CHECK(again[0].attempt() == 2);
  // worker_joined has no batch: a batch filter leaves it out.
  CHECK(Kinds(out, "tail") == std::vector<std::string>{"leased:" + id});
  h.Result("w2", again[0], true);
  out = h.Turn();
  CHECK(Kinds(out, "tail") == std::vector<std::string>{"finished:" + id});
  CHECK(Events(out, "tail")[0].outcome() == "ok");
  CHECK(Events(out, "tail")[0].worker_id() == "worker-2");
}

TEST_CASE("EventFiltersSelectByBatchQueueAndWorker", "[broker][events]") {
  Harness h;
  Subscribe(h, "by-batch", "b2");
  Subscribe(h, "by-queue", "", "IT");
  Subscribe(h, "by-worker", "", "", "worker-1");
  h.Turn();
  h.Submit("b1", Urls(1, "x"));
  h.Submit("b2", Urls(1, "y"), "IT");
  auto out = h.Turn();
  CHECK(Kinds(out, "by-batch") == std::vector<std::string>{"submitted:2"});
  CHECK(Kinds(out, "by-queue") == std::vector<std::string>{"submitted:2"});
  CHECK(Kinds(out, "by-worker").empty());
  Ack(h, "by-batch", 1);
  Ack(h, "by-queue", 1);
  h.Hello("w1", "worker-1", "IT", 2);
  h.Credit("w1", 2);
  out = h.Turn();
  CHECK(Kinds(out, "by-worker") ==
        std::vector<std::string>{"worker_joined", "leased:2", "leased:1"});
  CHECK(Kinds(out, "by-batch") == std::vector<std::string>{"leased:2"});
  // The worker serves IT: its joining matches the queue filter.
  CHECK(Kinds(out, "by-queue") ==
        std::vector<std::string>{"worker_joined", "leased:2"});
}

TEST_CASE("SlowSubscriberIsBoundedAndToldWhatItMissed", "[broker][events]") {
  Harness h;
  Subscribe(h, "slow");
  h.Turn();
  // Never acknowledges. One turn of many Submits: the broker sends kWindow
  // messages of kEventsPerMessage events, keeps at most kMaxBacklog events
  // (the first ones), and counts the rest in a "missed" marker.
  const size_t submits = EventFeed::kMaxBacklog + 100;
  for (size_t i = 0; i < submits; ++i) {
    h.Submit("b" + std::to_string(i), {"http://a.example/"});
  }
  size_t messages = 0;
  for (int turn = 0; turn < 3; ++turn) {
    for (const Outgoing& o : h.Turn()) {
      if (o.peer == "slow" && o.envelope.has_events()) ++messages;
    }
  }
  const size_t sent = EventFeed::kWindow * EventFeed::kEventsPerMessage;
  CHECK(messages == EventFeed::kWindow);
  CHECK(h.broker().event_feed().backlog("slow") ==
        EventFeed::kMaxBacklog + 1 - sent);

  // Acknowledging opens the window: the backlog drains, the gap marked.
  uint64_t acked = EventFeed::kWindow;
  std::vector<wire::Event> rest;
  for (int round = 0; round < 100 && h.broker().event_feed().backlog("slow");
       ++round) {
    Ack(h, "slow", acked);
    for (const Outgoing& o : h.Turn()) {
      if (o.peer != "slow" || !o.envelope.has_events()) continue;
      acked = o.envelope.events().number();
      for (const auto& e : o.envelope.events().events()) rest.push_back(e);
    }
  }
  REQUIRE(rest.size() == EventFeed::kMaxBacklog + 1 - sent);
  CHECK(rest.back().event() == "missed");
  CHECK(rest.back().count() == submits - EventFeed::kMaxBacklog);
  CHECK(rest.front().event() == "submitted");
}

TEST_CASE("VanishedSubscriberEndsWithItsLease", "[broker][events]") {
  Harness h;
  Subscribe(h, "gone", "", "", "", 2000);
  auto out = h.Turn();
  REQUIRE(Harness::Find(out, "gone", B::kSubscribed) != nullptr);
  CHECK(h.broker().event_feed().size() == 1);
  // Renewed in time, it stays.
  h.clock().Advance(Millis(1500));
  Ack(h, "gone", 0);
  h.Turn();
  h.clock().Advance(Millis(1500));
  h.Turn();
  CHECK(h.broker().event_feed().size() == 1);
  // Silent past its lease, it is gone, and nothing is built for it.
  h.clock().Advance(Millis(600));
  h.Turn();
  CHECK(h.broker().event_feed().size() == 0);
  h.Submit("b1", Urls(3));
  out = h.Turn();
  CHECK(Harness::Find(out, "gone", B::kEvents) == nullptr);
  // Its next ack says the subscription is gone.
  Ack(h, "gone", 0);
  out = h.Turn();
  const B* err = Harness::Find(out, "gone", B::kError);
  REQUIRE(err != nullptr);
  CHECK(err->error().code() == wire::NOT_FOUND);
  // A disconnect ends a subscription at once.
  Subscribe(h, "conn");
  h.Turn();
  CHECK(h.broker().event_feed().size() == 1);
  h.broker().OnDisconnect("conn");
  CHECK(h.broker().event_feed().size() == 0);
}

TEST_CASE("SubmittedIsOneSummaryPerQueueOfASubmit", "[broker][events]") {
  Harness h;
  Subscribe(h, "tail");
  h.Turn();
  h.Submit("big", Urls(3));
  auto events = Events(h.Turn(), "tail");
  REQUIRE(events.size() == 1);
  CHECK(events[0].event() == "submitted");
  CHECK(events[0].count() == 3);
  CHECK(events[0].task_id() == 0);  // a summary: no one task
  CHECK(events[0].url().empty());
  CHECK(events[0].batch_id() == "big");
}

TEST_CASE("EventsOfAFailedCommitAreNotSent", "[broker][events]") {
  Harness h;
  Subscribe(h, "tail");
  h.Turn();
  h.store().FailCommits(true);
  h.Submit("b1", Urls(2));
  auto out = h.Turn();
  CHECK(Kinds(out, "tail").empty());
}

TEST_CASE("CancelTaskCancelsAQueuedTaskAndNotFoundOtherwise",
          "[broker][cancel]") {
  Harness h;
  h.Submit("b1", Urls(2));
  h.Turn();
  CancelTask(h, 1);
  auto out = h.Turn();
  const B* ack = Harness::Find(out, "ops", B::kAdminAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->admin_ack().affected() == 1);
  auto finished = h.Finished("b1");
  REQUIRE(finished.size() == 1);
  CHECK(finished[0].task_id == 1);
  CHECK(finished[0].state == "cancelled");
  CHECK(finished[0].error == "cancelled by an operator");
  // Finished now: not found, like one never seen.
  for (uint64_t id : {uint64_t(1), uint64_t(99)}) {
    CancelTask(h, id);
    out = h.Turn();
    const B* err = Harness::Find(out, "ops", B::kError);
    REQUIRE(err != nullptr);
    CHECK(err->error().code() == wire::NOT_FOUND);
  }
  // The other task still runs.
  auto tasks = h.Join("w1", "worker-1", "", 1);
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].task_id() == 2);
}

TEST_CASE("CancelledLeasedTaskRefusesItsLateResult", "[broker][cancel]") {
  Harness h;
  h.Submit("b1", Urls(1));
  auto tasks = h.Join("w1", "worker-1", "", 1);
  REQUIRE(tasks.size() == 1);
  CancelTask(h, tasks[0].task_id());
  auto out = h.Turn();
  REQUIRE(Harness::Find(out, "ops", B::kAdminAck) != nullptr);
  // Without --terminate the worker is not told.
  CHECK(Harness::Find(out, "w1", B::kTerminateTask) == nullptr);
  h.Result("w1", tasks[0], true);
  out = h.Turn();
  const B* ack = Harness::Find(out, "w1", B::kResultAck);
  REQUIRE(ack != nullptr);
  CHECK_FALSE(ack->result_ack().accepted());
  auto finished = h.Finished("b1");
  REQUIRE(finished.size() == 1);
  CHECK(finished[0].state == "cancelled");
  CHECK(finished[0].error ==
        "cancelled by an operator while running on worker worker-1");
  REQUIRE(finished[0].history.size() == 1);
  CHECK(finished[0].history[0].worker == "worker-1");
}

TEST_CASE("CancelWithTerminateTellsTheHolderAndFreesTheSlot",
          "[broker][cancel]") {
  Harness h;
  h.Submit("b1", Urls(2));
  auto tasks = h.Join("w1", "worker-1", "", 1);
  REQUIRE(tasks.size() == 1);
  CancelTask(h, tasks[0].task_id(), /*terminate=*/true);
  auto out = h.Turn();
  const B* kill = Harness::Find(out, "w1", B::kTerminateTask);
  REQUIRE(kill != nullptr);
  CHECK(kill->terminate_task().task_id() == tasks[0].task_id());
  CHECK(kill->terminate_task().token() == tasks[0].token());
  // The killed handler's failure is stale; its credit takes the next task.
  h.Result("w1", tasks[0], false, /*credit=*/1);
  out = h.Turn();
  const B* ack = Harness::Find(out, "w1", B::kResultAck);
  REQUIRE(ack != nullptr);
  CHECK_FALSE(ack->result_ack().accepted());
  auto next = Harness::Assigned(out, "w1");
  REQUIRE(next.size() == 1);
  CHECK(next[0].task_id() == 2);
}

TEST_CASE("PausedQueueLeasesNothingAndStaysPausedAcrossRestart",
          "[broker][pause]") {
  Harness h;
  Pause(h, "IT", true);
  auto out = h.Turn();
  const B* ack = Harness::Find(out, "ops", B::kAdminAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->admin_ack().affected() == 1);
  Pause(h, "IT", true);
  out = h.Turn();
  CHECK(Harness::Find(out, "ops", B::kAdminAck)->admin_ack().affected() == 0);

  h.Submit("b1", Urls(1, "it"), "IT");
  h.Submit("b2", Urls(1, "gen"), "generic");
  out = h.Turn();
  // Submissions are accepted.
  REQUIRE(Harness::Find(out, "client", B::kSubmitAck) != nullptr);
  auto tasks = h.Join("w1", "worker-1", "IT", 2);
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].queue() == "generic");

  B list;
  list.mutable_list_queues();
  h.Send("ops", list);
  out = h.Turn();
  const B* queues = Harness::Find(out, "ops", B::kQueueList);
  REQUIRE(queues != nullptr);
  bool seen = false;
  for (const auto& q : queues->queue_list().queues()) {
    if (q.name() == "IT") {
      seen = true;
      CHECK(q.paused());
      CHECK(q.counts().queued() == 1);
    } else {
      CHECK_FALSE(q.paused());
    }
  }
  CHECK(seen);

  h.Restart();
  h.Turn();
  tasks = h.Join("w2", "worker-2", "IT", 2);
  CHECK(tasks.empty());  // still paused after the restart
  Pause(h, "IT", false);
  out = h.Turn();
  tasks = Harness::Assigned(out, "w2");
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].queue() == "IT");
}

TEST_CASE("WorkerWithNoGenericServesItsCountryOnly", "[broker][queues]") {
  Harness h;
  h.Submit("b1", Urls(1, "gen"), "generic");
  h.Submit("b2", Urls(1, "it"), "IT");
  h.Turn();
  B hello;
  auto* hi = hello.mutable_hello();
  hi->set_worker_id("it-only");
  hi->set_country("IT");
  hi->set_concurrency(2);
  hi->set_no_generic(true);
  h.Send("w1", hello);
  h.Credit("w1", 2);
  auto out = h.Turn();
  const B* welcome = Harness::Find(out, "w1", B::kWelcome);
  REQUIRE(welcome != nullptr);
  REQUIRE(welcome->welcome().queues_size() == 1);
  CHECK(welcome->welcome().queues(0) == "IT");
  auto tasks = Harness::Assigned(out, "w1");
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].queue() == "IT");

  // Without a country it would serve nothing: refused.
  hi->set_worker_id("nothing");
  hi->set_country("");
  h.Send("w2", hello);
  out = h.Turn();
  const B* err = Harness::Find(out, "w2", B::kError);
  REQUIRE(err != nullptr);
  CHECK(err->error().code() == wire::INVALID_ARGUMENT);
  CHECK(err->error().message().find("would serve no queue") !=
        std::string::npos);
}

TEST_CASE("SubmitKeyFollowsAndCancelsOnlyItsOwnBatches", "[broker][curve]") {
  Harness h;
  PeerIdentity alice;
  alice.keyed = true;
  alice.key_name = "alice";
  alice.public_key = "pk-alice";
  auto roles = ParseRoles("submit");
  REQUIRE(roles.ok());
  alice.roles = *roles;
  h.SetIdentity("alice", alice);
  PeerIdentity bob = alice;
  bob.key_name = "bob";
  bob.public_key = "pk-bob";
  h.SetIdentity("bob", bob);
  B submit;
  auto* s = submit.mutable_submit();
  s->set_batch_id("alice-1");
  auto* item = s->add_items();
  item->set_url("http://a.example/");
  item->set_queue("generic");
  h.Send("alice", submit, 9);
  h.Turn();

  Subscribe(h, "bob");  // no batch named
  auto out = h.Turn();
  const B* err = Harness::Find(out, "bob", B::kError);
  REQUIRE(err != nullptr);
  CHECK(err->error().code() == wire::PERMISSION_DENIED);
  Subscribe(h, "bob", "alice-1");
  out = h.Turn();
  REQUIRE(Harness::Find(out, "bob", B::kError) != nullptr);
  Subscribe(h, "alice", "alice-1");
  out = h.Turn();
  CHECK(Harness::Find(out, "alice", B::kSubscribed) != nullptr);

  B cancel;
  cancel.mutable_cancel_task()->set_task_id(1);
  h.Send("bob", cancel, 3);
  out = h.Turn();
  err = Harness::Find(out, "bob", B::kError);
  REQUIRE(err != nullptr);
  CHECK(err->error().code() == wire::PERMISSION_DENIED);
  h.Send("alice", cancel, 3);
  out = h.Turn();
  CHECK(Harness::Find(out, "alice", B::kAdminAck) != nullptr);
}

}  // namespace
}  // namespace tq
