#include "broker/broker_server.h"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/version.h"

namespace tq {
namespace {

constexpr const char* kMonitorEndpoint = "inproc://tq-router-monitor";
constexpr Millis kMaxPollWait{1000};
// An answer never sent (a bug, not a slow bulk job) frees its slot after this.
constexpr Millis kInFlightMaxAge{10 * 60 * 1000};
constexpr int kHandshakeFailed = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

// "tcp://host:0" asks for any free port; ZeroMQ spells that "tcp://host:*".
std::string BindSpec(const std::string& endpoint) {
  if (endpoint.size() > 2 &&
      endpoint.compare(endpoint.size() - 2, 2, ":0") == 0) {
    return endpoint.substr(0, endpoint.size() - 1) + "*";
  }
  return endpoint;
}

Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text << "\n";
    if (!out.flush()) return Status::IoError("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::IoError("cannot rename " + tmp + ": " + ec.message());
  return Status::Ok();
}

uint64_t FileSize(const std::string& path) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  return ec ? 0 : uint64_t(size);
}

// Resident set size from /proc/self/statm (pages), 0 if unreadable.
uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * uint64_t(sysconf(_SC_PAGESIZE));
}

// A ROUTER's routing id (binary) as text for the log: "peer 0080000001".
std::string RoutingIdText(const std::string& peer) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text = "peer ";
  for (unsigned char c : peer.substr(0, 16)) {
    text += kHex[c >> 4];
    text += kHex[c & 15];
  }
  return text;
}

Millis Until(TimePoint deadline, TimePoint now) {
  if (deadline <= now) return Millis(0);
  return std::min(std::chrono::duration_cast<Millis>(deadline - now),
                  kMaxPollWait);
}

}  // namespace

BrokerServer::BrokerServer(Broker& core, const Clock& clock,
                           ServerOptions options)
    : core_(core),
      clock_(clock),
      options_(std::move(options)),
      context_(1),
      router_(context_, zmq::socket_type::router),
      monitor_(context_, zmq::socket_type::pair),
      in_flight_(options_.max_in_flight, kInFlightMaxAge,
                 options_.full_queue_backoff) {}

BrokerServer::~BrokerServer() {
  if (signal_fd_ >= 0) close(signal_fd_);
  // The ZAP handler goes last: without it libzmq admits any key.
  router_.close();
  monitor_.close();
  zap_.reset();
}

void BrokerServer::UseKeys(AuthorizedKeysPtr keys) {
  keys_ = std::move(keys);
  identities_.clear();
  for (const AuthorizedKey& k : keys_->keys()) {
    identities_.emplace(k.public_key, k.Identity());
  }
  if (zap_) zap_->SetKeys(keys_);
}

Result<KeyReload> BrokerServer::ReloadKeys() {
  std::vector<KeyFileProblem> problems;
  auto loaded =
      AuthorizedKeys::LoadDirectory(options_.authorized_keys_dir, &problems);
  for (const KeyFileProblem& p : problems) spdlog::warn("{}", p.reason);
  if (!loaded.ok()) {
    spdlog::error(
        "cannot read the authorized keys: {}; keeping the {} keys "
        "loaded before",
        loaded.status().message(), keys_ ? keys_->size() : 0);
    return loaded.status();
  }
  if (!options_.builtin_keys.empty()) {
    std::vector<AuthorizedKey> all = loaded->keys();
    all.insert(all.end(), options_.builtin_keys.begin(),
               options_.builtin_keys.end());
    loaded = AuthorizedKeys::FromKeys(std::move(all), &problems);
  }
  auto next = std::make_shared<const AuthorizedKeys>(std::move(*loaded));
  KeyReload reload;
  reload.keys = uint32_t(next->size());
  for (const KeyFileProblem& p : problems) reload.problems.push_back(p.reason);
  if (keys_) {
    AuthorizedKeys::Changes changes = AuthorizedKeys::Diff(*keys_, *next);
    reload.added = std::move(changes.added);
    reload.removed = std::move(changes.removed);
    reload.changed = std::move(changes.changed);
    for (const AuthorizedKey& k : AuthorizedKeys::Revoked(*keys_, *next)) {
      reload.revoked.push_back({k.name, k.public_key});
    }
    // Changed roles or countries: the live sessions end too, and rejoin
    // under the new rules.
    for (const AuthorizedKey& before : keys_->keys()) {
      const AuthorizedKey* after = next->FindByPublicKey(before.public_key);
      if (after != nullptr && (after->roles != before.roles ||
                               after->countries != before.countries)) {
        reload.revoked.push_back({before.name, before.public_key});
      }
    }
  }
  UseKeys(std::move(next));
  std::vector<std::string> names;
  for (const RevokedKey& k : reload.revoked) names.push_back(k.name);
  auto listed = [](const char* what, const std::vector<std::string>& v) {
    return v.empty() ? std::string()
                     : fmt::format("; {}: {}", what, fmt::join(v, ", "));
  };
  spdlog::info("authorized keys: {} admitted from {}{}{}{}{}{}", reload.keys,
               options_.authorized_keys_dir,
               problems.empty()
                   ? ""
                   : fmt::format(", {} files skipped", problems.size()),
               listed("added", reload.added), listed("removed", reload.removed),
               listed("changed", reload.changed), listed("revoked", names));
  return reload;
}

