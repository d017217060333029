// End to end against a hostile peer (issues #10 and #15): a real tq-broker
// and honest tq-workers on loopback while a peer speaking the protocol
// directly sends junk, floods, never reads, forges results or grabs tasks
// and runs. Each test asserts that an honest batch completes, every task
// done exactly once by an honest worker.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <zmq.hpp>

#include "tests/e2e/e2e_client.h"
#include "tests/support/cluster.h"
#include "tests/support/hostile_peer.h"
#include "tests/support/wait.h"
#include "tq/client.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using testing::BrokerProcess;
using testing::HostilePeer;
using testing::HostilePeerOptions;
using testing::JunkFactory;
using testing::JunkKind;
using testing::Process;
using testing::ReadFile;
using testing::ResidentKiB;
using testing::StartWorker;
using testing::TempDir;
using testing::WaitUntil;
using Clock = std::chrono::steady_clock;

std::vector<std::string> Urls(int n, const std::string& tag) {
  std::vector<std::string> urls;
  for (int i = 0; i < n; ++i) {
    urls.push_back("http://127.0.0.1/" + tag + "/" + std::to_string(i));
  }
  return urls;
}

// Two honest workers whose handler prints the URL and appends it to
// dir/runs, so that runs can be counted as well as results.
struct HonestWorkers {
  HonestWorkers(const TempDir& dir, const std::string& endpoint,
                int concurrency = 2)
      : runs(dir.File("runs")) {
    const std::vector<std::string> handler = {
        "--exec", "sh -c 'echo \"$0\" >> " + runs + "; echo \"$0\"' {url}"};
    for (const char* id : {"w0", "w1"}) {
      procs.push_back(
          StartWorker(dir, endpoint, {id, "none", concurrency, handler}));
    }
  }
  std::string runs;
  std::vector<std::unique_ptr<Process>> procs;
};

bool WorkersConnected(Client& client, size_t n) {
  auto workers = client.Workers();
  return workers.ok() && workers->size() == n;
}

BrokerStats Stats(Client& client) {
  BrokerStats stats;
  auto queues = client.Queues(&stats);
  INFO(queues.status().message());
  CHECK(queues.ok());
  return stats;
}

std::vector<TaskResult> Collect(Client& client, const std::string& batch,
                                std::chrono::milliseconds deadline) {
  std::vector<TaskResult> results;
  Status st = client.WaitForResults(
      batch,
      [&](const TaskResult& r) {
        results.push_back(r);
        return true;
      },
      nullptr, deadline);
  INFO(st.message());
  CHECK(st.ok());
  return results;
}

// Every index of the batch once, done, by an honest worker, with its own
// output; each URL of the batch run once by the honest handler (no lease
// lost on the honest side, nothing forged).
void CheckExactlyOnce(const std::vector<TaskResult>& results, int n,
                      const std::string& tag, const std::string& runs_file) {
  std::set<uint32_t> indexes;
  size_t not_done = 0, not_honest = 0, wrong_output = 0;
  for (const TaskResult& r : results) {
    indexes.insert(r.index);
    if (r.state != "done") ++not_done;
    if (r.worker != "w0" && r.worker != "w1") ++not_honest;
    if (r.output != r.url + "\n") ++wrong_output;
  }
  CHECK(results.size() == size_t(n));
  CHECK(indexes.size() == size_t(n));
  CHECK(not_done == 0);
  CHECK(not_honest == 0);
  CHECK(wrong_output == 0);
  std::map<std::string, int> runs;
  std::istringstream lines(ReadFile(runs_file));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("/" + tag + "/") != std::string::npos) ++runs[line];
  }
  size_t run_twice = 0;
  for (const auto& [url, count] : runs) run_twice += count > 1;
  CHECK(runs.size() == size_t(n));
  CHECK(run_twice == 0);
}

size_t WarningLines(const std::string& log) {
  size_t n = 0;
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find(" warning ") != std::string::npos) ++n;
  }
  return n;
}

size_t CountOf(const std::string& log, const std::string& what) {
  size_t n = 0;
  for (size_t at = log.find(what); at != std::string::npos;
       at = log.find(what, at + what.size())) {
    ++n;
  }
  return n;
}

