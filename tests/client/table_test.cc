#include "client/table.h"

#include <catch2/catch.hpp>

namespace tq {

TEST_CASE("FormatTable aligns columns, numbers to the right", "[table]") {
  Table t;
  t.header = {"QUEUE", "DONE", "HOST"};
  t.right_align = {false, true, false};
  t.rows = {{"generic", "5", "a"}, {"IT", "1234", "long-host"}};
  CHECK(FormatTable(t) ==
        "QUEUE    DONE  HOST\n"
        "generic     5  a\n"
        "IT       1234  long-host\n");
}

TEST_CASE("FormatTable leaves no trailing spaces and pads short rows",
          "[table]") {
  Table t;
  t.header = {"A", "B"};
  t.rows = {{"xxxx"}, {"y", ""}};
  CHECK(FormatTable(t) ==
        "A     B\n"
        "xxxx\n"
        "y\n");
}

TEST_CASE("FormatTable without a header prints only rows", "[table]") {
  Table t;
  t.right_align = {false, true};
  t.rows = {{"total", "10"}, {"done", "7"}};
  CHECK(FormatTable(t) ==
        "total  10\n"
        "done    7\n");
}

}  // namespace tq
