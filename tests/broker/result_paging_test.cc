// Results replies are paged by bytes as well as by count: every reply fits
// in one message, whatever the outputs and files weigh.
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/codec.h"
#include "tests/broker/broker_harness.h"

namespace tq {
namespace {

using testing::Harness;
using testing::Urls;

constexpr size_t kMiB = 1024 * 1024;

// The output the worker reports for a task: `bytes` long, different per task.
std::string OutputFor(uint64_t task_id, size_t bytes) {
  std::string s(bytes, char('a' + task_id % 26));
  const std::string tag = std::to_string(task_id) + ":";
  s.replace(0, std::min(bytes, tag.size()), tag, 0, bytes);
  return s;
}

// One worker runs every queued task of the broker; `size_of(task_id)` is the
// size of each task's output. Returns the output by task id.
std::map<uint64_t, std::string> RunAll(
    Harness& h, size_t tasks, const std::function<size_t(uint64_t)>& size_of) {
  std::map<uint64_t, std::string> outputs;
  auto assigned = h.Join("w1", "worker-1", "", 4);
  for (int turn = 0; turn < 100 && !assigned.empty(); ++turn) {
    for (const wire::Task& t : assigned) {
      outputs[t.task_id()] = OutputFor(t.task_id(), size_of(t.task_id()));
      h.Result("w1", t, true, 1, outputs[t.task_id()]);
    }
    assigned = Harness::Assigned(h.Turn(), "w1");
  }
  REQUIRE(outputs.size() == tasks);
  return outputs;
}

// Fetches the batch page by page from cursor 0 until a page comes back
// empty. Checks that every reply, encoded, fits in one message.
std::vector<wire::Results> FetchPages(Harness& h, const std::string& batch,
                                      uint32_t limit = 0) {
  std::vector<wire::Results> pages;
  uint64_t after = 0;
  for (int n = 0; n < 100; ++n) {
    wire::Envelope f;
    auto* fetch = f.mutable_fetch_results();
    fetch->set_batch_id(batch);
    fetch->set_after(after);
    fetch->set_limit(limit);
    h.Send("client", f, 100 + n);
    auto out = h.Turn();
    const wire::Envelope* r =
        Harness::Find(out, "client", wire::Envelope::kResults);
    REQUIRE(r != nullptr);
    wire::Envelope sent = *r;
    const size_t bytes = Encode(sent).size();
    INFO("page " << n << ": " << r->results().tasks_size() << " results, "
                 << bytes << " bytes");
    CHECK(bytes <= size_t(kMaxMessageBytes));
    if (r->results().tasks_size() == 0) return pages;
    CHECK(r->results().cursor() > after);
    after = r->results().cursor();
    pages.push_back(r->results());
  }
  FAIL("the pages never ended");
  return pages;
}

TEST_CASE("ManyBigOutputsComeBackInSeveralPagesEachUnderTheCap",
          "[broker][paging]") {
  Harness h;
  // The case and more: 30 x 1.1 MB is twice the message cap.
  h.Submit("b", Urls(30));
  h.Turn();
  auto outputs = RunAll(h, 30, [](uint64_t) { return size_t(1'100'000); });

  for (uint32_t limit : {0u, 1000u, 7u}) {
    INFO("limit " << limit);
    auto pages = FetchPages(h, "b", limit);
    CHECK(pages.size() >= 3);
    std::map<uint64_t, int> seen;
    for (const auto& page : pages) {
      if (limit != 0) CHECK(uint32_t(page.tasks_size()) <= limit);
      for (const auto& t : page.tasks()) {
        ++seen[t.task_id()];
        CHECK(t.output() == outputs[t.task_id()]);
        CHECK_FALSE(t.output_truncated());
      }
      CHECK(page.counts().done() == 30);
    }
    CHECK(seen.size() == 30);
    for (const auto& [id, times] : seen) CHECK(times == 1);
  }
}

TEST_CASE("AResultBiggerThanThePageBudgetStillGoesAlone", "[broker][paging]") {
  Harness h;
  h.Submit("b", Urls(3));
  h.Turn();
  // The middle one is bigger than a page's budget but within what a worker
  // may send (its --max-output tops out at the message cap less 1 MiB).
  uint64_t first = 0;
  auto outputs = RunAll(h, 3, [&](uint64_t id) {
    if (first == 0) first = id;
    return id == first + 1 ? 15 * kMiB : 1000;
  });
  auto pages = FetchPages(h, "b");
  REQUIRE(pages.size() == 3);
  for (const auto& page : pages) REQUIRE(page.tasks_size() == 1);
  CHECK(pages[1].tasks(0).output().size() == 15 * kMiB);
  CHECK(pages[1].tasks(0).output() == outputs[pages[1].tasks(0).task_id()]);
  CHECK_FALSE(pages[1].tasks(0).output_truncated());
}

TEST_CASE("AResultTooBigForAnyMessageIsCutAndSaysSo", "[broker][paging]") {
  Harness h;
  h.Submit("b", Urls(2));
  h.Turn();
  // Only a peer that ignores the worker's caps can store this much.
  uint64_t first = 0;
  auto outputs = RunAll(h, 2, [&](uint64_t id) {
    if (first == 0) first = id;
    return id == first ? 17 * kMiB : 1000;
  });
  auto pages = FetchPages(h, "b");
  REQUIRE(pages.size() == 2);
  REQUIRE(pages[0].tasks_size() == 1);
  const wire::TaskInfo& cut = pages[0].tasks(0);
  CHECK(cut.task_id() == first);
  CHECK(cut.output_truncated());
  CHECK(cut.output().size() < 16 * kMiB);
  CHECK(cut.output().size() > 15 * kMiB);
  CHECK(outputs[first].compare(0, cut.output().size(), cut.output()) == 0);
  CHECK(cut.error().find("cut to fit one reply") != std::string::npos);
  REQUIRE(pages[1].tasks_size() == 1);
  CHECK(pages[1].tasks(0).output() == outputs[pages[1].tasks(0).task_id()]);
}

TEST_CASE("OutputAndFileContentShareOnePageBudget", "[broker][paging]") {
  Harness h;
  h.Submit("b", Urls(4));
  h.Turn();
  auto tasks = h.Join("w1", "worker-1", "", 4);
  REQUIRE(tasks.size() == 4);
  // 3 MiB of output and 3 MiB of file each: two results per 12 MiB page.
  for (const wire::Task& t : tasks) {
    wire::Envelope e = Harness::ResultWithFile(
        t, "sample.bin", OutputFor(t.task_id() + 100, 3 * kMiB));
    e.mutable_result()->set_output(OutputFor(t.task_id(), 3 * kMiB));
    h.Send("w1", e, 5);
  }
  h.Turn();
  std::map<uint64_t, int> seen;
  uint64_t after = 0;
  int pages = 0;
  for (int n = 0; n < 10; ++n) {
    wire::Envelope f;
    f.mutable_fetch_results()->set_batch_id("b");
    f.mutable_fetch_results()->set_after(after);
    f.mutable_fetch_results()->set_with_files(true);
    h.Send("client", f, 50 + n);
    auto out = h.Turn();
    const wire::Envelope* r =
        Harness::Find(out, "client", wire::Envelope::kResults);
    REQUIRE(r != nullptr);
    wire::Envelope sent = *r;
    CHECK(Encode(sent).size() <= size_t(kMaxMessageBytes));
    if (r->results().tasks_size() == 0) break;
    ++pages;
    CHECK(r->results().tasks_size() <= 3);
    for (const auto& t : r->results().tasks()) {
      ++seen[t.task_id()];
      CHECK(t.output().size() == 3 * kMiB);
      REQUIRE(t.files_size() == 1);
      CHECK(t.files(0).content() == OutputFor(t.task_id() + 100, 3 * kMiB));
    }
    after = r->results().cursor();
  }
  CHECK(pages >= 2);
  CHECK(seen.size() == 4);
}

}  // namespace
}  // namespace tq
