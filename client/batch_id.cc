#include <random>
#include <string>
#include <string_view>

#include "tq/client.h"

namespace tq {
namespace {

constexpr size_t kMaxBatchIdBytes = 64;

bool IsBatchIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-';
}

}  // namespace

Status ValidateBatchId(std::string_view batch_id) {
  if (batch_id.empty()) return Status::InvalidArgument("empty batch id");
  if (batch_id.size() > kMaxBatchIdBytes) {
    return Status::InvalidArgument(
        "batch id is " + std::to_string(batch_id.size()) +
        " characters long (limit " + std::to_string(kMaxBatchIdBytes) + ")");
  }
  for (size_t i = 0; i < batch_id.size(); ++i) {
    if (!IsBatchIdChar(batch_id[i])) {
      return Status::InvalidArgument(
          "batch id has a character other than [A-Za-z0-9._:-] at column " +
          std::to_string(i + 1));
    }
  }
  return Status::Ok();
}

std::string NewBatchId() {
  // A fresh random_device per call: thread-safe, and batch ids are rare.
  std::random_device rd;
  uint64_t bits = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i) {
    id[i] = kHex[bits & 0xf];
    bits >>= 4;
  }
  return id;
}

}  // namespace tq
