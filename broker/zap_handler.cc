#include "broker/zap_handler.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/curve_keys.h"

namespace tq {
namespace {

constexpr const char* kZapVersion = "1.0";
// A request has 7 frames for CURVE; more is not libzmq talking.
constexpr size_t kMaxRequestFrames = 16;
constexpr size_t kCurveKeyBytes = 32;

std::string Frame(const std::vector<std::string>& frames, size_t i) {
  return i < frames.size() ? frames[i] : std::string();
}

// ZMTP metadata: name length (1 octet), name, value length (4 octets, network
// order), value.
void AppendProperty(std::string& out, const std::string& name,
                    const std::string& value) {
  out.push_back(static_cast<char>(name.size()));
  out += name;
  uint32_t n = static_cast<uint32_t>(value.size());
  out.push_back(static_cast<char>((n >> 24) & 0xff));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
  out += value;
}

// Peer-controlled text in a log line: printable ASCII only, bounded.
std::string Printable(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

bool SendReply(void* socket, const std::string& request_id,
               const std::string& code, const std::string& text,
               const std::string& user_id, const std::string& metadata) {
  const std::string* parts[] = {nullptr, &request_id, &code,
                                &text,   &user_id,    &metadata};
  const std::string version = kZapVersion;
  parts[0] = &version;
  for (size_t i = 0; i < std::size(parts); ++i) {
    int flags = i + 1 < std::size(parts) ? ZMQ_SNDMORE : 0;
    if (zmq_send(socket, parts[i]->data(), parts[i]->size(), flags) < 0) {
      return false;
    }
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<ZapHandler>> ZapHandler::Start(void* zmq_context,
                                                      AuthorizedKeysPtr keys,
                                                      ZapOptions options) {
  if (!CurveAvailable()) {
    return Status::Unavailable("libzmq was built without CURVE support");
  }
  if (!keys) keys = std::make_shared<const AuthorizedKeys>();
  void* socket = zmq_socket(zmq_context, ZMQ_REP);
  if (socket == nullptr) {
    return Status::Internal(std::string("ZAP socket: ") +
                            zmq_strerror(zmq_errno()));
  }
  int linger = 0;
  zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger);
  if (zmq_bind(socket, kZapEndpoint) != 0) {
    int err = zmq_errno();
    zmq_close(socket);
    if (err == EADDRINUSE) {
      return Status::InvalidArgument(
          "a ZAP handler is already bound in this ZeroMQ context");
    }
    return Status::Internal(std::string("cannot bind ") + kZapEndpoint + ": " +
                            zmq_strerror(err));
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    zmq_close(socket);
    return Status::Internal(std::string("pipe: ") + std::strerror(errno));
  }
  // The socket moves to the handler thread; starting a thread is the full
  // memory barrier libzmq asks for when a socket changes threads.
  std::unique_ptr<ZapHandler> handler(new ZapHandler(
      socket, fds[0], fds[1], std::move(keys), std::move(options)));
  handler->thread_ = std::thread([h = handler.get()] { h->Run(); });
  return handler;
}

ZapHandler::ZapHandler(void* socket, int stop_read, int stop_write,
                       AuthorizedKeysPtr keys, ZapOptions options)
    : options_(std::move(options)),
      stop_read_(stop_read),
      stop_write_(stop_write),
      socket_(socket),
      log_tokens_(std::max(1, options_.log_burst)),
      log_refilled_(std::chrono::steady_clock::now()),
      keys_(std::move(keys)) {}

ZapHandler::~ZapHandler() {
  Stop();
  close(stop_read_);
  close(stop_write_);
}

void ZapHandler::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (!thread_.joinable()) return;
  char byte = 1;
  // Non-blocking: a full pipe already holds a wake-up.
  (void)!write(stop_write_, &byte, 1);
  thread_.join();
}

void ZapHandler::SetKeys(AuthorizedKeysPtr keys) {
  if (!keys) keys = std::make_shared<const AuthorizedKeys>();
  std::lock_guard<std::mutex> lock(keys_mu_);
  keys_ = std::move(keys);
}

AuthorizedKeysPtr ZapHandler::keys() const {
  std::lock_guard<std::mutex> lock(keys_mu_);
  return keys_;
}

void ZapHandler::Run() {
  while (true) {
    zmq_pollitem_t items[] = {{socket_, 0, ZMQ_POLLIN, 0},
                              {nullptr, stop_read_, ZMQ_POLLIN, 0}};
    int rc = zmq_poll(items, 2, -1);
    if (rc < 0) {
      if (zmq_errno() == EINTR) continue;
      if (zmq_errno() != ETERM) {
        spdlog::error("ZAP handler: poll failed: {}",
                      zmq_strerror(zmq_errno()));
      }
      break;
    }
    if (items[1].revents & ZMQ_POLLIN) break;
    if (items[0].revents & ZMQ_POLLIN) HandleRequest();
  }
  // Unbinding an inproc endpoint is immediate; closing alone frees it only
  // once the reaper gets to the socket.
  zmq_unbind(socket_, kZapEndpoint);
  zmq_close(socket_);
  socket_ = nullptr;
}

void ZapHandler::HandleRequest() {
  std::vector<std::string> frames;
  bool more = true;
  while (more) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, socket_, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&msg);
      return;  // EAGAIN or ETERM: nothing to answer
    }
    more = zmq_msg_more(&msg) != 0;
    if (frames.size() < kMaxRequestFrames) {
      frames.emplace_back(static_cast<const char*>(zmq_msg_data(&msg)),
                          zmq_msg_size(&msg));
    }
    zmq_msg_close(&msg);
  }
  // Frames: version, request id, domain, address, routing id, mechanism,
  // credentials...
  const std::string request_id = Frame(frames, 1);
  const std::string domain = Frame(frames, 2);
  const std::string address = Frame(frames, 3);
  const std::string mechanism = Frame(frames, 5);

