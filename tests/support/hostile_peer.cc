#include "tests/support/hostile_peer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/codec.h"
#include "common/defaults.h"

namespace tq::testing {

HostilePeer::HostilePeer(zmq::context_t& context, const std::string& endpoint,
                         HostilePeerOptions options)
    : socket_(context, zmq::socket_type::dealer) {
  socket_.set(zmq::sockopt::linger, 0);
  if (options.sndhwm) socket_.set(zmq::sockopt::sndhwm, *options.sndhwm);
  if (options.rcvhwm) socket_.set(zmq::sockopt::rcvhwm, *options.rcvhwm);
  if (options.immediate) socket_.set(zmq::sockopt::immediate, 1);
  socket_.connect(endpoint);
}

HostilePeer::~HostilePeer() { Close(); }

void HostilePeer::Close() {
  if (socket_.handle() != nullptr) socket_.close();
}

bool HostilePeer::SendFrames(const std::vector<std::string>& frames) {
  if (frames.empty()) return false;
  try {
    for (size_t i = 0; i < frames.size(); ++i) {
      const bool last = i + 1 == frames.size();
      auto flags = zmq::send_flags::dontwait;
      if (!last) flags = flags | zmq::send_flags::sndmore;
      // A multi-part message is queued whole or not at all: only its first
      // part can block.
      if (!socket_.send(zmq::buffer(frames[i]), flags)) return false;
    }
  } catch (const zmq::error_t&) {
    return false;
  }
  ++sent_;
  return true;
}

bool HostilePeer::SendEnvelope(wire::Envelope envelope) {
  if (envelope.seq() == 0) envelope.set_seq(++seq_);
  return SendFrames({Encode(envelope)});
}

std::optional<wire::Envelope> HostilePeer::Receive(
    std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
  zmq::message_t msg;
  if (!socket_.recv(msg, zmq::recv_flags::dontwait)) return std::nullopt;
  while (msg.more()) {  // a broker sends one frame; drop any others
    zmq::message_t rest;
    if (!socket_.recv(rest, zmq::recv_flags::dontwait)) break;
    if (!rest.more()) break;
  }
  Decoded d = Decode(std::string_view(msg.data<char>(), msg.size()));
  if (d.error != DecodeError::kNone) return std::nullopt;
  return std::move(d.envelope);
}

size_t HostilePeer::DrainReplies() {
  size_t n = 0;
  zmq::message_t msg;
  // Bounded: the receive queue holds at most rcvhwm messages at a time.
  for (size_t i = 0; i < 1'000'000; ++i) {
    if (!socket_.recv(msg, zmq::recv_flags::dontwait)) break;
    if (!msg.more()) ++n;
  }
  return n;
}

bool HostilePeer::WaitConnected(std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLOUT, 0};
  return zmq::poll(&item, 1, timeout) > 0 && (item.revents & ZMQ_POLLOUT);
}

bool HostilePeer::SayHello(const wire::Hello& hello,
                           std::chrono::milliseconds timeout) {
  wire::Envelope env;
  *env.mutable_hello() = hello;
  env.set_seq(++seq_);
  const uint64_t seq = env.seq();
  if (!SendEnvelope(std::move(env))) return false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Bounded by the deadline: replies to other messages are skipped.
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    std::optional<wire::Envelope> reply = Receive(left);
    if (!reply) continue;
    if (reply->seq() != seq) continue;
    return reply->has_welcome();
  }
}

bool HostilePeer::SendCredit(uint32_t grant) {
  wire::Envelope env;
  env.mutable_credit()->set_grant(grant);
  return SendEnvelope(std::move(env));
}

std::vector<wire::Task> HostilePeer::TakeTasks(
    size_t want, std::chrono::milliseconds quiet,
    std::chrono::milliseconds timeout) {
  std::vector<wire::Task> tasks;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (tasks.size() < want && std::chrono::steady_clock::now() < deadline) {
    std::optional<wire::Envelope> msg = Receive(quiet);
    if (!msg) {
      if (!tasks.empty()) break;  // quiet after some: that is all for now
      continue;
    }
    if (!msg->has_assign()) continue;
    for (const wire::Task& t : msg->assign().tasks()) tasks.push_back(t);
  }
  return tasks;
}

// ------------------------------------------------------------------ junk

std::string_view JunkKindName(JunkKind kind) {
  switch (kind) {
    case JunkKind::kRandomBytes:
      return "random bytes";
    case JunkKind::kTruncated:
      return "truncated";
    case JunkKind::kBitFlipped:
      return "bit-flipped";
    case JunkKind::kMultiFrame:
      return "multi-frame";
    case JunkKind::kEmptyFrame:
      return "empty frame";
    case JunkKind::kUnknownBody:
      return "unknown body";
    case JunkKind::kBadVersion:
      return "bad version";
    case JunkKind::kWrongDirection:
      return "wrong direction";
    case JunkKind::kCount:
      break;
  }
  return "?";
}

JunkFactory::JunkFactory(uint64_t seed, uint64_t first_task_id,
                         uint64_t task_ids)
    : rng_(seed),
      first_task_id_(first_task_id),
      task_ids_(std::max<uint64_t>(1, task_ids)) {}

uint64_t JunkFactory::TaskId() {
  return first_task_id_ + Uniform(0, task_ids_ - 1);
}

uint64_t JunkFactory::Uniform(uint64_t lo, uint64_t hi) {
  return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
}

std::string JunkFactory::RandomBytes(size_t min, size_t max) {
  std::string s(size_t(Uniform(min, max)), '\0');
  for (char& c : s) c = char(Uniform(0, 255));
  return s;
}

