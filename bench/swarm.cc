#include "bench/swarm.h"

#include <zmq.hpp>

#include "common/codec.h"

namespace tq::bench {

Swarm::Swarm(const std::string& endpoint, int count)
    : endpoint_(endpoint), count_(count), done_(size_t(count), 0) {
  thread_ = std::thread([this] { Run(); });
}

Swarm::~Swarm() { Stop(); }

void Swarm::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Swarm::Run() {
  zmq::context_t context(1);
  context.set(zmq::ctxopt::max_sockets, count_ + 16);
  std::vector<zmq::socket_t> sockets;
  std::vector<zmq::pollitem_t> items;
  sockets.reserve(size_t(count_));
  uint64_t seq = 0;
  auto send = [&](zmq::socket_t& s, wire::Envelope& env) {
    env.set_seq(++seq);
    const std::string bytes = Encode(env);
    (void)s.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
  };
  for (int i = 0; i < count_; ++i) {
    sockets.emplace_back(context, zmq::socket_type::dealer);
    sockets.back().set(zmq::sockopt::linger, 0);
    sockets.back().connect(endpoint_);
    wire::Envelope hello;
    hello.mutable_hello()->set_worker_id("swarm-" + std::to_string(i));
    hello.mutable_hello()->set_concurrency(1);
    send(sockets.back(), hello);
  }
  for (auto& s : sockets) items.push_back({s.handle(), 0, ZMQ_POLLIN, 0});

  auto last_beat = std::chrono::steady_clock::now();
  while (!stop_) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
    for (size_t i = 0; i < sockets.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      zmq::message_t msg;
      while (sockets[i].recv(msg, zmq::recv_flags::dontwait)) {
        Decoded d = Decode(std::string_view(msg.data<char>(), msg.size()));
        if (d.error != DecodeError::kNone) continue;
        const wire::Envelope& in = d.envelope;
        if (in.has_welcome()) {
          ++welcomed_;
          wire::Envelope credit;
          credit.mutable_credit()->set_grant(1);
          send(sockets[i], credit);
        } else if (in.has_assign()) {
          for (const wire::Task& t : in.assign().tasks()) {
            wire::Envelope result;
            auto* r = result.mutable_result();
            r->set_task_id(t.task_id());
            r->set_token(t.token());
            r->set_ok(true);
            r->set_credit(1);
            send(sockets[i], result);
            ++done_[i];
          }
        }
      }
    }
    // Heartbeats keep the broker from declaring idle workers lost.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_beat >= std::chrono::milliseconds(500)) {
      last_beat = now;
      for (auto& s : sockets) {
        wire::Envelope hb;
        hb.mutable_heartbeat();
        send(s, hb);
      }
    }
  }
}

}  // namespace tq::bench
