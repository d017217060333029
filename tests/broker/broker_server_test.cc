// The ZeroMQ loop around the core: a real ROUTER on loopback, a DEALER peer,
// a real SQLite store in a temp dir, and a fake syncer that decides when a
// commit is durable (or that its fsync failed).
#include "broker/broker_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <zmq.hpp>

#include "broker/broker.h"
#include "broker/commit_syncer.h"
#include "broker/sqlite_task_store.h"
#include "common/codec.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;
using testing::WaitUntil;

// Real time plus an offset the test can move: the loop's timers run on their
// own unless the test jumps ahead. Thread-safe, unlike FakeClock.
class TestClock final : public Clock {
 public:
  TimePoint Now() const override {
    return std::chrono::time_point_cast<Millis>(
               std::chrono::steady_clock::now()) +
           Millis(offset_ms_.load());
  }
  int64_t WallMs() const override {
    return std::chrono::duration_cast<Millis>(
               std::chrono::system_clock::now().time_since_epoch())
               .count() +
           offset_ms_.load();
  }
  void Advance(Millis d) { offset_ms_ += d.count(); }

 private:
  std::atomic<int64_t> offset_ms_{0};
};

// Durable only when the test says so.
class FakeSyncer final : public CommitSyncer {
 public:
  FakeSyncer() : event_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~FakeSyncer() override { close(event_fd_); }

  void Request(uint64_t commit) override {
    std::lock_guard lock(mu_);
    requested_ = std::max(requested_, commit);
  }
  uint64_t durable() const override {
    ++durable_calls_;
    std::lock_guard lock(mu_);
    return durable_;
  }
  int notify_fd() const override { return event_fd_; }
  void Drain() override {
    uint64_t n;
    while (read(event_fd_, &n, sizeof n) == sizeof n) {
    }
  }
  Status error() const override {
    std::lock_guard lock(mu_);
    return error_;
  }

  // The test's side.
  uint64_t requested() const {
    std::lock_guard lock(mu_);
    return requested_;
  }
  void MakeDurable() {
    {
      std::lock_guard lock(mu_);
      durable_ = requested_;
    }
    Notify();
  }
  void Fail(const std::string& why) {
    {
      std::lock_guard lock(mu_);
      error_ = Status::IoError(why);
    }
    Notify();
  }
  uint64_t durable_calls() const { return durable_calls_.load(); }

 private:
  void Notify() {
    const uint64_t one = 1;
    (void)!write(event_fd_, &one, sizeof one);
  }

  const int event_fd_;
  mutable std::mutex mu_;
  uint64_t requested_ = 0;
  uint64_t durable_ = 0;
  Status error_;
  mutable std::atomic<uint64_t> durable_calls_{0};
};

// A store, a core and a server running its loop on a thread of its own.
class ServerHarness {
 public:
  explicit ServerHarness(ServerOptions options = {}, bool with_syncer = true) {
    SqliteOptions store_options;
    store_options.deferred_sync = true;
    auto opened = SqliteTaskStore::Open(dir_.File("tq.db"), store_options);
    REQUIRE(opened.ok());
    store_ = std::move(opened).value();
    core_ = std::make_unique<Broker>(*store_, clock_, BrokerOptions{});
    REQUIRE(core_->Start().ok());

    options.listen = "tcp://127.0.0.1:0";
    if (with_syncer) {
      options.syncer = &syncer_;
      options.commit_count = [this] { return store_->commit_count(); };
    }
    server_ = std::make_unique<BrokerServer>(*core_, clock_, options);
    REQUIRE(server_->Bind().ok());

    // The loop reads SIGTERM from a signalfd: its thread starts with the
    // signal blocked, so Stop() only wakes the loop.
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &mask, &old);
    std::packaged_task<Status()> run([this] { return server_->Run(); });
    result_ = run.get_future().share();
    thread_ = std::thread(std::move(run));
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  ~ServerHarness() {
    if (!Finished(0ms)) {
      syncer_.MakeDurable();
      Stop();
    }
    thread_.join();
  }

