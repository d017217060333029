// Small helpers over SQLite's C API shared by the store's source files.
// Internal to broker/: nothing outside the SQLite store includes it.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "common/status.h"

namespace tq::sqlite {

// Resets a statement when the call using it returns, so no read holds a
// snapshot open and no bound pointer outlives its string.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~ResetOnExit() { sqlite3_reset(stmt_); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* const stmt_;
};

// The strings outlive the step (they are reset before the call returns), so
// SQLite need not copy them.
inline void BindText(sqlite3_stmt* stmt, int index, const std::string& s) {
  sqlite3_bind_text(stmt, index, s.data(), static_cast<int>(s.size()),
                    SQLITE_STATIC);
}

inline void BindBlob(sqlite3_stmt* stmt, int index, const std::string& s) {
  // A zero-length blob, not NULL, for empty output.
  sqlite3_bind_blob(stmt, index, s.empty() ? "" : s.data(),
                    static_cast<int>(s.size()), SQLITE_STATIC);
}

inline void BindInt(sqlite3_stmt* stmt, int index, int64_t v) {
  sqlite3_bind_int64(stmt, index, v);
}

inline std::string ColumnText(sqlite3_stmt* stmt, int col) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
  if (p == nullptr) return {};
  return std::string(p, sqlite3_column_bytes(stmt, col));
}

// Like ColumnText, into an existing string (keeps its capacity).
inline void AssignText(sqlite3_stmt* stmt, int col, std::string* out) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
  if (p == nullptr) {
    out->clear();
  } else {
    out->assign(p, sqlite3_column_bytes(stmt, col));
  }
}

inline std::string ColumnBlob(sqlite3_stmt* stmt, int col) {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt, col));
  if (p == nullptr) return {};
  return std::string(p, sqlite3_column_bytes(stmt, col));
}

inline int64_t ColumnInt(sqlite3_stmt* stmt, int col) {
  return sqlite3_column_int64(stmt, col);
}

// Runs SQL that returns at most one row and yields its first column.
inline Result<int64_t> QueryInt(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    return Status::IoError(sqlite3_errmsg(db));
  }
  int rc = sqlite3_step(stmt);
  Result<int64_t> result = Status::IoError(sqlite3_errmsg(db));
  if (rc == SQLITE_ROW) result = sqlite3_column_int64(stmt, 0);
  if (rc == SQLITE_DONE) result = int64_t{0};
  sqlite3_finalize(stmt);
  return result;
}

inline Result<std::string> QueryText(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    return Status::IoError(sqlite3_errmsg(db));
  }
  int rc = sqlite3_step(stmt);
  Result<std::string> result = Status::IoError(sqlite3_errmsg(db));
  if (rc == SQLITE_ROW) result = ColumnText(stmt, 0);
  if (rc == SQLITE_DONE) result = std::string();
  sqlite3_finalize(stmt);
  return result;
}

inline Status Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err != nullptr ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    return Status::IoError(msg);
  }
  return Status::Ok();
}

}  // namespace tq::sqlite
