#include "client/channel.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <zmq.hpp>

#include "common/codec.h"
#include "common/curve_keys.h"
#include "common/defaults.h"
#include "common/endpoint.h"

namespace tq {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Room above the application cap so ZeroMQ only cuts off what the codec
// would refuse anyway.
constexpr int64_t kMaxMessageSlack = 64 * 1024;

// A broker that neither accepts nor refuses (a dropped SYN) is reported
// after this long; a refusal is reported as soon as ZeroMQ sees it.
constexpr milliseconds kSlowConnectReport{1000};

constexpr int kMonitoredEvents =
    ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_CONNECT_RETRIED |
    ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

// Each Channel's monitor needs its own inproc name in the shared context.
std::string NextMonitorAddress() {
  static std::atomic<uint64_t> n{0};
  return "inproc://tq-channel-monitor-" + std::to_string(getpid()) + "-" +
         std::to_string(++n);
}

// One ZeroMQ context (one I/O thread) shared by every Client alive in the
// process; it goes away with the last of them.
std::shared_ptr<zmq::context_t> SharedContext() {
  static std::mutex mu;
  static std::weak_ptr<zmq::context_t> weak;
  std::lock_guard<std::mutex> lock(mu);
  auto context = weak.lock();
  if (!context) {
    context = std::make_shared<zmq::context_t>(1);
    weak = context;
  }
  return context;
}

// All three keys or none, well-formed, the public key the secret one's: a
// mismatch would only show up as a broker that never answers.
Status CheckCurveKeys(const CurveClientKeys& keys) {
  if (!IsZ85Key(keys.broker_public_key)) {
    return Status::InvalidArgument(
        "CURVE: the broker's public key is not 40 characters of Z85");
  }
  if (!IsZ85Key(keys.client_public_key) || !IsZ85Key(keys.client_secret_key)) {
    return Status::InvalidArgument(
        "CURVE: the client's public and secret keys must both be 40 "
        "characters of Z85");
  }
  char derived[kZ85KeyLength + 1] = {};
  if (zmq_curve_public(derived, keys.client_secret_key.c_str()) != 0 ||
      keys.client_public_key != derived) {
    return Status::InvalidArgument(
        "CURVE: the client's public key is not the one of its secret key");
  }
  return Status::Ok();
}

}  // namespace

Status StatusFromWireError(const wire::Error& error) {
  std::string message = error.message();
  if (message.empty()) message = wire::ErrorCode_Name(error.code());
  switch (error.code()) {
    case wire::STORE_UNAVAILABLE:
    case wire::SHUTTING_DOWN:
    case wire::RATE_LIMITED:
      return Status::Unavailable(std::move(message));
    case wire::INVALID_ARGUMENT:
      return Status::InvalidArgument(std::move(message));
    case wire::NOT_FOUND:
      return Status::NotFound(std::move(message));
    default:
      return Status::Internal("broker error " +
                              wire::ErrorCode_Name(error.code()) + ": " +
                              message);
  }
}