HostilePeerOptions Immediate() {
  HostilePeerOptions o;
  o.immediate = true;
  return o;
}

// A fixed seed per test (reproducible junk), printed on failure.
constexpr uint64_t kSeed = 20261203;

// Two honest workers serve a 300-URL batch submitted while a hostile peer
// sends every kind of junk (bounded: 200,000 messages or 30 s, stopping once
// the batch is done); Result mutations name task ids from first_task_id on.
void HonestBatchUnderJunk(bool mutate_results, uint64_t first_task_id,
                          std::chrono::milliseconds collect_deadline) {
  TempDir dir;
  BrokerProcess broker(dir);
  HonestWorkers honest(dir, broker.endpoint());
  auto client = testing::Connect(broker.endpoint());
  REQUIRE(WaitUntil([&] { return WorkersConnected(*client, 2); }, 10s));
  const BrokerStats before = Stats(*client);

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::atomic<int> oversized{0};
  std::map<JunkKind, uint64_t> kinds;  // written by the attacker only
  std::thread attacker([&] {
    zmq::context_t context;
    JunkFactory junk(kSeed, first_task_id, 1000);
    junk.set_mutate_results(mutate_results);
    HostilePeer peer(context, broker.endpoint());
    // Oversized frames each on their own connection (ZeroMQ cuts it), kept
    // open until the end so that the frame is not dropped unsent.
    std::vector<std::unique_ptr<HostilePeer>> big;
    const auto start = Clock::now();
    for (uint64_t i = 0; i < 200'000 && !stop; ++i) {
      if (Clock::now() - start > 30s) break;
      if (i % 3000 == 1500 && big.size() < 3) {
        big.push_back(std::make_unique<HostilePeer>(context, broker.endpoint(),
                                                    Immediate()));
        if (big.back()->WaitConnected(2s) &&
            big.back()->SendFrames({testing::OversizedFrame()})) {
          ++oversized;
        }
      }
      JunkKind kind;
      std::vector<std::string> frames = junk.Next(&kind);
      if (peer.SendFrames(frames)) {
        ++kinds[kind];
        ++sent;
      } else {
        peer.DrainReplies();  // full: read what came back, go on
      }
      if (i % 64 == 0) peer.DrainReplies();
    }
  });
  // The batch goes in while the attack runs.
  const bool attacking = WaitUntil([&] { return sent >= 2000; }, 20s);
  SubmitOptions options;
  options.batch_id = "honest";
  auto receipt = client->Submit(Urls(300, "honest"), options);
  std::vector<TaskResult> results;
  if (receipt.ok()) results = Collect(*client, "honest", collect_deadline);
  const uint64_t sent_while_batch_ran = sent;
  stop = true;
  attacker.join();

  std::ostringstream sent_by_kind;
  for (const auto& [kind, n] : kinds) {
    sent_by_kind << testing::JunkKindName(kind) << ": " << n << "; ";
  }
  INFO("junk sent: " << sent << " (" << sent_by_kind.str()
                     << "), oversized frames: " << oversized);
  REQUIRE(attacking);
  REQUIRE(receipt.ok());
  CHECK(receipt->accepted == 300);
  CheckExactlyOnce(results, 300, "honest", honest.runs);
  auto progress = client->Progress("honest");
  REQUIRE(progress.ok());
  CHECK(progress->done == 300);
  CHECK(progress->dead == 0);
  CHECK(sent_while_batch_ran > 2000);
  CHECK(oversized > 0);
  // Junk is counted (most of it: a mutation may also parse as a valid
  // message, which is not counted), oversized frames included once the
  // broker has seen their connections close.
  CHECK(WaitUntil(
      [&] {
        return Stats(*client).bad_messages >=
               before.bad_messages + sent_while_batch_ran / 4;
      },
      10s));
  // The oversized ones are named as such (issue #15 item 6).
  CHECK(WaitUntil(
      [&] {
        return broker.Log().find("closed before its first message arrived") !=
               std::string::npos;
      },
      10s));
  CHECK(broker.process().Running());
}

TEST_CASE("HonestBatchCompletesExactlyOnceUnderJunkFromAHostilePeer",
          "[e2e][hostile]") {
  // Mutations of Submits and Hellos only, and wrong-direction bodies naming
  // task ids nobody has. (A mutated Result can name a live task with token
  // 0 whatever ids it starts from: the next test.)
  HonestBatchUnderJunk(/*mutate_results=*/false, uint64_t(1) << 40, 60s);
}

