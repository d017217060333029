// libFuzzer target: the broker core under a hostile stream of events. The
// input is a sequence of records (tests/fuzz/broker_input.h) that a loop
// like BrokerServer's turns into OnMessage / OnBadMessage / OnDisconnect /
// OnTick / Flush / Commit on a real SqliteTaskStore with a fake clock. After
// every turn it checks what the public interface lets it see.
//
// Lease tokens are random, so a fuzzer could never guess one: like an
// honest worker, the harness remembers the (task, token) pairs the broker
// assigned, and a Result, Release or Hello lease carrying a token below 256
// gets one of them in its place (token % count). Other tokens stay, and
// test the stale-lease paths.
//
// Peers may speak with CURVE identities chosen by the input (a key name,
// roles, countries), and keys may be revoked, so the permission checks,
// batch ownership, key-bound worker ids and revocation are fuzzed too.
#include <google/protobuf/stubs/logging.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/broker.h"
#include "broker/sqlite_task_store.h"
#include "common/clock.h"
#include "common/codec.h"
#include "tests/fuzz/broker_input.h"

namespace {

namespace fs = std::filesystem;
using tq::wire::Envelope;

#define TQ_FUZZ_CHECK(cond)                                                 \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                  \
      std::abort();                                                         \
    }                                                                       \
  } while (0)

// One directory per fuzzing process, on tmpfs when there is one: the
// database is recreated for every input.
std::string g_dir;

