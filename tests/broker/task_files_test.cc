// Files produced by tasks: stored by sha256 beside the database, referenced
// by task_files rows (schema v2), removed by the retention sweep only when
// no kept result references them.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "broker/sqlite_task_store.h"
#include "common/digest.h"
#include "tests/support/temp_dir.h"

namespace tq {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

std::unique_ptr<SqliteTaskStore> OpenStore(const std::string& path) {
  auto store = SqliteTaskStore::Open(path);
  INFO(store.status().message());
  REQUIRE(store.ok());
  return std::move(store.value());
}

void RequireOk(const Status& s) {
  INFO(s.message());
  REQUIRE(s.ok());
}

uint64_t AddTask(TaskStore& store, const std::string& batch, uint32_t index) {
  NewTask t;
  t.batch_id = batch;
  t.index = index;
  t.queue = "generic";
  t.url = "http://example.com/" + std::to_string(index);
  t.submitted_ms = 1000;
  auto id = store.Insert(t);
  REQUIRE(id.ok());
  REQUIRE(id->has_value());
  return **id;
}

// Stores the files and finishes the task with references to them.
void FinishWithFiles(
    TaskStore& store, uint64_t id, uint64_t seq, int64_t now_ms,
    const std::vector<std::pair<std::string, std::string>>& files) {
  AttemptResult outcome;
  outcome.ok = true;
  outcome.output = "{}";
  for (const auto& [name, content] : files) {
    const std::string sha = DigestSha256(content);
    RequireOk(store.PutFile(sha, content));
    outcome.files.push_back(ResultFile{name, sha, content.size(), ""});
  }
  RequireOk(store.MarkFinished(id, TaskState::kDone, 1, seq, outcome, now_ms));
}

std::string StoredPath(const std::string& dir, const std::string& content) {
  const std::string sha = DigestSha256(content);
  return dir + "/files/" + sha.substr(0, 2) + "/" + sha;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

size_t CountStoredFiles(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir + "/files", ec), end;
       !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file()) ++n;
  }
  return n;
}

TEST_CASE("FilesAreWrittenBeforeTheResultCommits", "[store][files]") {
  TempDir dir;
  auto store = OpenStore(dir.File("tq.db"));
  const uint64_t id = AddTask(*store, "b", 0);
  RequireOk(store->Commit());
  const std::string content("MZ\x90\0binary", 10);
  FinishWithFiles(*store, id, 1, 5000, {{"a/sample.exe", content}});
  // On disk, whole, while the transaction that references it is still open.
  CHECK(store->HasUncommitted());
  CHECK(ReadFile(StoredPath(dir.path(), content)) == content);
  RequireOk(store->Commit());

  store.reset();
  store = OpenStore(dir.File("tq.db"));
  auto rows = store->ReadFinished("b", 0, 10);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  REQUIRE((*rows)[0].files.size() == 1);
  const ResultFile& f = (*rows)[0].files[0];
  CHECK(f.name == "a/sample.exe");
  CHECK(f.sha256 == DigestSha256(content));
  CHECK(f.size == content.size());
  auto got = store->GetFile(f.sha256);
  REQUIRE(got.ok());
  CHECK(*got == content);
}

TEST_CASE("IdenticalContentIsStoredOnce", "[store][files]") {
  TempDir dir;
  auto store = OpenStore(dir.File("tq.db"));
  const uint64_t a = AddTask(*store, "b", 0);
  const uint64_t b = AddTask(*store, "b", 1);
  FinishWithFiles(*store, a, 1, 5000, {{"x.js", "same"}, {"y.js", "same"}});
  FinishWithFiles(*store, b, 2, 5000, {{"z.js", "same"}});
  RequireOk(store->Commit());
  CHECK(CountStoredFiles(dir.path()) == 1);
  auto rows = store->ReadFinished("b", 0, 10);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 2);
  CHECK((*rows)[0].files.size() == 2);
  CHECK((*rows)[1].files.size() == 1);
}

TEST_CASE("AResultRetriedAfterDeathKeepsOnlyItsNewFiles", "[store][files]") {
  TempDir dir;
  auto store = OpenStore(dir.File("tq.db"));
  const uint64_t id = AddTask(*store, "b", 0);
  FinishWithFiles(*store, id, 1, 10, {{"old.log", "first run"}});
  RequireOk(store->Commit());
  // RetryDead brings it back; its second run writes other files.
  RequireOk(store->MarkWaiting(id, TaskState::kQueued, 0, 0, std::nullopt));
  FinishWithFiles(*store, id, 2, 20, {{"new.log", "second run"}});
  RequireOk(store->Commit());
  auto rows = store->ReadFinished("b", 0, 10);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  REQUIRE((*rows)[0].files.size() == 1);
  CHECK((*rows)[0].files[0].name == "new.log");
}