// Junk naming the live task ids (1..1000), Result mutations included: a
// mutated Hello that still parses opens a session, and a Result of it
// that lost its token to a cut or a flip (token 0) was accepted for a queued
// task (issue #15 item 1): with ok=true the task was done by
// "junk-worker-N" with output "forged by junk"; with ok=false a task with 0
// attempts went to retry_wait for 60 s (the back-off of attempt "0 - 1").
TEST_CASE("JunkNamingLiveTaskIdsChangesNoHonestTask", "[e2e][hostile]") {
  HonestBatchUnderJunk(/*mutate_results=*/true, 1, 20s);
}

TEST_CASE("TwentyThousandBadMessagesWriteAFewDozenWarnings", "[e2e][hostile]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto client = testing::Connect(broker.endpoint());
  const BrokerStats before = Stats(*client);
  const size_t warnings_before = WarningLines(broker.Log());

  zmq::context_t context;
  HostilePeer peer(context, broker.endpoint());
  JunkFactory junk(kSeed + 1);
  // Kinds that are bad whatever the random draw: each is counted.
  const JunkKind kinds[] = {JunkKind::kMultiFrame, JunkKind::kEmptyFrame,
                            JunkKind::kUnknownBody, JunkKind::kBadVersion,
                            JunkKind::kWrongDirection};
  constexpr uint64_t kBad = 20'000;
  uint64_t sent = 0;
  const auto start = Clock::now();
  for (uint64_t i = 0; sent < kBad && Clock::now() - start < 30s; ++i) {
    if (peer.SendFrames(junk.Make(kinds[sent % std::size(kinds)]))) {
      ++sent;
    } else {
      peer.DrainReplies();
      peer.WaitConnected(10ms);
    }
    if (i % 64 == 0) peer.DrainReplies();
  }
  REQUIRE(sent == kBad);
  // Once the broker has read them all (each answered with an Error).
  REQUIRE(WaitUntil(
      [&] { return Stats(*client).bad_messages >= before.bad_messages + kBad; },
      30s));
  const std::string log = broker.Log();
  const size_t warnings = WarningLines(log) - warnings_before;
  std::ostringstream figures;
  figures << kBad << " bad messages: " << warnings << " warning lines, log now "
          << log.size() << " bytes";
  WARN(figures.str());
  // 5 per (address, kind) per minute and at most 100 a minute in all: five
  // kinds here, so 25 lines, or twice that across a window boundary.
  CHECK(warnings <= 50);
  CHECK(CountOf(log, "refused a message from") <= 50);

  // And it keeps serving.
  auto worker = StartWorker(dir, broker.endpoint(), {"w", "none", 2});
  auto receipt = client->Submit(Urls(20, "after"), {});
  REQUIRE(receipt.ok());
  auto results = Collect(*client, receipt->batch_id, 30s);
  CHECK(results.size() == 20);
}

// Lines a broker at --log-level warn would still write: its warnings and
// errors, and what libprotobuf prints to stderr itself.
size_t LinesAtWarnOrAbove(const std::string& log) {
  size_t n = 0;
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find(" warning ") != std::string::npos ||
        line.find(" error ") != std::string::npos ||
        line.find(" critical ") != std::string::npos ||
        line.rfind("[libprotobuf", 0) == 0) {
      ++n;
    }
  }
  return n;
}

