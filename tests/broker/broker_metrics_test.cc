// The broker's counters since start (what /metrics exports as *_total):
// counted only once the turn that changed the tasks has committed.
#include <catch2/catch.hpp>

#include "common/result_wire.h"
#include "tests/broker/broker_harness.h"

namespace tq::testing {
namespace {

wire::Envelope CancelBatch(const std::string& batch) {
  wire::Envelope e;
  e.mutable_cancel_batch()->set_batch_id(batch);
  return e;
}

wire::BrokerStats QueueListStats(Harness& h) {
  wire::Envelope e;
  e.mutable_list_queues();
  h.Send("admin", e, 9);
  const auto out = h.Turn();
  const wire::Envelope* list =
      Harness::Find(out, "admin", wire::Envelope::kQueueList);
  REQUIRE(list != nullptr);
  return list->queue_list().stats();
}

}  // namespace

TEST_CASE("CountersFollowEveryEndOfATask", "[broker][metrics]") {
  Harness h;
  h.Submit("b", Urls(4), "generic", 0, /*max_attempts=*/1);
  h.Turn();
  CHECK(h.broker().stats().tasks_submitted == 4);

  auto t = h.Join("w1", "worker-1", "", 2);
  REQUIRE(t.size() == 2);
  h.Result("w1", t[0], true, /*credit=*/0);
  h.Result("w1", t[1], false, /*credit=*/0);  // one attempt allowed: dead
  h.Turn();
  h.Send("client", CancelBatch("b"), 12);  // the two still queued
  for (int turn = 0; turn < 5; ++turn) h.Turn();

  const BrokerStats& s = h.broker().stats();
  CHECK(s.tasks_done == 1);
  CHECK(s.attempts_failed == 1);
  CHECK(s.tasks_dead == 1);
  CHECK(s.tasks_cancelled == 2);
  CHECK(h.broker().pending_tasks() == 0);

  // The same counters reach a queue list, as the console reads them.
  const wire::BrokerStats wire_stats = QueueListStats(h);
  CHECK(wire_stats.tasks_submitted() == 4);
  CHECK(wire_stats.tasks_done() == 1);
  CHECK(wire_stats.tasks_dead() == 1);
}

TEST_CASE("ExpiredLeaseCountsAsAFailedAttempt", "[broker][metrics]") {
  Harness h;
  h.Submit("b", Urls(2), "generic", 0, /*max_attempts=*/3);
  h.Turn();
  auto t = h.Join("w1", "worker-1", "", 1);
  REQUIRE(t.size() == 1);
  h.Result("w1", t[0], true);  // proves the session, so the loss counts
  auto next = Harness::Assigned(h.Turn(), "w1");
  REQUIRE(next.size() == 1);
  // Past its time limit and grace, with heartbeats so the session lives.
  for (int i = 0; i < 14; ++i) {
    h.clock().Advance(Millis(1000));
    h.Heartbeat("w1");
    h.Turn();
  }
  CHECK(h.broker().stats().attempts_failed == 1);
  CHECK(h.broker().stats().tasks_dead == 0);
}

TEST_CASE("AFailedCommitCountsNothing", "[broker][metrics]") {
  Harness h;
  h.store().FailCommits(true, "database or disk is full");
  h.Submit("b", Urls(3));
  h.Turn();
  CHECK(h.broker().stats().tasks_submitted == 0);
  h.store().FailCommits(false);
  h.clock().Advance(Millis(1500));
  h.Turn();  // the probe finds the store writable again
  h.Submit("b", Urls(3));
  h.Turn();
  CHECK(h.broker().stats().tasks_submitted == 3);
}

TEST_CASE("QueueListCarriesTheLatencyHistograms", "[broker][metrics]") {
  LatencyHistogram commits, syncs;
  BrokerOptions o = TestOptions();
  o.commit_latency = &commits;
  o.sync_latency = &syncs;
  Harness h(o);
  commits.Record(std::chrono::microseconds(80));  // first bucket
  commits.Record(std::chrono::milliseconds(3));   // (2.5 ms, 5 ms]
  commits.Record(std::chrono::seconds(10));       // above every bound
  const wire::BrokerStats s = QueueListStats(h);
  REQUIRE(s.has_commit_latency());
  const auto& c = s.commit_latency();
  REQUIRE(c.counts_size() == c.upper_bounds_seconds_size() + 1);
  CHECK(c.count() == 3);
  CHECK(c.counts(0) == 1);
  CHECK(c.counts(c.counts_size() - 1) == 1);
  CHECK(c.sum_seconds() == Approx(10.00308));
  CHECK(s.has_sync_latency());
  CHECK(s.sync_latency().count() == 0);

  // Through the public model and back, as the client library reads it.
  const BrokerStats model = FromWire(s);
  CHECK(model.commit_latency.count == 3);
  CHECK(model.commit_latency.upper_bounds_s.size() ==
        LatencyHistogram::kBounds.size());
}

TEST_CASE("HistogramBucketsAreUpperBoundsInclusive", "[metrics]") {
  LatencyHistogram h;
  h.Record(std::chrono::microseconds(100));  // exactly the first bound
  h.Record(std::chrono::microseconds(101));
  const LatencyBuckets b = h.Snapshot();
  CHECK(b.counts[0] == 1);
  CHECK(b.counts[1] == 1);
  CHECK(b.count == 2);
}

}  // namespace tq::testing

namespace tq::testing {

TEST_CASE("QuantilesReadAsAtMostTheirBucketsBound", "[metrics]") {
  LatencyHistogram h;
  CHECK(DescribeQuantile(h.Snapshot(), 0.99) == "none");
  for (int i = 0; i < 98; ++i) h.Record(std::chrono::microseconds(700));
  h.Record(std::chrono::milliseconds(4));
  h.Record(std::chrono::seconds(3));
  const LatencyBuckets b = h.Snapshot();
  CHECK(QuantileUpperBound(b, 0.5) == 0.001);
  CHECK(DescribeQuantile(b, 0.5) == "\u2264 1 ms");
  CHECK(DescribeQuantile(b, 0.99) == "\u2264 5 ms");
  CHECK(DescribeQuantile(b, 1.0) == "> 2.5 s");
  CHECK(DescribeQuantile(LatencyBuckets{}, 0.5) == "none");
}

}  // namespace tq::testing
