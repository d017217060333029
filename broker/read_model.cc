#include "broker/read_model.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "broker/sqlite_util.h"
#include "common/outcome.h"

namespace tq {
namespace {

using namespace sqlite;  // NOLINT: the helpers of sqlite_util.h

constexpr uint32_t kMaxPage = 1000;

// A prepared statement finalized when it goes out of scope.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Status status() const {
    if (rc_ == SQLITE_OK) return Status::Ok();
    return Status::IoError(std::string("read model: ") + sqlite3_errmsg(db_));
  }
  sqlite3_stmt* get() const { return stmt_; }
  Status Error() const {
    return Status::IoError(std::string("read model: ") + sqlite3_errmsg(db_));
  }

 private:
  sqlite3* const db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

TaskState StateOf(int64_t v) {
  return v >= 0 && v <= 5 ? static_cast<TaskState>(v) : TaskState::kQueued;
}

// "%" and "_" in a LIKE pattern match literally after '\'.
std::string LikePattern(const std::string& text) {
  std::string out = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out + "%";
}

Result<std::vector<ResultFile>> ReadFileRefs(sqlite3* db, uint64_t task_id) {
  Statement s(db,
              "SELECT name, sha256, size FROM task_files WHERE task_id = ?1 "
              "ORDER BY rowid");
  if (Status st = s.status(); !st.ok()) return st;
  BindInt(s.get(), 1, int64_t(task_id));
  std::vector<ResultFile> files;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    ResultFile& f = files.emplace_back();
    f.name = ColumnText(s.get(), 0);
    f.sha256 = ColumnText(s.get(), 1);
    f.size = uint64_t(ColumnInt(s.get(), 2));
  }
  if (rc != SQLITE_DONE) return s.Error();
  return files;
}

#define TQ_ROW_COLUMNS                                                   \
  "id, batch_id, item_index, queue, url, state, attempts, worker, ok, "  \
  "COALESCE(error, last_error), submitted_ms, started_ms, finished_ms, " \
  "duration_ms"
constexpr int kRowColumns = 14;

void ReadRow(sqlite3_stmt* stmt, TaskRow* row) {
  row->task_id = uint64_t(ColumnInt(stmt, 0));
  row->batch_id = ColumnText(stmt, 1);
  row->index = uint32_t(ColumnInt(stmt, 2));
  row->queue = ColumnText(stmt, 3);
  row->url = ColumnText(stmt, 4);
  row->state = StateOf(ColumnInt(stmt, 5));
  row->attempts = uint32_t(ColumnInt(stmt, 6));
  row->worker = ColumnText(stmt, 7);
  if (sqlite3_column_type(stmt, 8) != SQLITE_NULL) {
    row->ok = ColumnInt(stmt, 8) != 0;
  }
  row->error = ColumnText(stmt, 9);
  row->submitted_ms = ColumnInt(stmt, 10);
  row->started_ms = ColumnInt(stmt, 11);
  row->finished_ms = ColumnInt(stmt, 12);
  row->duration_ms = uint32_t(ColumnInt(stmt, 13));
}

}  // namespace

Result<std::unique_ptr<ReadOnlyDb>> ReadOnlyDb::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::IoError("cannot open " + path + " read-only: " + msg);
  }
  // The writer's checkpoint may hold the lock for a moment.
  sqlite3_busy_timeout(db, 2000);
  return std::unique_ptr<ReadOnlyDb>(new ReadOnlyDb(db));
}

ReadOnlyDb::~ReadOnlyDb() { sqlite3_close(db_); }

uint64_t StateCounts::total() const {
  uint64_t n = 0;
  for (uint64_t c : by_state) n += c;
  return n;
}

uint64_t StateCounts::finished() const {
  return (*this)[TaskState::kDone] + (*this)[TaskState::kDead] +
         (*this)[TaskState::kCancelled];
}

std::optional<TaskState> ParseTaskState(std::string_view name) {
  for (int s = 0; s <= 5; ++s) {
    if (TaskStateName(TaskState(s)) == name) return TaskState(s);
  }
  return std::nullopt;
}