  // SIGTERM to the loop's thread, as the broker's process would get it.
  void Stop() { pthread_kill(thread_.native_handle(), SIGTERM); }
  bool Finished(Millis timeout) {
    return result_.wait_for(timeout) == std::future_status::ready;
  }
  Status RunResult() { return result_.get(); }

  const std::string& endpoint() const { return server_->endpoint(); }
  FakeSyncer& syncer() { return syncer_; }
  TestClock& clock() { return clock_; }

 private:
  TempDir dir_;
  TestClock clock_;
  FakeSyncer syncer_;
  std::unique_ptr<SqliteTaskStore> store_;
  std::unique_ptr<Broker> core_;
  std::unique_ptr<BrokerServer> server_;
  std::shared_future<Status> result_;  // read more than once
  std::thread thread_;
};

class Peer {
 public:
  explicit Peer(const std::string& endpoint)
      : socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    // Dropped by the broker: stay dropped (no silent reconnection).
    socket_.set(zmq::sockopt::reconnect_ivl, -1);
    socket_.connect(endpoint);
  }

  void Send(wire::Envelope envelope) { SendRaw(Encode(envelope)); }
  void SendRaw(const std::string& bytes) {
    socket_.send(zmq::buffer(bytes), zmq::send_flags::none);
  }

  // The next message, or nothing within `timeout`.
  std::optional<wire::Envelope> Receive(Millis timeout) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    zmq::message_t msg;
    (void)socket_.recv(msg);
    Decoded d = Decode(std::string_view(msg.data<char>(), msg.size()));
    REQUIRE(d.error == DecodeError::kNone);
    return d.envelope;
  }

  void Submit(const std::string& batch) {
    wire::Envelope e;
    e.set_seq(7);
    auto* s = e.mutable_submit();
    s->set_batch_id(batch);
    auto* item = s->add_items();
    item->set_index(0);
    item->set_url("http://127.0.0.1/" + batch);
    item->set_queue("generic");
    Send(e);
  }

  // The broker's bad-message count, as tq-ctl queues shows it.
  std::optional<uint64_t> BadMessages() {
    wire::Envelope e;
    e.set_seq(9);
    e.mutable_list_queues();
    Send(e);
    auto reply = Receive(5s);
    if (!reply || !reply->has_queue_list()) return std::nullopt;
    return reply->queue_list().stats().bad_messages();
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
};

// A TCP connection that closes without a ZeroMQ greeting (a port probe).
void ProbePort(const std::string& endpoint) {
  const int port = std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  close(fd);
}

// How long a test watches for something that must not happen.
constexpr Millis kQuiet = 300ms;

TEST_CASE("SubmitAckWaitsUntilItsCommitIsDurable", "[server]") {
  ServerHarness h;
  Peer peer(h.endpoint());
  peer.Submit("b1");
  // Committed, and the syncer asked to make it durable...
  REQUIRE(WaitUntil([&] { return h.syncer().requested() >= 1; }, 5s));
  // ...but not yet durable: nothing leaves.
  CHECK_FALSE(peer.Receive(kQuiet).has_value());

  h.syncer().MakeDurable();
  auto ack = peer.Receive(5s);
  REQUIRE(ack.has_value());
  REQUIRE(ack->has_submit_ack());
  CHECK(ack->seq() == 7);
  CHECK(ack->submit_ack().accepted() == 1);
}

TEST_CASE("FailedFsyncStopsTheBrokerWithNoAcknowledgement", "[server]") {
  ServerHarness h;
  Peer peer(h.endpoint());
  peer.Submit("b1");
  REQUIRE(WaitUntil([&] { return h.syncer().requested() >= 1; }, 5s));

  h.syncer().Fail("fdatasync: Input/output error");
  REQUIRE(h.Finished(5s));
  Status st = h.RunResult();
  CHECK(st.code() == Status::Code::kIoError);
  CHECK(st.message().find("fdatasync: Input/output error") !=
        std::string::npos);
  CHECK(st.message().find("1 acknowledgements unsent") != std::string::npos);
  CHECK_FALSE(peer.Receive(kQuiet).has_value());
}

