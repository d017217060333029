// SqliteTaskStore, part two: the files tasks produce (content-addressed under
// files/ beside the database, referenced from task_files) and the retention
// sweep that deletes old results and the files no result references.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "broker/sqlite_task_store.h"
#include "broker/sqlite_util.h"

namespace tq {

using namespace sqlite;  // NOLINT: the helpers of sqlite_util.h

Status SqliteTaskStore::DeleteFileRefs(uint64_t id) {
  sqlite3_stmt* stmt = stmts_[kDeleteTaskFiles];
  ResetOnExit reset(stmt);
  BindInt(stmt, 1, static_cast<int64_t>(id));
  if (sqlite3_step(stmt) != SQLITE_DONE) return FailWrite("delete files");
  return Status::Ok();
}

Status SqliteTaskStore::AddFileRefs(uint64_t id,
                                    const std::vector<ResultFile>& files) {
  for (const ResultFile& f : files) {
    sqlite3_stmt* stmt = stmts_[kInsertTaskFile];
    ResetOnExit reset(stmt);
    BindInt(stmt, 1, static_cast<int64_t>(id));
    BindText(stmt, 2, f.name);
    BindText(stmt, 3, f.sha256);
    BindInt(stmt, 4, static_cast<int64_t>(f.size));
    if (sqlite3_step(stmt) != SQLITE_DONE) return FailWrite("insert file");
  }
  return Status::Ok();
}

Result<std::vector<ResultFile>> SqliteTaskStore::ReadFileRefs(uint64_t id) {
  sqlite3_stmt* stmt = stmts_[kReadTaskFiles];
  ResetOnExit reset(stmt);
  BindInt(stmt, 1, static_cast<int64_t>(id));
  std::vector<ResultFile> files;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    ResultFile& f = files.emplace_back();
    f.name = ColumnText(stmt, 0);
    f.sha256 = ColumnText(stmt, 1);
    f.size = static_cast<uint64_t>(ColumnInt(stmt, 2));
  }
  if (rc != SQLITE_DONE) return ReadError("read files");
  return files;
}

Result<std::vector<std::string>> SqliteTaskStore::DeleteFinished(
    const std::vector<uint64_t>& ids) {
  if (Status s = BeginWrite(); !s.ok()) return s;
  std::vector<std::string> digests;
  for (uint64_t id : ids) {
    Result<std::vector<ResultFile>> refs = ReadFileRefs(id);
    if (!refs.ok()) {
      txn_error_ = refs.status();
      return refs.status();
    }
    for (ResultFile& f : *refs) digests.push_back(std::move(f.sha256));
    if (Status s = DeleteFileRefs(id); !s.ok()) return s;
    sqlite3_stmt* stmt = stmts_[kDeleteFinishedTask];
    ResetOnExit reset(stmt);
    BindInt(stmt, 1, static_cast<int64_t>(id));
    if (sqlite3_step(stmt) != SQLITE_DONE) return FailWrite("delete task");
  }
  std::sort(digests.begin(), digests.end());
  digests.erase(std::unique(digests.begin(), digests.end()), digests.end());
  return digests;
}

Result<std::vector<ExpiredTask>> SqliteTaskStore::LoadExpired(
    int64_t finished_before_ms, uint32_t limit) {
  sqlite3_stmt* stmt = stmts_[kLoadExpired];
  ResetOnExit reset(stmt);
  BindInt(stmt, 1, finished_before_ms);
  BindInt(stmt, 2, limit);
  std::vector<ExpiredTask> tasks;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    ExpiredTask& t = tasks.emplace_back();
    t.id = static_cast<uint64_t>(ColumnInt(stmt, 0));
    t.batch_id = ColumnText(stmt, 1);
    t.queue = ColumnText(stmt, 2);
    t.state = static_cast<TaskState>(ColumnInt(stmt, 3));
    t.outcome = sqlite3_column_type(stmt, 4) == SQLITE_NULL
                    ? -1
                    : static_cast<int>(ColumnInt(stmt, 4));
  }
  if (rc != SQLITE_DONE) return ReadError("load expired");
  return tasks;
}

// Digests come from the peer's data only through the broker's own hashing,
// but a path built from one must still never leave files/.
static bool IsHexDigest(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string SqliteTaskStore::FilePath(const std::string& sha256) const {
  return files_dir_ + "/" + sha256.substr(0, 2) + "/" + sha256;
}

static Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return Status::IoError("cannot open " + dir + ": " + strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0)
    return Status::IoError("cannot sync " + dir + ": " + strerror(err));
  return Status::Ok();
}

Status SqliteTaskStore::PutFile(const std::string& sha256,
                                std::string_view content) {
  if (!IsHexDigest(sha256)) {
    return Status::InvalidArgument("put file: bad digest '" +
                                   sha256.substr(0, 80) + "'");
  }
  const std::string path = FilePath(sha256);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 &&
      static_cast<uint64_t>(st.st_size) == content.size()) {
    return Status::Ok();  // stored once per content
  }
  const std::string dir = files_dir_ + "/" + sha256.substr(0, 2);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create " + dir + ": " + ec.message());
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::IoError("cannot create " + tmp + ": " + strerror(errno));
  }
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      if (err == ENOSPC) ReleaseReserve();
      return Status::IoError("cannot write " + tmp + ": " + strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Status::IoError("cannot sync " + tmp + ": " + strerror(err));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Status::IoError("cannot rename " + tmp + ": " + strerror(err));
  }
  // The rename itself must survive a crash before the commit is durable.
  if (Status s = SyncDir(dir); !s.ok()) return s;
  return SyncDir(files_dir_);
}

Result<std::string> SqliteTaskStore::GetFile(const std::string& sha256) {
  if (!IsHexDigest(sha256)) return Status::NotFound("no file " + sha256);
  std::ifstream in(FilePath(sha256), std::ios::binary);
  if (!in) return Status::NotFound("no stored file " + sha256);
  std::string data((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  if (in.bad()) return Status::IoError("cannot read stored file " + sha256);
  return data;
}

Result<uint64_t> SqliteTaskStore::RemoveUnreferencedFiles(
    const std::vector<std::string>& sha256s) {
  uint64_t removed = 0;
  for (const std::string& sha : sha256s) {
    if (!IsHexDigest(sha)) continue;
    sqlite3_stmt* stmt = stmts_[kResultFileerenced];
    ResetOnExit reset(stmt);
    BindText(stmt, 1, sha);
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) continue;  // a kept result still names it
    if (rc != SQLITE_DONE) return ReadError("file referenced");
    if (::unlink(FilePath(sha).c_str()) == 0) ++removed;
  }
  return removed;
}

}  // namespace tq