std::string JunkFactory::ValidSubmit() {
  wire::Envelope env;
  env.set_seq(Uniform(1, 1'000'000));
  auto* s = env.mutable_submit();
  s->set_batch_id("junk-" + std::to_string(Uniform(0, 9)));
  const uint64_t n = Uniform(1, 3);
  for (uint64_t i = 0; i < n; ++i) {
    auto* item = s->add_items();
    item->set_index(uint32_t(Uniform(0, 50)));
    item->set_url("http://127.0.0.1/junk/" + std::to_string(Uniform(0, 999)));
    item->set_queue(kGenericQueue);
  }
  return Encode(env);
}

std::string JunkFactory::ValidResult() {
  wire::Envelope env;
  env.set_seq(Uniform(1, 1'000'000));
  auto* r = env.mutable_result();
  r->set_task_id(TaskId());
  r->set_token(Uniform(1, UINT64_MAX));
  r->set_ok(true);
  r->set_output("forged by junk");
  r->set_duration_ms(uint32_t(Uniform(0, 1000)));
  return Encode(env);
}

std::string JunkFactory::ValidHello() {
  wire::Envelope env;
  env.set_seq(Uniform(1, 1'000'000));
  auto* h = env.mutable_hello();
  h->set_worker_id("junk-worker-" + std::to_string(Uniform(0, 9)));
  h->set_concurrency(uint32_t(Uniform(1, 8)));
  h->set_hostname("junk");
  h->set_version("0.0");
  return Encode(env);
}

std::string JunkFactory::ValidTemplate() {
  switch (Uniform(0, mutate_results_ ? 2 : 1)) {
    case 0:
      return ValidSubmit();
    case 1:
      return ValidHello();
    default:
      return ValidResult();
  }
}

std::vector<std::string> JunkFactory::Next(JunkKind* kind) {
  const auto k = JunkKind(Uniform(0, uint64_t(JunkKind::kCount) - 1));
  if (kind != nullptr) *kind = k;
  return Make(k);
}

std::vector<std::string> JunkFactory::Make(JunkKind kind) {
  switch (kind) {
    case JunkKind::kRandomBytes:
      return {RandomBytes(1, 512)};
    case JunkKind::kTruncated: {
      std::string s = ValidTemplate();
      s.resize(size_t(Uniform(1, s.size() - 1)));
      return {s};
    }
    case JunkKind::kBitFlipped: {
      std::string s = ValidTemplate();
      const uint64_t flips = Uniform(1, 3);
      for (uint64_t i = 0; i < flips; ++i) {
        s[Uniform(0, s.size() - 1)] ^= char(1u << Uniform(0, 7));
      }
      return {s};
    }
    case JunkKind::kMultiFrame: {
      std::vector<std::string> frames;
      const uint64_t n = Uniform(2, 4);
      // Valid envelopes in the wrong framing as well as plain junk.
      for (uint64_t i = 0; i < n; ++i) {
        frames.push_back(Uniform(0, 1) ? ValidTemplate() : RandomBytes(0, 64));
      }
      return frames;
    }
    case JunkKind::kEmptyFrame:
      return {std::string()};
    case JunkKind::kUnknownBody: {
      // version = 1 (field 1, varint), then a length-delimited field whose
      // number no Envelope has (in 40..98, not 99; the descriptor says which
      // are free, as branches claim numbers in that range).
      std::string s = "\x08\x01";
      uint32_t field = uint32_t(Uniform(40, 98));
      for (int i = 0; i < 59 && wire::Envelope::descriptor()->FindFieldByNumber(
                                    int(field)) != nullptr;
           ++i) {
        field = field == 98 ? 40 : field + 1;
      }
      uint32_t tag = (field << 3) | 2;
      while (tag >= 0x80) {
        s.push_back(char((tag & 0x7f) | 0x80));
        tag >>= 7;
      }
      s.push_back(char(tag));
      std::string payload = RandomBytes(0, 100);
      s.push_back(char(payload.size()));
      s += payload;
      return {s};
    }
    case JunkKind::kBadVersion: {
      wire::Envelope env;
      env.set_seq(Uniform(1, 1000));
      env.mutable_list_queues();
      // 0 (the field left out), the next version, or anything.
      const uint64_t pick = Uniform(0, 2);
      env.set_version(pick == 0   ? 0
                      : pick == 1 ? kProtocolVersion + 1
                                  : uint32_t(Uniform(3, 1u << 30)));
      return {env.SerializeAsString()};
    }
    case JunkKind::kWrongDirection: {
      wire::Envelope env;
      env.set_seq(Uniform(1, 1000));
      switch (Uniform(0, 6)) {
        case 0:
          env.mutable_submit_ack()->set_accepted(5);
          break;
        case 1:
          env.mutable_welcome()->add_queues(kGenericQueue);
          break;
        case 2: {
          auto* t = env.mutable_assign()->add_tasks();
          t->set_task_id(TaskId());
          t->set_token(0);
          t->set_url("http://127.0.0.1/wrong");
          break;
        }
        case 3: {
          auto* a = env.mutable_result_ack();
          a->set_task_id(TaskId());
          a->set_accepted(true);
          break;
        }
        case 4:
          env.mutable_results()->set_batch_id("x");
          break;
        case 5:
          env.mutable_queue_list()->add_queues()->set_name(kGenericQueue);
          break;
        default:
          env.mutable_admin_ack()->set_affected(1);
      }
      return {Encode(env)};
    }
    case JunkKind::kCount:
      break;
  }
  return {RandomBytes(1, 16)};
}

std::string OversizedFrame() {
  return std::string(size_t(kMaxMessageBytes) + 64 * 1024 + 4096, 'x');
}

uint64_t ResidentKiB(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      uint64_t kib = 0;
      fields >> kib;
      return kib;
    }
  }
  return 0;
}

}  // namespace tq::testing