Result<std::vector<QueueCounts>> CountByQueue(sqlite3* db) {
  Statement s(db,
              "SELECT queue, state, COUNT(*) FROM tasks GROUP BY queue, state "
              "ORDER BY queue");
  if (Status st = s.status(); !st.ok()) return st;
  std::vector<QueueCounts> queues;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    std::string queue = ColumnText(s.get(), 0);
    if (queues.empty() || queues.back().queue != queue) {
      queues.push_back({std::move(queue), {}});
    }
    queues.back().counts[StateOf(ColumnInt(s.get(), 1))] +=
        uint64_t(ColumnInt(s.get(), 2));
  }
  if (rc != SQLITE_DONE) return s.Error();
  return queues;
}

Result<std::vector<MinuteCount>> FinishedPerMinute(sqlite3* db, int64_t now_ms,
                                                   int minutes) {
  constexpr int64_t kMinute = 60'000;
  minutes = std::clamp(minutes, 1, 24 * 60);
  const int64_t last = now_ms / kMinute * kMinute;
  const int64_t first = last - int64_t(minutes - 1) * kMinute;
  std::vector<MinuteCount> out(static_cast<size_t>(minutes));
  for (int i = 0; i < minutes; ++i) out[i].minute_ms = first + i * kMinute;
  // The partial (finished_ms, state) index holds exactly the finished tasks:
  // a covering range scan, bucketed here (SQLite would sort to group).
  Statement s(db,
              "SELECT finished_ms, state FROM tasks "
              "INDEXED BY tasks_by_finished_ms "
              "WHERE finish_seq IS NOT NULL AND finished_ms >= ?1");
  if (Status st = s.status(); !st.ok()) return st;
  BindInt(s.get(), 1, first);
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    const int64_t i = (ColumnInt(s.get(), 0) - first) / kMinute;
    if (i < 0 || i >= minutes) continue;  // a clock step: finished "later"
    const int64_t state = ColumnInt(s.get(), 1);
    if (state == int64_t(TaskState::kDone)) ++out[size_t(i)].done;
    if (state == int64_t(TaskState::kDead)) ++out[size_t(i)].failed;
  }
  if (rc != SQLITE_DONE) return s.Error();
  return out;
}

Result<BatchListPage> ListBatches(sqlite3* db, uint64_t before,
                                  uint32_t limit) {
  limit = std::clamp<uint32_t>(limit, 1, kMaxPage);
  // One pass over the covering (batch_id, state, item_index) index: the
  // rowid in each entry gives the batch's first task without a table read.
  Statement s(db,
              "SELECT batch_id, state, COUNT(*), MIN(id) FROM tasks "
              "INDEXED BY tasks_by_batch_state GROUP BY batch_id, state");
  if (Status st = s.status(); !st.ok()) return st;
  std::vector<BatchSummary> all;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    std::string id = ColumnText(s.get(), 0);
    if (all.empty() || all.back().batch_id != id) {
      all.push_back({std::move(id), {}, UINT64_MAX, 0});
    }
    BatchSummary& b = all.back();
    b.counts[StateOf(ColumnInt(s.get(), 1))] += uint64_t(ColumnInt(s.get(), 2));
    b.first_task_id =
        std::min(b.first_task_id, uint64_t(ColumnInt(s.get(), 3)));
  }
  if (rc != SQLITE_DONE) return s.Error();
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.first_task_id > b.first_task_id;
  });
  BatchListPage page;
  auto it = all.begin();
  if (before > 0) {
    it = std::find_if(all.begin(), all.end(),
                      [&](const auto& b) { return b.first_task_id < before; });
  }
  for (; it != all.end() && page.batches.size() < limit; ++it) {
    page.batches.push_back(std::move(*it));
  }
  if (it != all.end() && !page.batches.empty()) {
    page.next_before = page.batches.back().first_task_id;
  }
  Statement when(db, "SELECT submitted_ms FROM tasks WHERE id = ?1");
  if (Status st = when.status(); !st.ok()) return st;
  for (BatchSummary& b : page.batches) {
    sqlite3_reset(when.get());
    BindInt(when.get(), 1, int64_t(b.first_task_id));
    if (sqlite3_step(when.get()) == SQLITE_ROW) {
      b.submitted_ms = ColumnInt(when.get(), 0);
    }
  }
  return page;
}

