// Cancel, purge and retry-dead of many tasks run in bounded steps: the loop
// keeps serving between them (issue #15 item 4).
#include <catch2/catch.hpp>
#include <optional>

#include "tests/broker/broker_harness.h"

namespace tq {
namespace {

using testing::Harness;
using testing::Urls;

BrokerOptions SmallSteps() {
  BrokerOptions o = testing::TestOptions();
  o.bulk_step = 100;
  return o;
}

wire::Envelope Purge(const std::string& queue) {
  wire::Envelope e;
  e.mutable_purge_queue()->set_queue(queue);
  return e;
}

// The AdminAck to `peer` in `out`, copied (out is usually a temporary).
std::optional<wire::AdminAck> AdminAck(const std::vector<Outgoing>& out,
                                       const std::string& peer) {
  const wire::Envelope* e = Harness::Find(out, peer, wire::Envelope::kAdminAck);
  if (e == nullptr) return std::nullopt;
  return e->admin_ack();
}

TEST_CASE("PurgeOfManyTasksRunsInStepsWhileHeartbeatsFlow", "[broker]") {
  Harness h(SmallSteps());
  h.Submit("b", Urls(1000), "FR");
  h.Hello("w1", "worker-1", "", 1);  // serves generic only
  h.Turn();
  h.Send("admin", Purge("FR"), 3);
  std::optional<wire::AdminAck> ack;
  int turns = 0;
  bool heartbeats = true;
  for (; turns < 50 && !ack; ++turns) {
    h.clock().Advance(Millis(1000));  // a second per turn
    h.Heartbeat("w1");
    auto out = h.Turn();
    ack = AdminAck(out, "admin");
    heartbeats = heartbeats && h.broker().worker_count() == 1 &&
                 Harness::Find(out, "w1", wire::Envelope::kHeartbeat);
  }
  REQUIRE(ack);
  CHECK(turns == 10);  // 1000 tasks, 100 per turn
  CHECK(heartbeats);
  CHECK(ack->affected() == 1000);
  CHECK(h.broker().pending_tasks() == 0);
  CHECK(h.Finished("b").size() == 1000);
}

TEST_CASE("RepeatedPurgeJoinsTheRunningJob", "[broker]") {
  Harness h(SmallSteps());
  h.Submit("b", Urls(250), "FR");
  h.Turn();
  h.Send("admin", Purge("FR"), 3);
  h.Turn();
  h.Send("admin", Purge("FR"), 3);  // a resend after a client time-out
  h.Send("other", Purge("FR"), 8);
  int acks = 0;
  for (int turn = 0; turn < 10; ++turn) {
    for (const Outgoing& o : h.Turn()) {
      if (!o.envelope.has_admin_ack()) continue;
      CHECK(o.envelope.admin_ack().affected() == 250);
      ++acks;
    }
  }
  CHECK(acks == 3);
}

TEST_CASE("TaskLeasedDuringAPurgeIsNotCancelled", "[broker]") {
  Harness h(SmallSteps());
  h.Submit("b", Urls(300));
  h.Turn();
  h.Send("admin", Purge("generic"), 3);
  h.Turn();  // first step: 100 cancelled
  auto t = h.Join("w1", "worker-1", "", 1);
  REQUIRE(t.size() == 1);
  std::optional<wire::AdminAck> ack;
  for (int turn = 0; turn < 10 && !ack; ++turn) {
    ack = AdminAck(h.Turn(), "admin");
  }
  REQUIRE(ack);
  CHECK(ack->affected() == 299);
  CHECK(h.broker().pending_tasks() == 1);  // the leased one runs on
}

TEST_CASE("RetryDeadOfManyTasksRunsInSteps", "[broker]") {
  BrokerOptions o = SmallSteps();
  o.default_max_attempts = 1;
  Harness h(o);
  h.Submit("b", Urls(250));
  h.Hello("w1", "worker-1", "", 8);
  h.Credit("w1", 8);
  auto t = Harness::Assigned(h.Turn(), "w1");
  for (int turn = 0; turn < 500 && !t.empty(); ++turn) {
    for (const wire::Task& task : t) h.Result("w1", task, false, 1);
    t = Harness::Assigned(h.Turn(), "w1");
  }
  REQUIRE(h.Finished("b").size() == 250);
  h.Send("w1", [] {
    wire::Envelope e;
    e.mutable_credit()->set_pause(true);
    return e;
  }());
  wire::Envelope retry;
  retry.mutable_retry_dead()->set_batch_id("b");
  h.Send("admin", retry, 4);
  std::optional<wire::AdminAck> ack;
  int turns = 0;
  for (; turns < 10 && !ack; ++turns) ack = AdminAck(h.Turn(), "admin");
  REQUIRE(ack);
  CHECK(turns == 3);
  CHECK(ack->affected() == 250);
  CHECK(h.broker().pending_tasks() == 250);
}

TEST_CASE("StoreFailureDuringABulkJobAnswersAnErrorAndKeepsEarlierSteps",
          "[broker]") {
  Harness h(SmallSteps());
  h.Submit("b", Urls(300), "FR");
  h.Turn();
  h.Send("admin", Purge("FR"), 3);
  h.Turn();  // step 1 committed: 100 cancelled
  h.store().FailCommits(true);
  auto out = h.Turn();  // step 2 lost with its commit
  h.store().FailCommits(false);
  const wire::Envelope* error =
      Harness::Find(out, "admin", wire::Envelope::kError);
  REQUIRE(error != nullptr);
  CHECK(error->error().code() == wire::STORE_UNAVAILABLE);
  CHECK(h.Finished("b").size() == 100);
  CHECK(h.broker().pending_tasks() == 200);  // the tables were re-read
}

}  // namespace
}  // namespace tq
