#include "client/result_files.h"

#include <catch2/catch.hpp>

namespace tq {
namespace {

TEST_CASE("SafeRelativePathDropsParentAndAbsoluteParts", "[client][files]") {
  CHECK(SafeRelativePath("a/b/c.txt") == "a/b/c.txt");
  CHECK(SafeRelativePath("/etc/passwd") == "etc/passwd");
  CHECK(SafeRelativePath("../../x") == "x");
  CHECK(SafeRelativePath("a/./../b") == "a/b");
  CHECK(SafeRelativePath("a\\..\\b") == "a/b");
  CHECK(SafeRelativePath("..") == "file");
  CHECK(SafeRelativePath("") == "file");
}

TEST_CASE("ThugTimestampIsUtcSeconds", "[client][files]") {
  CHECK(ThugTimestamp(0) == "19700101000000");
  CHECK(ThugTimestamp(1'764'000'000'123) == "20251124160000");
}

TEST_CASE("ParseOutLayoutKnowsTasksAndThug", "[client][files]") {
  CHECK(*ParseOutLayout("tasks") == OutLayout::kTasks);
  CHECK(*ParseOutLayout("thug") == OutLayout::kThug);
  CHECK_FALSE(ParseOutLayout("zip").ok());
}

}  // namespace
}  // namespace tq
