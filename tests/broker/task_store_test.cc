#include <sqlite3.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "broker/sqlite_task_store.h"
#include "tests/support/faulty_task_store.h"

namespace tq {
namespace {

// A fresh directory per test, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/tq_task_store_XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::unique_ptr<SqliteTaskStore> OpenStore(const std::string& path,
                                           const SqliteOptions& options = {}) {
  auto store = SqliteTaskStore::Open(path, options);
  INFO(store.status().message());
  REQUIRE(store.ok());
  return std::move(store.value());
}

NewTask MakeTask(const std::string& batch, uint32_t index,
                 const std::string& queue = "default") {
  NewTask t;
  t.batch_id = batch;
  t.index = index;
  t.queue = queue;
  t.url = "https://example.com/" + batch + "/" + std::to_string(index);
  t.priority = -3;
  t.max_attempts = 5;
  t.time_limit_ms = 30000;
  t.options_json = R"({"lang":"en"})";
  t.submitted_ms = 1'700'000'000'123;
  return t;
}

uint64_t InsertOk(TaskStore& store, const NewTask& task) {
  auto id = store.Insert(task);
  INFO(id.status().message());
  REQUIRE(id.ok());
  REQUIRE(id->has_value());
  return **id;
}

void RequireOk(const Status& s) {
  INFO(s.message());
  REQUIRE(s.ok());
}

template <typename T>
void RequireOk(const Result<T>& r) {
  RequireOk(r.status());
}

std::vector<PendingTask> Pending(TaskStore& store) {
  std::vector<PendingTask> pending;
  Status st =
      store.LoadPending([&](const PendingTask& p) { pending.push_back(p); });
  INFO(st.message());
  REQUIRE(st.ok());
  return pending;
}

uint64_t MaxFinishSeq(TaskStore& store) {
  auto summary = store.LoadFinishedSummary();
  INFO(summary.status().message());
  REQUIRE(summary.ok());
  return summary->max_finish_seq;
}

// The last_error column of a task, read with SQLite directly (the broker
// never reads it back: it is there for people looking at the database).
std::string StoredLastError(const std::string& path, uint64_t id) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT last_error FROM tasks WHERE id = ?",
                             -1, &stmt, nullptr) == SQLITE_OK);
  sqlite3_bind_int64(stmt, 1, static_cast<int64_t>(id));
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  const auto* text =
      reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  std::string error = text ? text : "";
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return error;
}

std::vector<TaskResult> Finished(TaskStore& store, const std::string& batch,
                                 uint64_t after = 0, uint32_t limit = 1000) {
  auto finished = store.ReadFinished(batch, after, limit);
  INFO(finished.status().message());
  REQUIRE(finished.ok());
  return *finished;
}

AttemptResult FullOutcome() {
  AttemptResult o;
  o.ok = true;
  o.output = std::string("bin\0ary\0\xff\x01 out", 15);
  o.output_truncated = true;
  o.error = "none really";
  o.exit_code = 3;
  o.stderr_tail = "warning: x";
  o.duration_ms = 1234;
  o.worker = "worker-7";
  return o;
}

void SetUserVersion(const std::string& path, int version) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  std::string sql = "PRAGMA user_version = " + std::to_string(version);
  REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  sqlite3_close(db);
}

TEST_CASE("Open creates a database at the current schema version") {
  TempDir dir;
  const std::string path = dir.File("tq.db");
  OpenStore(path);
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr) ==
          SQLITE_OK);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  CHECK(sqlite3_column_int(stmt, 0) == SqliteTaskStore::kSchemaVersion);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  // Reopening an up-to-date database migrates nothing and works.
  OpenStore(path);
}

TEST_CASE("Inserted task survives close and reopen") {
  TempDir dir;
  const std::string path = dir.File("tq.db");
  const NewTask task = MakeTask("b1", 7, "crawl");
  uint64_t id;
  {
    auto store = OpenStore(path);
    id = InsertOk(*store, task);
    RequireOk(store->Commit());
  }
  auto store = OpenStore(path);
  auto pending = Pending(*store);
  REQUIRE(pending.size() == 1);
  const PendingTask& p = pending[0];
  CHECK(p.id == id);
  CHECK(p.batch_id == "b1");
  CHECK(p.queue == "crawl");
  CHECK(p.priority == -3);
  CHECK(p.max_attempts == 5);
  CHECK(p.time_limit_ms == 30000);
  CHECK(p.state == TaskState::kQueued);
  CHECK(p.attempts == 0);
  CHECK(p.token == 0);
  CHECK(p.not_before_ms == 0);
  // URL and options come back with the lease.
  auto payload = store->MarkLeased(id, 9, 1, "w1", 100);
  INFO(payload.status().message());
  REQUIRE(payload.ok());
  CHECK(payload->url == task.url);
  CHECK(payload->options_json == task.options_json);
}

