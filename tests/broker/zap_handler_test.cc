// The ZAP handler with real CURVE sockets on loopback: a ROUTER server (the
// broker's shape) and DEALER peers, each peer in its own context as a
// separate process would be.
#include "broker/zap_handler.h"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <optional>
#include <sstream>
#include <zmq.hpp>

#include "common/curve_keys.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kDomain = "tq";
constexpr int kHandshakeFailed = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

CurveCert NewCert() {
  auto cert = GenerateCurveCert();
  REQUIRE(cert.ok());
  return cert.value();
}

AuthorizedKey Key(const std::string& name, const CurveCert& cert) {
  AuthorizedKey key;
  key.name = name;
  key.public_key = cert.public_key;
  key.file = name + ".key";
  key.roles.Add(Role::kWorker);
  return key;
}

AuthorizedKeysPtr Table(std::vector<AuthorizedKey> keys) {
  std::vector<KeyFileProblem> problems;
  auto table = AuthorizedKeys::FromKeys(std::move(keys), &problems);
  REQUIRE(problems.empty());
  return std::make_shared<const AuthorizedKeys>(std::move(table));
}

// All frames of the next message on `socket`, or none after `timeout`.
std::vector<zmq::message_t> Receive(zmq::socket_t& socket,
                                    std::chrono::milliseconds timeout) {
  std::vector<zmq::message_t> frames;
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) == 0) return frames;
  while (true) {
    zmq::message_t frame;
    if (!socket.recv(frame, zmq::recv_flags::dontwait)) break;
    bool more = frame.more();
    frames.push_back(std::move(frame));
    if (!more) break;
  }
  return frames;
}

// Handshake outcomes of one socket, from its monitor.
class Monitor {
 public:
  struct Event {
    uint16_t event = 0;
    uint32_t value = 0;  // e.g. the ZAP status code of a failed auth
  };

  Monitor(zmq::context_t& context, zmq::socket_t& socket)
      : pair_(context, zmq::socket_type::pair) {
    static std::atomic<int> counter{0};
    const std::string endpoint =
        "inproc://zap-test-monitor-" + std::to_string(++counter);
    REQUIRE(zmq_socket_monitor(
                socket.handle(), endpoint.c_str(),
                kHandshakeFailed | ZMQ_EVENT_HANDSHAKE_SUCCEEDED) == 0);
    pair_.connect(endpoint);
  }

  // Waits (bounded) for an event in `mask`; nullopt if none came in time.
  std::optional<Event> WaitFor(int mask, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - Clock::now());
      auto frames = Receive(pair_, std::max(left, 1ms));
      if (frames.size() < 2 || frames[0].size() < 6) continue;
      Event e;
      memcpy(&e.event, frames[0].data(), sizeof e.event);
      memcpy(&e.value, frames[0].data<char>() + 2, sizeof e.value);
      if (e.event & mask) return e;
    }
    return std::nullopt;
  }

 private:
  zmq::socket_t pair_;
};

// The CURVE server: a ROUTER set up the way the broker will set up its own,
// with the socket monitor reporting handshake outcomes.
class Server {
 public:
  explicit Server(zmq::context_t& context, const CurveCert& cert,
                  const std::string& domain = kDomain)
      : router_(context, zmq::socket_type::router), monitor_(context, router_) {
    router_.set(zmq::sockopt::linger, 0);
    REQUIRE(ApplyCurveServer(router_.handle(), cert, domain).ok());
    router_.bind("tcp://127.0.0.1:*");
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
  }

  zmq::socket_t& router() { return router_; }
  const std::string& endpoint() const { return endpoint_; }

  // Waits (bounded) for a monitor event in `mask`; true if one came.
  bool WaitForEvent(int mask, std::chrono::milliseconds timeout) {
    return monitor_.WaitFor(mask, timeout).has_value();
  }

 private:
  zmq::socket_t router_;
  Monitor monitor_;
  std::string endpoint_;
};

