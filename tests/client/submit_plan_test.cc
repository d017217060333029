#include "client/submit_plan.h"

#include <catch2/catch.hpp>
#include <set>

#include "tq/client.h"

namespace tq {

TEST_CASE("ValidateBatchId accepts 1..64 chars of [A-Za-z0-9._:-]",
          "[batch_id]") {
  CHECK(ValidateBatchId("a").ok());
  CHECK(ValidateBatchId("Run-2024.05.01_eu:1").ok());
  CHECK(ValidateBatchId(std::string(64, 'x')).ok());
}

TEST_CASE("ValidateBatchId refuses empty, long and odd-character ids",
          "[batch_id]") {
  CHECK(ValidateBatchId("").code() == Status::Code::kInvalidArgument);
  Status too_long = ValidateBatchId(std::string(65, 'x'));
  CHECK(too_long.code() == Status::Code::kInvalidArgument);
  CHECK(too_long.message() == "batch id is 65 characters long (limit 64)");
  Status slash = ValidateBatchId("a/b");
  CHECK(slash.code() == Status::Code::kInvalidArgument);
  CHECK(slash.message() ==
        "batch id has a character other than [A-Za-z0-9._:-] at column 2");
  CHECK_FALSE(ValidateBatchId("a b").ok());
  CHECK_FALSE(ValidateBatchId("caf\xC3\xA9").ok());
}

TEST_CASE("NewBatchId gives distinct valid 16-hex-digit ids", "[batch_id]") {
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    std::string id = NewBatchId();
    CHECK(id.size() == 16);
    CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(ValidateBatchId(id).ok());
    ids.insert(id);
  }
  CHECK(ids.size() == 100);
}

TEST_CASE("Item indexes are url-major and map back to url and queue",
          "[submit_plan]") {
  CHECK(ItemIndex(0, 0, 2) == 0);
  CHECK(ItemIndex(0, 1, 2) == 1);
  CHECK(ItemIndex(1, 0, 2) == 2);
  CHECK(ItemIndex(5, 2, 3) == 17);
  ItemLocation at = LocateItem(17, 3);
  CHECK(at.url_index == 5);
  CHECK(at.queue_index == 2);
  for (uint64_t i = 0; i < 30; ++i) {
    ItemLocation l = LocateItem(i, 3);
    CHECK(ItemIndex(l.url_index, l.queue_index, 3) == i);
  }
}

TEST_CASE("PlanSubmit puts every url on every queue with url-major indexes",
          "[submit_plan]") {
  SubmitOptions options;
  options.queues = {"IT", "IN"};
  options.priority = 5;
  options.max_attempts = 4;
  options.time_limit_ms = 9000;
  options.task_options = {{"mode", "fast"}};
  auto plan = PlanSubmit({"http://a/", "http://b/"}, options, "batch1");
  REQUIRE(plan.ok());
  CHECK(plan->total == 4);
  CHECK(plan->local_errors.empty());
  REQUIRE(plan->chunks.size() == 1);
  const auto& submit = plan->chunks[0].submit();
  CHECK(submit.batch_id() == "batch1");
  CHECK(submit.priority() == 5);
  CHECK(submit.max_attempts() == 4);
  CHECK(submit.time_limit_ms() == 9000);
  CHECK(submit.options().at("mode") == "fast");
  REQUIRE(submit.items_size() == 4);
  CHECK(submit.items(0).index() == 0);
  CHECK(submit.items(0).url() == "http://a/");
  CHECK(submit.items(0).queue() == "IT");
  CHECK(submit.items(1).index() == 1);
  CHECK(submit.items(1).url() == "http://a/");
  CHECK(submit.items(1).queue() == "IN");
  CHECK(submit.items(2).index() == 2);
  CHECK(submit.items(2).url() == "http://b/");
  CHECK(submit.items(2).queue() == "IT");
  CHECK(submit.items(3).index() == 3);
}

TEST_CASE("PlanSubmit splits large batches into chunks of at most 1000 items",
          "[submit_plan]") {
  std::vector<std::string> urls(1250, "http://example.com/");
  SubmitOptions options;
  options.queues = {"generic", "DE"};
  auto plan = PlanSubmit(urls, options, "big");
  REQUIRE(plan.ok());
  CHECK(plan->total == 2500);
  REQUIRE(plan->chunks.size() == 3);
  uint32_t expected = 0;
  for (const auto& chunk : plan->chunks) {
    CHECK(chunk.submit().items_size() <= 1000);
    CHECK(chunk.submit().batch_id() == "big");
    for (const auto& item : chunk.submit().items()) {
      CHECK(item.index() == expected++);
    }
  }
  CHECK(expected == 2500);
}

TEST_CASE("PlanSubmit keeps each chunk within the byte budget",
          "[submit_plan]") {
  std::vector<std::string> urls(1000,
                                "http://example.com/" + std::string(9000, 'p'));
  auto plan = PlanSubmit(urls, SubmitOptions{}, "fat");
  REQUIRE(plan.ok());
  CHECK(plan->chunks.size() > 1);
  for (const auto& chunk : plan->chunks) {
    CHECK(chunk.ByteSizeLong() <= kMaxChunkBytes);
  }
}

TEST_CASE("PlanSubmit refuses a bad queue name, naming it", "[submit_plan]") {
  SubmitOptions options;
  options.queues = {"IT", "XX"};
  auto plan = PlanSubmit({"http://a/"}, options, "b");
  REQUIRE_FALSE(plan.ok());
  CHECK(plan.status().code() == Status::Code::kInvalidArgument);
  CHECK(plan.status().message().find("'XX'") != std::string::npos);
}

TEST_CASE("PlanSubmit refuses a queue listed twice", "[submit_plan]") {
  SubmitOptions options;
  options.queues = {"IT", "IT"};
  auto plan = PlanSubmit({"http://a/"}, options, "b");
  REQUIRE_FALSE(plan.ok());
  CHECK(plan.status().message() == "queue 'IT' is listed twice");
}

TEST_CASE("PlanSubmit refuses a bad batch id and an empty url list",
          "[submit_plan]") {
  CHECK(PlanSubmit({"http://a/"}, SubmitOptions{}, "bad id").status().code() ==
        Status::Code::kInvalidArgument);
  CHECK(PlanSubmit({}, SubmitOptions{}, "b").status().message() ==
        "no URLs to submit");
  SubmitOptions no_queues;
  no_queues.queues.clear();
  CHECK(PlanSubmit({"http://a/"}, no_queues, "b").status().code() ==
        Status::Code::kInvalidArgument);
}

}  // namespace tq