// Mutated Submits, Results and Hellos and random bytes: many do not parse,
// some parse with invalid UTF-8 in a string field, and then libprotobuf
// itself writes "[libprotobuf ERROR ...] String field ... contains invalid
// UTF-8 data" to stderr for each, past the broker's limiter (about one in
// twenty of these messages). The broker routes protobuf's log to its own
// at debug level (common/log.cc), so they no longer reach the log.
TEST_CASE("TwentyThousandMutatedMessagesWriteAFewDozenLines",
          "[e2e][hostile]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto client = testing::Connect(broker.endpoint());
  const BrokerStats before = Stats(*client);
  const size_t lines_before = LinesAtWarnOrAbove(broker.Log());

  zmq::context_t context;
  HostilePeer peer(context, broker.endpoint());
  JunkFactory junk(kSeed + 2, uint64_t(1) << 40);
  const JunkKind kinds[] = {JunkKind::kRandomBytes, JunkKind::kTruncated,
                            JunkKind::kBitFlipped};
  constexpr uint64_t kMessages = 20'000;
  uint64_t sent = 0;
  const auto start = Clock::now();
  for (uint64_t i = 0; sent < kMessages && Clock::now() - start < 30s; ++i) {
    if (peer.SendFrames(junk.Make(kinds[sent % std::size(kinds)]))) {
      ++sent;
    } else {
      peer.DrainReplies();
      peer.WaitConnected(10ms);
    }
    if (i % 64 == 0) peer.DrainReplies();
  }
  REQUIRE(sent == kMessages);
  // Each message is either counted as bad or handled.
  REQUIRE(WaitUntil(
      [&] {
        const BrokerStats now = Stats(*client);
        return now.bad_messages + now.messages_in >=
               before.bad_messages + before.messages_in + kMessages;
      },
      30s));
  const std::string log = broker.Log();
  const size_t lines = LinesAtWarnOrAbove(log) - lines_before;
  INFO("lines at warn or above: " << lines << " (libprotobuf: "
                                  << CountOf(log, "[libprotobuf")
                                  << "; 'joined': " << CountOf(log, " joined ")
                                  << "), log bytes: " << log.size());
  CHECK(lines <= 50);
  CHECK(broker.process().Running());
}

TEST_CASE("ThousandConnectDisconnectPeersLeaveBatchAndMemoryAlone",
          "[e2e][hostile]") {
  TempDir dir;
  BrokerProcess broker(dir);
  HonestWorkers honest(dir, broker.endpoint());
  auto client = testing::Connect(broker.endpoint());
  REQUIRE(WaitUntil([&] { return WorkersConnected(*client, 2); }, 10s));
  const int broker_pid = broker.process().pid();
  const uint64_t baseline_kib = ResidentKiB(broker_pid);
  REQUIRE(baseline_kib > 0);

  std::atomic<uint64_t> peak_kib{baseline_kib};
  std::atomic<int> connected{0}, welcomed{0};
  std::atomic<bool> flood_started{false};
  std::thread flood([&] {
    zmq::context_t context;
    context.set(zmq::ctxopt::max_sockets, 4096);
    const auto start = Clock::now();
    // 10 waves of 100 sockets (ZeroMQ's default cap is 1023 per context):
    // every other one says Hello as a worker and asks for nothing, the
    // others say nothing; then all of the wave go at once.
    for (int wave = 0; wave < 10 && Clock::now() - start < 40s; ++wave) {
      std::vector<std::unique_ptr<HostilePeer>> peers;
      for (int i = 0; i < 100; ++i) {
        peers.push_back(std::make_unique<HostilePeer>(
            context, broker.endpoint(), Immediate()));
      }
      flood_started = true;
      for (size_t i = 0; i < peers.size() && Clock::now() - start < 40s; ++i) {
        if (!peers[i]->WaitConnected(2s)) continue;
        ++connected;
        if (i % 2 == 1) continue;
        wire::Hello hello;
        hello.set_worker_id("flood-" + std::to_string(wave) + "-" +
                            std::to_string(i));
        hello.set_concurrency(4);
        if (peers[i]->SayHello(hello, 2s)) ++welcomed;
      }
      peak_kib = std::max<uint64_t>(peak_kib, ResidentKiB(broker_pid));
      peers.clear();  // all disconnect
    }
  });
  REQUIRE(WaitUntil([&] { return flood_started.load(); }, 10s));
  SubmitOptions options;
  options.batch_id = "honest";
  auto receipt = client->Submit(Urls(300, "honest"), options);
  std::vector<TaskResult> results;
  if (receipt.ok()) results = Collect(*client, "honest", 60s);
  flood.join();

  REQUIRE(receipt.ok());
  CheckExactlyOnce(results, 300, "honest", honest.runs);
  INFO("connected " << connected << ", welcomed " << welcomed);
  CHECK(connected == 1000);
  CHECK(welcomed == 500);
  // Every flood session ends with its connection.
  CHECK(WaitUntil([&] { return WorkersConnected(*client, 2); }, 10s));
  const uint64_t after_kib = ResidentKiB(broker_pid);
  std::ostringstream figures;
  figures << "broker RSS: baseline " << baseline_kib << " KiB, peak "
          << peak_kib << " KiB, after " << after_kib << " KiB";
  WARN(figures.str());
  CHECK(peak_kib < 200 * 1024);
  // Close to the baseline: what 1,000 connections left behind, at most.
  CHECK(after_kib < baseline_kib + 32 * 1024);
  CHECK(broker.process().Running());
}