// A peer in its own context, as a worker or client process would be.
class Peer {
 public:
  // `own` without a secret key: no CURVE at all (the NULL mechanism).
  Peer(const std::string& endpoint, const CurveCert* own,
       const std::string& server_public_key)
      : socket_(context_, zmq::socket_type::dealer),
        monitor_(context_, socket_) {
    socket_.set(zmq::sockopt::linger, 0);
    if (own != nullptr) {
      REQUIRE(ApplyCurveClient(socket_.handle(), *own, server_public_key).ok());
    }
    socket_.connect(endpoint);
  }
  void Send(const std::string& text) {
    // DEALER queues the message until the handshake succeeds, or forever.
    socket_.send(zmq::buffer(text), zmq::send_flags::dontwait);
  }
  zmq::socket_t& socket() { return socket_; }
  Monitor& monitor() { return monitor_; }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
  Monitor monitor_;
};

struct Fixture {
  Fixture() {
    ZapOptions options;
    options.domain = kDomain;
    auto started =
        ZapHandler::Start(context.handle(), Table({Key("w1", known)}), options);
    REQUIRE(started.ok());
    zap = std::move(started.value());
  }
  // Declared first, destroyed last: the handler and sockets go before it.
  zmq::context_t context;
  CurveCert server_cert = NewCert();
  CurveCert known = NewCert();
  std::unique_ptr<ZapHandler> zap;
};

// A known peer exchanges one message each way; returns what the server got.
std::vector<zmq::message_t> Exchange(Server& server, Peer& peer,
                                     const std::string& text) {
  peer.Send(text);
  auto frames = Receive(server.router(), 10s);
  REQUIRE(frames.size() == 2);
  CHECK(frames[1].to_string() == text);
  server.router().send(frames[0], zmq::send_flags::sndmore);
  server.router().send(zmq::buffer("re: " + text));
  auto reply = Receive(peer.socket(), 10s);
  REQUIRE(reply.size() == 1);
  CHECK(reply[0].to_string() == "re: " + text);
  return frames;
}

// Waits for `server` to see a failed handshake, then shows that nothing got
// through: an honest peer's message is the only one waiting.
void CheckNothingGetsThrough(Fixture& f, Server& server, Peer& bad) {
  bad.Send("let me in");
  CHECK(server.WaitForEvent(kHandshakeFailed, 10s));
  Peer honest(server.endpoint(), &f.known, f.server_cert.public_key);
  auto frames = Exchange(server, honest, "honest");
  CHECK(Receive(server.router(), 0ms).empty());
}

TEST_CASE("KnownKeyConnectsAndItsFramesCarryTheKeyName", "[zap]") {
  Fixture f;
  Server server(f.context, f.server_cert);
  Peer peer(server.endpoint(), &f.known, f.server_cert.public_key);
  auto frames = Exchange(server, peer, "hello");

  // What the broker reads from each message to learn who sent it.
  CHECK(MessageProperty(frames[1].handle(), kUserIdProperty) == "w1");
  CHECK(MessageProperty(frames[1].handle(), kCurveKeyProperty) ==
        f.known.public_key);
  CHECK(MessageProperty(frames[1].handle(), kPeerAddressProperty) ==
        "127.0.0.1");
  // cppzmq's spelling of the same.
  CHECK(std::string(frames[1].gets("User-Id")) == "w1");
  // The routing-id frame is the ROUTER's own: it has no properties.
  CHECK_FALSE(MessageProperty(frames[0].handle(), kUserIdProperty));
  CHECK(f.zap->accepted() == 1);
  CHECK(f.zap->refused() == 0);
}

TEST_CASE("UnknownKeyCannotExchangeAMessage", "[zap]") {
  Fixture f;
  Server server(f.context, f.server_cert);
  CurveCert stranger = NewCert();
  Peer bad(server.endpoint(), &stranger, f.server_cert.public_key);
  CheckNothingGetsThrough(f, server, bad);
  CHECK(f.zap->refused() >= 1);
}

TEST_CASE("PeerWithoutAKeyCannotExchangeAMessage", "[zap]") {
  Fixture f;
  Server server(f.context, f.server_cert);
  Peer bad(server.endpoint(), nullptr, "");
  CheckNothingGetsThrough(f, server, bad);
}

TEST_CASE("PeerWithTheWrongServerKeyCannotExchangeAMessage", "[zap]") {
  Fixture f;
  Server server(f.context, f.server_cert);
  // A known client key, but it expects another broker.
  Peer bad(server.endpoint(), &f.known, NewCert().public_key);
  CheckNothingGetsThrough(f, server, bad);
}