TEST_CASE("Lease survives close and reopen") {
  TempDir dir;
  const std::string path = dir.File("tq.db");
  {
    auto store = OpenStore(path);
    uint64_t id = InsertOk(*store, MakeTask("b1", 0));
    RequireOk(store->MarkLeased(id, 0xFEEDFACECAFEull, 2, "w1", 5000));
    RequireOk(store->Commit());
  }
  auto store = OpenStore(path);
  auto pending = Pending(*store);
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].state == TaskState::kLeased);
  CHECK(pending[0].token == 0xFEEDFACECAFEull);
  CHECK(pending[0].attempts == 2);
}

TEST_CASE("Queued and retry_wait with not_before survive close and reopen") {
  TempDir dir;
  const std::string path = dir.File("tq.db");
  {
    auto store = OpenStore(path);
    uint64_t a = InsertOk(*store, MakeTask("b1", 0));
    uint64_t b = InsertOk(*store, MakeTask("b1", 1));
    RequireOk(store->MarkLeased(a, 11, 1, "w1", 100));
    RequireOk(store->MarkLeased(b, 12, 1, "w1", 100));
    RequireOk(store->Commit());
    RequireOk(
        store->MarkWaiting(a, TaskState::kRetryWait, 1, 99'000, "HTTP 503"));
    RequireOk(store->MarkWaiting(b, TaskState::kQueued, 1, 0, "released"));
    RequireOk(store->Commit());
  }
  auto store = OpenStore(path);
  auto pending = Pending(*store);
  REQUIRE(pending.size() == 2);
  CHECK(pending[0].state == TaskState::kRetryWait);
  CHECK(pending[0].not_before_ms == 99'000);
  CHECK(StoredLastError(path, pending[0].id) == "HTTP 503");
  CHECK(pending[0].attempts == 1);
  CHECK(pending[0].token == 11);  // kept to match a late result
  CHECK(pending[1].state == TaskState::kQueued);
  CHECK(StoredLastError(path, pending[1].id) == "released");
  CHECK(pending[1].token == 12);
  // Without a new error the stored one stays.
  RequireOk(store->MarkWaiting(pending[1].id, TaskState::kQueued, 0, 0,
                               std::nullopt));
  RequireOk(store->Commit());
  store.reset();
  CHECK(StoredLastError(path, pending[1].id) == "released");
}

TEST_CASE("Finished outcome with binary output survives close and reopen") {
  TempDir dir;
  const std::string path = dir.File("tq.db");
  const AttemptResult outcome = FullOutcome();
  uint64_t id;
  {
    auto store = OpenStore(path);
    id = InsertOk(*store, MakeTask("b1", 4, "q"));
    RequireOk(store->MarkLeased(id, 1, 1, "worker-7", 100));
    RequireOk(store->MarkFinished(id, TaskState::kDone, 1, 42, outcome, 7'000));
    RequireOk(store->Commit());
  }
  auto store = OpenStore(path);
  CHECK(Pending(*store).empty());
  auto finished = Finished(*store, "b1");
  REQUIRE(finished.size() == 1);
  const TaskResult& f = finished[0];
  CHECK(f.task_id == id);
  CHECK(f.batch_id == "b1");
  CHECK(f.index == 4);
  CHECK(f.queue == "q");
  CHECK(f.url == MakeTask("b1", 4).url);
  CHECK(f.state == "done");
  CHECK(f.attempts == 1);
  CHECK(f.submitted_ms == MakeTask("b1", 4).submitted_ms);
  CHECK(f.finished_ms == 7'000);
  CHECK(f.finish_seq == 42);
  CHECK(f.ok);
  CHECK(f.output.size() == 15);
  CHECK(f.output == outcome.output);
  CHECK(f.output_truncated);
  CHECK(f.error == outcome.error);
  CHECK(f.exit_code == 3);
  CHECK(f.stderr_tail == outcome.stderr_tail);
  CHECK(f.duration_ms == 1234);
  CHECK(f.worker == "worker-7");
  CHECK(MaxFinishSeq(*store) == 42);
}

TEST_CASE("Cancelled task survives close and reopen and keeps its lessee") {
  TempDir dir;
  const std::string path = dir.File("tq.db");
  uint64_t id;
  {
    auto store = OpenStore(path);
    id = InsertOk(*store, MakeTask("b1", 0));
    InsertOk(*store, MakeTask("b1", 1));
    RequireOk(store->MarkLeased(id, 1, 1, "w9", 100));
    RequireOk(store->MarkFinished(id, TaskState::kCancelled, 1, 5,
                                  AttemptResult{}, 200));
    RequireOk(store->Commit());
  }
  auto store = OpenStore(path);
  auto pending = Pending(*store);
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].id != id);
  auto finished = Finished(*store, "b1");
  REQUIRE(finished.size() == 1);
  CHECK(finished[0].state == "cancelled");
  CHECK_FALSE(finished[0].ok);
  CHECK(finished[0].output.empty());
  CHECK(finished[0].worker == "w9");
}

TEST_CASE(
    "Duplicate batch and index insert returns nullopt and keeps the row") {
  TempDir dir;
  auto store = OpenStore(dir.File("tq.db"));
  uint64_t id = InsertOk(*store, MakeTask("b1", 0, "first"));
  RequireOk(store->Commit());
  NewTask again = MakeTask("b1", 0, "second");
  again.url = "https://other.example/";
  auto dup = store->Insert(again);
  REQUIRE(dup.ok());
  CHECK_FALSE(dup->has_value());
  // Same index in another batch is a different task.
  CHECK(InsertOk(*store, MakeTask("b2", 0)) != id);
  RequireOk(store->Commit());
  auto pending = Pending(*store);
  REQUIRE(pending.size() == 2);
  CHECK(pending[0].id == id);
  CHECK(pending[0].queue == "first");
  auto payload = store->MarkLeased(id, 1, 1, "w", 0);
  REQUIRE(payload.ok());
  CHECK(payload->url == MakeTask("b1", 0).url);
}

TEST_CASE("Writes not committed are gone after reopen") {
  TempDir dir;
  const std::string path = dir.File("tq.db");
  {
    auto store = OpenStore(path);
    uint64_t id = InsertOk(*store, MakeTask("b1", 0));
    RequireOk(store->Commit());
    RequireOk(store->MarkLeased(id, 3, 1, "w1", 100));
    InsertOk(*store, MakeTask("b1", 1));
    // Destroyed without Commit().
  }
  auto store = OpenStore(path);
  auto pending = Pending(*store);
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].state == TaskState::kQueued);
  CHECK(pending[0].token == 0);
}

TEST_CASE("Abort discards writes since the last commit") {
  TempDir dir;
  const std::string path = dir.File("tq.db");
  uint64_t first = 0, second = 0;
  {
    auto store = OpenStore(path);
    const uint64_t id = first = InsertOk(*store, MakeTask("b1", 0));
    RequireOk(store->Commit());
    RequireOk(store->MarkLeased(id, 3, 1, "w1", 100));
    InsertOk(*store, MakeTask("b1", 1));
    store->Abort();
    auto pending = Pending(*store);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].state == TaskState::kQueued);
    // Abort without a transaction and Commit without writes are no-ops.
    store->Abort();
    RequireOk(store->Commit());
    // The store takes writes again.
    second = InsertOk(*store, MakeTask("b1", 2));
    RequireOk(store->Commit());
  }
  auto store = OpenStore(path);
  auto pending = Pending(*store);
  REQUIRE(pending.size() == 2);
  CHECK(pending[0].id == first);
  CHECK(pending[1].id == second);
}

