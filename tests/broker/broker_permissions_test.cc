// Roles per message type, batch ownership, key-bound worker ids, country-
// limited worker keys and revocation, on the core with a fake clock
// (docs/security.md).
#include <catch2/catch.hpp>

#include "broker/authorized_keys.h"
#include "tests/broker/broker_harness.h"

namespace tq {
namespace {

using testing::Harness;
using testing::Urls;
using B = wire::Envelope;

PeerIdentity Key(const std::string& name, const std::string& roles,
                 std::vector<std::string> countries = {}) {
  PeerIdentity id;
  id.keyed = true;
  id.key_name = name;
  id.public_key = "pk-" + name;  // any unique string stands for the Z85 key
  auto parsed = ParseRoles(roles);
  REQUIRE(parsed.ok());
  id.roles = *parsed;
  id.countries = std::move(countries);
  return id;
}

// The error `peer` got in `out`, or nullptr.
const wire::Error* ErrorFor(const std::vector<Outgoing>& out,
                            const std::string& peer) {
  const B* e = Harness::Find(out, peer, B::kError);
  return e ? &e->error() : nullptr;
}

void RequireDenied(const std::vector<Outgoing>& out, const std::string& peer,
                   const std::string& words) {
  const wire::Error* e = ErrorFor(out, peer);
  REQUIRE(e != nullptr);
  CHECK(e->code() == wire::PERMISSION_DENIED);
  INFO(e->message());
  CHECK(e->message().find(words) != std::string::npos);
}

B Request(B::BodyCase body, const std::string& batch = "") {
  B e;
  switch (body) {
    case B::kFetchResults:
      e.mutable_fetch_results()->set_batch_id(batch);
      break;
    case B::kBatchStatusRequest:
      e.mutable_batch_status_request()->set_batch_id(batch);
      break;
    case B::kCancelBatch:
      e.mutable_cancel_batch()->set_batch_id(batch);
      break;
    case B::kListQueues:
      e.mutable_list_queues();
      break;
    case B::kListWorkers:
      e.mutable_list_workers();
      break;
    case B::kPurgeQueue:
      e.mutable_purge_queue()->set_queue("generic");
      break;
    case B::kRetryDead:
      e.mutable_retry_dead()->set_queue("generic");
      break;
    case B::kReleaseWorker:
      e.mutable_release_worker()->set_worker_id("w1");
      break;
    case B::kDrainWorker:
      e.mutable_drain_worker()->set_worker_id("w1");
      break;
    case B::kDisconnectWorker:
      e.mutable_disconnect_worker()->set_worker_id("w1");
      break;
    case B::kReloadKeys:
      e.mutable_reload_keys();
      break;
    default:
      FAIL("no such request in this test");
  }
  return e;
}

void SubmitAs(Harness& h, const std::string& peer, const std::string& batch,
              int n, const std::string& queue = "generic") {
  B e;
  auto* s = e.mutable_submit();
  s->set_batch_id(batch);
  for (int i = 0; i < n; ++i) {
    auto* item = s->add_items();
    item->set_index(uint32_t(i));
    item->set_url("http://example.com/" + batch + std::to_string(i));
    item->set_queue(queue);
  }
  h.Send(peer, e, 9);
}

}  // namespace

TEST_CASE("WorkerMessagesNeedTheWorkerRole", "[broker][curve]") {
  Harness h;
  h.SetIdentity("alice", Key("alice", "submit,admin"));
  h.Hello("alice", "w1", "", 2);
  auto out = h.Turn();
  RequireDenied(out, "alice", "lacks the worker role needed for hello");
  CHECK(Harness::Find(out, "alice", B::kWelcome) == nullptr);
  CHECK(h.broker().worker_count() == 0);
  h.Credit("alice", 2);
  RequireDenied(h.Turn(), "alice", "worker role");
  CHECK(h.broker().permission_denied() == 2);
}

TEST_CASE("SubmitKeyCannotPurgeRetryListWorkersOrReload", "[broker][curve]") {
  Harness h;
  h.SetIdentity("alice", Key("alice", "submit"));
  for (B::BodyCase body :
       {B::kPurgeQueue, B::kRetryDead, B::kListWorkers, B::kReloadKeys,
        B::kReleaseWorker, B::kDrainWorker, B::kDisconnectWorker}) {
    h.Send("alice", Request(body));
    RequireDenied(h.Turn(), "alice", "lacks the admin role");
  }
  // The queue list (counts, no URLs) is open to submitters.
  h.Send("alice", Request(B::kListQueues));
  CHECK(Harness::Find(h.Turn(), "alice", B::kQueueList) != nullptr);
  // A worker key may not see it.
  h.SetIdentity("box", Key("box", "worker"));
  h.Send("box", Request(B::kListQueues));
  RequireDenied(h.Turn(), "box", "admin or submit role");
  // Nor submit.
  SubmitAs(h, "box", "b-box", 1);
  RequireDenied(h.Turn(), "box", "lacks the submit role");
  CHECK(h.broker().pending_tasks() == 0);
}

TEST_CASE("SubmitKeyUsesOnlyTheBatchesItSubmitted", "[broker][curve]") {
  Harness h;
  h.SetIdentity("alice", Key("alice", "submit"));
  h.SetIdentity("bob", Key("bob", "submit"));
  h.SetIdentity("ops", Key("ops", "admin"));
  SubmitAs(h, "alice", "b1", 3);
  CHECK(Harness::Find(h.Turn(), "alice", B::kSubmitAck) != nullptr);

  for (B::BodyCase body :
       {B::kFetchResults, B::kBatchStatusRequest, B::kCancelBatch}) {
    h.Send("bob", Request(body, "b1"));
    RequireDenied(h.Turn(), "bob", "'b1' is not one of them");
    // The same answer for a batch that does not exist: nothing leaks.
    h.Send("bob", Request(body, "no-such"));
    RequireDenied(h.Turn(), "bob", "'no-such' is not one of them");
  }
  // Nor may bob add to alice's batch.
  SubmitAs(h, "bob", "b1", 5);
  RequireDenied(h.Turn(), "bob", "'b1' is not one of them");
  CHECK(h.broker().pending_tasks() == 3);

  h.Send("alice", Request(B::kBatchStatusRequest, "b1"));
  CHECK(Harness::Find(h.Turn(), "alice", B::kBatchStatus) != nullptr);
  // Admin sees and cancels any batch.
  h.Send("ops", Request(B::kBatchStatusRequest, "b1"));
  CHECK(Harness::Find(h.Turn(), "ops", B::kBatchStatus) != nullptr);
  h.Send("ops", Request(B::kCancelBatch, "b1"));
  auto out = h.Turn();
  for (int i = 0; i < 5 && !Harness::Find(out, "ops", B::kAdminAck); ++i) {
    out = h.Turn();
  }
  CHECK(Harness::Find(out, "ops", B::kAdminAck) != nullptr);
  // But admin alone does not submit.
  SubmitAs(h, "ops", "b-ops", 1);
  RequireDenied(h.Turn(), "ops", "lacks the submit role");
}

TEST_CASE("BatchOwnersSurviveARestart", "[broker][curve]") {
  Harness h;
  h.SetIdentity("alice", Key("alice", "submit"));
  h.SetIdentity("bob", Key("bob", "submit"));
  SubmitAs(h, "alice", "b1", 2);
  h.Turn();
  h.Restart();
  h.Send("bob", Request(B::kBatchStatusRequest, "b1"));
  RequireDenied(h.Turn(), "bob", "not one of them");
  h.Send("alice", Request(B::kBatchStatusRequest, "b1"));
  CHECK(Harness::Find(h.Turn(), "alice", B::kBatchStatus) != nullptr);
}

TEST_CASE("BatchSubmittedWithoutKeysIsAdminOnlyOnceKeysAreOn",
          "[broker][curve]") {
  Harness h;
  h.Submit("old", Urls(2));  // no key: nobody owns it
  h.Turn();
  h.SetIdentity("alice", Key("alice", "submit"));
  h.SetIdentity("ops", Key("ops", "admin"));
  SubmitAs(h, "alice", "old", 2);
  RequireDenied(h.Turn(), "alice", "not one of them");
  h.Send("ops", Request(B::kBatchStatusRequest, "old"));
  CHECK(Harness::Find(h.Turn(), "ops", B::kBatchStatus) != nullptr);
}

TEST_CASE("CountryLimitedKeyIsRefusedAnotherCountryAndNeverGetsItsTasks",
          "[broker][curve]") {
  Harness h;
  h.Submit("b", Urls(3, "de"), "DE");
  h.Submit("b", Urls(2, "it"), "IT", 0, 0, 10);
  h.Turn();
  h.SetIdentity("it", Key("it-box", "worker", {"IT"}));
  h.Hello("it", "it-1", "DE", 4);
  RequireDenied(h.Turn(), "it", "may serve only IT and generic, not DE");
  CHECK(h.broker().worker_count() == 0);

  h.Hello("it", "it-1", "IT", 4);
  auto out = h.Turn();
  const B* welcome = Harness::Find(out, "it", B::kWelcome);
  REQUIRE(welcome != nullptr);
  CHECK(std::vector<std::string>(welcome->welcome().queues().begin(),
                                 welcome->welcome().queues().end()) ==
        std::vector<std::string>{"IT", "generic"});
  h.Credit("it", 4);
  auto tasks = Harness::Assigned(h.Turn(), "it");
  REQUIRE(tasks.size() == 2);
  for (const auto& t : tasks) CHECK(t.queue() == "IT");
  // With no country it serves generic only: allowed.
  h.SetIdentity("it2", Key("it-box2", "worker", {"IT"}));
  h.Hello("it2", "it-2", "", 1);
  CHECK(Harness::Find(h.Turn(), "it2", B::kWelcome) != nullptr);
}

TEST_CASE("WorkerIdIsBoundToTheKeyOfItsLiveSession", "[broker][curve]") {
  Harness h;
  h.Submit("b", Urls(2));
  h.Turn();
  h.SetIdentity("a", Key("box-a", "worker"));
  h.SetIdentity("b", Key("box-b", "worker"));
  auto held = h.Join("a", "w1", "", 2);
  REQUIRE(held.size() == 2);
  // box-b says Hello as w1, even presenting the leases' tokens.
  h.Hello("b", "w1", "", 2,
          {{held[0].task_id(), held[0].token()},
           {held[1].task_id(), held[1].token()}});
  RequireDenied(h.Turn(), "b", "belongs to a live session of key 'box-a'");
  // w1 still holds both: its results are accepted.
  h.Result("a", held[0], true);
  auto out = h.Turn();
  const B* ack = Harness::Find(out, "a", B::kResultAck);
  REQUIRE(ack != nullptr);
  CHECK(ack->result_ack().accepted());
  // The same key may replace its own session (a reconnect).
  h.Hello("a", "w1", "", 2, {{held[1].task_id(), held[1].token()}});
  CHECK(Harness::Find(h.Turn(), "a", B::kWelcome) != nullptr);
  // Once that session is over, the id is free.
  B bye;
  bye.mutable_goodbye();
  h.Send("a", bye);
  h.Turn();
  h.Hello("b", "w1", "", 1);
  CHECK(Harness::Find(h.Turn(), "b", B::kWelcome) != nullptr);
}

TEST_CASE("RevokedKeyEndsItsSessionAndItsTasksGoBackUncounted",
          "[broker][curve]") {
  Harness h;
  h.Submit("b", Urls(3));
  h.Turn();
  h.SetIdentity("a", Key("box-a", "worker"));
  auto held = h.Join("a", "w1", "", 3);
  REQUIRE(held.size() == 3);
  CHECK(h.broker().RevokeKeys({{"box-a", "pk-box-a"}}) == 1);
  CHECK(h.broker().worker_count() == 0);
  h.Turn();
  // What box-a's connection sends from now on comes with no role.
  PeerIdentity revoked = Key("box-a", "");
  h.SetIdentity("a", revoked);
  h.Result("a", held[0], true);
  RequireDenied(h.Turn(), "a", "no role");
  h.Hello("a", "w1", "", 3);
  RequireDenied(h.Turn(), "a", "no role");
  // The tasks went back to the queue, no attempt used: attempt 1 again.
  h.SetIdentity("b", Key("box-b", "worker"));
  auto again = h.Join("b", "w2", "", 3);
  REQUIRE(again.size() == 3);
  for (const auto& t : again) CHECK(t.attempt() == 1);
}

TEST_CASE("ReloadKeysNeedsAdminAndEndsTheRevokedSessions", "[broker][curve]") {
  Harness h;
  h.SetIdentity("ops", Key("ops", "admin"));
  h.Send("ops", Request(B::kReloadKeys));
  const wire::Error* e = ErrorFor(h.Turn(), "ops");
  REQUIRE(e != nullptr);
  CHECK(e->code() == wire::INVALID_ARGUMENT);  // a broker without keys

  int reloads = 0;
  h.broker().SetKeyReloader([&]() -> Result<KeyReload> {
    ++reloads;
    KeyReload r;
    r.keys = 1;
    r.revoked.push_back({"box-a", "pk-box-a"});
    r.problems.push_back("keys/x.key: names no role");
    return r;
  });
  h.SetIdentity("a", Key("box-a", "worker"));
  h.Submit("b", Urls(1));
  h.Turn();
  REQUIRE(h.Join("a", "w1", "", 1).size() == 1);
  h.Send("ops", Request(B::kReloadKeys));
  auto out = h.Turn();
  const B* r = Harness::Find(out, "ops", B::kKeysReloaded);
  REQUIRE(r != nullptr);
  CHECK(reloads == 1);
  CHECK(r->keys_reloaded().keys() == 1);
  CHECK(r->keys_reloaded().sessions_ended() == 1);
  CHECK(r->keys_reloaded().revoked(0) == "box-a");
  CHECK(r->keys_reloaded().problems_size() == 1);
  CHECK(h.broker().worker_count() == 0);
}

TEST_CASE("WorkerListNamesEachWorkersKey", "[broker][curve]") {
  Harness h;
  h.SetIdentity("a", Key("box-a", "worker"));
  h.SetIdentity("ops", Key("ops", "admin"));
  h.Hello("a", "w1", "", 1);
  h.Hello("plain", "w2", "", 1);  // no key: no name
  h.Send("ops", Request(B::kListWorkers));
  auto out = h.Turn();
  const B* list = Harness::Find(out, "ops", B::kWorkerList);
  REQUIRE(list != nullptr);
  REQUIRE(list->worker_list().workers_size() == 2);
  CHECK(list->worker_list().workers(0).key_name() == "box-a");
  CHECK(list->worker_list().workers(1).key_name() == "");
}

}  // namespace tq