// What a client can tell its user: the monitor of its socket says why.
TEST_CASE("ARefusedPeerLearnsWhyFromItsMonitor", "[zap]") {
  Fixture f;
  Server server(f.context, f.server_cert);
  CurveCert stranger = NewCert();
  Peer unknown(server.endpoint(), &stranger, f.server_cert.public_key);
  auto refused = unknown.monitor().WaitFor(kHandshakeFailed, 10s);
  REQUIRE(refused.has_value());
  CHECK(refused->event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
  CHECK(refused->value == 400);  // the ZAP status code: unknown key

  Peer wrong_broker(server.endpoint(), &f.known, NewCert().public_key);
  // The server cannot open the client's HELLO and drops the connection: the
  // client sees no ZAP answer, only that the handshake never succeeds.
  CHECK(server.WaitForEvent(kHandshakeFailed, 10s));
  CHECK_FALSE(wrong_broker.monitor()
                  .WaitFor(ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH,
                           200ms)
                  .has_value());

  Peer known(server.endpoint(), &f.known, f.server_cert.public_key);
  auto ok = known.monitor().WaitFor(
      kHandshakeFailed | ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 10s);
  REQUIRE(ok.has_value());
  CHECK(ok->event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
}

TEST_CASE("AnotherZapDomainIsRefused", "[zap]") {
  Fixture f;
  Server server(f.context, f.server_cert, "not-tq");
  Peer bad(server.endpoint(), &f.known, f.server_cert.public_key);
  bad.Send("hello");
  CHECK(server.WaitForEvent(kHandshakeFailed, 10s));
  CHECK(testing::WaitUntil([&] { return f.zap->refused() >= 1; }, 10s));
  CHECK(Receive(server.router(), 0ms).empty());
}

TEST_CASE("AfterAReloadThatDropsAKeyANewConnectionWithItIsRefused", "[zap]") {
  Fixture f;
  Server server(f.context, f.server_cert);
  CurveCert other = NewCert();
  f.zap->SetKeys(Table({Key("w1", f.known), Key("w2", other)}));
  Peer first(server.endpoint(), &f.known, f.server_cert.public_key);
  Exchange(server, first, "before reload");

  // The reload keeps w2 only.
  f.zap->SetKeys(Table({Key("w2", other)}));
  CHECK(f.zap->keys()->FindByName("w1") == nullptr);
  const uint64_t refused_before = f.zap->refused();
  Peer again(server.endpoint(), &f.known, f.server_cert.public_key);
  again.Send("after reload");
  CHECK(server.WaitForEvent(kHandshakeFailed, 10s));
  CHECK(testing::WaitUntil([&] { return f.zap->refused() > refused_before; },
                           10s));
  Peer w2(server.endpoint(), &other, f.server_cert.public_key);
  auto frames = Exchange(server, w2, "w2 still in");
  CHECK(MessageProperty(frames[1].handle(), kUserIdProperty) == "w2");
  CHECK(Receive(server.router(), 0ms).empty());

  // The connection made before the reload is still up: closing the sessions
  // of revoked keys is the broker's job (AuthorizedKeys::Revoked).
  auto old = Exchange(server, first, "old session");
  CHECK(MessageProperty(old[1].handle(), kUserIdProperty) == "w1");
}

// The path the broker takes: key files written like tq-keygen writes them, a
// directory loaded at start and again after a key file was deleted.
TEST_CASE("KeyFilesAuthenticateAndADeletedFileIsRefusedAfterReload", "[zap]") {
  testing::TempDir dir;
  const std::string authorized = dir.File("authorized");
  std::filesystem::create_directory(authorized);
  auto make = [&](const std::string& name) {
    CurveCert cert = NewCert();
    cert.SetMeta(kMetaName, name);
    cert.SetMeta(kMetaRoles, "worker");
    REQUIRE(
        SaveCurveCert(cert, dir.File(name + ".key_secret"), true, false).ok());
    REQUIRE(SaveCurveCert(cert, authorized + "/" + name + ".key", false, false)
                .ok());
    auto secret = LoadSecretCurveCert(dir.File(name + ".key_secret"));
    REQUIRE(secret.ok());
    return secret.value();
  };
  const CurveCert a = make("box-a");
  const CurveCert b = make("box-b");
  const CurveCert server_cert = make("broker");

  auto load = [&] {
    std::vector<KeyFileProblem> problems;
    auto table = AuthorizedKeys::LoadDirectory(authorized, &problems);
    REQUIRE(table.ok());
    return std::make_shared<const AuthorizedKeys>(std::move(table.value()));
  };
  zmq::context_t context;
  auto zap = ZapHandler::Start(context.handle(), load());
  REQUIRE(zap.ok());
  Server server(context, server_cert);
  {
    Peer peer(server.endpoint(), &a, server_cert.public_key);
    auto frames = Exchange(server, peer, "from a");
    CHECK(MessageProperty(frames[1].handle(), kUserIdProperty) == "box-a");
  }

  // Revoke box-a: delete its file, reload (what SIGHUP does), swap.
  std::filesystem::remove(authorized + "/box-a.key");
  AuthorizedKeysPtr before = zap.value()->keys();
  AuthorizedKeysPtr after = load();
  auto revoked = AuthorizedKeys::Revoked(*before, *after);
  REQUIRE(revoked.size() == 1);
  CHECK(revoked[0].name == "box-a");
  zap.value()->SetKeys(after);

  Peer again(server.endpoint(), &a, server_cert.public_key);
  again.Send("from a, revoked");
  CHECK(server.WaitForEvent(kHandshakeFailed, 10s));
  Peer peer_b(server.endpoint(), &b, server_cert.public_key);
  auto frames = Exchange(server, peer_b, "from b");
  CHECK(MessageProperty(frames[1].handle(), kUserIdProperty) == "box-b");
  CHECK(Receive(server.router(), 0ms).empty());
  CHECK(zap.value()->refused() >= 1);
}

TEST_CASE("RefusalLogLinesAreRateLimitedButAllAreCounted", "[zap]") {
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("zap", sink));
  {
    zmq::context_t context;
    CurveCert server_cert = NewCert();
    // Two lines at once and no refill: a flood costs two lines in all.
    ZapOptions options;
    options.log_burst = 2;
    options.log_per_second = 0;
    auto zap = ZapHandler::Start(context.handle(), Table({}), options);
    REQUIRE(zap.ok());
    Server server(context, server_cert);
    std::vector<std::unique_ptr<Peer>> peers;
    for (int i = 0; i < 5; ++i) {
      CurveCert stranger = NewCert();
      peers.push_back(std::make_unique<Peer>(server.endpoint(), &stranger,
                                             server_cert.public_key));
      peers.back()->Send("flood");
    }
    CHECK(testing::WaitUntil([&] { return zap.value()->refused() >= 5; }, 10s));
    CHECK(zap.value()->accepted() == 0);
    peers.clear();
  }
  spdlog::set_default_logger(previous);
  const std::string text = log.str();
  size_t lines = 0;
  for (size_t pos = text.find("refused"); pos != std::string::npos;
       pos = text.find("refused", pos + 1)) {
    ++lines;
  }
  INFO(text);
  CHECK(lines == 2);
}

TEST_CASE("OneHandlerPerContextAndStopReleasesTheEndpoint", "[zap]") {
  zmq::context_t context;
  auto first = ZapHandler::Start(context.handle(), Table({}));
  REQUIRE(first.ok());
  auto second = ZapHandler::Start(context.handle(), Table({}));
  REQUIRE_FALSE(second.ok());
  CHECK_THAT(second.status().message(), Catch::Contains("already bound"));
  first.value()->Stop();
  first.value()->Stop();  // idempotent
  auto third = ZapHandler::Start(context.handle(), Table({}));
  CHECK(third.ok());
}

TEST_CASE("HandlerLeavesWhenItsContextShutsDown", "[zap]") {
  zmq::context_t context;
  auto zap = ZapHandler::Start(context.handle(), Table({}));
  REQUIRE(zap.ok());
  context.shutdown();   // ETERM in the handler thread
  zap.value()->Stop();  // joins; would hang if the thread had not left
  zap.value().reset();
  context.close();
}

// Why the handler must be up before the broker binds and down only after:
// without one, libzmq 4.3 lets any CURVE client in, with no User-Id.
TEST_CASE("WithoutAHandlerLibzmqAdmitsAnyKey", "[zap]") {
  zmq::context_t context;
  CurveCert server_cert = NewCert();
  CurveCert stranger = NewCert();
  Server server(context, server_cert);
  Peer peer(server.endpoint(), &stranger, server_cert.public_key);
  auto frames = Exchange(server, peer, "unchecked");
  CHECK_FALSE(MessageProperty(frames[1].handle(), kUserIdProperty));
}

}  // namespace
}  // namespace tq