TEST_CASE("Reads see the writes of the open transaction") {
  TempDir dir;
  auto store = OpenStore(dir.File("tq.db"));
  uint64_t a = InsertOk(*store, MakeTask("b1", 0));
  uint64_t b = InsertOk(*store, MakeTask("b1", 1));
  RequireOk(store->MarkLeased(a, 1, 1, "w1", 100));
  RequireOk(store->MarkFinished(b, TaskState::kDead, 3, 9, FullOutcome(), 50));
  auto pending = Pending(*store);
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].state == TaskState::kLeased);
  CHECK(Finished(*store, "b1").size() == 1);
  auto dead = store->LoadDead("b1", "");
  REQUIRE(dead.ok());
  CHECK(dead->size() == 1);
  CHECK(MaxFinishSeq(*store) == 9);
  store->Abort();
  CHECK(Pending(*store).empty());
}

TEST_CASE("Writes to an unknown task id return NotFound") {
  TempDir dir;
  auto store = OpenStore(dir.File("tq.db"));
  uint64_t id = InsertOk(*store, MakeTask("b1", 0));
  CHECK(store->MarkLeased(999, 1, 1, "w", 0).status().code() ==
        Status::Code::kNotFound);
  CHECK(store->MarkWaiting(999, TaskState::kQueued, 1, 0, "").code() ==
        Status::Code::kNotFound);
  CHECK(store->MarkFinished(999, TaskState::kDone, 1, 1, {}, 0).code() ==
        Status::Code::kNotFound);
  CHECK(store->MarkWaiting(id, TaskState::kDone, 1, 0, "").code() ==
        Status::Code::kInvalidArgument);
  CHECK(store->MarkFinished(id, TaskState::kLeased, 1, 1, {}, 0).code() ==
        Status::Code::kInvalidArgument);
  // Nothing was written by those, so the transaction is still good.
  RequireOk(store->Commit());
  CHECK(Pending(*store).size() == 1);
}

