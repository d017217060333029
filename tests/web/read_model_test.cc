// The console's read model over a real (migrated) database, filled with SQL.
#include "broker/read_model.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <string>

#include "broker/sqlite_task_store.h"
#include "tests/support/temp_dir.h"

namespace tq {
namespace {

using testing::TempDir;

// A migrated database and a writable connection to fill it.
struct Db {
  TempDir dir;
  sqlite3* rw = nullptr;
  std::unique_ptr<ReadOnlyDb> ro;
  Db() {
    auto store = SqliteTaskStore::Open(dir.File("tq.db"));
    REQUIRE(store.ok());
    store->reset();
    REQUIRE(sqlite3_open(dir.File("tq.db").c_str(), &rw) == SQLITE_OK);
    auto opened = ReadOnlyDb::Open(dir.File("tq.db"));
    REQUIRE(opened.ok());
    ro = std::move(*opened);
  }
  ~Db() { sqlite3_close(rw); }
  void Exec(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(rw, sql.c_str(), nullptr, nullptr, &err);
    INFO((err ? err : ""));
    sqlite3_free(err);
    REQUIRE(rc == SQLITE_OK);
  }
  // A task; finished ones get a finish_seq and finished_ms.
  void Add(const std::string& batch, int index, const std::string& queue,
           const std::string& url, TaskState state, int64_t finished_ms = 0) {
    const bool fin = IsTerminal(state);
    Exec(
        "INSERT INTO tasks(batch_id, item_index, queue, url, priority, "
        "max_attempts, time_limit_ms, state, submitted_ms, finished_ms, "
        "finish_seq, ok, output, worker) VALUES('" +
        batch + "', " + std::to_string(index) + ", '" + queue + "', '" + url +
        "', 0, 3, 1000, " + std::to_string(int(state)) + ", 1000, " +
        (fin ? std::to_string(finished_ms) : "NULL") + ", " +
        (fin ? std::to_string(++seq) : "NULL") + ", " +
        (fin ? (state == TaskState::kDone ? "1" : "0") : "NULL") + ", " +
        (fin ? "'{\"n\":" + std::to_string(index) + "}'" : "NULL") + ", 'w1')");
  }
  int seq = 0;
};

TEST_CASE("BatchTasksPageByKeysetWithStateQueueAndUrlFilters", "[web]") {
  Db db;
  for (int i = 0; i < 10; ++i) {
    db.Add("b1", i, i % 2 ? "IT" : "generic",
           "https://h" + std::to_string(i) + ".example/",
           i < 4 ? TaskState::kDone : TaskState::kQueued, 5000);
  }
  db.Add("b2", 0, "generic", "https://other.example/", TaskState::kQueued);

  TaskFilter f;
  f.batch_id = "b1";
  f.limit = 4;
  auto p1 = ListTasks(db.ro->get(), f);
  REQUIRE(p1.ok());
  REQUIRE(p1->tasks.size() == 4);
  CHECK(p1->tasks[0].index == 0);
  CHECK(p1->next_after == 3);
  f.after_index = p1->next_after;
  auto p2 = ListTasks(db.ro->get(), f);
  REQUIRE(p2.ok());
  CHECK(p2->tasks.front().index == 4);
  f.after_index = 7;
  auto last = ListTasks(db.ro->get(), f);
  REQUIRE(last.ok());
  CHECK(last->tasks.size() == 2);
  CHECK(last->next_after == -1);

  TaskFilter done;
  done.batch_id = "b1";
  done.state = TaskState::kDone;
  done.queue = "IT";
  auto d = ListTasks(db.ro->get(), done);
  REQUIRE(d.ok());
  REQUIRE(d->tasks.size() == 2);  // 1 and 3
  CHECK(d->tasks[1].index == 3);
  CHECK(d->tasks[1].ok == true);

  TaskFilter search;
  search.batch_id = "b1";
  search.url_contains = "H7.EXAMPLE";  // case-insensitive
  auto s = ListTasks(db.ro->get(), search);
  REQUIRE(s.ok());
  REQUIRE(s->tasks.size() == 1);
  CHECK(s->tasks[0].url == "https://h7.example/");
  search.url_contains = "%";  // literal, not a wildcard
  CHECK(ListTasks(db.ro->get(), search)->tasks.empty());
}

TEST_CASE("BatchListCountsStatesNewestFirst", "[web]") {
  Db db;
  db.Add("old", 0, "generic", "https://a.example/", TaskState::kDone, 1);
  db.Add("old", 1, "generic", "https://b.example/", TaskState::kDead, 1);
  db.Add("new", 0, "generic", "https://c.example/", TaskState::kQueued);
  auto page = ListBatches(db.ro->get(), 0, 1);
  REQUIRE(page.ok());
  REQUIRE(page->batches.size() == 1);
  CHECK(page->batches[0].batch_id == "new");
  CHECK(page->batches[0].submitted_ms == 1000);
  REQUIRE(page->next_before != 0);
  auto older = ListBatches(db.ro->get(), page->next_before, 10);
  REQUIRE(older.ok());
  REQUIRE(older->batches.size() == 1);
  CHECK(older->batches[0].batch_id == "old");
  CHECK(older->batches[0].counts[TaskState::kDone] == 1);
  CHECK(older->batches[0].counts[TaskState::kDead] == 1);
  CHECK(older->batches[0].counts.finished() == 2);
  CHECK(older->next_before == 0);

  auto counts = CountBatch(db.ro->get(), "old");
  REQUIRE(counts.ok());
  CHECK(counts->total() == 2);
  auto queues = CountByQueue(db.ro->get());
  REQUIRE(queues.ok());
  REQUIRE(queues->size() == 1);
  CHECK((*queues)[0].counts.total() == 3);
}

TEST_CASE("FinishedPerMinuteBucketsTheLastHour", "[web]") {
  Db db;
  const int64_t now = 100 * 60'000 + 30'000;
  db.Add("b", 0, "generic", "https://a.example/", TaskState::kDone, now - 1000);
  db.Add("b", 1, "generic", "https://a.example/", TaskState::kDone, now - 2000);
  db.Add("b", 2, "generic", "https://a.example/", TaskState::kDead,
         now - 5 * 60'000);
  db.Add("b", 3, "generic", "https://a.example/", TaskState::kDone,
         now - 2 * 3600'000);  // outside the hour
  auto m = FinishedPerMinute(db.ro->get(), now, 60);
  REQUIRE(m.ok());
  REQUIRE(m->size() == 60);
  CHECK(m->back().minute_ms == 100 * 60'000);
  CHECK(m->back().done == 2);
  CHECK((*m)[54].failed == 1);
  uint64_t total = 0;
  for (const auto& x : *m) total += x.done + x.failed;
  CHECK(total == 3);
}

TEST_CASE("ReadTaskGivesOptionsResultAndFiles", "[web]") {
  Db db;
  db.Add("b", 0, "generic", "https://a.example/", TaskState::kDone, 5);
  db.Add("b", 1, "generic", "https://b.example/", TaskState::kQueued);
  db.Exec(
      "INSERT INTO task_files(task_id, name, sha256, size) VALUES(1, "
      "'x.html', 'ab', 3)");
  auto t = ReadTask(db.ro->get(), 1);
  REQUIRE(t.ok());
  CHECK(t->options_json == "{}");
  REQUIRE(t->result.has_value());
  CHECK(t->result->output == "{\"n\":0}");
  REQUIRE(t->result->files.size() == 1);
  CHECK(t->result->files[0].name == "x.html");
  auto q = ReadTask(db.ro->get(), 2);
  REQUIRE(q.ok());
  CHECK_FALSE(q->result.has_value());
  CHECK(ReadTask(db.ro->get(), 99).status().code() == Status::Code::kNotFound);

  auto results = ReadResults(db.ro->get(), "b", 0, 10);
  REQUIRE(results.ok());
  REQUIRE(results->size() == 1);
  CHECK((*results)[0].files.size() == 1);
  CHECK((*results)[0].state == "done");
}

TEST_CASE("ReadOnlyConnectionCannotWrite", "[web]") {
  Db db;
  char* err = nullptr;
  CHECK(sqlite3_exec(db.ro->get(), "DELETE FROM tasks", nullptr, nullptr,
                     &err) == SQLITE_READONLY);
  sqlite3_free(err);
}

}  // namespace
}  // namespace tq
