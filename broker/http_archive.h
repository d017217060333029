// A .tar.gz written as a stream (libarchive): each chunk goes to a sink as
// soon as it is compressed, so a batch's files never sit in memory at once.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

struct archive;

namespace tq {

class TarGzStream {
 public:
  // `sink` gets the compressed bytes; returning false (the client went away)
  // makes every later call fail.
  explicit TarGzStream(std::function<bool(const char*, size_t)> sink);
  ~TarGzStream();
  TarGzStream(const TarGzStream&) = delete;
  TarGzStream& operator=(const TarGzStream&) = delete;

  // A regular file at `path` (relative, '/'-separated), mode 0644.
  Status Add(const std::string& path, std::string_view content,
             int64_t mtime_s);
  // Writes the end of the archive and the gzip trailer.
  Status Finish();

 private:
  static ssize_t Write(archive*, void* self, const void* data, size_t n);
  std::function<bool(const char*, size_t)> sink_;
  archive* a_ = nullptr;
  bool failed_ = false;
  bool finished_ = false;
};

}  // namespace tq