TEST_CASE("A transaction that fills the disk keeps nothing of it") {
  TempDir dir;
  const std::string path = dir.File("tq.db");
  {
    auto store = OpenStore(path);
    InsertOk(*store, MakeTask("committed", 0));
    RequireOk(store->Commit());
  }
  {
    SqliteOptions options;
    options.max_page_count = 64;  // 256 KiB at the default page size
    auto store = OpenStore(path, options);
    const std::string big(8000, 'x');
    Status failure;
    for (uint32_t i = 0; i < 10'000 && failure.ok(); ++i) {
      NewTask t = MakeTask("big", i);
      t.url = big;
      auto id = store->Insert(t);
      if (!id.ok()) failure = id.status();
    }
    INFO(failure.message());
    REQUIRE_FALSE(failure.ok());
    CHECK(failure.message().find("full") != std::string::npos);
    // Later writes of the failed transaction fail too, and so does Commit.
    CHECK_FALSE(store->Insert(MakeTask("after", 0)).ok());
    Status commit = store->Commit();
    INFO(commit.message());
    REQUIRE_FALSE(commit.ok());
    CHECK(commit.code() == Status::Code::kIoError);
    CHECK(commit.message().find("commit failed") != std::string::npos);
    CHECK(commit.message().find("full") != std::string::npos);
    // The failed transaction is gone and the committed data is still there.
    auto pending = Pending(*store);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].batch_id == "committed");
    // Small writes that fit the cap go through again.
    RequireOk(store->Probe());
    InsertOk(*store, MakeTask("small", 0));
    RequireOk(store->Commit());
  }
  auto store = OpenStore(path);
  auto pending = Pending(*store);
  REQUIRE(pending.size() == 2);
  CHECK(pending[0].batch_id == "committed");
  CHECK(pending[1].batch_id == "small");
  // Without the cap the store grows again.
  NewTask t = MakeTask("big", 0);
  t.url = std::string(400'000, 'y');
  InsertOk(*store, t);
  RequireOk(store->Commit());
}

TEST_CASE("Failed commit via FaultyTaskStore persists nothing") {
  TempDir dir;
  const std::string path = dir.File("tq.db");
  uint64_t first = 0, third = 0;
  {
    auto sqlite = OpenStore(path);
    FaultyTaskStore store(*sqlite);
    const uint64_t id = first = InsertOk(store, MakeTask("b1", 0));
    RequireOk(store.Commit());
    RequireOk(store.Probe());

    store.FailCommits(true, "disk on fire");
    RequireOk(store.MarkLeased(id, 1, 1, "w1", 100));
    InsertOk(store, MakeTask("b1", 1));
    Status s = store.Commit();
    CHECK(s.code() == Status::Code::kIoError);
    CHECK(s.message() == "disk on fire");
    CHECK_FALSE(store.Probe().ok());
    auto pending = Pending(store);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].state == TaskState::kQueued);

    store.FailCommits(false);
    RequireOk(store.Probe());
    third = InsertOk(store, MakeTask("b1", 2));
    RequireOk(store.Commit());
    CHECK(store.commit_calls() == 3);
  }
  auto store = OpenStore(path);
  auto pending = Pending(*store);
  REQUIRE(pending.size() == 2);
  CHECK(pending[0].id == first);
  CHECK(pending[0].state == TaskState::kQueued);
  CHECK(pending[1].id == third);
}

TEST_CASE(
    "FaultyTaskStore FailWrites fails writes without reaching the store") {
  TempDir dir;
  auto sqlite = OpenStore(dir.File("tq.db"));
  FaultyTaskStore store(*sqlite);
  uint64_t id = InsertOk(store, MakeTask("b1", 0));
  RequireOk(store.Commit());
  store.FailWrites(true);
  CHECK(store.Insert(MakeTask("b1", 1)).status().code() ==
        Status::Code::kIoError);
  CHECK(store.MarkLeased(id, 1, 1, "w", 0).status().code() ==
        Status::Code::kIoError);
  CHECK(store.MarkWaiting(id, TaskState::kQueued, 1, 0, "").code() ==
        Status::Code::kIoError);
  CHECK(store.MarkFinished(id, TaskState::kDone, 1, 1, {}, 0).code() ==
        Status::Code::kIoError);
  store.FailWrites(false);
  RequireOk(store.Commit());
  auto pending = Pending(store);
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].state == TaskState::kQueued);
}