  auto refuse = [&](const std::string& code, const std::string& why,
                    const std::string& key_text) {
    refused_.fetch_add(1);
    LogRefusal("refused " + Printable(mechanism) + " client" +
               (key_text.empty() ? "" : " key " + key_text) + " from " +
               Printable(address) + ": " + why);
    SendReply(socket_, request_id, code, why, "", "");
  };

  if (frames.size() < 6) return refuse("500", "malformed ZAP request", "");
  if (frames[0] != kZapVersion) {
    return refuse("400", "unsupported ZAP version", "");
  }
  if (!options_.domain.empty() && domain != options_.domain) {
    return refuse("400", "ZAP domain '" + Printable(domain) + "' not served",
                  "");
  }
  if (mechanism != "CURVE") {
    return refuse("400", "only CURVE clients are admitted", "");
  }
  if (frames.size() != 7 || frames[6].size() != kCurveKeyBytes) {
    return refuse("400", "malformed CURVE credentials", "");
  }
  char z85[kZ85KeyLength + 1];
  if (zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(frames[6].data()),
                     kCurveKeyBytes) == nullptr) {
    return refuse("500", "cannot encode the client key", "");
  }
  const std::string public_key(z85);

  AuthorizedKeysPtr table = keys();
  const AuthorizedKey* key = table->FindByPublicKey(public_key);
  if (key == nullptr) return refuse("400", "unknown key", public_key);

  std::string metadata;
  AppendProperty(metadata, kCurveKeyProperty, public_key);
  accepted_.fetch_add(1);
  spdlog::debug("ZAP: admitted key {} ({}) from {}", key->name,
                key->roles.ToString(), Printable(address));
  SendReply(socket_, request_id, "200", "OK", key->name, metadata);
}

void ZapHandler::LogRefusal(const std::string& line) {
  // A token bucket: a flood of bad handshakes costs a line a second.
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - log_refilled_).count();
  log_refilled_ = now;
  log_tokens_ =
      std::min<double>(std::max(1, options_.log_burst),
                       log_tokens_ + elapsed * options_.log_per_second);
  if (log_tokens_ < 1.0) {
    ++unlogged_refusals_;
    return;
  }
  log_tokens_ -= 1.0;
  if (unlogged_refusals_ > 0) {
    spdlog::warn("ZAP: {} (and {} refusals not logged before it)", line,
                 unlogged_refusals_);
    unlogged_refusals_ = 0;
  } else {
    spdlog::warn("ZAP: {}", line);
  }
}

std::optional<std::string> MessageProperty(zmq_msg_t* message,
                                           const char* name) {
  const char* value = zmq_msg_gets(message, name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

}  // namespace tq
