// The Client over CURVE against a keyed ROUTER on loopback, set up the way
// the broker sets up its own (ApplyCurveServer, a ZapHandler that knows the
// client's key): the request arrives under the key's name, and a client with
// the wrong broker key, an unknown key or no key gets no answer at all.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <zmq.hpp>

#include "broker/authorized_keys.h"
#include "broker/zap_handler.h"
#include "common/codec.h"
#include "common/curve_keys.h"
#include "tq/client.h"

namespace tq {
namespace {

using std::chrono::milliseconds;

CurveCert NewCert() {
  auto cert = GenerateCurveCert();
  REQUIRE(cert.ok());
  return std::move(cert).value();
}

AuthorizedKeysPtr KnowsOnly(const std::string& name, const CurveCert& cert) {
  AuthorizedKey key;
  key.name = name;
  key.public_key = cert.public_key;
  key.file = name + ".key";
  key.roles.Add(Role::kSubmit);
  std::vector<KeyFileProblem> problems;
  auto table = AuthorizedKeys::FromKeys({key}, &problems);
  REQUIRE(problems.empty());
  return std::make_shared<const AuthorizedKeys>(std::move(table));
}

// Answers every BatchStatusRequest with a BatchStatus, and notes the User-Id
// each request came with.
class CurveBroker {
 public:
  CurveBroker(const CurveCert& own, AuthorizedKeysPtr keys) {
    // The handler is bound before the CURVE socket: without one libzmq
    // admits any key.
    auto zap = ZapHandler::Start(context_.handle(), std::move(keys));
    REQUIRE(zap.ok());
    zap_ = std::move(zap).value();
    socket_ = zmq::socket_t(context_, zmq::socket_type::router);
    socket_.set(zmq::sockopt::linger, 0);
    REQUIRE(ApplyCurveServer(socket_.handle(), own, "tq").ok());
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { Loop(); });
  }
  ~CurveBroker() {
    stop_ = true;
    thread_.join();
  }

  const std::string& endpoint() const { return endpoint_; }
  std::vector<std::optional<std::string>> user_ids() {
    std::lock_guard<std::mutex> lock(mu_);
    return user_ids_;
  }
  const ZapHandler& zap() const { return *zap_; }

 private:
  void Loop() {
    while (!stop_) {
      zmq_pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, milliseconds(10));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      zmq::message_t id, body;
      (void)socket_.recv(id);
      (void)socket_.recv(body);
      {
        std::lock_guard<std::mutex> lock(mu_);
        // On the body frame: the routing id is the ROUTER's own.
        user_ids_.push_back(MessageProperty(body.handle(), kUserIdProperty));
      }
      Decoded request = Decode(body.to_string_view());
      wire::Envelope reply;
      reply.set_seq(request.envelope.seq());
      auto* counts = reply.mutable_batch_status()->mutable_counts();
      counts->set_total(3);
      counts->set_done(2);
      const std::string bytes = Encode(reply);
      socket_.send(id, zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(bytes), zmq::send_flags::none);
    }
  }

  // Declared first, destroyed last; the socket goes before the handler.
  zmq::context_t context_;
  std::unique_ptr<ZapHandler> zap_;
  zmq::socket_t socket_;  // the loop thread's once it runs
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::optional<std::string>> user_ids_;
};

ClientOptions Options(const std::string& endpoint, const CurveCert* own,
                      const std::string& broker_public_key) {
  ClientOptions options;
  options.endpoint = endpoint;
  options.request_timeout = milliseconds(300);
  options.attempts = 2;
  if (own != nullptr) {
    options.curve.broker_public_key = broker_public_key;
    options.curve.client_public_key = own->public_key;
    options.curve.client_secret_key = own->secret_key;
  }
  return options;
}

Status ProgressStatus(const ClientOptions& options) {
  auto client = Client::Connect(options);
  REQUIRE(client.ok());
  return (*client)->Progress("b1").status();
}

struct Fixture {
  CurveCert broker_cert = NewCert();
  CurveCert client_cert = NewCert();
  CurveBroker broker{broker_cert, KnowsOnly("it-box", client_cert)};
};

}  // namespace

TEST_CASE("ClientWithItsKeysReachesTheBrokerUnderTheKeysName",
          "[curve_loopback]") {
  Fixture f;
  ClientOptions options =
      Options(f.broker.endpoint(), &f.client_cert, f.broker_cert.public_key);
  options.request_timeout = milliseconds(5000);  // the handshake comes first
  auto client = Client::Connect(options);
  REQUIRE(client.ok());
  auto progress = (*client)->Progress("b1");
  REQUIRE(progress.ok());
  CHECK(progress->total == 3);
  CHECK(progress->done == 2);
  auto ids = f.broker.user_ids();
  REQUIRE(ids.size() == 1);
  CHECK(ids[0] == "it-box");
  CHECK(f.broker.zap().accepted() == 1);
}

TEST_CASE("ClientWithTheWrongBrokerKeyGetsNoAnswer", "[curve_loopback]") {
  Fixture f;
  Status s = ProgressStatus(
      Options(f.broker.endpoint(), &f.client_cert, NewCert().public_key));
  CHECK(s.code() == Status::Code::kUnavailable);
  CHECK(s.message() == "no answer from " + f.broker.endpoint() +
                           " after 2 attempts of 300 ms");
  CHECK(f.broker.user_ids().empty());
  // The broker could not open the client's hello: ZAP was never asked.
  CHECK(f.broker.zap().accepted() == 0);
}

TEST_CASE("ClientWithAnUnknownKeyGetsNoAnswer", "[curve_loopback]") {
  Fixture f;
  const CurveCert stranger = NewCert();
  Status s = ProgressStatus(
      Options(f.broker.endpoint(), &stranger, f.broker_cert.public_key));
  CHECK(s.code() == Status::Code::kUnavailable);
  CHECK(f.broker.user_ids().empty());
  CHECK(f.broker.zap().refused() >= 1);
}

TEST_CASE("ClientWithoutKeysGetsNoAnswerFromACurveBroker", "[curve_loopback]") {
  Fixture f;
  Status s = ProgressStatus(Options(f.broker.endpoint(), nullptr, ""));
  CHECK(s.code() == Status::Code::kUnavailable);
  CHECK(f.broker.user_ids().empty());
}

TEST_CASE("ConnectRefusesIncompleteOrMismatchedKeys", "[curve_loopback]") {
  const CurveCert broker = NewCert();
  const CurveCert me = NewCert();
  const CurveCert other = NewCert();
  ClientOptions options = Options("tcp://127.0.0.1:1", &me, broker.public_key);
  REQUIRE(Client::Connect(options).ok());

  ClientOptions no_broker = options;
  no_broker.curve.broker_public_key.clear();
  auto refused = Client::Connect(no_broker);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Status::Code::kInvalidArgument);
  CHECK(refused.status().message() ==
        "CURVE: the broker's public key is not 40 characters of Z85");

  ClientOptions no_secret = options;
  no_secret.curve.client_secret_key.clear();
  refused = Client::Connect(no_secret);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message() ==
        "CURVE: the client's public and secret keys must both be 40 "
        "characters of Z85");

  ClientOptions mismatched = options;
  mismatched.curve.client_public_key = other.public_key;
  refused = Client::Connect(mismatched);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message() ==
        "CURVE: the client's public key is not the one of its secret key");
}

}  // namespace tq