TEST_CASE("Database with a newer schema version is refused") {
  TempDir dir;
  const std::string path = dir.File("tq.db");
  OpenStore(path);
  const int newer = SqliteTaskStore::kSchemaVersion + 1;
  SetUserVersion(path, newer);
  auto store = SqliteTaskStore::Open(path);
  REQUIRE_FALSE(store.ok());
  INFO(store.status().message());
  CHECK(store.status().code() == Status::Code::kCorruption);
  CHECK(store.status().message().find(
            "database schema version " + std::to_string(newer) +
            " is newer than this tq-broker "
            "supports (" +
            std::to_string(SqliteTaskStore::kSchemaVersion) + ")") !=
        std::string::npos);
  CHECK(store.status().message().find(path) != std::string::npos);
}

TEST_CASE("Opening a file that is not a database gives a clear error") {
  TempDir dir;
  const std::string path = dir.File("garbage.db");
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 4096; ++i) out.put(static_cast<char>(i * 31 + 7));
  }
  auto store = SqliteTaskStore::Open(path);
  REQUIRE_FALSE(store.ok());
  INFO(store.status().message());
  CHECK(store.status().message().find(path) != std::string::npos);
  CHECK(store.status().message().find("not a database") != std::string::npos);
}

TEST_CASE("Opening a path that cannot be created gives a clear error") {
  TempDir dir;
  const std::string path = dir.File("no/such/dir/tq.db");
  auto store = SqliteTaskStore::Open(path);
  REQUIRE_FALSE(store.ok());
  INFO(store.status().message());
  CHECK(store.status().code() == Status::Code::kIoError);
  CHECK(store.status().message().find(path) != std::string::npos);
  CHECK(store.status().message().find("unable to open") != std::string::npos);
}

TEST_CASE("ReadFinished pages through a batch by finish_seq cursor") {
  TempDir dir;
  auto store = OpenStore(dir.File("tq.db"));
  // Finish in an order different from insertion; interleave another batch.
  const uint32_t kTasks = 10;
  std::vector<uint64_t> ids;
  for (uint32_t i = 0; i < kTasks; ++i) {
    ids.push_back(InsertOk(*store, MakeTask("b1", i)));
    InsertOk(*store, MakeTask("other", i));
  }
  uint64_t seq = 100;
  for (uint32_t i = kTasks; i-- > 0;) {
    RequireOk(store->MarkFinished(ids[i], TaskState::kDone, 1, ++seq,
                                  FullOutcome(), 0));
    ++seq;  // gaps, as when other batches finish in between
  }
  RequireOk(store->Commit());

  std::vector<uint32_t> indexes;
  uint64_t cursor = 0;
  int pages = 0;
  while (true) {
    auto page = Finished(*store, "b1", cursor, 3);
    if (page.empty()) break;
    CHECK(page.size() <= 3);
    for (const TaskResult& f : page) {
      CHECK(f.finish_seq > cursor);
      cursor = f.finish_seq;
      indexes.push_back(f.index);
    }
    ++pages;
  }
  CHECK(pages == 4);
  REQUIRE(indexes.size() == kTasks);
  for (uint32_t i = 0; i < kTasks; ++i) CHECK(indexes[i] == kTasks - 1 - i);
  CHECK(Finished(*store, "other").empty());
  CHECK(Finished(*store, "nope").empty());
}

