#include "broker/http_archive.h"

#include <archive.h>
#include <archive_entry.h>

namespace tq {

TarGzStream::TarGzStream(std::function<bool(const char*, size_t)> sink)
    : sink_(std::move(sink)), a_(archive_write_new()) {
  archive_write_add_filter_gzip(a_);
  archive_write_set_format_pax_restricted(a_);
  // Unblocked: each write goes out as it is made, not padded to 10 KiB.
  archive_write_set_bytes_in_last_block(a_, 1);
  if (archive_write_open(a_, this, nullptr, &TarGzStream::Write, nullptr) !=
      ARCHIVE_OK) {
    failed_ = true;
  }
}

TarGzStream::~TarGzStream() {
  if (!finished_ && !failed_) archive_write_close(a_);
  archive_write_free(a_);
}

ssize_t TarGzStream::Write(archive*, void* self, const void* data, size_t n) {
  auto* s = static_cast<TarGzStream*>(self);
  if (!s->sink_(static_cast<const char*>(data), n)) {
    s->failed_ = true;
    return -1;
  }
  return ssize_t(n);
}

Status TarGzStream::Add(const std::string& path, std::string_view content,
                        int64_t mtime_s) {
  if (failed_) return Status::Unavailable("archive stream closed");
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, path.c_str());
  archive_entry_set_size(e, la_int64_t(content.size()));
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_mtime(e, time_t(mtime_s), 0);
  bool ok = archive_write_header(a_, e) == ARCHIVE_OK;
  if (ok && !content.empty()) {
    ok = archive_write_data(a_, content.data(), content.size()) ==
         la_ssize_t(content.size());
  }
  archive_entry_free(e);
  if (!ok) {
    failed_ = true;
    return Status::IoError(std::string("archive: ") + archive_error_string(a_));
  }
  return Status::Ok();
}

Status TarGzStream::Finish() {
  if (failed_) return Status::Unavailable("archive stream closed");
  finished_ = true;
  if (archive_write_close(a_) != ARCHIVE_OK) {
    return Status::IoError(std::string("archive: ") + archive_error_string(a_));
  }
  return Status::Ok();
}

}  // namespace tq
