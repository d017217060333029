// The --wait summary by outcome and --fail-on's parsing (#18).
#include <catch2/catch.hpp>

#include "client/progress_line.h"
#include "client/submit_flags.h"

namespace tq {

TEST_CASE("BatchSummaryCountsDoneTasksByOutcome", "[progress][outcome]") {
  BatchProgress p;
  p.total = 200;
  p.done = 200;
  p.ok = 163;
  p.unreachable = 30;
  p.http_error = 7;
  CHECK(FormatBatchSummary(p) ==
        "200 done: 163 ok, 30 unreachable, 7 http_error; 0 dead, 0 cancelled "
        "of 200");
  BatchProgress clean;
  clean.total = clean.done = clean.ok = 4;
  CHECK(FormatBatchSummary(clean) == "4 done: 4 ok; 0 dead, 0 cancelled of 4");
}

TEST_CASE("FailOnTakesOutcomeNamesAndRefusesOthers", "[flags][outcome]") {
  auto names = ParseFailOn("unreachable, http_error");
  REQUIRE(names.ok());
  CHECK(*names == std::set<std::string>{"unreachable", "http_error"});
  CHECK(ParseFailOn("").ok());
  auto bad = ParseFailOn("unreachable,404");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("'404'") != std::string::npos);
}

}  // namespace tq