TEST_CASE("LoadDead returns dead tasks of a batch or of a queue") {
  TempDir dir;
  auto store = OpenStore(dir.File("tq.db"));
  uint64_t a = InsertOk(*store, MakeTask("b1", 0, "q1"));
  uint64_t b = InsertOk(*store, MakeTask("b1", 1, "q2"));
  uint64_t c = InsertOk(*store, MakeTask("b2", 0, "q1"));
  uint64_t d = InsertOk(*store, MakeTask("b2", 1, "q1"));
  RequireOk(store->MarkFinished(a, TaskState::kDead, 5, 1, {}, 0));
  RequireOk(store->MarkFinished(b, TaskState::kDead, 5, 2, {}, 0));
  RequireOk(store->MarkFinished(c, TaskState::kDead, 5, 3, {}, 0));
  RequireOk(store->MarkFinished(d, TaskState::kDone, 1, 4, {}, 0));
  RequireOk(store->MarkWaiting(d, TaskState::kQueued, 1, 0, ""));
  RequireOk(store->Commit());

  auto by_batch = store->LoadDead("b1", "");
  REQUIRE(by_batch.ok());
  REQUIRE(by_batch->size() == 2);
  CHECK((*by_batch)[0].id == a);
  CHECK((*by_batch)[1].id == b);
  CHECK((*by_batch)[0].state == TaskState::kDead);
  CHECK((*by_batch)[0].attempts == 5);
  CHECK((*by_batch)[1].queue == "q2");

  auto by_queue = store->LoadDead("", "q1");
  REQUIRE(by_queue.ok());
  REQUIRE(by_queue->size() == 2);
  CHECK((*by_queue)[0].id == a);
  CHECK((*by_queue)[1].id == c);

  auto none = store->LoadDead("", "q3");
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("MarkWaiting after finished clears the stored result") {
  TempDir dir;
  const std::string path = dir.File("tq.db");
  uint64_t id;
  {
    auto store = OpenStore(path);
    id = InsertOk(*store, MakeTask("b1", 0));
    RequireOk(store->MarkLeased(id, 4, 3, "w1", 100));
    RequireOk(
        store->MarkFinished(id, TaskState::kDead, 3, 17, FullOutcome(), 200));
    RequireOk(store->Commit());
    REQUIRE(Finished(*store, "b1").size() == 1);
    // RetryDead brings it back.
    RequireOk(store->MarkWaiting(id, TaskState::kQueued, 0, 0, ""));
    RequireOk(store->Commit());
  }
  auto store = OpenStore(path);
  CHECK(Finished(*store, "b1").empty());
  CHECK(MaxFinishSeq(*store) == 0);
  auto pending = Pending(*store);
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].id == id);
  CHECK(pending[0].state == TaskState::kQueued);
  CHECK(pending[0].attempts == 0);
  auto dead = store->LoadDead("b1", "");
  REQUIRE(dead.ok());
  CHECK(dead->empty());
}

TEST_CASE("LoadFinishedSummary counts finished tasks per batch, queue, state") {
  TempDir dir;
  auto store = OpenStore(dir.File("tq.db"));
  uint64_t a = InsertOk(*store, MakeTask("b1", 0, "q1"));
  InsertOk(*store, MakeTask("b1", 1, "q1"));
  uint64_t c = InsertOk(*store, MakeTask("b1", 2, "q1"));
  uint64_t d = InsertOk(*store, MakeTask("b1", 3, "q2"));
  uint64_t e = InsertOk(*store, MakeTask("b1", 4, "q1"));
  uint64_t f = InsertOk(*store, MakeTask("b2", 0, "q2"));
  InsertOk(*store, MakeTask("b2", 1, "q2"));
  RequireOk(store->MarkLeased(a, 1, 1, "w", 0));
  RequireOk(store->MarkFinished(c, TaskState::kDone, 1, 1, {}, 0));
  RequireOk(store->MarkFinished(d, TaskState::kDone, 1, 7, {}, 0));
  RequireOk(store->MarkFinished(e, TaskState::kDone, 1, 3, {}, 0));
  RequireOk(store->MarkFinished(f, TaskState::kCancelled, 0, 4, {}, 0));
  RequireOk(store->Commit());
  auto summary = store->LoadFinishedSummary();
  REQUIRE(summary.ok());
  std::map<std::tuple<std::string, std::string, TaskState>, uint64_t> got;
  for (const StateCount& sc : summary->counts) {
    got[{sc.batch_id, sc.queue, sc.state}] += sc.count;
  }
  // Queued and leased tasks are counted by the broker as it loads them.
  std::map<std::tuple<std::string, std::string, TaskState>, uint64_t> want = {
      {{"b1", "q1", TaskState::kDone}, 2},
      {{"b1", "q2", TaskState::kDone}, 1},
      {{"b2", "q2", TaskState::kCancelled}, 1},
  };
  CHECK(got == want);
  CHECK(summary->counts.size() == want.size());  // one row per key
  CHECK(summary->max_finish_seq == 7);
}

TEST_CASE("A deferred-sync store keeps its WAL bounded by checkpoints") {
  TempDir dir;
  const std::string path = dir.File("tq.db");
  SqliteOptions options;
  options.deferred_sync = true;
  options.checkpoint_frames = 50;
  constexpr uint32_t kCommits = 400;  // a few frames each: far past 50
  {
    auto store = OpenStore(path, options);
    for (uint32_t i = 0; i < kCommits; ++i) {
      InsertOk(*store, MakeTask("b", i));
      RequireOk(store->Commit());
    }
    // Restarted, not grown: at most the threshold plus one commit's frames
    // (each frame is a 24-byte header and a 4 KiB page).
    const auto wal_bytes = std::filesystem::file_size(store->wal_path());
    INFO("WAL bytes: " << wal_bytes);
    CHECK(wal_bytes < 60 * (4096 + 24) + 32);
  }
  auto store = OpenStore(path);
  CHECK(Pending(*store).size() == kCommits);
}

