// The whole poll loop against a scripted fake broker (a ROUTER socket in the
// test), over loopback TCP.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "broker/authorized_keys.h"
#include "broker/zap_handler.h"
#include "common/codec.h"
#include "common/curve_keys.h"
#include "worker/worker.h"

namespace tq {
namespace {

using Steady = std::chrono::steady_clock;

struct Frame {
  std::string peer;
  wire::Envelope envelope;
  std::optional<std::string> user_id;  // the CURVE key's name, from ZAP
};

class FakeBroker {
 public:
  FakeBroker() : socket_(context_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  }
  // A CURVE broker admitting the keys in `keys`, as the real one will be:
  // the ZAP handler is bound before the socket.
  FakeBroker(const CurveCert& own, AuthorizedKeysPtr keys) {
    auto zap = ZapHandler::Start(context_.handle(), std::move(keys));
    REQUIRE(zap.ok());
    zap_ = std::move(zap).value();
    socket_ = zmq::socket_t(context_, zmq::socket_type::router);
    socket_.set(zmq::sockopt::linger, 0);
    REQUIRE(ApplyCurveServer(socket_.handle(), own, "tq").ok());
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  }

  const std::string& endpoint() const { return endpoint_; }

  // Next message whose body is `want` (others, e.g. heartbeats, skipped),
  // waiting at most `limit`.
  std::optional<Frame> Expect(wire::Envelope::BodyCase want,
                              Millis limit = Millis(5000)) {
    const auto deadline = Steady::now() + limit;
    while (Steady::now() < deadline) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, Millis(20));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      zmq::message_t id, body;
      (void)socket_.recv(id);
      (void)socket_.recv(body);
      Decoded d = Decode(std::string_view(body.data<char>(), body.size()));
      REQUIRE(d.error == DecodeError::kNone);
      if (d.envelope.body_case() == want) {
        return Frame{id.to_string(), d.envelope,
                     MessageProperty(body.handle(), kUserIdProperty)};
      }
    }
    return std::nullopt;
  }

  void Send(const std::string& peer, wire::Envelope e) {
    const std::string bytes = Encode(e);
    socket_.send(zmq::buffer(peer), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(bytes), zmq::send_flags::none);
  }

  void Welcome(const std::string& peer, uint32_t interval_ms = 200,
               uint32_t liveness = 3) {
    wire::Envelope e;
    e.mutable_welcome()->add_queues("generic");
    e.mutable_welcome()->set_heartbeat_interval_ms(interval_ms);
    e.mutable_welcome()->set_heartbeat_liveness(liveness);
    Send(peer, e);
  }

  void Assign(const std::string& peer, uint64_t first_id, int count,
              const std::string& url = "http://example.com/x",
              uint32_t limit_ms = 10'000) {
    wire::Envelope e;
    for (int i = 0; i < count; ++i) {
      auto* t = e.mutable_assign()->add_tasks();
      t->set_task_id(first_id + i);
      t->set_token(1000 + first_id + i);
      t->set_url(url);
      t->set_queue("generic");
      t->set_attempt(1);
      t->set_time_limit_ms(limit_ms);
    }
    Send(peer, e);
  }

  void Ack(const std::string& peer, const wire::Result& r) {
    wire::Envelope e;
    e.mutable_result_ack()->set_task_id(r.task_id());
    e.mutable_result_ack()->set_token(r.token());
    e.mutable_result_ack()->set_accepted(true);
    Send(peer, e);
  }

 private:
  // Declared first, destroyed last; the socket goes before the handler.
  zmq::context_t context_;
  std::unique_ptr<ZapHandler> zap_;  // null without CURVE
  zmq::socket_t socket_;
  std::string endpoint_;
};

// Runs a Worker on its own thread; "signals" go through a pipe standing in
// for the signalfd.
class WorkerThread {
 public:
  explicit WorkerThread(WorkerOptions options) {
    REQUIRE(pipe2(pipe_, O_NONBLOCK | O_CLOEXEC) == 0);
    worker_ = std::make_unique<Worker>(std::move(options), pipe_[0]);
    thread_ = std::thread([this] { rc_ = worker_->Run(); });
  }
  ~WorkerThread() {
    if (thread_.joinable()) {
      Signal();
      Signal();
      thread_.join();
    }
    close(pipe_[0]);
    close(pipe_[1]);
  }

