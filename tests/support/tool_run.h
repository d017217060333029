// Runs one of tq's command-line tools to its end and keeps what it printed:
// the e2e tests' way to assert exact messages and exit codes.
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace tq::testing {

struct ToolRun {
  int code = -1;
  std::string out;
  std::string err;
  std::chrono::milliseconds took{};
};

// `env`: extra NAME=VALUE entries. Fails the test if the tool is still
// running after `limit`.
inline ToolRun RunTool(const TempDir& dir, const std::vector<std::string>& argv,
                       const std::vector<std::string>& env = {},
                       std::chrono::seconds limit = std::chrono::seconds(120)) {
  static int n = 0;
  const std::string out = dir.File("tool-out" + std::to_string(++n));
  const std::string err = dir.File("tool-err" + std::to_string(n));
  const auto start = std::chrono::steady_clock::now();
  Process p(argv, out, err, env);
  auto code = p.Wait(limit);
  REQUIRE(code.has_value());
  return {*code, ReadFile(out), ReadFile(err),
          std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - start)};
}

}  // namespace tq::testing