// Without the peer the batch takes 1-2 s. Without a limit on it, 20-60 s
// and the broker's RSS grew past 400 MB: each loop turn reads up to 4096
// messages whoever sent them, and this peer's FetchResults (a page of every
// result so far) filled the turns; its replies piled up unread in the broker
// (ROUTER SNDHWM 1,000,000). The broker now answers one peer's reads past
// 2,000/s (bursts of 4,000) with a short RATE_LIMITED error: alone, the batch
// takes 1.5 s and RSS peaks near 60 MB; under the full suite's load the
// answers still pile up unread (peak 566 MB, batch 14 s in one CI run).
// [!mayfail] until issue #10's per-peer in-flight limit (or a lower SNDHWM)
// bounds what waits for a peer that does not read.
// The RSS bound: the broker holds, for this peer, at most max_in_flight (64)
// answers being built or waiting for their commit, and ZeroMQ at most
// 10,000 messages queued each way (defaults in broker_server.h); once its
// queue is full its requests are refused without reaching the core. Most
// of what this peer is sent before that are small (queue lists, errors,
// pages of a batch still filling): it peaks about 4 MB over the start.
// 64 MiB is that with room for a loaded machine; the worst case of the
// limits (10,064 pages of 300 results, ~40 KB each) is larger, ~400 MB.
// (It peaked at 525 MB to 1.1 GB before: ZeroMQ queued up to a million
// answers to a peer that never read.)
TEST_CASE("PeerThatSendsFastAndNeverReadsDoesNotStopABatch", "[e2e][hostile]") {
  TempDir dir;
  BrokerProcess broker(dir);
  HonestWorkers honest(dir, broker.endpoint());
  auto client = testing::Connect(broker.endpoint());
  REQUIRE(WaitUntil([&] { return WorkersConnected(*client, 2); }, 10s));
  const int broker_pid = broker.process().pid();
  const uint64_t baseline_kib = ResidentKiB(broker_pid);

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> peak_kib{baseline_kib};
  std::thread greedy([&] {
    zmq::context_t context;
    HostilePeer peer(context, broker.endpoint());  // default HWMs
    const auto start = Clock::now();
    for (uint64_t i = 0; i < 300'000 && !stop; ++i) {
      if (Clock::now() - start > 30s) break;
      wire::Envelope env;
      if (i % 2 == 0) {
        env.mutable_list_queues();
      } else {
        auto* f = env.mutable_fetch_results();
        f->set_batch_id("honest");
        f->set_limit(1000);
      }
      if (peer.SendEnvelope(std::move(env))) {
        ++sent;
      } else {
        peer.WaitConnected(10ms);  // full: wait for room, never read
      }
      if (i % 1000 == 0) {
        peak_kib = std::max<uint64_t>(peak_kib, ResidentKiB(broker_pid));
      }
    }
    // The broker may still be working through what it read: watch its RSS
    // until the batch is done (bounded by the wait).
    WaitUntil(
        [&] {
          peak_kib = std::max<uint64_t>(peak_kib, ResidentKiB(broker_pid));
          return stop.load();
        },
        60s, 50ms);
  });
  REQUIRE(WaitUntil([&] { return sent >= 5000; }, 20s));
  SubmitOptions options;
  options.batch_id = "honest";
  const auto submitted = Clock::now();
  auto receipt = client->Submit(Urls(300, "honest"), options);
  std::vector<TaskResult> results;
  if (receipt.ok()) results = Collect(*client, "honest", 30s);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      Clock::now() - submitted);
  const uint64_t sent_while_batch_ran = sent;
  stop = true;
  greedy.join();

  REQUIRE(receipt.ok());
  CheckExactlyOnce(results, 300, "honest", honest.runs);
  const std::string log = broker.Log();
  std::ostringstream figures;
  figures << "batch took " << took.count()
          << " ms; requests sent unread: " << sent_while_batch_ran
          << "; broker RSS " << baseline_kib << " KiB at start, peak "
          << peak_kib
          << " KiB; 'queue is full' lines: " << CountOf(log, "queue is full");
  WARN(figures.str());

  CHECK(sent_while_batch_ran > 5000);
  // Slowed down a little, not stopped.
  CHECK(took < 15s);
  CHECK(peak_kib < baseline_kib + 64 * 1024);
  // It was told why (refused while its queue is full).
  CHECK(CountOf(log, "queue is full") > 0);
  CHECK(broker.process().Running());
}

