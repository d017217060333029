// This is a public header file: the tq client library's error values.
//
// Errors as values at module edges (after leveldb's Status): every call of
// the library returns a Status, or a Result<T> holding either a T or the
// Status saying why there is none. Both are plain values: copy and move them
// freely; a const one may be read from any thread.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace tq {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,
    kNotFound,
    kIoError,      // storage or socket failure
    kUnavailable,  // peer unreachable, timed out, or refusing for now
    kCorruption,   // bytes that do not decode
    kTooLarge,
    kInternal,
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) {
    return Status(Code::kInvalidArgument, std::move(m));
  }
  static Status NotFound(std::string m) {
    return Status(Code::kNotFound, std::move(m));
  }
  static Status IoError(std::string m) {
    return Status(Code::kIoError, std::move(m));
  }
  static Status Unavailable(std::string m) {
    return Status(Code::kUnavailable, std::move(m));
  }
  static Status Corruption(std::string m) {
    return Status(Code::kCorruption, std::move(m));
  }
  static Status TooLarge(std::string m) {
    return Status(Code::kTooLarge, std::move(m));
  }
  static Status Internal(std::string m) {
    return Status(Code::kInternal, std::move(m));
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const { return ok() ? "ok" : message_; }

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status saying why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT
  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace tq