Result<StateCounts> CountBatch(sqlite3* db, const std::string& batch_id) {
  Statement s(db,
              "SELECT state, COUNT(*) FROM tasks INDEXED BY "
              "tasks_by_batch_state WHERE batch_id = ?1 GROUP BY state");
  if (Status st = s.status(); !st.ok()) return st;
  BindText(s.get(), 1, batch_id);
  StateCounts counts;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    counts[StateOf(ColumnInt(s.get(), 0))] += uint64_t(ColumnInt(s.get(), 1));
  }
  if (rc != SQLITE_DONE) return s.Error();
  return counts;
}

Result<TaskPage> ListTasks(sqlite3* db, const TaskFilter& filter) {
  const uint32_t limit = std::clamp<uint32_t>(filter.limit, 1, kMaxPage);
  std::string sql = "SELECT " TQ_ROW_COLUMNS " FROM tasks ";
  // Name the index: with a state, the one that has it; otherwise the unique
  // (batch_id, item_index) one, so the planner never sorts a whole batch.
  sql += filter.state ? "INDEXED BY tasks_by_batch_state " : "";
  sql += "WHERE batch_id = ?1 AND item_index > ?2";
  if (filter.state) sql += " AND state = ?3";
  if (!filter.queue.empty()) sql += " AND queue = ?4";
  if (!filter.url_contains.empty()) sql += " AND url LIKE ?5 ESCAPE '\\'";
  sql += " ORDER BY item_index LIMIT ?6";
  Statement s(db, sql);
  if (Status st = s.status(); !st.ok()) return st;
  BindText(s.get(), 1, filter.batch_id);
  BindInt(s.get(), 2, filter.after_index);
  if (filter.state) BindInt(s.get(), 3, int64_t(*filter.state));
  if (!filter.queue.empty()) BindText(s.get(), 4, filter.queue);
  const std::string pattern = LikePattern(filter.url_contains);
  if (!filter.url_contains.empty()) BindText(s.get(), 5, pattern);
  BindInt(s.get(), 6, int64_t(limit) + 1);  // one more: is there a next page?
  TaskPage page;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    if (page.tasks.size() == limit) {
      page.next_after = page.tasks.back().index;
      break;
    }
    ReadRow(s.get(), &page.tasks.emplace_back());
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return s.Error();
  return page;
}

Result<TaskDetail> ReadTask(sqlite3* db, uint64_t task_id) {
  Statement s(db, "SELECT " TQ_ROW_COLUMNS
                  ", priority, max_attempts, time_limit_ms, options_json, "
                  "not_before_ms, finish_seq, output, output_truncated, "
                  "exit_code, stderr_tail, error, outcome, outcome_reason, "
                  "history FROM tasks WHERE id = ?1");
  if (Status st = s.status(); !st.ok()) return st;
  BindInt(s.get(), 1, int64_t(task_id));
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) {
    return Status::NotFound("no task " + std::to_string(task_id));
  }
  if (rc != SQLITE_ROW) return s.Error();
  TaskDetail d;
  sqlite3_stmt* st = s.get();
  ReadRow(st, &d.row);
  constexpr int c = kRowColumns;
  d.priority = int32_t(ColumnInt(st, c));
  d.max_attempts = uint32_t(ColumnInt(st, c + 1));
  d.time_limit_ms = uint32_t(ColumnInt(st, c + 2));
  d.options_json = ColumnText(st, c + 3);
  d.not_before_ms = ColumnInt(st, c + 4);
  if (sqlite3_column_type(st, c + 5) != SQLITE_NULL) {
    TaskResult r;
    r.task_id = d.row.task_id;
    r.batch_id = d.row.batch_id;
    r.index = d.row.index;
    r.queue = d.row.queue;
    r.url = d.row.url;
    r.state = std::string(TaskStateName(d.row.state));
    r.attempts = d.row.attempts;
    r.ok = d.row.ok.value_or(false);
    r.worker = d.row.worker;
    r.submitted_ms = d.row.submitted_ms;
    r.finished_ms = d.row.finished_ms;
    r.duration_ms = d.row.duration_ms;
    r.finish_seq = uint64_t(ColumnInt(st, c + 5));
    r.output = ColumnBlob(st, c + 6);
    r.output_truncated = ColumnInt(st, c + 7) != 0;
    r.exit_code = int32_t(ColumnInt(st, c + 8));
    r.stderr_tail = ColumnText(st, c + 9);
    r.error = ColumnText(st, c + 10);
    if (sqlite3_column_type(st, c + 11) != SQLITE_NULL) {
      r.outcome = std::string(OutcomeName(Outcome(ColumnInt(st, c + 11))));
    }
    r.outcome_reason = ColumnText(st, c + 12);
    d.history = HistoryFromJson(ColumnText(st, c + 13));
    r.history = d.history;
    auto files = ReadFileRefs(db, task_id);
    if (!files.ok()) return files.status();
    r.files = std::move(*files);
    d.result = std::move(r);
  }
  return d;
}