// The in-flight limit itself: 100 long-polling fetches of a batch with no
// results park 64 of them; the other 36 are answered RATE_LIMITED at once,
// each with its own seq. The parked ones are answered with theirs when
// results come. Meanwhile another client is served.
TEST_CASE("RequestsBeyondThePeersInFlightLimitAreRateLimited",
          "[e2e][hostile]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto client = testing::Connect(broker.endpoint());
  SubmitOptions options;
  options.batch_id = "parked";
  auto receipt = client->Submit(Urls(5, "parked"), options);
  REQUIRE(receipt.ok());

  zmq::context_t context;
  HostilePeer peer(context, broker.endpoint());
  constexpr uint64_t kRequests = 100, kLimit = 64;
  for (uint64_t seq = 1; seq <= kRequests; ++seq) {
    wire::Envelope env;
    env.set_seq(seq);
    auto* f = env.mutable_fetch_results();
    f->set_batch_id("parked");
    f->set_wait_ms(30000);
    REQUIRE(peer.SendEnvelope(std::move(env)));
  }
  std::set<uint64_t> limited;
  size_t other = 0;
  for (int i = 0; i < 200 && limited.size() + other < kRequests - kLimit; ++i) {
    auto reply = peer.Receive(5s);
    if (!reply) break;
    if (reply->has_error() && reply->error().code() == wire::RATE_LIMITED) {
      CHECK(reply->error().retryable());
      limited.insert(reply->seq());
    } else {
      ++other;
    }
  }
  CHECK(other == 0);
  REQUIRE(limited.size() == kRequests - kLimit);
  CHECK(*limited.begin() == kLimit + 1);
  CHECK(*limited.rbegin() == kRequests);
  // Nothing more comes while they stay parked.
  CHECK_FALSE(peer.Receive(300ms).has_value());
  // Another peer is not limited by this one.
  auto queues = client->Queues();
  CHECK(queues.ok());
  CHECK(WaitUntil(
      [&] {
        return broker.Log().find("requests unanswered") != std::string::npos;
      },
      5s));

  // Results come: every parked fetch is answered, under its own seq.
  auto worker = StartWorker(dir, broker.endpoint(), {"w0", "none", 1});
  std::set<uint64_t> answered;
  for (int i = 0; i < 200 && answered.size() < kLimit; ++i) {
    auto reply = peer.Receive(10s);
    if (!reply) break;
    if (reply->has_results()) answered.insert(reply->seq());
  }
  REQUIRE(answered.size() == kLimit);
  CHECK(*answered.begin() == 1);
  CHECK(*answered.rbegin() == kLimit);
  // Its slots are free again: a new request is answered, not refused.
  wire::Envelope again;
  again.set_seq(1000);
  again.mutable_list_queues();
  REQUIRE(peer.SendEnvelope(std::move(again)));
  std::optional<wire::Envelope> reply;
  for (int i = 0; i < 10; ++i) {
    reply = peer.Receive(5s);
    if (!reply || reply->seq() == 1000) break;
  }
  REQUIRE(reply);
  CHECK(reply->seq() == 1000);
  CHECK(reply->has_queue_list());
}