TEST_CASE("ShutdownWaitsOnTheSyncersFdForTheLastAcknowledgements", "[server]") {
  ServerHarness h;
  Peer peer(h.endpoint());
  peer.Submit("b1");
  REQUIRE(WaitUntil([&] { return h.syncer().requested() >= 1; }, 5s));

  h.Stop();
  // Stopping, but the last commit is not durable: it waits, and it waits on
  // the fd: durable() is not asked over and over (a 10 ms sleep-and-poll
  // would ask about 30 times in this window).
  CHECK_FALSE(h.Finished(kQuiet));
  const uint64_t calls_before = h.syncer().durable_calls();
  CHECK_FALSE(h.Finished(kQuiet));
  CHECK(h.syncer().durable_calls() - calls_before <= 1);

  h.syncer().MakeDurable();
  REQUIRE(h.Finished(5s));
  CHECK(h.RunResult().ok());
  auto ack = peer.Receive(5s);
  REQUIRE(ack.has_value());
  CHECK(ack->has_submit_ack());
}

TEST_CASE("ShutdownGivesUpOnAnUndurableCommitAfterItsDeadline", "[server]") {
  ServerOptions options;
  options.shutdown_sync_wait = 200ms;
  ServerHarness h(options);
  Peer peer(h.endpoint());
  peer.Submit("b1");
  REQUIRE(WaitUntil([&] { return h.syncer().requested() >= 1; }, 5s));

  h.Stop();
  REQUIRE(h.Finished(5s));
  CHECK(h.RunResult().ok());
  CHECK_FALSE(peer.Receive(kQuiet).has_value());  // never acknowledged
}

TEST_CASE("CommitIntervalRunsOnTheInjectedClock", "[server]") {
  ServerOptions options;
  options.commit_interval = Millis(60'000);
  ServerHarness h(options, /*with_syncer=*/false);
  Peer peer(h.endpoint());
  peer.Submit("b1");
  // The transaction stays open for a minute of the clock's time...
  CHECK_FALSE(peer.Receive(kQuiet).has_value());
  // ...which passes at once when the clock jumps: the loop reads no other.
  h.clock().Advance(Millis(60'000));
  auto ack = peer.Receive(5s);
  REQUIRE(ack.has_value());
  CHECK(ack->has_submit_ack());
}

TEST_CASE("FrameOverZeroMqsCapIsCountedAndServiceGoesOn", "[server]") {
  ServerOptions options;
  options.max_message_bytes = 4096;
  ServerHarness h(options, /*with_syncer=*/false);
  Peer honest(h.endpoint());
  REQUIRE(honest.BadMessages() == 0u);

  // A peer that spoke and then left is a disconnect, not a refusal; nor is a
  // connection that never spoke ZeroMQ (its handshake failed).
  {
    Peer talker(h.endpoint());
    REQUIRE(talker.BadMessages() == 0u);
  }
  ProbePort(h.endpoint());
  CHECK_FALSE(
      WaitUntil([&] { return honest.BadMessages().value_or(0) > 0; }, kQuiet));

  // ZeroMQ cuts this one off with its connection; the loop never sees it.
  Peer big(h.endpoint());
  big.SendRaw(std::string(
      size_t(options.max_message_bytes + BrokerServer::kZmqSlackBytes) * 2,
      'x'));
  std::optional<uint64_t> bad;
  REQUIRE(WaitUntil(
      [&] {
        bad = honest.BadMessages();
        return bad.value_or(0) >= 1;
      },
      5s));
  CHECK(bad == 1u);

  honest.Submit("after-big");
  auto ack = honest.Receive(5s);
  REQUIRE(ack.has_value());
  CHECK(ack->has_submit_ack());
}

}  // namespace
}  // namespace tq