Result<std::vector<TaskResult>> ReadResults(sqlite3* db,
                                            const std::string& batch_id,
                                            uint64_t after_seq,
                                            uint32_t limit) {
  // The same columns and order as the broker's own results reads
  // (SqliteTaskStore::ReadFinished), so the lines match tq-submit --wait.
  Statement s(db,
              "SELECT id, batch_id, item_index, queue, url, state, attempts, "
              "ok, output, output_truncated, error, exit_code, stderr_tail, "
              "duration_ms, worker, submitted_ms, finished_ms, finish_seq "
              "FROM tasks WHERE batch_id = ?1 AND finish_seq > ?2 "
              "ORDER BY finish_seq LIMIT ?3");
  if (Status st = s.status(); !st.ok()) return st;
  BindText(s.get(), 1, batch_id);
  BindInt(s.get(), 2, int64_t(after_seq));
  BindInt(s.get(), 3, std::clamp<uint32_t>(limit, 1, kMaxPage));
  std::vector<TaskResult> tasks;
  int rc;
  sqlite3_stmt* stmt = s.get();
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    TaskResult& t = tasks.emplace_back();
    t.task_id = uint64_t(ColumnInt(stmt, 0));
    t.batch_id = ColumnText(stmt, 1);
    t.index = uint32_t(ColumnInt(stmt, 2));
    t.queue = ColumnText(stmt, 3);
    t.url = ColumnText(stmt, 4);
    t.state = std::string(TaskStateName(StateOf(ColumnInt(stmt, 5))));
    t.attempts = uint32_t(ColumnInt(stmt, 6));
    t.ok = ColumnInt(stmt, 7) != 0;
    t.output = ColumnBlob(stmt, 8);
    t.output_truncated = ColumnInt(stmt, 9) != 0;
    t.error = ColumnText(stmt, 10);
    t.exit_code = int32_t(ColumnInt(stmt, 11));
    t.stderr_tail = ColumnText(stmt, 12);
    t.duration_ms = uint32_t(ColumnInt(stmt, 13));
    t.worker = ColumnText(stmt, 14);
    t.submitted_ms = ColumnInt(stmt, 15);
    t.finished_ms = ColumnInt(stmt, 16);
    t.finish_seq = uint64_t(ColumnInt(stmt, 17));
  }
  if (rc != SQLITE_DONE) return s.Error();
  for (TaskResult& t : tasks) {
    auto files = ReadFileRefs(db, t.task_id);
    if (!files.ok()) return files.status();
    t.files = std::move(*files);
  }
  return tasks;
}

#undef TQ_ROW_COLUMNS

std::string HistoryJson(const std::vector<AttemptRecord>& history) {
  nlohmann::json list = nlohmann::json::array();
  for (const AttemptRecord& a : history) {
    nlohmann::json j = {{"attempt", a.attempt},
                        {"worker", a.worker},
                        {"ok", a.ok},
                        {"outcome", a.outcome},
                        {"error", a.error}};
    // Written since schema 7; older rows have none.
    if (a.started_ms != 0) j["started_ms"] = a.started_ms;
    if (a.ended_ms != 0) j["ended_ms"] = a.ended_ms;
    list.push_back(std::move(j));
  }
  return list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<AttemptRecord> HistoryFromJson(const std::string& text) {
  std::vector<AttemptRecord> history;
  if (text.empty()) return history;
  auto list = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!list.is_array()) return history;
  for (const auto& a : list) {
    if (!a.is_object()) continue;
    AttemptRecord& r = history.emplace_back();
    r.attempt = a.value("attempt", 0u);
    r.worker = a.value("worker", std::string());
    r.ok = a.value("ok", false);
    r.outcome = a.value("outcome", std::string());
    r.error = a.value("error", std::string());
    r.started_ms = a.value("started_ms", int64_t(0));
    r.ended_ms = a.value("ended_ms", int64_t(0));
  }
  return history;
}

}  // namespace tq