const PeerIdentity& BrokerServer::Identify(zmq::message_t& frame) {
  if (!zap_) return PeerIdentity::Unkeyed();
  std::optional<std::string> key =
      MessageProperty(frame.handle(), kCurveKeyProperty);
  if (key) {
    auto it = identities_.find(*key);
    if (it != identities_.end()) return it->second;
  }
  // Admitted once, revoked since: the connection stays open (libzmq cannot
  // close one peer of a ROUTER) but nothing it sends is allowed.
  std::optional<std::string> name =
      MessageProperty(frame.handle(), kUserIdProperty);
  stranger_ = PeerIdentity();
  stranger_.keyed = true;
  stranger_.key_name = name ? *name : "?";
  stranger_.public_key = key ? *key : "";
  return stranger_;
}

Status BrokerServer::Bind() {
  const bool curve = options_.curve_key.has_secret();
  if (curve) {
    // Keys, then the ZAP handler, then the CURVE options, then bind.
    auto reload = ReloadKeys();
    if (!reload.ok()) {
      return Status::Unavailable("--authorized-keys: " +
                                 reload.status().message());
    }
    auto zap = ZapHandler::Start(context_.handle(), keys_);
    if (!zap.ok()) return zap.status();
    zap_ = std::move(zap).value();
    if (Status st =
            ApplyCurveServer(router_.handle(), options_.curve_key, "tq");
        !st.ok()) {
      return st;
    }
    core_.SetKeyReloader([this] { return ReloadKeys(); });
  }
  try {
    router_.set(zmq::sockopt::linger, 1000);
    // Anything larger is cut off by ZeroMQ (the peer is disconnected) before
    // it is buffered; the codec refuses what is between the two caps.
    router_.set(zmq::sockopt::maxmsgsize,
                options_.max_message_bytes + kZmqSlackBytes);
    // Fail loudly (EHOSTUNREACH) on a vanished peer instead of dropping.
    router_.set(zmq::sockopt::router_mandatory, 1);
    router_.set(zmq::sockopt::sndhwm, options_.max_queued_messages);
    router_.set(zmq::sockopt::rcvhwm, options_.max_queued_messages);
    // IPv6 workers too (tcp://*:7070 becomes dual-stack); IPv4 peers then
    // show as ::ffff:a.b.c.d, which geolocation folds back to IPv4.
    router_.set(zmq::sockopt::ipv6, 1);
    int rc = zmq_socket_monitor(router_.handle(), kMonitorEndpoint,
                                ZMQ_EVENT_DISCONNECTED | kHandshakeFailed);
    if (rc != 0) return Status::Internal("cannot monitor the ROUTER socket");
    monitor_.connect(kMonitorEndpoint);
    router_.bind(BindSpec(options_.listen));
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
    for (const std::string& also : options_.also_listen) router_.bind(also);
  } catch (const zmq::error_t& e) {
    return Status::Unavailable("cannot listen on " + options_.listen + ": " +
                               e.what());
  }
  if (curve) {
    spdlog::info(
        "listening on {} with CURVE (broker public key {}; {} keys "
        "authorized)",
        endpoint_, options_.curve_key.public_key, keys_->size());
  } else {
    spdlog::info("listening on {} without keys (every peer has every role)",
                 endpoint_);
  }
  core_.SetStatusFiller([this](wire::BrokerStatus* st) { FillStatus(st); });
  if (!options_.ready_file.empty()) {
    return WriteFileAtomically(options_.ready_file, endpoint_);
  }
  return Status::Ok();
}