  void Signal(int signo = SIGTERM) {
    signalfd_siginfo info{};
    info.ssi_signo = static_cast<uint32_t>(signo);
    REQUIRE(write(pipe_[1], &info, sizeof info) == sizeof info);
  }

  // Joins with a deadline; returns the exit code or -100 on a hang.
  int Join(Millis limit = Millis(10'000)) {
    const auto deadline = Steady::now() + limit;
    while (!done_flag() && Steady::now() < deadline) {
      std::this_thread::yield();
      struct timespec ts {
        0, 5'000'000
      };
      nanosleep(&ts, nullptr);
    }
    if (!done_flag()) return -100;
    thread_.join();
    return rc_;
  }

 private:
  bool done_flag() const { return rc_ != kRunning; }

  static constexpr int kRunning = -1000;
  int pipe_[2] = {-1, -1};
  std::unique_ptr<Worker> worker_;
  std::atomic<int> rc_{kRunning};
  std::thread thread_;
};

WorkerOptions Options(const std::string& endpoint, bool noop,
                      const std::string& exec = "", uint32_t concurrency = 4) {
  WorkerOptions o;
  o.endpoint = endpoint;
  o.identity.broker = endpoint;
  o.identity.worker_id = "test-worker";
  o.identity.concurrency = concurrency;
  o.identity.hostname = "host";
  o.identity.pid = 1;
  o.noop = noop;
  if (!noop) {
    auto t = CommandTemplate::Parse(exec);
    REQUIRE(t.ok());
    o.command = t.value();
  }
  return o;
}

const bool kQuietLogs = [] {
  spdlog::set_level(spdlog::level::err);
  return true;
}();

TEST_CASE("NoopWorkerCompletesTasksAndDrainsOnSignal", "[worker_loop]") {
  FakeBroker broker;
  WorkerThread worker(Options(broker.endpoint(), true));
  auto hello = broker.Expect(wire::Envelope::kHello);
  REQUIRE(hello);
  CHECK(hello->envelope.hello().worker_id() == "test-worker");
  CHECK(hello->envelope.hello().concurrency() == 4);
  const std::string peer = hello->peer;
  broker.Welcome(peer);
  auto credit = broker.Expect(wire::Envelope::kCredit);
  REQUIRE(credit);
  CHECK(credit->envelope.credit().grant() == 4);

  broker.Assign(peer, 1, 4);
  for (int i = 0; i < 4; ++i) {
    auto r = broker.Expect(wire::Envelope::kResult);
    REQUIRE(r);
    CHECK(r->envelope.result().ok());
    CHECK(r->envelope.result().credit() == 1);
    broker.Ack(peer, r->envelope.result());
  }

  worker.Signal();
  auto pause = broker.Expect(wire::Envelope::kCredit);
  REQUIRE(pause);
  CHECK(pause->envelope.credit().pause());
  CHECK(broker.Expect(wire::Envelope::kGoodbye));
  CHECK(worker.Join() == 0);
}

TEST_CASE("WorkerWithCurveKeysJoinsUnderItsKeysName", "[worker_loop]") {
  auto broker_cert = GenerateCurveCert();
  auto worker_cert = GenerateCurveCert();
  REQUIRE(broker_cert.ok());
  REQUIRE(worker_cert.ok());
  AuthorizedKey key;
  key.name = "it-box";
  key.public_key = worker_cert->public_key;
  key.file = "it-box.key";
  key.roles.Add(Role::kWorker);
  std::vector<KeyFileProblem> problems;
  auto table = std::make_shared<const AuthorizedKeys>(
      AuthorizedKeys::FromKeys({key}, &problems));
  REQUIRE(problems.empty());
  FakeBroker broker(*broker_cert, table);

  WorkerOptions options = Options(broker.endpoint(), true);
  options.curve.broker_public_key = broker_cert->public_key;
  options.curve.client_public_key = worker_cert->public_key;
  options.curve.client_secret_key = worker_cert->secret_key;
  WorkerThread worker(std::move(options));
  auto hello = broker.Expect(wire::Envelope::kHello);
  REQUIRE(hello);
  CHECK(hello->user_id == "it-box");
  broker.Welcome(hello->peer);
  REQUIRE(broker.Expect(wire::Envelope::kCredit));
  broker.Assign(hello->peer, 1, 1);
  auto result = broker.Expect(wire::Envelope::kResult);
  REQUIRE(result);
  CHECK(result->envelope.result().ok());
  CHECK(result->user_id == "it-box");
  broker.Ack(hello->peer, result->envelope.result());
  worker.Signal();
  CHECK(broker.Expect(wire::Envelope::kGoodbye));
  CHECK(worker.Join() == 0);
}

TEST_CASE("WorkerHeartbeatsWhileIdle", "[worker_loop]") {
  FakeBroker broker;
  WorkerThread worker(Options(broker.endpoint(), true));
  auto hello = broker.Expect(wire::Envelope::kHello);
  REQUIRE(hello);
  broker.Welcome(hello->peer, 50, 100);
  CHECK(broker.Expect(wire::Envelope::kHeartbeat, Millis(2000)));
  worker.Signal();
  CHECK(worker.Join() == 0);
}

TEST_CASE("ExecWorkerPassesTheUrlAndReportsOutput", "[worker_loop]") {
  FakeBroker broker;
  WorkerThread worker(Options(broker.endpoint(), false, "printf %s {url}"));
  auto hello = broker.Expect(wire::Envelope::kHello);
  REQUIRE(hello);
  broker.Welcome(hello->peer);
  const std::string url = "http://example.com/a b;$(id)";
  broker.Assign(hello->peer, 9, 1, url);
  auto r = broker.Expect(wire::Envelope::kResult);
  REQUIRE(r);
  CHECK(r->envelope.result().task_id() == 9);
  CHECK(r->envelope.result().token() == 1009);
  CHECK(r->envelope.result().ok());
  CHECK(r->envelope.result().output() == url);
  broker.Ack(hello->peer, r->envelope.result());
  worker.Signal();
  CHECK(broker.Expect(wire::Envelope::kGoodbye));
  CHECK(worker.Join() == 0);
}

TEST_CASE("SilentBrokerMakesTheWorkerReconnectAndResendItsResult",
          "[worker_loop]") {
  FakeBroker broker;
  WorkerThread worker(Options(broker.endpoint(), true));
  auto hello = broker.Expect(wire::Envelope::kHello);
  REQUIRE(hello);
  broker.Welcome(hello->peer, 50, 2);
  broker.Assign(hello->peer, 5, 1);
  auto r = broker.Expect(wire::Envelope::kResult);
  REQUIRE(r);  // never acked, and then the broker says nothing at all

  auto again = broker.Expect(wire::Envelope::kHello, Millis(5000));
  REQUIRE(again);
  CHECK(again->peer != hello->peer);  // a new socket
  broker.Welcome(again->peer, 50, 100);
  auto resent = broker.Expect(wire::Envelope::kResult);
  REQUIRE(resent);
  CHECK(resent->envelope.result().task_id() == 5);
  CHECK(resent->envelope.result().credit() == 0);
  broker.Ack(again->peer, resent->envelope.result());
  worker.Signal();
  CHECK(broker.Expect(wire::Envelope::kGoodbye));
  CHECK(worker.Join() == 0);
}

TEST_CASE("SecondSignalKillsRunningCommandsReleasesAndExits", "[worker_loop]") {
  FakeBroker broker;
  WorkerThread worker(Options(broker.endpoint(), false, "sleep 30"));
  auto hello = broker.Expect(wire::Envelope::kHello);
  REQUIRE(hello);
  broker.Welcome(hello->peer, 200, 100);
  broker.Assign(hello->peer, 1, 2, "u", 60'000);
  // Both tasks are running once a heartbeat follows the Assign.
  REQUIRE(broker.Expect(wire::Envelope::kHeartbeat));
  const auto start = Steady::now();
  worker.Signal();
  REQUIRE(broker.Expect(wire::Envelope::kCredit));
  worker.Signal();
  auto release = broker.Expect(wire::Envelope::kRelease);
  REQUIRE(release);
  CHECK(release->envelope.release().leases_size() == 2);
  CHECK(broker.Expect(wire::Envelope::kGoodbye));
  CHECK(worker.Join() == 0);
  CHECK(Steady::now() - start < Millis(5000));
}

TEST_CASE("BadEndpointIsAUsageError", "[worker_loop]") {
  WorkerThread worker(Options("nonsense://x", true));
  CHECK(worker.Join() == 2);
}

}  // namespace
}  // namespace tq