tq::BrokerOptions FuzzOptions() {
  tq::BrokerOptions o;
  o.heartbeat_interval = tq::Millis(1000);
  o.heartbeat_liveness = 3;
  o.default_max_attempts = 3;
  o.default_time_limit_ms = 10'000;
  o.lease_grace = tq::Millis(2000);
  o.retry_backoff = tq::Millis(500);
  o.max_retry_backoff = tq::Millis(5000);
  o.max_fetch_wait = tq::Millis(30'000);
  // Retention on, with small steps, so that advancing the clock sweeps.
  o.keep_results = tq::Millis(60'000);
  o.sweep_batch = 4;
  return o;
}

std::string PeerName(int k) { return "p" + std::to_string(k); }

// The identity byte of broker_input.h.
tq::PeerIdentity IdentityOf(uint8_t v) {
  if (v == tq::fuzz::kNoKey) return tq::PeerIdentity::Unkeyed();
  tq::PeerIdentity who;
  who.keyed = true;
  who.key_name = "k" + std::to_string(v & 3);
  // Z85 is 40 characters; the core only compares them.
  who.public_key = std::string(39, 'K') + char('0' + (v & 3));
  const uint8_t roles = (v >> 2) & 7;
  for (tq::Role r : {tq::Role::kWorker, tq::Role::kSubmit, tq::Role::kAdmin}) {
    if (roles & uint8_t(r)) who.roles.Add(r);
  }
  switch ((v >> 5) & 3) {
    case 1:
      who.countries = {"IT"};
      break;
    case 2:
      who.countries = {"IT", "DE"};
      break;
    case 3:
      who.countries = {"DE"};
      break;
    default:
      break;
  }
  return who;
}

class Run {
 public:
  Run(tq::TaskStore& store) : broker_(store, clock_, FuzzOptions()) {
    TQ_FUZZ_CHECK(broker_.Start().ok());
    broker_.SetKeyReloader([] {
      tq::KeyReload r;
      r.keys = 4;
      return tq::Result<tq::KeyReload>(std::move(r));
    });
    for (auto& who : identities_) who = tq::PeerIdentity::Unkeyed();
  }

  void Feed(const uint8_t* data, size_t size) {
    size_t i = 0;
    while (i < size) {
      const uint8_t op = data[i] & 7;
      const int peer = (data[i] >> 3) & 3;
      const bool keyed_op = (data[i] & tq::fuzz::kKeyedBit) != 0;
      ++i;
      if (keyed_op && op == tq::fuzz::kOpTurn) {
        identities_[peer] = IdentityOf(i < size ? data[i++] : 0);
      } else if (keyed_op && op == tq::fuzz::kOpDisconnect) {
        const tq::PeerIdentity& who = identities_[peer];
        if (who.keyed) {
          broker_.RevokeKeys({{who.key_name, who.public_key}});
          // Its connections stay open but have no role any more.
          for (auto& other : identities_) {
            if (other.keyed && other.public_key == who.public_key) {
              other.roles = tq::RoleSet();
            }
          }
        }
      } else if (op < tq::fuzz::kOpDisconnect) {
        size_t len = 0;
        if (i < size) len = data[i++];
        if (i < size) len |= size_t(data[i++]) << 8;
        len = std::min(len, size - i);
        Message(peer,
                std::string_view(reinterpret_cast<const char*>(data + i), len));
        i += len;
      } else if (op == tq::fuzz::kOpDisconnect) {
        broker_.OnDisconnect(PeerName(peer));
      } else if (op == tq::fuzz::kOpAdvance) {
        const uint32_t v = i < size ? data[i++] : 0;
        clock_.Advance(tq::Millis(v * v * 4));
      } else if (op == tq::fuzz::kOpTurnOrShutdown && peer == 3) {
        broker_.BeginShutdown();
      } else {
        Turn(/*commit=*/peer != 3);
      }
    }
    Turn(/*commit=*/true);
  }

 private:
  void Message(int peer, std::string_view frame) {
    tq::Decoded d = tq::DecodeFromPeer(frame);
    const std::string name = PeerName(peer);
    // As the server: only some bodies get the peer's address.
    const std::string address = peer == 2 ? "2001:db8::7" : "127.0.0.1";
    if (d.error != tq::DecodeError::kNone) {
      broker_.OnBadMessage(
          name, d.error, std::string(tq::BodyCaseName(d.envelope.body_case())),
          address);
      return;
    }
    PatchLeases(d.envelope);
    if (d.envelope.has_submit()) submitted_ += d.envelope.submit().items_size();
    const bool wants_address = d.envelope.has_hello() ||
                               d.envelope.has_error() ||
                               d.envelope.body_case() == Envelope::BODY_NOT_SET;
    broker_.OnMessage(name, d.envelope, wants_address ? address : "",
                      identities_[peer]);
  }

  template <typename Lease>
  void Patch(Lease* l) {
    if (assigned_.empty() || l->token() >= 256) return;
    const auto& [task, token] = assigned_[l->token() % assigned_.size()];
    l->set_task_id(task);
    l->set_token(token);
  }

  void PatchLeases(Envelope& e) {
    if (e.has_result()) Patch(e.mutable_result());
    if (e.has_release()) {
      for (auto& l : *e.mutable_release()->mutable_leases()) Patch(&l);
    }
    if (e.has_hello()) {
      for (auto& l : *e.mutable_hello()->mutable_held()) Patch(&l);
    }
  }

  // Receive is done: OnTick, Flush, Commit, as BrokerServer::Turn.
  void Turn(bool commit) {
    broker_.OnTick();
    for (tq::Outgoing& o : broker_.Flush()) {
      CheckOutgoing(o, /*from_commit=*/false);
    }
    if (commit && broker_.CommitPending()) {
      for (tq::Outgoing& o : broker_.Commit()) {
        CheckOutgoing(o, /*from_commit=*/true);
      }
      // A healthy store: everything of the turn is committed.
      TQ_FUZZ_CHECK(!broker_.CommitPending());
    }
    // No sequence of messages may make a healthy store refuse writes.
    TQ_FUZZ_CHECK(broker_.store_ok());
    TQ_FUZZ_CHECK(broker_.stats().store_ok);
    TQ_FUZZ_CHECK(broker_.worker_count() <= size_t(tq::fuzz::kPeers));
    TQ_FUZZ_CHECK(broker_.pending_tasks() <= submitted_);
  }

  void CheckOutgoing(tq::Outgoing& o, bool from_commit) {
    // Only peers that spoke are ever answered.
    TQ_FUZZ_CHECK(o.peer.size() == 2 && o.peer[0] == 'p' && o.peer[1] >= '0' &&
                  o.peer[1] < '0' + tq::fuzz::kPeers);
    const std::string bytes = tq::Encode(o.envelope);
    const tq::Decoded d = tq::DecodeFromBroker(bytes);
    // The broker speaks only its own half of the grammar, within the cap.
    TQ_FUZZ_CHECK(d.error == tq::DecodeError::kNone);
    if (!from_commit) {
      // Acknowledgements wait for the commit that holds what they confirm
      // (a refused result confirms nothing, and may leave at once).
      TQ_FUZZ_CHECK(!o.envelope.has_submit_ack());
      TQ_FUZZ_CHECK(!o.envelope.has_result_ack() ||
                    !o.envelope.result_ack().accepted());
      TQ_FUZZ_CHECK(!o.envelope.has_results());
      TQ_FUZZ_CHECK(!o.envelope.has_admin_ack());
    }
    if (o.envelope.has_assign()) {
      for (const auto& t : o.envelope.assign().tasks()) {
        TQ_FUZZ_CHECK(t.token() != 0);
        if (assigned_.size() >= 256) assigned_.erase(assigned_.begin());
        assigned_.emplace_back(t.task_id(), t.token());
      }
    }
  }

  tq::FakeClock clock_;
  tq::Broker broker_;
  tq::PeerIdentity identities_[tq::fuzz::kPeers];
  size_t submitted_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> assigned_;
};

void RemoveDir() {
  std::error_code ec;
  if (!g_dir.empty()) fs::remove_all(g_dir, ec);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  // Log lines are formatted (a bad format string is a crash worth finding)
  // but go nowhere.
  auto logger = std::make_shared<spdlog::logger>(
      "fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(logger);

  std::string base = fs::is_directory("/dev/shm") ? "/dev/shm" : "";
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = tmp ? tmp : "/tmp";
  }
  std::string tmpl = base + "/tq-fuzz-broker-XXXXXX";
  TQ_FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr);
  g_dir = tmpl;
  std::atexit(RemoveDir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // One store for the process (opening one costs more than most inputs);
  // every input starts from an empty database all the same, emptied through
  // a connection of our own, so task ids and results do not depend on what
  // ran before.
  static std::unique_ptr<tq::SqliteTaskStore> store = [] {
    tq::SqliteOptions options;
    options.synchronous_full = false;
    options.reserve_bytes = 0;
    auto s = tq::SqliteTaskStore::Open(g_dir + "/tq.db", options);
    TQ_FUZZ_CHECK(s.ok());
    return std::move(*s);
  }();
  static sqlite3* reset = [] {
    sqlite3* db = nullptr;
    TQ_FUZZ_CHECK(sqlite3_open((g_dir + "/tq.db").c_str(), &db) == SQLITE_OK);
    return db;
  }();
  TQ_FUZZ_CHECK(!store->HasUncommitted());
  TQ_FUZZ_CHECK(sqlite3_exec(reset,
                             "DELETE FROM task_files; DELETE FROM tasks; "
                             "DELETE FROM meta;",
                             nullptr, nullptr, nullptr) == SQLITE_OK);
  std::error_code ec;
  fs::remove_all(store->files_dir(), ec);
  {
    Run run(*store);
    run.Feed(data, size);
  }
  return 0;
}