// Issue #15 item 1: a never-leased task has token 0, and any peer that
// said Hello could finish it with Result{token: 0} or take it with a Hello
// that claims to hold it.
TEST_CASE("ResultsAndHeldLeasesWithTokenZeroAreNotAccepted", "[e2e][hostile]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto client = testing::Connect(broker.endpoint());
  SubmitOptions options;
  options.batch_id = "honest";
  auto receipt = client->Submit(Urls(20, "honest"), options);
  REQUIRE(receipt.ok());
  REQUIRE(receipt->accepted == 20);
  // A fresh database: the batch's tasks are 1..20, all queued.

  zmq::context_t context;
  HostilePeer forger(context, broker.endpoint());
  wire::Hello hello;
  hello.set_worker_id("forger");
  hello.set_concurrency(1);
  REQUIRE(forger.SayHello(hello, 5s));
  for (uint64_t id = 1; id <= 10; ++id) {
    wire::Envelope env;
    auto* r = env.mutable_result();
    r->set_task_id(id);
    r->set_token(0);
    r->set_ok(true);
    r->set_output("forged");
    REQUIRE(forger.SendEnvelope(std::move(env)));
  }
  int acks = 0, accepted = 0;
  for (int i = 0; i < 50 && acks < 10; ++i) {
    auto reply = forger.Receive(2s);
    if (!reply) break;
    if (!reply->has_result_ack()) continue;
    ++acks;
    accepted += reply->result_ack().accepted();
  }
  HostilePeer holder(context, broker.endpoint());
  wire::Hello claim;
  claim.set_worker_id("holder");
  claim.set_concurrency(10);
  for (uint64_t id = 11; id <= 20; ++id) {
    auto* l = claim.add_held();
    l->set_task_id(id);
    l->set_token(0);
  }
  // Welcomed without the claimed tasks, or refused: either will do.
  const bool holder_welcomed = holder.SayHello(claim, 5s);

  auto progress = client->Progress("honest");
  REQUIRE(progress.ok());
  INFO("forged results accepted: " << accepted << " of " << acks
                                   << "; holder welcomed: " << holder_welcomed);
  CHECK(accepted == 0);
  CHECK(progress->done == 0);
  CHECK(progress->retry_wait == 0);
  CHECK(progress->leased == 0);  // the claimed ones were not taken
  CHECK(progress->queued == 20);
  auto workers = client->Workers();
  REQUIRE(workers.ok());
  for (const WorkerSummary& w : *workers) {
    INFO(w.worker_id);
    CHECK(w.in_flight == 0);
  }

  HonestWorkers honest(dir, broker.endpoint());
  auto results = Collect(*client, "honest", 30s);
  CheckExactlyOnce(results, 20, "honest", honest.runs);
}

// Issue #15 item 2: a peer that takes every task and disconnects, three
// times, used to burn all three attempts of each task.
TEST_CASE("ThreeGrabAndRunConnectionsDoNotKillABatch", "[e2e][hostile]") {
  TempDir dir;
  BrokerProcess broker(dir);
  auto client = testing::Connect(broker.endpoint());
  SubmitOptions options;
  options.batch_id = "honest";
  auto receipt = client->Submit(Urls(1000, "honest"), options);
  REQUIRE(receipt.ok());
  REQUIRE(receipt->accepted == 1000);

  zmq::context_t context;
  std::vector<size_t> taken;
  for (int round = 0; round < 3; ++round) {
    {
      HostilePeer grabber(context, broker.endpoint());
      wire::Hello hello;
      hello.set_worker_id("grabber");
      hello.set_concurrency(1024);
      // A broker that throttles such a peer may refuse it: no tasks then.
      if (grabber.SayHello(hello, 5s) && grabber.SendCredit(1024)) {
        taken.push_back(grabber.TakeTasks(1000, 500ms, 5s).size());
      } else {
        taken.push_back(0);
      }
    }  // gone without a word
    // The broker has seen the disconnect: nothing is leased any more.
    REQUIRE(WaitUntil(
        [&] {
          auto p = client->Progress("honest");
          return p.ok() && p->leased == 0;
        },
        10s));
  }
  auto progress = client->Progress("honest");
  REQUIRE(progress.ok());
  INFO("tasks taken per round: " << taken[0] << ", " << taken[1] << ", "
                                 << taken[2]);
  CHECK(progress->dead == 0);

  HonestWorkers honest(dir, broker.endpoint(), 4);
  auto results = Collect(*client, "honest", 60s);
  CheckExactlyOnce(results, 1000, "honest", honest.runs);
}

}  // namespace
}  // namespace tq
