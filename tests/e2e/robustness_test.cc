// Untrusted input at the broker's edge, and a store that cannot take writes.
#include <catch2/catch.hpp>
#include <chrono>
#include <zmq.hpp>

#include "common/codec.h"
#include "tests/e2e/e2e_client.h"
#include "tests/support/cluster.h"
#include "tests/support/wait.h"
#include "tq/client.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using testing::BrokerProcess;
using testing::TempDir;

// A raw DEALER that sends arbitrary frames and reads the reply.
class RawPeer {
 public:
  explicit RawPeer(const std::string& endpoint)
      : socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }
  void SendFrames(const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      socket_.send(zmq::buffer(frames[i]), i + 1 < frames.size()
                                               ? zmq::send_flags::sndmore
                                               : zmq::send_flags::none);
    }
  }
  // The next reply decoded, or an envelope with no body after `timeout`.
  wire::Envelope Receive(std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return {};
    zmq::message_t msg;
    (void)socket_.recv(msg);
    return Decode(std::string_view(msg.data<char>(), msg.size())).envelope;
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
};

std::unique_ptr<Client> Connect(const std::string& endpoint) {
  return testing::Connect(endpoint, 2s, 2);
}

TEST_CASE("MalformedUnknownAndWrongVersionMessagesGetErrorsAndServiceGoesOn",
          "[e2e]") {
  TempDir dir;
  BrokerProcess broker(dir, {"--max-message-size", "65536"});
  RawPeer peer(broker.endpoint());

  peer.SendFrames({std::string(32, '\xff')});
  wire::Envelope reply = peer.Receive(5s);
  REQUIRE(reply.has_error());
  CHECK(reply.error().code() == wire::BAD_MESSAGE);

  wire::Envelope v2;
  v2.mutable_list_queues();
  v2.set_version(2);
  peer.SendFrames({v2.SerializeAsString()});
  reply = peer.Receive(5s);
  REQUIRE(reply.has_error());
  CHECK(reply.error().code() == wire::BAD_VERSION);

  wire::Envelope odd;
  odd.mutable_assign();  // a broker-to-worker body
  peer.SendFrames({Encode(odd)});
  reply = peer.Receive(5s);
  REQUIRE(reply.has_error());
  CHECK(reply.error().code() == wire::UNSUPPORTED);

  peer.SendFrames({"a", "b"});  // two frames: not our framing
  reply = peer.Receive(5s);
  REQUIRE(reply.has_error());
  CHECK(reply.error().code() == wire::BAD_MESSAGE);

  // Over --max-message-size but under ZeroMQ's cut-off: refused, answered.
  peer.SendFrames({std::string(70000, 'x')});
  reply = peer.Receive(5s);
  REQUIRE(reply.has_error());
  CHECK(reply.error().code() == wire::TOO_LARGE);

  // Far over: ZeroMQ drops the connection; the broker is unharmed.
  RawPeer big(broker.endpoint());
  big.SendFrames({std::string(1 << 20, 'x')});

  auto client = Connect(broker.endpoint());
  BrokerStats counters;
  auto queues = client->Queues(&counters);
  REQUIRE(queues.ok());
  CHECK(counters.bad_messages >= 5);
  auto receipt = client->Submit({"http://127.0.0.1/after-garbage"}, {});
  REQUIRE(receipt.ok());
  CHECK(receipt->accepted == 1);
  CHECK(broker.Log().find("refused a message") != std::string::npos);
}

TEST_CASE("FullDatabaseRefusesSubmissionsWithAClearError", "[e2e]") {
  TempDir dir;
  // A database capped at a few pages stands in for a full disk.
  BrokerProcess broker(dir, {"--db-max-pages", "40"});
  auto client = Connect(broker.endpoint());
  std::vector<std::string> urls;
  for (int i = 0; i < 2000; ++i) {
    urls.push_back("http://127.0.0.1/" + std::string(400, 'a') +
                   std::to_string(i));
  }
  SubmitOptions options;
  options.batch_id = "too-big";
  auto receipt = client->Submit(urls, options);
  REQUIRE_FALSE(receipt.ok());
  CHECK(receipt.status().code() == Status::Code::kUnavailable);
  CHECK(receipt.status().message().find("full") != std::string::npos);
  // Nothing that was refused is counted as queued.
  BrokerStats counters;
  auto queues = client->Queues(&counters);
  REQUIRE(queues.ok());
  CHECK_FALSE(counters.store_ok);
  CHECK(counters.store_error.find("full") != std::string::npos);
  CHECK(broker.Log().find("store failed") != std::string::npos);
}

}  // namespace
}  // namespace tq
