// The worker's handler self-check and the outcome a run reports (#18).
#include "worker/self_check.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "worker/handler_outcome.h"

namespace tq {

using testing::TempDir;
using testing::WriteFile;

TEST_CASE("ResolveProgramSearchesPathAndNamesWhatIsMissing",
          "[worker][check]") {
  TempDir dir;
  const std::string tool = dir.File("tool");
  WriteFile(tool, "#!/bin/sh\n");
  REQUIRE(chmod(tool.c_str(), 0755) == 0);
  const std::string plain = dir.File("plain");
  WriteFile(plain, "#!/bin/sh\n");

  auto found = ResolveProgram("tool", "/nonexistent:" + dir.path());
  REQUIRE(found.ok());
  CHECK(*found == tool);
  CHECK(ResolveProgram(tool, "").ok());

  auto missing = ResolveProgram("thug", "/nonexistent:" + dir.path());
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find("thug") != std::string::npos);
  CHECK(missing.status().message().find("PATH=/nonexistent:") !=
        std::string::npos);

  auto unrunnable = ResolveProgram(plain, "");
  REQUIRE_FALSE(unrunnable.ok());
  CHECK(unrunnable.status().message().find("cannot be executed") !=
        std::string::npos);
  // Found on PATH but not executable: said so, not "not found".
  auto on_path = ResolveProgram("plain", dir.path());
  REQUIRE_FALSE(on_path.ok());
  CHECK(on_path.status().message().find("cannot be executed") !=
        std::string::npos);
}

TEST_CASE("ExitStatusThreeOfAnExecHandlerIsDoneAndUnreachable",
          "[worker][outcome]") {
  TaskOutcome o;
  o.ok = false;
  o.exit_code = kExitTargetUnreachable;
  o.error = "exited with status 3";
  o.stderr_tail = "fetching...\nconnection refused\n";
  ApplyHandlerOutcome(Handler::kExec, &o);
  CHECK(o.ok);
  CHECK(o.error.empty());
  CHECK(o.outcome == "unreachable");
  CHECK(o.outcome_reason == "connection refused");

  // The analyser's 3 (retry_on_network_error) stays a failed attempt.
  TaskOutcome a;
  a.ok = false;
  a.exit_code = 3;
  ApplyHandlerOutcome(Handler::kAnalyse, &a);
  CHECK_FALSE(a.ok);
  CHECK(a.outcome.empty());
}

TEST_CASE("HandlerJsonNamesTheOutcome", "[worker][outcome]") {
  TaskOutcome o;
  o.ok = true;
  o.output = R"({"url":"http://x/","outcome":"http_error","error":"HTTP 404"})";
  ApplyHandlerOutcome(Handler::kExec, &o);
  CHECK(o.outcome == "http_error");
  CHECK(o.outcome_reason == "HTTP 404");

  TaskOutcome plain;
  plain.ok = true;
  plain.output = "not json";
  ApplyHandlerOutcome(Handler::kExec, &plain);
  CHECK(plain.outcome == "ok");

  TaskOutcome unknown;
  unknown.ok = true;
  unknown.output = R"({"outcome":"weird"})";
  ApplyHandlerOutcome(Handler::kExec, &unknown);
  CHECK(unknown.outcome == "ok");

  TaskOutcome failed;
  failed.ok = false;
  failed.exit_code = 1;
  failed.output = R"({"outcome":"unreachable"})";
  ApplyHandlerOutcome(Handler::kExec, &failed);
  CHECK_FALSE(failed.ok);
  CHECK(failed.outcome.empty());
}

TEST_CASE("AnalyseCheckNeedsAWritableWorkDir", "[worker][check]") {
  TempDir dir;
  WorkerOptions options;
  options.handler = Handler::kAnalyse;
  options.work_dir = dir.File("not-yet/made");
  CHECK(CheckHandler(options).ok());
  if (geteuid() != 0) {  // root writes anywhere
    const std::string locked = dir.File("locked");
    REQUIRE(mkdir(locked.c_str(), 0500) == 0);
    options.work_dir = locked + "/work";
    CHECK_FALSE(CheckHandler(options).ok());
  }
}

}  // namespace tq
