// The Client against a scripted fake broker on a loopback ROUTER socket:
// seq matching, resends, error mapping and chunked submits.
#include <atomic>
#include <catch2/catch.hpp>
#include <functional>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "common/codec.h"
#include "tq/client.h"

namespace tq {
namespace {

using std::chrono::milliseconds;

// Answers each request with whatever `script` returns (possibly nothing).
class FakeBroker {
 public:
  using Script = std::function<std::vector<wire::Envelope>(
      const wire::Envelope& request, int nth)>;

  explicit FakeBroker(Script script)
      : socket_(context_, zmq::socket_type::router),
        script_(std::move(script)) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeBroker() {
    stop_ = true;
    thread_.join();
  }

  const std::string& endpoint() const { return endpoint_; }
  std::vector<wire::Envelope> received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }

 private:
  void Loop() {
    while (!stop_) {
      zmq_pollitem_t item{static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, milliseconds(10));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      zmq::message_t id, body;
      (void)socket_.recv(id);
      (void)socket_.recv(body);
      Decoded d = Decode(body.to_string_view());
      int nth;
      {
        std::lock_guard<std::mutex> lock(mu_);
        received_.push_back(d.envelope);
        nth = static_cast<int>(received_.size());
      }
      for (auto& reply : script_(d.envelope, nth)) {
        std::string bytes = Encode(reply);
        socket_.send(zmq::buffer(id.to_string_view()),
                     zmq::send_flags::sndmore);
        socket_.send(zmq::buffer(bytes), zmq::send_flags::none);
      }
    }
  }

  zmq::context_t context_;
  zmq::socket_t socket_;
  std::string endpoint_;
  Script script_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<wire::Envelope> received_;
};

std::unique_ptr<Client> ConnectTo(const std::string& endpoint,
                                  milliseconds timeout, int attempts = 3) {
  ClientOptions options;
  options.endpoint = endpoint;
  options.request_timeout = timeout;
  options.attempts = attempts;
  auto client = Client::Connect(options);
  REQUIRE(client.ok());
  return std::move(client).value();
}

wire::Envelope StatusReply(uint64_t seq, uint64_t done) {
  wire::Envelope env;
  env.set_seq(seq);
  auto* status = env.mutable_batch_status();
  status->mutable_counts()->set_total(10);
  status->mutable_counts()->set_done(done);
  return env;
}

}  // namespace

TEST_CASE("Client resends after a timeout and drops replies to other seqs",
          "[loopback]") {
  FakeBroker broker([](const wire::Envelope& req, int nth) {
    std::vector<wire::Envelope> replies;
    if (nth == 1) return replies;  // the first attempt is "lost"
    replies.push_back(StatusReply(req.seq() + 1000, 1));  // stale: dropped
    replies.push_back(StatusReply(req.seq(), 7));
    return replies;
  });
  auto client = ConnectTo(broker.endpoint(), milliseconds(200));
  auto progress = client->Progress("b1");
  REQUIRE(progress.ok());
  CHECK(progress->done == 7);
  auto seen = broker.received();
  REQUIRE(seen.size() == 2);
  // A resend is the same request, same seq.
  CHECK(seen[0].seq() == seen[1].seq());
  CHECK(seen[1].batch_status_request().batch_id() == "b1");
}

TEST_CASE("Client gives up with Unavailable naming endpoint and attempts",
          "[loopback]") {
  FakeBroker broker(
      [](const wire::Envelope&, int) { return std::vector<wire::Envelope>{}; });
  auto client = ConnectTo(broker.endpoint(), milliseconds(50), 2);
  auto progress = client->Progress("b1");
  REQUIRE_FALSE(progress.ok());
  CHECK(progress.status().code() == Status::Code::kUnavailable);
  CHECK(progress.status().message() ==
        "no answer from " + broker.endpoint() + " after 2 attempts of 50 ms");
  CHECK(broker.received().size() == 2);
}

TEST_CASE("Client turns a NOT_FOUND reply into NotFound", "[loopback]") {
  FakeBroker broker([](const wire::Envelope& req, int) {
    return std::vector<wire::Envelope>{
        ErrorReply(req.seq(), wire::NOT_FOUND, "no batch 'zz'")};
  });
  auto client = ConnectTo(broker.endpoint(), milliseconds(500));
  auto n = client->Cancel("zz");
  REQUIRE_FALSE(n.ok());
  CHECK(n.status().code() == Status::Code::kNotFound);
  CHECK(n.status().message() == "no batch 'zz'");
}