std::string FormatDuration(milliseconds d) {
  int64_t ms = d.count();
  if (ms < 1000) return std::to_string(ms) + " ms";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  char buf[32];
  snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

Result<std::unique_ptr<Channel>> Channel::Open(const ClientOptions& options) {
  // Local transports are for programs (the web console reaches its broker
  // over ipc://); what people type is tcp://HOST:PORT, checked here.
  const bool local = options.endpoint.starts_with("ipc://") ||
                     options.endpoint.starts_with("inproc://");
  if (auto e = ParseEndpoint(options.endpoint, EndpointUse::kConnect);
      !local && !e.ok()) {
    return e.status();
  }
  if (options.attempts < 1) {
    return Status::InvalidArgument("attempts must be at least 1");
  }
  if (options.request_timeout.count() <= 0) {
    return Status::InvalidArgument("request timeout must be positive");
  }
  const CurveClientKeys& keys = options.curve;
  if (keys.enabled()) {
    if (!CurveAvailable()) {
      return Status::Unavailable(
          "CURVE keys given but this libzmq has no "
          "CURVE support");
    }
    if (Status s = CheckCurveKeys(keys); !s.ok()) return s;
  }
  try {
    auto context = SharedContext();
    auto socket =
        std::make_unique<zmq::socket_t>(*context, zmq::socket_type::dealer);
    // Every request waits for its reply, so nothing worth keeping is left
    // unsent when the Client goes away; don't hang the process on exit.
    socket->set(zmq::sockopt::linger, 0);
    socket->set(zmq::sockopt::maxmsgsize, kMaxMessageBytes + kMaxMessageSlack);
    if (keys.enabled()) {
      CurveCert own;
      own.public_key = keys.client_public_key;
      own.secret_key = keys.client_secret_key;
      Status s =
          ApplyCurveClient(socket->handle(), own, keys.broker_public_key);
      if (!s.ok()) return s;
    }
    std::unique_ptr<zmq::socket_t> monitor;
    if (options.on_connection) {
      // Before connect, so the first refusal is seen.
      const std::string address = NextMonitorAddress();
      if (zmq_socket_monitor(socket->handle(), address.c_str(),
                             kMonitoredEvents) != 0) {
        return Status::Internal(std::string("socket monitor: ") +
                                zmq_strerror(zmq_errno()));
      }
      monitor =
          std::make_unique<zmq::socket_t>(*context, zmq::socket_type::pair);
      monitor->set(zmq::sockopt::linger, 0);
      monitor->connect(address);
    }
    socket->connect(options.endpoint);
    return std::unique_ptr<Channel>(new Channel(
        options, std::move(context), std::move(socket), std::move(monitor)));
  } catch (const zmq::error_t& e) {
    return Status::InvalidArgument("cannot connect to '" + options.endpoint +
                                   "': " + e.what());
  }
}

Channel::Channel(const ClientOptions& options,
                 std::shared_ptr<zmq::context_t> context,
                 std::unique_ptr<zmq::socket_t> socket,
                 std::unique_ptr<zmq::socket_t> monitor)
    : options_(options),
      context_(std::move(context)),
      socket_(std::move(socket)),
      monitor_(std::move(monitor)),
      opened_(Clock::now()) {}

Channel::~Channel() {
  if (monitor_) {
    zmq_socket_monitor(socket_->handle(), nullptr, 0);
    monitor_.reset();
  }
  socket_.reset();  // before the context it belongs to
}

void Channel::Report(ConnectionEvent::Kind kind, const std::string& message) {
  if (reported_any_ && last_reported_ == kind) return;
  // "connected" only means something after a complaint.
  if (kind == ConnectionEvent::Kind::kConnected && !reported_any_) return;
  reported_any_ = true;
  last_reported_ = kind;
  options_.on_connection(ConnectionEvent{kind, message});
}

Clock::time_point Channel::NextMonitorDeadline() const {
  if (!monitor_ || connected_ || reported_any_) return Clock::time_point::max();
  return opened_ + kSlowConnectReport;
}

void Channel::DrainMonitor() {
  if (!monitor_) return;
  using Kind = ConnectionEvent::Kind;
  const std::string& at = options_.endpoint;
  for (;;) {
    zmq::message_t head;
    zmq::recv_result_t got;
    try {
      got = monitor_->recv(head, zmq::recv_flags::dontwait);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return;
    }
    if (!got) break;
    // Frame 1: uint16 event, uint32 value; frame 2: the endpoint.
    zmq::message_t address;
    if (head.more()) (void)monitor_->recv(address, zmq::recv_flags::none);
    if (head.size() < sizeof(uint16_t)) continue;
    uint16_t event = 0;
    std::memcpy(&event, head.data(), sizeof event);
    spdlog::debug("socket monitor: event {:#x} on {}", event, at);
    switch (event) {
      // Connected means the ZMTP (and CURVE) handshake succeeded: a TCP
      // connection that fails its handshake is no broker to talk to.
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        connected_ = true;
        Report(Kind::kConnected, "connected to broker at " + at);
        break;
      case ZMQ_EVENT_DISCONNECTED:
        if (connected_) {
          connected_ = false;
          Report(Kind::kLost, "lost the broker at " + at + "; retrying");
        }
        break;
      case ZMQ_EVENT_CONNECT_RETRIED:
        // The connect failed at once: nothing listens there.
        // After a loss, "retrying" has said it already.
        if (!connected_ && !(reported_any_ && last_reported_ == Kind::kLost)) {
          Report(Kind::kWaiting,
                 "waiting for broker at " + at + ": connection refused");
        }
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        Report(Kind::kWaiting, "waiting for broker at " + at +
                                   ": handshake failed (CURVE keys?)");
        break;
      default:
        break;
    }
  }
  if (!connected_ && !reported_any_ &&
      Clock::now() >= opened_ + kSlowConnectReport) {
    Report(Kind::kWaiting, "waiting for broker at " + at +
                               ": no connection "
                               "yet (no answer to TCP connect)");
  }
}

Status Channel::SendFrame(const std::string& bytes) {
  try {
    // Never block: with the pipe full the attempt simply times out and is
    // resent, like a lost message.
    if (!socket_->send(zmq::buffer(bytes), zmq::send_flags::dontwait)) {
      spdlog::debug("send to {} would block; counted as a lost attempt",
                    options_.endpoint);
    }
    return Status::Ok();
  } catch (const zmq::error_t& e) {
    return Status::IoError(std::string("send failed: ") + e.what());
  }
}

Result<uint64_t> Channel::Post(wire::Envelope message) {
  const uint64_t seq = next_seq_++;
  message.set_seq(seq);
  if (Status s = SendFrame(Encode(message)); !s.ok()) return s;
  return seq;
}

Result<std::optional<wire::Envelope>> Channel::Receive(milliseconds wait) {
  const Clock::time_point end = Clock::now() + wait;
  for (;;) {
    zmq::message_t frame;
    zmq::recv_result_t got;
    try {
      got = socket_->recv(frame, zmq::recv_flags::dontwait);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return Status::IoError(std::string("receive failed: ") + e.what());
    }
    if (got) {
      Decoded decoded = DecodeFromBroker(frame.to_string_view());
      if (decoded.error != DecodeError::kNone) {
        spdlog::warn("unreadable message from {}: {}", options_.endpoint,
                     DecodeErrorName(decoded.error));
        continue;
      }
      return std::optional<wire::Envelope>(std::move(decoded.envelope));
    }
    const Clock::time_point now = Clock::now();
    if (now >= end) return std::optional<wire::Envelope>();
    const Clock::time_point until = std::min(end, NextMonitorDeadline());
    auto left = std::chrono::ceil<milliseconds>(until - now);
    zmq_pollitem_t items[2] = {
        {static_cast<void*>(*socket_), 0, ZMQ_POLLIN, 0},
        {monitor_ ? static_cast<void*>(*monitor_) : nullptr, 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, monitor_ ? 2 : 1,
                std::max<milliseconds>(left, milliseconds(0)));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) {
        return Status::IoError(std::string("poll failed: ") + e.what());
      }
      return std::optional<wire::Envelope>();  // a signal: let the caller see
    }
    DrainMonitor();
  }
}