Status BrokerServer::Run() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) return Status::Internal("signalfd failed");
  while (!stopping_) {
    if (Status st = Turn(); !st.ok()) return st;
  }
  return FinishHeld();
}

Status BrokerServer::Turn() {
  if (Status st = Wait(); !st.ok()) return st;
  const bool drained = ReceiveAll();
  if (drained) CountSilentCloses();
  core_.OnTick();
  SendAll(core_.Flush());
  CommitIfDue();
  if (Status st = ReleaseDurable(); !st.ok()) return st;
  RunIdleWork();
  warnings_.LogDue(clock_.Now());
  return Status::Ok();
}

void BrokerServer::RunIdleWork() {
  if (woken_ || !options_.on_idle || commit_due_ != TimePoint::max() ||
      !held_.empty() || clock_.Now() < next_idle_) {
    return;
  }
  next_idle_ = clock_.Now() + Millis(1000);
  options_.on_idle();
}

Status BrokerServer::Wait() {
  const TimePoint deadline = std::min(core_.OnTick(), commit_due_);
  const Millis wait = Until(deadline, clock_.Now());
  zmq::pollitem_t items[] = {
      {router_.handle(), 0, ZMQ_POLLIN, 0},
      {monitor_.handle(), 0, ZMQ_POLLIN, 0},
      {nullptr, signal_fd_, ZMQ_POLLIN, 0},
      {nullptr, options_.syncer ? options_.syncer->notify_fd() : -1, ZMQ_POLLIN,
       0},
  };
  try {
    woken_ = zmq::poll(items, options_.syncer ? 4 : 3, wait) > 0;
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) return Status::Internal(e.what());
  }
  if ((items[2].revents & ZMQ_POLLIN) && ReadSignals()) {
    core_.BeginShutdown();
    stopping_ = true;
  }
  if (items[1].revents & ZMQ_POLLIN) DrainMonitor();
  if (items[3].revents & ZMQ_POLLIN) options_.syncer->Drain();
  return Status::Ok();
}

bool BrokerServer::ReadSignals() {
  signalfd_siginfo info;
  bool stop = false;
  while (read(signal_fd_, &info, sizeof info) == sizeof info) {
    if (info.ssi_signo == SIGHUP) {
      if (!zap_) {
        spdlog::info("received SIGHUP: no --authorized-keys to reload");
        continue;
      }
      spdlog::info("received SIGHUP: reloading {}",
                   options_.authorized_keys_dir);
      if (auto reload = ReloadKeys(); reload.ok()) {
        core_.RevokeKeys(reload->revoked);
      }
      continue;
    }
    spdlog::info("received {}: finishing the current turn and stopping",
                 strsignal(int(info.ssi_signo)));
    stop = true;
  }
  return stop;
}

void BrokerServer::CommitIfDue() {
  if (core_.CommitPending() && commit_due_ == TimePoint::max()) {
    commit_due_ = clock_.Now() + options_.commit_interval;
  }
  if (commit_due_ == TimePoint::max()) return;
  if (stopping_ || clock_.Now() >= commit_due_) {
    Hold(core_.Commit());
    commit_due_ = TimePoint::max();
  }
}

void BrokerServer::Hold(std::vector<Outgoing> messages) {
  if (!options_.syncer) return SendAll(std::move(messages));
  if (messages.empty()) return;
  const uint64_t commit = options_.commit_count();
  if (commit > options_.syncer->durable()) options_.syncer->Request(commit);
  for (Outgoing& o : messages) held_.emplace_back(commit, std::move(o));
}

Status BrokerServer::ReleaseDurable() {
  if (!options_.syncer) return Status::Ok();
  if (Status st = options_.syncer->error(); !st.ok()) {
    // Like PostgreSQL after a failed fsync: what the kernel dropped cannot be
    // trusted, so stop without acknowledging anything that waited on it.
    return Status::IoError("cannot make commits durable: " + st.message() +
                           "; stopping with " + std::to_string(held_.size()) +
                           " acknowledgements unsent");
  }
  const uint64_t durable = options_.syncer->durable();
  std::vector<Outgoing> ready;
  while (!held_.empty() && held_.front().first <= durable) {
    ready.push_back(std::move(held_.front().second));
    held_.pop_front();
  }
  SendAll(std::move(ready));
  return Status::Ok();
}