TEST_CASE("Probe refuses to run inside an open transaction") {
  TempDir dir;
  auto store = OpenStore(dir.File("tq.db"));
  RequireOk(store->Probe());
  InsertOk(*store, MakeTask("b1", 0));
  CHECK_FALSE(store->Probe().ok());
  RequireOk(store->Commit());
  RequireOk(store->Probe());
}

// Not run by default: `tq_broker_tests "[.bench]"` prints the store's rate
// for the broker's pattern (insert, lease, finish; group commit).
TEST_CASE("Store throughput", "[.bench]") {
  TempDir dir;
  auto store = OpenStore(dir.File("tq.db"));
  const uint32_t kTasks = 100'000;
  const uint32_t kPerCommit = 300;
  AttemptResult outcome;
  outcome.ok = true;
  outcome.output = std::string(200, 'o');
  outcome.worker = "w1";
  auto start = std::chrono::steady_clock::now();
  uint64_t seq = 0;
  for (uint32_t base = 0; base < kTasks; base += kPerCommit) {
    std::vector<uint64_t> ids;
    for (uint32_t i = base; i < base + kPerCommit; ++i) {
      ids.push_back(InsertOk(*store, MakeTask("bench", i)));
    }
    RequireOk(store->Commit());
    for (uint64_t id : ids) RequireOk(store->MarkLeased(id, id, 1, "w1", 0));
    RequireOk(store->Commit());
    for (uint64_t id : ids) {
      RequireOk(
          store->MarkFinished(id, TaskState::kDone, 1, ++seq, outcome, 0));
    }
    RequireOk(store->Commit());
  }
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf("%u tasks in %.2fs: %.0f tasks/s\n", kTasks, secs, kTasks / secs);
}

uint64_t FileSize(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(size);
}

TEST_CASE("The WAL is cut to its limit after a burst and emptied when idle") {
  for (bool deferred : {false, true}) {
    INFO("deferred_sync " << deferred);
    TempDir dir;
    const std::string path = dir.File("tq.db");
    SqliteOptions options;
    options.deferred_sync = deferred;
    options.checkpoint_frames = 50;
    options.journal_size_limit = 512 << 10;
    options.reserve_bytes = 0;
    auto store = OpenStore(path, options);
    // One big transaction grows the WAL far past the limit...
    for (uint32_t i = 0; i < 600; ++i) {
      NewTask t = MakeTask("big", i);
      t.url = std::string(8000, 'x');
      InsertOk(*store, t);
    }
    RequireOk(store->Commit());
    CHECK(FileSize(store->wal_path()) > 4u << 20);
    // ...then, from the first checkpoint (which resets the WAL) on, a burst
    // of small commits keeps it under the limit.
    uint64_t largest = 0;
    for (uint32_t i = 0; i < 2000; ++i) {
      InsertOk(*store, MakeTask("small", i));
      RequireOk(store->Commit());
      if (i >= 200) largest = std::max(largest, FileSize(store->wal_path()));
    }
    CHECK(largest > 0);
    CHECK(largest <= static_cast<uint64_t>(options.journal_size_limit));
    // Idle: copied into the database and truncated.
    RequireOk(store->CheckpointIfIdle());
    CHECK(FileSize(store->wal_path()) == 0);
    RequireOk(store->CheckpointIfIdle());  // nothing new: no work
    // Not with a transaction open; it is done once that is committed.
    InsertOk(*store, MakeTask("open", 0));
    RequireOk(store->CheckpointIfIdle());
    CHECK(store->HasUncommitted());
    RequireOk(store->Commit());
    CHECK(FileSize(store->wal_path()) > 0);
    RequireOk(store->CheckpointIfIdle());
    CHECK(FileSize(store->wal_path()) == 0);
    CHECK(Pending(*store).size() == 2601);
  }
}

TEST_CASE("Close leaves an empty WAL and the data in the database") {
  for (bool deferred : {false, true}) {
    INFO("deferred_sync " << deferred);
    TempDir dir;
    const std::string path = dir.File("tq.db");
    SqliteOptions options;
    options.deferred_sync = deferred;
    options.reserve_bytes = 0;
    {
      auto store = OpenStore(path, options);
      for (uint32_t i = 0; i < 500; ++i) InsertOk(*store, MakeTask("b", i));
      RequireOk(store->Commit());
      CHECK(FileSize(store->wal_path()) > 0);
      InsertOk(*store, MakeTask("uncommitted", 0));
    }
    CHECK(FileSize(path + "-wal") == 0);
    auto store = OpenStore(path, options);
    CHECK(Pending(*store).size() == 500);
  }
}