Result<wire::Envelope> Channel::Call(wire::Envelope request,
                                     milliseconds extra_wait) {
  std::vector<wire::Envelope> requests;
  requests.push_back(std::move(request));
  wire::Envelope reply;
  Status status = CallPipelined(requests, 1, extra_wait,
                                [&reply](size_t, const wire::Envelope& env) {
                                  reply = env;
                                  return Status::Ok();
                                });
  if (!status.ok()) return status;
  return reply;
}

Status Channel::CallPipelined(
    std::vector<wire::Envelope>& requests, size_t window,
    milliseconds extra_wait,
    const std::function<Status(size_t, const wire::Envelope&)>& on_reply) {
  struct Pending {
    size_t index = 0;
    int attempts = 0;
    Clock::time_point deadline;
    std::string bytes;
  };
  const milliseconds per_attempt = options_.request_timeout + extra_wait;
  window = std::max<size_t>(window, 1);
  // Keyed by seq. A request keeps its seq across resends, so the answer to
  // any attempt completes it (and a Submit's first answer, which counts the
  // accepted items, is not replaced by a resend's "all duplicates"); replies
  // for seqs not here are late duplicates and are dropped.
  std::unordered_map<uint64_t, Pending> outstanding;
  size_t next = 0;
  size_t answered = 0;

  while (answered < requests.size()) {
    while (outstanding.size() < window && next < requests.size()) {
      uint64_t seq = next_seq_++;
      requests[next].set_seq(seq);
      Pending p;
      p.index = next++;
      p.bytes = Encode(requests[p.index]);
      p.attempts = 1;
      p.deadline = Clock::now() + per_attempt;
      Status s = SendFrame(p.bytes);
      if (!s.ok()) return s;
      outstanding.emplace(seq, std::move(p));
    }

    Clock::time_point now = Clock::now();
    Clock::time_point earliest = Clock::time_point::max();
    for (auto& [seq, p] : outstanding) {
      if (p.deadline <= now) {
        if (p.attempts >= options_.attempts) {
          return Status::Unavailable("no answer from " + options_.endpoint +
                                     " after " + std::to_string(p.attempts) +
                                     " attempt" + (p.attempts == 1 ? "" : "s") +
                                     " of " + FormatDuration(per_attempt));
        }
        ++p.attempts;
        p.deadline = now + per_attempt;
        spdlog::debug("no reply to seq {} yet; attempt {} of {}", seq,
                      p.attempts, options_.attempts);
        Status s = SendFrame(p.bytes);
        if (!s.ok()) return s;
      }
      earliest = std::min(earliest, p.deadline);
    }

    earliest = std::min(earliest, NextMonitorDeadline());
    auto wait = std::chrono::ceil<milliseconds>(earliest - Clock::now());
    zmq_pollitem_t items[2] = {
        {static_cast<void*>(*socket_), 0, ZMQ_POLLIN, 0},
        {monitor_ ? static_cast<void*>(*monitor_) : nullptr, 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, monitor_ ? 2 : 1,
                std::max<milliseconds>(wait, milliseconds(0)));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return Status::IoError(std::string("poll failed: ") + e.what());
    }
    DrainMonitor();
    if (!(items[0].revents & ZMQ_POLLIN)) continue;

    // Drain everything that has arrived.
    for (;;) {
      zmq::message_t frame;
      zmq::recv_result_t got;
      try {
        got = socket_->recv(frame, zmq::recv_flags::dontwait);
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        return Status::IoError(std::string("receive failed: ") + e.what());
      }
      if (!got) break;
      Decoded decoded = DecodeFromBroker(frame.to_string_view());
      uint64_t seq = decoded.envelope.seq();
      auto it = outstanding.find(seq);
      if (it == outstanding.end()) {
        if (decoded.error == DecodeError::kNone &&
            decoded.envelope.has_error() && seq == 0) {
          // The broker could not read some request well enough to echo its
          // seq; say so, the request itself will time out.
          spdlog::warn("broker error: {}", decoded.envelope.error().message());
        } else {
          spdlog::debug("dropping reply with unknown seq {}", seq);
        }
        continue;
      }
      size_t index = it->second.index;
      outstanding.erase(it);
      if (decoded.error != DecodeError::kNone) {
        return Status::Internal("unreadable reply from " + options_.endpoint +
                                ": " +
                                std::string(DecodeErrorName(decoded.error)));
      }
      if (decoded.envelope.has_error()) {
        return StatusFromWireError(decoded.envelope.error());
      }
      Status s = on_reply(index, decoded.envelope);
      if (!s.ok()) return s;
      ++answered;
    }
  }
  return Status::Ok();
}

}  // namespace tq