Status BrokerServer::FinishHeld() {
  if (held_.empty()) return Status::Ok();
  const TimePoint deadline = clock_.Now() + options_.shutdown_sync_wait;
  while (!held_.empty()) {
    const TimePoint now = clock_.Now();
    if (now >= deadline) {
      spdlog::warn(
          "stopping with {} acknowledgements unsent: their commit "
          "was not durable within {} ms",
          held_.size(), options_.shutdown_sync_wait.count());
      return Status::Ok();
    }
    pollfd p{options_.syncer->notify_fd(), POLLIN, 0};
    const int rc = poll(&p, 1, int(Until(deadline, now).count()));
    if (rc < 0 && errno != EINTR) {
      return Status::Internal(std::string("poll: ") + std::strerror(errno));
    }
    if (rc > 0) options_.syncer->Drain();
    if (Status st = ReleaseDurable(); !st.ok()) return st;
  }
  return Status::Ok();
}

bool BrokerServer::ReceiveAll() {
  for (size_t n = 0; n < options_.max_messages_per_turn; ++n) {
    zmq::message_t identity;
    if (!router_.recv(identity, zmq::recv_flags::dontwait)) return true;
    Receive(identity);
  }
  return false;
}

void BrokerServer::Receive(zmq::message_t& identity) {
  std::string peer = identity.to_string();
  size_t frames = 0;
  zmq::message_t first;
  bool more = identity.more();
  while (more) {
    zmq::message_t part;
    if (!router_.recv(part, zmq::recv_flags::none)) break;
    more = part.more();
    if (frames++ == 0) first = std::move(part);
  }

  // Learn which connection (fd) this peer uses, to match disconnects.
  const int fd = first.get(ZMQ_SRCFD);
  if (fd >= 0) {
    // A connection on this fd spoke: its close (or its predecessor's, if the
    // fd was reused) is not counted as a refused message.
    silent_closes_.erase(fd);
    auto [it, inserted] = peer_by_fd_.try_emplace(fd, peer);
    if (!inserted && it->second != peer) {
      // The fd was reused: the connection of the previous peer is gone.
      Disconnected(it->second);
      it->second = peer;
    }
  }

  if (frames != 1) {
    core_.OnBadMessage(
        peer, DecodeError::kMalformed,
        "expected 1 frame after the routing id, got " + std::to_string(frames),
        PeerAddress(first));
    return;
  }
  Decoded d = DecodeFromPeer(std::string_view(first.data<char>(), first.size()),
                             size_t(options_.max_message_bytes));
  if (d.error != DecodeError::kNone) {
    const std::string detail =
        d.error == DecodeError::kWrongDirection
            ? std::string(BodyCaseName(d.envelope.body_case()))
            : "";
    core_.OnBadMessage(peer, d.error, detail, PeerAddress(first));
    return;
  }
  if (IsRequest(d.envelope)) {
    const auto tag = in_flight_.Begin(peer, d.envelope.seq(), clock_.Now());
    if (!tag) return RefuseBusy(peer, d.envelope.seq(), first);
    d.envelope.set_seq(*tag);
  }
  // Only what needs it pays for the address lookup.
  const bool wants_address =
      d.envelope.has_hello() || d.envelope.has_error() ||
      d.envelope.body_case() == wire::Envelope::BODY_NOT_SET;
  core_.OnMessage(peer, d.envelope,
                  wants_address ? PeerAddress(first) : std::string(),
                  Identify(first));
}

std::string BrokerServer::PeerAddress(zmq::message_t& frame) {
  const char* a = frame.gets("Peer-Address");
  std::string address = a ? a : "";
  // The dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d.
  if (address.rfind("::ffff:", 0) == 0 &&
      address.find('.') != std::string::npos) {
    address = address.substr(7);
  }
  return address;
}

void BrokerServer::DrainMonitor() {
  while (true) {
    zmq::message_t event;
    if (!monitor_.recv(event, zmq::recv_flags::dontwait)) return;
    zmq::message_t address;
    if (event.more()) (void)monitor_.recv(address, zmq::recv_flags::none);
    if (event.size() < 6) continue;
    uint16_t id;
    int32_t value;
    std::memcpy(&id, event.data<char>(), 2);
    std::memcpy(&value, event.data<char>() + 2, 4);
    if (id & kHandshakeFailed) {
      // libzmq reports a failed handshake and then, at once, the disconnect
      // of the same connection (one I/O thread: nothing comes between).
      handshake_failed_ = true;
      continue;
    }
    if (id != ZMQ_EVENT_DISCONNECTED) continue;
    const bool never_spoke_zmtp = std::exchange(handshake_failed_, false);
    auto it = peer_by_fd_.find(value);
    if (it != peer_by_fd_.end()) {
      Disconnected(it->second);
      peer_by_fd_.erase(it);
    } else if (!never_spoke_zmtp) {
      // Its messages may still wait in the socket: decided after reading.
      silent_closes_.insert(value);
    }
  }
}