TEST_CASE("A capped database releases its reserve and Probe re-creates it") {
  TempDir dir;
  const std::string path = dir.File("tq.db");
  SqliteOptions options;
  options.max_page_count = 64;
  options.reserve_bytes = 64 << 10;
  auto store = OpenStore(path, options);
  CHECK(store->reserve_path() == path + "-reserve");
  CHECK(store->reserve_present());
  CHECK(FileSize(store->reserve_path()) == 64u << 10);
  Status failure;
  for (uint32_t i = 0; i < 10'000 && failure.ok(); ++i) {
    NewTask t = MakeTask("big", i);
    t.url = std::string(8000, 'x');
    auto id = store->Insert(t);
    if (!id.ok()) failure = id.status();
  }
  REQUIRE_FALSE(failure.ok());
  CHECK_FALSE(store->reserve_present());
  CHECK_FALSE(std::filesystem::exists(store->reserve_path()));
  CHECK_FALSE(store->Commit().ok());
  // The file system itself has room: the reserve comes back at once.
  RequireOk(store->Probe());
  CHECK(store->reserve_present());
  CHECK(FileSize(store->reserve_path()) == 64u << 10);
}

// A small tmpfs, mounted for one test (needs root) and unmounted after.
class SmallFileSystem {
 public:
  explicit SmallFileSystem(const std::string& dir, const char* size)
      : dir_(dir) {
    std::filesystem::create_directories(dir_);
    const std::string data = std::string("size=") + size;
    mounted_ = geteuid() == 0 &&
               mount("tmpfs", dir_.c_str(), "tmpfs", 0, data.c_str()) == 0;
  }
  ~SmallFileSystem() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

// Writes zeros to `path` until the file system is full; returns the bytes.
uint64_t FillDisk(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  std::setvbuf(f, nullptr, _IONBF, 0);
  const std::string chunk(4096, '\0');
  uint64_t written = 0;
  for (int i = 0; i < 1'000'000; ++i) {
    if (std::fwrite(chunk.data(), 1, chunk.size(), f) != chunk.size()) break;
    written += chunk.size();
  }
  std::fclose(f);
  return written;
}

TEST_CASE("On a full disk the reserve pays for recovery and comes back after") {
  TempDir dir;
  const std::string mnt = dir.File("mnt");
  SmallFileSystem fs(mnt, "8m");
  if (!fs.mounted()) {
    WARN("cannot mount a tmpfs here (needs root): not tested");
    return;
  }
  const std::string path = mnt + "/tq.db";
  const std::string filler = mnt + "/filler";
  SqliteOptions options;
  options.reserve_bytes = 1 << 20;
  options.journal_size_limit = 256 << 10;
  uint32_t committed = 0;
  {
    auto store = OpenStore(path, options);
    REQUIRE(store->reserve_present());
    for (; committed < 50; ++committed) {
      InsertOk(*store, MakeTask("kept", committed));
    }
    RequireOk(store->Commit());
    FillDisk(filler);
    // Commits until the disk is full.
    Status failure;
    for (uint32_t i = 0; i < 10'000 && failure.ok(); ++i) {
      NewTask t = MakeTask("kept", committed);
      t.url = std::string(4000, 'x');
      auto id = store->Insert(t);
      if (id.ok()) {
        failure = store->Commit();
        if (failure.ok()) ++committed;
      } else {
        failure = id.status();
        store->Abort();
      }
    }
    INFO(failure.message());
    REQUIRE_FALSE(failure.ok());
    CHECK_FALSE(store->reserve_present());
    // Still full: the store must not claim to be writable.
    Status probe = store->Probe();
    INFO(probe.message());
    CHECK_FALSE(probe.ok());
    CHECK_FALSE(store->reserve_present());
    // Closed while full: the checkpoint at close has the reserve's room.
  }
  CHECK(FileSize(path + "-wal") == 0);
  // Whatever the close freed is taken again; then a little is freed.
  const std::string filler2 = mnt + "/filler2";
  const uint64_t taken = FillDisk(filler2);
  std::filesystem::resize_file(filler2,
                               taken > (128 << 10) ? taken - (128 << 10) : 0);
  {
    // Recovery needs no more room than that: the WAL is empty.
    auto store = OpenStore(path, options);
    CHECK(Pending(*store).size() == committed);
    CHECK_FALSE(store->reserve_present());
    CHECK_FALSE(store->Probe().ok());
    std::filesystem::remove(filler2);
    // Space is freed: writable again at the next probe, reserve re-made.
    std::filesystem::remove(filler);
    RequireOk(store->Probe());
    CHECK(store->reserve_present());
    CHECK(FileSize(store->reserve_path()) == 1u << 20);
    InsertOk(*store, MakeTask("after", 0));
    RequireOk(store->Commit());
    CHECK(Pending(*store).size() == committed + 1);
  }
}

}  // namespace
}  // namespace tq