TEST_CASE("Client submits in chunks and maps item errors to url and queue",
          "[loopback]") {
  FakeBroker broker([](const wire::Envelope& req, int) {
    wire::Envelope reply;
    reply.set_seq(req.seq());
    auto* ack = reply.mutable_submit_ack();
    ack->set_batch_id(req.submit().batch_id());
    for (const auto& item : req.submit().items()) {
      if (item.index() == 2501) {  // url 1250, queue IN
        auto* e = ack->add_errors();
        e->set_index(item.index());
        e->set_reason("refused");
      } else if (item.index() % 2 == 0) {
        ack->set_accepted(ack->accepted() + 1);
      } else {
        ack->set_duplicates(ack->duplicates() + 1);
      }
    }
    return std::vector<wire::Envelope>{reply};
  });
  auto client = ConnectTo(broker.endpoint(), milliseconds(2000));
  std::vector<std::string> urls(1500, "http://example.com/");
  SubmitOptions options;
  options.queues = {"IT", "IN"};
  options.batch_id = "chunky";
  auto receipt = client->Submit(urls, options);
  REQUIRE(receipt.ok());
  CHECK(receipt->batch_id == "chunky");
  CHECK(receipt->total == 3000);
  CHECK(receipt->accepted == 1500);
  CHECK(receipt->duplicates == 1499);
  REQUIRE(receipt->errors.size() == 1);
  CHECK(receipt->errors[0].url_index == 1250);
  CHECK(receipt->errors[0].queue == "IN");
  CHECK(receipt->errors[0].reason == "refused");
  auto seen = broker.received();
  CHECK(seen.size() == 3);
  for (const auto& env : seen) CHECK(env.submit().items_size() <= 1000);
}

TEST_CASE("WaitForResults pages with the cursor until the batch is complete",
          "[loopback]") {
  FakeBroker broker([](const wire::Envelope& req, int) {
    const auto& fetch = req.fetch_results();
    wire::Envelope reply;
    reply.set_seq(req.seq());
    auto* results = reply.mutable_results();
    // Three tasks, finishing at cursor 1, 2, 3; one per page.
    if (fetch.after() < 3) {
      auto* t = results->add_tasks();
      t->set_task_id(fetch.after() + 1);
      t->set_state(wire::TASK_STATE_DONE);
      t->set_ok(true);
      t->set_finish_seq(fetch.after() + 1);
    }
    results->set_cursor(std::min<uint64_t>(fetch.after() + 1, 3));
    results->mutable_counts()->set_total(3);
    results->mutable_counts()->set_done(
        std::min<uint64_t>(fetch.after() + 1, 3));
    return std::vector<wire::Envelope>{reply};
  });
  auto client = ConnectTo(broker.endpoint(), milliseconds(2000));
  std::vector<uint64_t> ids;
  int pages = 0;
  Status s = client->WaitForResults(
      "b",
      [&](const TaskResult& r) {
        CHECK(r.state == "done");
        ids.push_back(r.task_id);
        return true;
      },
      [&](const BatchProgress&) { ++pages; }, milliseconds(10'000));
  REQUIRE(s.ok());
  CHECK(ids == std::vector<uint64_t>{1, 2, 3});
  CHECK(pages == 4);  // the last, empty, confirms the end
}

// Pages of `per_page` results out of `total`, all finished from the start:
// as a broker that cuts pages by size answers a complete batch.
wire::Envelope CutPage(const wire::Envelope& req, uint64_t total,
                       uint64_t per_page, bool move_cursor = true) {
  const auto& fetch = req.fetch_results();
  wire::Envelope reply;
  reply.set_seq(req.seq());
  auto* results = reply.mutable_results();
  uint64_t last = fetch.after();
  for (uint64_t id = fetch.after() + 1;
       id <= std::min(total, fetch.after() + per_page); ++id) {
    auto* t = results->add_tasks();
    t->set_task_id(id);
    t->set_state(wire::TASK_STATE_DONE);
    t->set_ok(true);
    t->set_finish_seq(id);
    last = id;
  }
  results->set_cursor(move_cursor ? last : fetch.after());
  results->mutable_counts()->set_total(total);
  results->mutable_counts()->set_done(total);
  return reply;
}

TEST_CASE("WaitForResults follows pages cut short until one brings nothing",
          "[loopback]") {
  for (bool with_files : {false, true}) {
    FakeBroker broker([](const wire::Envelope& req, int) {
      return std::vector<wire::Envelope>{CutPage(req, 5, 2)};
    });
    auto client = ConnectTo(broker.endpoint(), milliseconds(2000));
    std::vector<uint64_t> ids;
    Status s = client->WaitForResults(
        "b",
        [&](const TaskResult& r) {
          ids.push_back(r.task_id);
          return true;
        },
        nullptr, milliseconds(10'000), with_files);
    REQUIRE(s.ok());
    CHECK(ids == std::vector<uint64_t>{1, 2, 3, 4, 5});
    CHECK(broker.received().size() == 4);
  }
}

TEST_CASE("WaitForResults stops when the cursor does not move", "[loopback]") {
  FakeBroker broker([](const wire::Envelope& req, int) {
    return std::vector<wire::Envelope>{CutPage(req, 5, 2, false)};
  });
  auto client = ConnectTo(broker.endpoint(), milliseconds(2000));
  int delivered = 0;
  Status s = client->WaitForResults(
      "b",
      [&](const TaskResult&) {
        ++delivered;
        return true;
      },
      nullptr, milliseconds(10'000));
  // The batch is complete: what came is all there is.
  CHECK(s.ok());
  CHECK(delivered == 2);
  CHECK(broker.received().size() == 1);
}

}  // namespace tq