void BrokerServer::CountSilentCloses() {
  for (size_t i = 0; i < silent_closes_.size(); ++i) {
    // Not a peer we can answer: the Error the core sends to "" is dropped.
    core_.OnBadMessage(
        "", DecodeError::kTooLarge,
        "a connection closed before its first message arrived (ZeroMQ drops "
        "frames over " +
            std::to_string(options_.max_message_bytes + kZmqSlackBytes) +
            " bytes with their connection)");
  }
  silent_closes_.clear();
}

void BrokerServer::FillStatus(wire::BrokerStatus* st) const {
  st->set_version(TqVersion() + " (git " + GitRevision() + ")");
  st->set_pid(uint32_t(getpid()));
  st->set_rss_bytes(ResidentBytes());
  st->add_listen(endpoint_);
  for (const std::string& also : options_.also_listen) st->add_listen(also);
  if (!options_.db_path.empty()) {
    st->set_db_path(options_.db_path);
    st->set_db_bytes(FileSize(options_.db_path));
    st->set_wal_bytes(FileSize(options_.db_path + "-wal"));
  }
}

void BrokerServer::SendAll(std::vector<Outgoing> messages) {
  for (Outgoing& o : messages) {
    if (o.peer.empty()) continue;  // an answer to a connection already gone
    if (auto seq = in_flight_.Answered(o.peer, o.envelope.seq())) {
      o.envelope.set_seq(*seq);
    }
    SendNow(o.peer, std::move(o.envelope));
  }
}

void BrokerServer::SendNow(const std::string& peer, wire::Envelope envelope) {
  std::string bytes = Encode(envelope);
  try {
    zmq::message_t identity(peer.data(), peer.size());
    if (!router_.send(identity,
                      zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      ++dropped_full_;
      in_flight_.QueueFull(peer, clock_.Now());
      const std::string who = RoutingIdText(peer);
      if (warnings_.Allow(who, "queue full", clock_.Now())) {
        spdlog::warn(
            "{}: its queue is full ({} messages unread): dropped a message; "
            "its requests are refused for {} ms ({} dropped so far)",
            who, options_.max_queued_messages,
            options_.full_queue_backoff.count(), dropped_full_);
      }
      return;
    }
    router_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) {
      Disconnected(peer);  // gone before we could answer
    } else {
      spdlog::warn("send failed: {}", e.what());
    }
  }
}

bool BrokerServer::IsRequest(const wire::Envelope& envelope) {
  using B = wire::Envelope::BodyCase;
  switch (envelope.body_case()) {
    case B::kSubmit:
    case B::kFetchResults:
    case B::kBatchStatusRequest:
    case B::kCancelBatch:
    case B::kListQueues:
    case B::kListWorkers:
    case B::kRetryDead:
    case B::kPurgeQueue:
    case B::kReleaseWorker:
    case B::kDrainWorker:
    case B::kDisconnectWorker:
    case B::kReloadKeys:
    case B::kCancelTask:
    case B::kPauseQueue:
    case B::kStatusRequest:
    case B::kListBatches:
    case B::kTaskRequest:
    case B::kListActive:
      return true;
    default:
      // Worker messages, Hello, Error, and kinds that may not get exactly
      // one answer (Subscribe: its Events carry its seq; EventsAck is
      // unanswered).
      return false;
  }
}

void BrokerServer::RefuseBusy(const std::string& peer, uint64_t seq,
                              zmq::message_t& frame) {
  ++refused_busy_;
  const std::string address = PeerAddress(frame);
  if (warnings_.Allow(address.empty() ? peer : address, "too many in flight",
                      clock_.Now())) {
    spdlog::warn(
        "peer {} has {} requests unanswered or does not read its answers: "
        "refusing more (RATE_LIMITED, {} so far)",
        address.empty() ? "?" : address, in_flight_.outstanding(peer),
        refused_busy_);
  }
  SendNow(peer, ErrorReply(seq, wire::RATE_LIMITED,
                           "too many requests in flight: read the answers, "
                           "then retry",
                           true));
}

void BrokerServer::Disconnected(const std::string& peer) {
  in_flight_.Forget(peer);
  core_.OnDisconnect(peer);
}

}  // namespace tq
