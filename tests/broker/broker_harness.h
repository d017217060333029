// The broker core driven directly: fake clock, no sockets. The store is the
// real SQLite one on a temp file, wrapped so tests can make commits fail.
// Shared by the broker core's test files.
#pragma once

#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "broker/broker.h"
#include "broker/sqlite_task_store.h"
#include "common/digest.h"
#include "tests/support/faulty_task_store.h"
#include "tests/support/temp_dir.h"

namespace tq::testing {

inline BrokerOptions TestOptions() {
  BrokerOptions o;
  o.heartbeat_interval = Millis(1000);
  o.heartbeat_liveness = 3;
  o.default_max_attempts = 3;
  o.default_time_limit_ms = 10'000;
  o.lease_grace = Millis(2000);
  o.retry_backoff = Millis(500);
  return o;
}

class Harness {
 public:
  explicit Harness(BrokerOptions options = TestOptions()) : options_(options) {
    Open();
  }

  // A broker on the same database, as after a crash: the old core is dropped
  // without any goodbye.
  void Restart() {
    broker_.reset();
    faulty_.reset();
    sqlite_.reset();
    Open();
  }

  Broker& broker() { return *broker_; }
  FakeClock& clock() { return clock_; }
  FaultyTaskStore& store() { return *faulty_; }

  // One loop turn: timers, dispatch, commit. Returns everything sent.
  std::vector<Outgoing> Turn() {
    broker_->OnTick();
    std::vector<Outgoing> out = broker_->Flush();
    for (Outgoing& o : broker_->Commit()) out.push_back(std::move(o));
    for (const Outgoing& o : out) log_.push_back(o);
    return out;
  }

  void Send(const std::string& peer, wire::Envelope env, uint64_t seq = 1) {
    env.set_version(kProtocolVersion);
    env.set_seq(seq);
    auto a = addresses_.find(peer);
    auto who = identities_.find(peer);
    broker_->OnMessage(
        peer, env, a == addresses_.end() ? "127.0.0.1" : a->second,
        who == identities_.end() ? PeerIdentity::Unkeyed() : who->second);
  }
  // The CURVE key `peer` speaks with (none unless set).
  void SetIdentity(const std::string& peer, PeerIdentity who) {
    identities_[peer] = std::move(who);
  }
  // The address `peer` connects from (127.0.0.1 unless set).
  void SetAddress(const std::string& peer, const std::string& address) {
    addresses_[peer] = address;
  }

  void Hello(const std::string& peer, const std::string& id,
             const std::string& country, uint32_t slots,
             std::vector<std::pair<uint64_t, uint64_t>> held = {}) {
    wire::Envelope e;
    auto* h = e.mutable_hello();
    h->set_worker_id(id);
    h->set_country(country);
    h->set_concurrency(slots);
    for (auto [task, token] : held) {
      auto* l = h->add_held();
      l->set_task_id(task);
      l->set_token(token);
    }
    Send(peer, e);
  }

  void Credit(const std::string& peer, uint32_t n) {
    wire::Envelope e;
    e.mutable_credit()->set_grant(n);
    Send(peer, e);
  }

  // A worker says Hello, grants credit for all its slots, and the broker
  // runs a turn: the tasks it was assigned.
  std::vector<wire::Task> Join(const std::string& peer, const std::string& id,
                               const std::string& country, uint32_t slots) {
    Hello(peer, id, country, slots);
    Credit(peer, slots);
    return Assigned(Turn(), peer);
  }

  void Heartbeat(const std::string& peer) {
    wire::Envelope e;
    e.mutable_heartbeat();
    Send(peer, e);
  }

  void Submit(const std::string& batch, const std::vector<std::string>& urls,
              const std::string& queue = "generic", int32_t priority = 0,
              uint32_t max_attempts = 0, uint32_t first_index = 0) {
    wire::Envelope e;
    auto* s = e.mutable_submit();
    s->set_batch_id(batch);
    s->set_priority(priority);
    s->set_max_attempts(max_attempts);
    for (size_t i = 0; i < urls.size(); ++i) {
      auto* item = s->add_items();
      item->set_index(first_index + uint32_t(i));
      item->set_url(urls[i]);
      item->set_queue(queue);
    }
    Send("client", e, 77);
  }

  void Result(const std::string& peer, const wire::Task& task, bool ok,
              uint32_t credit = 1, const std::string& output = "out") {
    wire::Envelope e;
    auto* r = e.mutable_result();
    r->set_task_id(task.task_id());
    r->set_token(task.token());
    r->set_ok(ok);
    r->set_output(output);
    r->set_error(ok ? "" : "exited with status 1");
    r->set_credit(credit);
    Send(peer, e, 5);
  }

  // Tasks assigned to `peer` in `out`.
  static std::vector<wire::Task> Assigned(const std::vector<Outgoing>& out,
                                          const std::string& peer) {
    std::vector<wire::Task> tasks;
    for (const Outgoing& o : out) {
      if (o.peer == peer && o.envelope.has_assign()) {
        for (const auto& t : o.envelope.assign().tasks()) tasks.push_back(t);
      }
    }
    return tasks;
  }

  static const wire::Envelope* Find(const std::vector<Outgoing>& out,
                                    const std::string& peer,
                                    wire::Envelope::BodyCase body) {
    for (const Outgoing& o : out) {
      if (o.peer == peer && o.envelope.body_case() == body) return &o.envelope;
    }
    return nullptr;
  }

  const std::string& files_dir() const { return sqlite_->files_dir(); }

  // Where the store keeps a file with this content.
  std::string StoredPath(const std::string& content) const {
    const std::string sha = DigestSha256(content);
    return files_dir() + "/" + sha.substr(0, 2) + "/" + sha;
  }

  // A successful Result for `task` carrying one file; `claimed_sha256` is
  // what the worker says its digest is (the broker computes its own).
  static wire::Envelope ResultWithFile(const wire::Task& task,
                                       const std::string& name,
                                       const std::string& content,
                                       const std::string& claimed_sha256 = "") {
    wire::Envelope e;
    auto* r = e.mutable_result();
    r->set_task_id(task.task_id());
    r->set_token(task.token());
    r->set_ok(true);
    auto* f = r->add_files();
    f->set_name(name);
    f->set_content(content);
    if (!claimed_sha256.empty()) f->set_sha256(claimed_sha256);
    return e;
  }

  std::vector<TaskResult> Finished(const std::string& batch) {
    auto rows = sqlite_->ReadFinished(batch, 0, 100000);
    REQUIRE(rows.ok());
    return rows.value();
  }

 private:
  void Open() {
    auto s = SqliteTaskStore::Open(dir_.File("tq.db"));
    REQUIRE(s.ok());
    sqlite_ = std::move(s.value());
    faulty_ = std::make_unique<FaultyTaskStore>(*sqlite_);
    broker_ = std::make_unique<Broker>(*faulty_, clock_, options_);
    REQUIRE(broker_->Start().ok());
  }

  BrokerOptions options_;
  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<SqliteTaskStore> sqlite_;
  std::unique_ptr<FaultyTaskStore> faulty_;
  std::unique_ptr<Broker> broker_;
  std::vector<Outgoing> log_;
  std::map<std::string, std::string> addresses_;
  std::map<std::string, PeerIdentity> identities_;
};

inline std::vector<std::string> Urls(int n, const std::string& prefix = "u") {
  std::vector<std::string> urls;
  for (int i = 0; i < n; ++i) {
    urls.push_back("http://example.com/" + prefix + std::to_string(i));
  }
  return urls;
}

}  // namespace tq::testing
