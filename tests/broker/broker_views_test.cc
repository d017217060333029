// The views behind tq-ctl status, batches, task, active and workers (#19),
// on the core with a fake clock: what each answers, who may ask, and that
// the batches' order and the workers' last-seen survive a restart.
#include <sqlite3.h>

#include <catch2/catch.hpp>

#include "broker/authorized_keys.h"
#include "broker/sqlite_task_store.h"
#include "tests/broker/broker_harness.h"
#include "tests/support/temp_dir.h"

namespace tq {
namespace {

using testing::Harness;
using testing::Urls;
using B = wire::Envelope;

PeerIdentity Key(const std::string& name, const std::string& roles) {
  PeerIdentity id;
  id.keyed = true;
  id.key_name = name;
  id.public_key = "pk-" + name;
  auto parsed = ParseRoles(roles);
  REQUIRE(parsed.ok());
  id.roles = *parsed;
  return id;
}

// Sends `e` from `peer`, runs a turn and returns the reply of `body`.
B Ask(Harness& h, const std::string& peer, B e, B::BodyCase body) {
  h.Send(peer, std::move(e), 31);
  auto out = h.Turn();
  const B* reply = Harness::Find(out, peer, body);
  if (reply == nullptr) {
    const B* err = Harness::Find(out, peer, B::kError);
    INFO((err ? err->error().message() : std::string("no reply")));
    FAIL("no reply of the expected kind");
  }
  return *reply;
}

B ListBatches(uint32_t limit = 0, uint64_t before = 0) {
  B e;
  e.mutable_list_batches()->set_limit(limit);
  e.mutable_list_batches()->set_before(before);
  return e;
}

B TaskRequest(uint64_t id) {
  B e;
  e.mutable_task_request()->set_task_id(id);
  return e;
}

void SubmitAs(Harness& h, const std::string& peer, const std::string& batch) {
  B e;
  auto* s = e.mutable_submit();
  s->set_batch_id(batch);
  auto* item = s->add_items();
  item->set_index(0);
  item->set_url("http://example.com/" + batch);
  item->set_queue("generic");
  h.Send(peer, e, 9);
  h.Turn();
}

}  // namespace

TEST_CASE("BatchesAreListedNewestFirstInPagesAndSurviveARestart",
          "[broker][views]") {
  Harness h;
  for (const char* b : {"b1", "b2", "b3"}) {
    h.Submit(b, Urls(2, b));
    h.Turn();
    h.clock().Advance(Millis(1000));
  }
  B first = Ask(h, "ctl", ListBatches(2), B::kBatchList);
  const auto& page = first.batch_list();
  REQUIRE(page.batches_size() == 2);
  CHECK(page.batches(0).batch_id() == "b3");
  CHECK(page.batches(1).batch_id() == "b2");
  CHECK(page.total() == 3);
  CHECK(page.batches(0).counts().total() == 2);
  CHECK(page.batches(0).counts().queued() == 2);
  CHECK(page.batches(0).created_ms() - page.batches(1).created_ms() == 1000);
  REQUIRE(page.next_before() == page.batches(1).seq());
  B second = Ask(h, "ctl", ListBatches(2, page.next_before()), B::kBatchList);
  REQUIRE(second.batch_list().batches_size() == 1);
  CHECK(second.batch_list().batches(0).batch_id() == "b1");
  CHECK(second.batch_list().next_before() == 0);

  const int64_t created = page.batches(0).created_ms();
  h.Restart();
  B again = Ask(h, "ctl", ListBatches(), B::kBatchList);
  REQUIRE(again.batch_list().batches_size() == 3);
  CHECK(again.batch_list().batches(0).batch_id() == "b3");
  CHECK(again.batch_list().batches(0).created_ms() == created);
  CHECK(again.batch_list().batches(2).batch_id() == "b1");
}

TEST_CASE("ASubmitKeySeesOnlyItsOwnBatchesAndTasks", "[broker][views]") {
  Harness h;
  h.SetIdentity("alice", Key("alice", "submit"));
  h.SetIdentity("bob", Key("bob", "submit"));
  h.SetIdentity("root", Key("root", "admin"));
  SubmitAs(h, "alice", "a1");
  SubmitAs(h, "bob", "b1");

  B mine = Ask(h, "alice", ListBatches(), B::kBatchList);
  REQUIRE(mine.batch_list().batches_size() == 1);
  CHECK(mine.batch_list().batches(0).batch_id() == "a1");
  CHECK(mine.batch_list().batches(0).submitter() == "alice");
  CHECK(mine.batch_list().total() == 1);
  B all = Ask(h, "root", ListBatches(), B::kBatchList);
  REQUIRE(all.batch_list().batches_size() == 2);
  CHECK(all.batch_list().batches(0).submitter() == "bob");

  // Task 1 is alice's, task 2 bob's.
  B own = Ask(h, "alice", TaskRequest(1), B::kTaskReport);
  CHECK(own.task_report().task().batch_id() == "a1");
  h.Send("alice", TaskRequest(2), 5);
  auto out = h.Turn();
  const B* denied = Harness::Find(out, "alice", B::kError);
  REQUIRE(denied != nullptr);
  CHECK(denied->error().code() == wire::PERMISSION_DENIED);
  CHECK(denied->error().message() ==
        "key 'alice' may look up only the tasks of batches it submitted; "
        "task 2 is not one of them");
  // Status and the running tasks are admin's.
  B status;
  status.mutable_status_request();
  h.Send("alice", status, 6);
  out = h.Turn();
  denied = Harness::Find(out, "alice", B::kError);
  REQUIRE(denied != nullptr);
  CHECK(denied->error().code() == wire::PERMISSION_DENIED);
  CHECK(Ask(h, "root", status, B::kBrokerStatus).broker_status().batches() ==
        2);
}

TEST_CASE("AnUnknownTaskIsNotFound", "[broker][views]") {
  Harness h;
  h.Send("ctl", TaskRequest(42), 3);
  auto out = h.Turn();
  const B* e = Harness::Find(out, "ctl", B::kError);
  REQUIRE(e != nullptr);
  CHECK(e->error().code() == wire::NOT_FOUND);
  CHECK(e->error().message() == "no task 42");
}

TEST_CASE("TaskShowsItsLiveLeaseAndEveryEndedAttemptWithTimes",
          "[broker][views]") {
  BrokerOptions o = testing::TestOptions();
  o.default_max_attempts = 2;
  Harness h(o);
  h.Submit("b", {"http://example.com/x"});
  h.Turn();
  const int64_t t0 = h.clock().WallMs();
  auto tasks = h.Join("w1", "worker-1", "", 1);
  REQUIRE(tasks.size() == 1);

  B running = Ask(h, "ctl", TaskRequest(tasks[0].task_id()), B::kTaskReport);
  const auto& r = running.task_report();
  CHECK(r.task().state() == wire::TASK_STATE_LEASED);
  REQUIRE(r.leased());
  CHECK(r.lease().worker() == "worker-1");
  CHECK(r.lease().url() == "http://example.com/x");
  CHECK(r.lease().since_ms() == t0);
  CHECK(r.lease().attempt() == 1);
  B active;
  active.mutable_list_active();
  B list = Ask(h, "ctl", active, B::kActiveList);
  REQUIRE(list.active_list().tasks_size() == 1);
  CHECK(list.active_list().tasks(0).task_id() == tasks[0].task_id());
  active.mutable_list_active()->set_worker("nobody");
  CHECK(Ask(h, "ctl", active, B::kActiveList).active_list().tasks_size() == 0);
  // The worker list names what it runs.
  B workers;
  workers.mutable_list_workers();
  B wl = Ask(h, "ctl", workers, B::kWorkerList);
  REQUIRE(wl.worker_list().workers_size() == 1);
  REQUIRE(wl.worker_list().workers(0).current_size() == 1);
  CHECK(wl.worker_list().workers(0).current(0).url() == "http://example.com/x");

  // The first attempt fails after 2 s: the history says so, with times.
  h.clock().Advance(Millis(2000));
  h.Result("w1", tasks[0], false);
  h.Turn();
  B failed = Ask(h, "ctl", TaskRequest(tasks[0].task_id()), B::kTaskReport);
  const auto& f = failed.task_report();
  CHECK(f.task().state() == wire::TASK_STATE_RETRY_WAIT);
  CHECK_FALSE(f.leased());
  REQUIRE(f.task().history_size() == 1);
  CHECK(f.task().history(0).worker() == "worker-1");
  CHECK(f.task().history(0).started_ms() == t0);
  CHECK(f.task().history(0).ended_ms() == t0 + 2000);
  CHECK(f.task().history(0).error() == "exited with status 1");
  CHECK(f.not_before_ms() > t0 + 2000);
}

TEST_CASE("AWorkerThatLeftIsListedOfflineForAnHour", "[broker][views]") {
  Harness h;
  h.Join("w1", "worker-1", "", 1);
  B bye;
  bye.mutable_goodbye();
  h.Send("w1", bye);
  h.Turn();
  const int64_t left = h.clock().WallMs();
  B workers;
  workers.mutable_list_workers();
  CHECK(Ask(h, "ctl", workers, B::kWorkerList).worker_list().workers_size() ==
        0);
  workers.mutable_list_workers()->set_include_offline(true);
  B wl = Ask(h, "ctl", workers, B::kWorkerList);
  REQUIRE(wl.worker_list().workers_size() == 1);
  CHECK(wl.worker_list().workers(0).worker_id() == "worker-1");
  CHECK(wl.worker_list().workers(0).offline());
  CHECK(wl.worker_list().workers(0).state() == "offline");
  CHECK(wl.worker_list().workers(0).last_seen_ms() == left);
  // Kept across a restart (the workers table), gone after an hour.
  h.Restart();
  CHECK(Ask(h, "ctl", workers, B::kWorkerList).worker_list().workers_size() ==
        1);
  h.clock().Advance(Millis(3'600'001));
  CHECK(Ask(h, "ctl", workers, B::kWorkerList).worker_list().workers_size() ==
        0);
}

TEST_CASE("ASchema7DatabaseGetsItsBatchesInCreationOrder", "[broker][views]") {
  testing::TempDir dir;
  const std::string path = dir.File("tq.db");
  {
    auto store = SqliteTaskStore::Open(path);
    REQUIRE(store.ok());
    for (auto [batch, index, ms] :
         {std::tuple{"old", 0u, 500}, {"new", 0u, 900}, {"old", 1u, 700}}) {
      NewTask t;
      t.batch_id = batch;
      t.index = index;
      t.queue = "generic";
      t.url = "http://example.com/";
      t.max_attempts = 1;
      t.time_limit_ms = 1000;
      t.options_json = "{}";
      t.submitted_ms = ms;
      REQUIRE((*store)->Insert(t).ok());
    }
    REQUIRE((*store)->Commit().ok());
  }
  // Back to what schema 7 wrote: no batches table, no last_seen_ms.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db,
                       "DROP TABLE batches;"
                       "ALTER TABLE workers DROP COLUMN last_seen_ms;"
                       "PRAGMA user_version = 7;",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto store = SqliteTaskStore::Open(path);
  INFO(store.status().message());
  REQUIRE(store.ok());
  std::vector<std::tuple<std::string, uint64_t, int64_t>> batches;
  REQUIRE(
      (*store)
          ->LoadBatches([&](const std::string& b, uint64_t seq, int64_t ms) {
            batches.emplace_back(b, seq, ms);
          })
          .ok());
  REQUIRE(batches.size() == 2);
  CHECK(batches[0] ==
        std::tuple<std::string, uint64_t, int64_t>{"old", 1, 500});
  CHECK(batches[1] ==
        std::tuple<std::string, uint64_t, int64_t>{"new", 2, 900});
}

}  // namespace tq