TEST_CASE("SchemaV1DatabaseIsMigratedToCurrent", "[store][files]") {
  TempDir dir;
  const std::string path = dir.File("tq.db");
  uint64_t id = 0;
  {
    auto store = OpenStore(path);
    id = AddTask(*store, "old", 0);
    AttemptResult outcome;
    outcome.ok = true;
    outcome.output = "kept";
    RequireOk(store->MarkFinished(id, TaskState::kDone, 1, 1, outcome, 9));
    RequireOk(store->Commit());
  }
  // Take the database back to what schema v1 wrote.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db,
                       "DROP TABLE paused_queues;"
                       "DROP TABLE batch_owners;"
                       "DROP TABLE batches;"
                       "DROP TABLE task_files; DROP INDEX tasks_by_finished_ms;"
                       "DROP INDEX tasks_finished;"
                       // v4's columns and table (worker health).
                       "DROP TABLE workers;"
                       "ALTER TABLE tasks DROP COLUMN outcome;"
                       "ALTER TABLE tasks DROP COLUMN outcome_reason;"
                       "ALTER TABLE tasks DROP COLUMN history;"
                       "CREATE INDEX tasks_finished ON tasks(batch_id, "
                       "finish_seq) WHERE finish_seq IS NOT NULL;"
                       "PRAGMA user_version = 1;",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);

  auto store = OpenStore(path);
  auto rows = store->ReadFinished("old", 0, 10);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0].output == "kept");
  CHECK((*rows)[0].files.empty());
  // v3's index counts it.
  auto summary = store->LoadFinishedSummary();
  REQUIRE(summary.ok());
  REQUIRE(summary->counts.size() == 1);
  CHECK(summary->counts[0].batch_id == "old");
  CHECK(summary->counts[0].count == 1);
  CHECK(summary->max_finish_seq == 1);
  // The new table takes references.
  const uint64_t next = AddTask(*store, "new", 0);
  FinishWithFiles(*store, next, 2, 10, {{"f", "content"}});
  RequireOk(store->Commit());
  rows = store->ReadFinished("new", 0, 10);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0].files.size() == 1);

  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr) ==
          SQLITE_OK);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  CHECK(sqlite3_column_int(stmt, 0) == SqliteTaskStore::kSchemaVersion);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_CASE("SweepRemovesOnlyFilesNoKeptResultReferences", "[store][files]") {
  TempDir dir;
  auto store = OpenStore(dir.File("tq.db"));
  const uint64_t old_task = AddTask(*store, "b", 0);
  const uint64_t kept_task = AddTask(*store, "b", 1);
  FinishWithFiles(*store, old_task, 1, 1000,
                  {{"only-old", "old bytes"}, {"shared", "shared bytes"}});
  FinishWithFiles(*store, kept_task, 2, 5000,
                  {{"shared", "shared bytes"}, {"only-kept", "kept bytes"}});
  RequireOk(store->Commit());
  REQUIRE(CountStoredFiles(dir.path()) == 3);

  auto expired = store->LoadExpired(2000, 100);
  REQUIRE(expired.ok());
  REQUIRE(expired->size() == 1);
  CHECK((*expired)[0].id == old_task);
  auto digests = store->DeleteFinished({old_task});
  REQUIRE(digests.ok());
  CHECK(digests->size() == 2);
  RequireOk(store->Commit());
  auto removed = store->RemoveUnreferencedFiles(*digests);
  REQUIRE(removed.ok());
  CHECK(*removed == 1);

  CHECK_FALSE(fs::exists(StoredPath(dir.path(), "old bytes")));
  CHECK(fs::exists(StoredPath(dir.path(), "shared bytes")));
  CHECK(fs::exists(StoredPath(dir.path(), "kept bytes")));
  auto rows = store->ReadFinished("b", 0, 10);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0].task_id == kept_task);
  CHECK((*rows)[0].files.size() == 2);
  // Nothing pending was touched, and nothing younger is due.
  expired = store->LoadExpired(2000, 100);
  REQUIRE(expired.ok());
  CHECK(expired->empty());
}

}  // namespace
}  // namespace tq
