// Writes the seed corpus of the fuzz targets: corpus/codec/ holds one
// encoded Envelope per body (and a few refusals), corpus/broker/ short
// conversations in the record format of broker_input.h. Run by
// `run.sh corpus DIR`; the output is committed, so the seeds only change
// when this program does.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/codec.h"
#include "common/digest.h"
#include "tests/fuzz/broker_input.h"

namespace {

namespace fs = std::filesystem;
using tq::fuzz::BrokerInput;
using tq::wire::Envelope;

void Write(const fs::path& dir, const std::string& name,
           const std::string& bytes) {
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

// --- envelopes, as peers and the broker send them ---

std::string Enc(Envelope e, uint64_t seq = 1) {
  e.set_seq(seq);
  return tq::Encode(e);
}

Envelope Hello(const std::string& id, const std::string& country,
               uint32_t slots,
               std::vector<std::pair<uint64_t, uint64_t>> held = {}) {
  Envelope e;
  auto* h = e.mutable_hello();
  h->set_worker_id(id);
  h->set_country(country);
  h->set_concurrency(slots);
  h->set_hostname("box-" + id);
  h->set_pid(4242);
  h->set_version("0.1.0");
  for (auto [task, token] : held) {
    auto* l = h->add_held();
    l->set_task_id(task);
    l->set_token(token);
  }
  return e;
}

Envelope HelloAuto(const std::string& id) {
  Envelope e = Hello(id, "", 2);
  e.mutable_hello()->set_country_auto(true);
  e.mutable_hello()->set_public_ip("81.2.69.160");
  return e;
}

Envelope Credit(uint32_t n, bool pause = false) {
  Envelope e;
  e.mutable_credit()->set_grant(n);
  e.mutable_credit()->set_pause(pause);
  return e;
}

Envelope Heartbeat() {
  Envelope e;
  e.mutable_heartbeat();
  return e;
}

Envelope Goodbye() {
  Envelope e;
  e.mutable_goodbye();
  return e;
}

Envelope Submit(const std::string& batch, int n, const std::string& queue,
                uint32_t max_attempts = 0) {
  Envelope e;
  auto* s = e.mutable_submit();
  s->set_batch_id(batch);
  s->set_max_attempts(max_attempts);
  s->set_priority(1);
  (*s->mutable_options())["referer"] = "http://example.org/";
  for (int i = 0; i < n; ++i) {
    auto* item = s->add_items();
    item->set_index(uint32_t(i));
    item->set_url("http://example.com/page/" + std::to_string(i));
    item->set_queue(queue);
  }
  return e;
}

// `lease` below 256 is replaced by the harness with an assigned lease.
Envelope Result(uint64_t lease, bool ok, const std::string& file = "") {
  Envelope e;
  auto* r = e.mutable_result();
  r->set_task_id(lease);
  r->set_token(lease);
  r->set_ok(ok);
  r->set_output(ok ? "{\"verdict\":\"clean\"}" : "");
  r->set_error(ok ? "" : "exited with status 1");
  r->set_exit_code(ok ? 0 : 1);
  r->set_stderr_tail(ok ? "" : "Traceback ...");
  r->set_duration_ms(1500);
  r->set_credit(1);
  if (!file.empty()) {
    auto* f = r->add_files();
    f->set_name("report/" + file);
    f->set_content("<html>" + file + "</html>");
    f->set_sha256(tq::DigestSha256(f->content()));
    f->set_size(f->content().size());
  }
  return e;
}

Envelope Release(uint64_t lease) {
  Envelope e;
  auto* l = e.mutable_release()->add_leases();
  l->set_task_id(lease);
  l->set_token(lease);
  return e;
}

Envelope Fetch(const std::string& batch, uint32_t wait_ms,
               bool with_files = false) {
  Envelope e;
  auto* f = e.mutable_fetch_results();
  f->set_batch_id(batch);
  f->set_limit(10);
  f->set_wait_ms(wait_ms);
  f->set_with_files(with_files);
  return e;
}

Envelope Status(const std::string& batch) {
  Envelope e;
  e.mutable_batch_status_request()->set_batch_id(batch);
  return e;
}

Envelope Cancel(const std::string& batch) {
  Envelope e;
  e.mutable_cancel_batch()->set_batch_id(batch);
  return e;
}

Envelope ListQueues() {
  Envelope e;
  e.mutable_list_queues();
  return e;
}

Envelope ListWorkers() {
  Envelope e;
  e.mutable_list_workers();
  return e;
}

Envelope RetryDead(const std::string& batch, const std::string& queue) {
  Envelope e;
  e.mutable_retry_dead()->set_batch_id(batch);
  e.mutable_retry_dead()->set_queue(queue);
  return e;
}

Envelope ReloadKeys() {
  Envelope e;
  e.mutable_reload_keys();
  return e;
}

Envelope Purge(const std::string& queue) {
  Envelope e;
  e.mutable_purge_queue()->set_queue(queue);
  return e;
}

Envelope Error() {
  return tq::ErrorReply(3, tq::wire::BAD_MESSAGE, "could not parse");
}

// Bodies only the broker sends (refused from a peer, accepted by one).
Envelope Welcome() {
  Envelope e;
  auto* w = e.mutable_welcome();
  w->add_queues("IT");
  w->add_queues("generic");
  w->set_heartbeat_interval_ms(1000);
  w->set_heartbeat_liveness(3);
  w->set_country("IT");
  w->set_country_source("flag");
  return e;
}

Envelope Assign() {
  Envelope e;
  auto* t = e.mutable_assign()->add_tasks();
  t->set_task_id(7);
  t->set_token(0x1234567890abcdefULL);
  t->set_url("http://example.com/");
  t->set_queue("generic");
  t->set_batch_id("b1");
  t->set_attempt(1);
  t->set_time_limit_ms(10000);
  (*t->mutable_options())["ua"] = "tq";
  return e;
}

Envelope Results() {
  Envelope e;
  auto* r = e.mutable_results();
  r->set_batch_id("b1");
  r->set_cursor(9);
  auto* t = r->add_tasks();
  t->set_task_id(7);
  t->set_batch_id("b1");
  t->set_url("http://example.com/");
  t->set_state(tq::wire::TASK_STATE_DONE);
  t->set_ok(true);
  t->set_output("out");
  auto* f = t->add_files();
  f->set_name("a.txt");
  f->set_sha256(tq::DigestSha256("a"));
  f->set_size(1);
  r->mutable_counts()->set_total(1);
  r->mutable_counts()->set_done(1);
  return e;
}

Envelope QueueList() {
  Envelope e;
  auto* q = e.mutable_queue_list()->add_queues();
  q->set_name("generic");
  q->mutable_counts()->set_queued(3);
  q->set_workers(2);
  e.mutable_queue_list()->mutable_stats()->set_messages_in(10);
  return e;
}

Envelope WorkerList() {
  Envelope e;
  auto* w = e.mutable_worker_list()->add_workers();
  w->set_worker_id("w1");
  w->set_country("DE");
  w->add_queues("DE");
  w->set_concurrency(4);
  w->set_peer_address("127.0.0.1");
  return e;
}

void WriteCodec(const fs::path& dir) {
  const std::vector<std::pair<std::string, Envelope>> seeds = {
      {"hello", Hello("w1", "IT", 4, {{1, 99}})},
      {"hello_auto", HelloAuto("w2")},
      {"credit", Credit(8)},
      {"credit_pause", Credit(0, true)},
      {"heartbeat", Heartbeat()},
      {"goodbye", Goodbye()},
      {"result_ok_file", Result(1, true, "index.html")},
      {"result_failed", Result(1, false)},
      {"release", Release(2)},
      {"submit", Submit("b1", 3, "generic")},
      {"fetch_results", Fetch("b1", 500, true)},
      {"batch_status_request", Status("b1")},
      {"cancel_batch", Cancel("b1")},
      {"list_queues", ListQueues()},
      {"list_workers", ListWorkers()},
      {"retry_dead", RetryDead("b1", "")},
      {"purge_queue", Purge("IT")},
      {"error", Error()},
      {"welcome", Welcome()},
      {"assign", Assign()},
      {"results", Results()},
      {"queue_list", QueueList()},
      {"worker_list", WorkerList()},
  };
  for (const auto& [name, env] : seeds) Write(dir, name, Enc(env, 17));
  // Refusals: a newer version, no body, an unknown body field (50).
  Envelope v2 = Heartbeat();
  v2.set_seq(5);
  v2.set_version(2);
  Write(dir, "bad_version", v2.SerializeAsString());
  Envelope none;
  none.set_seq(6);
  Write(dir, "no_body", tq::Encode(none));
  Write(dir, "unknown_body", tq::Encode(none) + std::string("\x92\x03\x00", 3));
}

// --- conversations for the broker ---

void WriteBroker(const fs::path& dir) {
  const int w = 0, c = 1, w2 = 2;  // two workers and a client
  std::vector<std::pair<std::string, std::function<void(BrokerInput&)>>> runs;

  runs.emplace_back("work_done", [&](BrokerInput& in) {
    in.Message(w, Enc(Hello("w1", "", 2)));
    in.Message(w, Enc(Credit(2)));
    in.Message(c, Enc(Submit("b1", 3, "generic"), 7));
    in.Turn();
    in.Message(w, Enc(Result(0, true)));
    in.Message(w, Enc(Result(1, true, "index.html")));
    in.Turn();
    in.Message(c, Enc(Fetch("b1", 0, true), 8));
    in.Message(c, Enc(Status("b1"), 9));
    in.Turn();
  });
  runs.emplace_back("retry_then_dead", [&](BrokerInput& in) {
    in.Message(c, Enc(Submit("b2", 1, "generic", 2), 7));
    in.Message(w, Enc(Hello("w1", "", 1)));
    in.Message(w, Enc(Credit(1)));
    in.Turn();
    in.Message(w, Enc(Result(0, false)));
    in.Turn();
    in.Advance(20);  // past the back-off
    in.Turn();
    in.Message(w, Enc(Result(1, false)));
    in.Turn();
    in.Message(c, Enc(RetryDead("b2", ""), 8));
    in.Turn();
    in.Message(c, Enc(RetryDead("", "generic"), 9));
    in.Turn();
  });
  runs.emplace_back("lease_expires", [&](BrokerInput& in) {
    in.Message(c, Enc(Submit("b3", 2, "generic"), 7));
    in.Message(w, Enc(Hello("w1", "", 2)));
    in.Message(w, Enc(Credit(2)));
    in.Turn();
    for (int i = 0; i < 4; ++i) {
      in.Message(w, Enc(Heartbeat()));
      in.Advance(60);  // 14.4 s: past time limit and grace
      in.Turn();
    }
    in.Message(w2, Enc(Hello("w2", "", 2)));
    in.Message(w2, Enc(Credit(2)));
    in.Turn();
    in.Message(w, Enc(Result(0, true)));  // stale by now
    in.Turn();
  });
  runs.emplace_back("worker_silent", [&](BrokerInput& in) {
    in.Message(w, Enc(Hello("w1", "", 1)));
    in.Message(w, Enc(Credit(1)));
    in.Message(c, Enc(Submit("b4", 1, "generic"), 7));
    in.Turn();
    in.Advance(70);  // 19.6 s: liveness lost
    in.Turn();
    in.Message(w, Enc(Credit(1)));  // not registered any more
    in.Turn();
  });
  runs.emplace_back("reconnect_reclaims", [&](BrokerInput& in) {
    in.Message(w, Enc(Hello("w1", "", 2)));
    in.Message(w, Enc(Credit(2)));
    in.Message(c, Enc(Submit("b5", 2, "generic"), 7));
    in.Turn();
    in.Disconnect(w);
    in.Message(w2, Enc(Hello("w1", "", 2, {{0, 0}, {1, 1}})));
    in.Message(w2, Enc(Credit(1)));
    in.Turn();
    in.Message(w2, Enc(Result(0, true)));
    in.Message(w2, Enc(Release(1)));
    in.Turn();
  });
  runs.emplace_back("goodbye_pause", [&](BrokerInput& in) {
    in.Message(w, Enc(Hello("w1", "", 3)));
    in.Message(w, Enc(Credit(3)));
    in.Message(c, Enc(Submit("b6", 4, "generic"), 7));
    in.Turn();
    in.Message(w, Enc(Credit(0, true)));
    in.Message(w, Enc(Release(0)));
    in.Message(w, Enc(Goodbye()));
    in.Turn();
    in.Message(c, Enc(ListWorkers(), 8));
    in.Message(c, Enc(ListQueues(), 9));
    in.Turn();
  });
  runs.emplace_back("countries", [&](BrokerInput& in) {
    in.Message(w, Enc(Hello("w-it", "IT", 2)));
    in.Message(w2, Enc(HelloAuto("w-auto")));
    in.Message(w, Enc(Credit(2)));
    in.Message(w2, Enc(Credit(2)));
    in.Message(c, Enc(Submit("b7", 2, "IT"), 7));
    in.Message(c, Enc(Submit("b8", 2, "DE"), 8));
    in.Turn();
    in.Message(c, Enc(Purge("DE"), 9));
    in.Message(c, Enc(Cancel("b7"), 10));
    in.Turn();
  });
  runs.emplace_back("long_poll", [&](BrokerInput& in) {
    in.Message(c, Enc(Submit("b9", 1, "generic"), 7));
    in.Turn();
    in.Message(c, Enc(Fetch("b9", 5000), 8));
    in.Turn(/*commit=*/false);
    in.Message(w, Enc(Hello("w1", "", 1)));
    in.Message(w, Enc(Credit(1)));
    in.Turn();
    in.Message(w, Enc(Result(0, true, "a.txt")));
    in.Turn();
    in.Message(c, Enc(Fetch("b9", 30000), 9));
    in.Advance(200);  // 160 s: past the wait, and retention sweeps
    in.Turn();
    in.Advance(255);
    in.Turn();
  });
  runs.emplace_back("hostile", [&](BrokerInput& in) {
    in.Message(w, std::string("\xff\xff\xff\x01junk", 8));
    in.Message(w, Enc(Welcome()));
    in.Message(w, Enc(Assign()));
    Envelope v2 = Heartbeat();
    v2.set_version(2);
    in.Message(w, v2.SerializeAsString());
    in.Message(w, Enc(Envelope()));
    in.Message(w, Enc(Result(0x7fffffff, true)));  // before Hello
    in.Message(c, Enc(Error()));
    in.Message(w, "");
    in.Turn();
  });
  runs.emplace_back("shutdown", [&](BrokerInput& in) {
    in.Message(w, Enc(Hello("w1", "", 1)));
    in.Message(w, Enc(Credit(1)));
    in.Message(c, Enc(Submit("b10", 2, "generic"), 7));
    in.Turn();
    in.Shutdown();
    in.Message(c, Enc(Submit("b11", 1, "generic"), 8));
    in.Message(w, Enc(Result(0, true)));
    in.Turn();
  });
  using tq::fuzz::IdentityByte;
  constexpr uint8_t kWorker = 1, kSubmit = 2, kAdmin = 4;
  runs.emplace_back("keyed_roles", [&](BrokerInput& in) {
    // A submit key as worker, purging, listing; a worker key submitting.
    in.Identity(w, IdentityByte(0, kWorker, 0));
    in.Identity(c, IdentityByte(1, kSubmit, 0));
    in.Identity(w2, IdentityByte(1, kSubmit, 0));
    in.Message(c, Enc(Submit("kb1", 2, "generic"), 7));
    in.Message(w2, Enc(Hello("w-submit", "", 1)));
    in.Message(w, Enc(Hello("w1", "", 2)));
    in.Message(w, Enc(Credit(2)));
    in.Message(w, Enc(Submit("kb2", 1, "generic"), 8));
    in.Turn();
    in.Message(c, Enc(Purge("generic"), 9));
    in.Message(c, Enc(ListWorkers(), 10));
    in.Message(c, Enc(ListQueues(), 11));
    in.Message(c, Enc(Fetch("kb1", 0, true), 12));
    in.Message(w, Enc(Result(0, true)));
    in.Turn();
    in.Message(c, Enc(ReloadKeys(), 13));
    in.Turn();
  });
  runs.emplace_back("keyed_owners", [&](BrokerInput& in) {
    // Batches belong to their first submitter; admin sees them all.
    in.Identity(c, IdentityByte(1, kSubmit, 0));
    in.Identity(w2, IdentityByte(2, kSubmit, 0));
    in.Identity(3, IdentityByte(3, kAdmin | kSubmit, 0));
    in.Message(c, Enc(Submit("mine", 2, "generic"), 7));
    in.Turn();
    in.Message(w2, Enc(Submit("mine", 1, "generic"), 8));
    in.Message(w2, Enc(Status("mine"), 9));
    in.Message(w2, Enc(Cancel("mine"), 10));
    in.Message(3, Enc(Status("mine"), 11));
    in.Message(3, Enc(RetryDead("mine", ""), 12));
    in.Message(3, Enc(ReloadKeys(), 13));
    in.Turn();
  });
  runs.emplace_back("keyed_countries_revoked", [&](BrokerInput& in) {
    // An IT key asks for DE, then IT; another key takes its worker id;
    // then its key is revoked while it holds tasks.
    in.Identity(c, IdentityByte(1, kSubmit | kAdmin, 0));
    in.Identity(w, IdentityByte(0, kWorker, 1));
    in.Identity(w2, IdentityByte(2, kWorker, 3));
    in.Message(c, Enc(Submit("kb3", 2, "IT"), 7));
    in.Message(c, Enc(Submit("kb4", 2, "DE"), 8));
    in.Message(w, Enc(Hello("w-it", "DE", 2)));
    in.Message(w, Enc(Hello("w-it", "IT", 2)));
    in.Message(w, Enc(Credit(2)));
    in.Turn();
    in.Message(w2, Enc(Hello("w-it", "DE", 2)));
    in.Message(w2, Enc(Hello("w-de", "DE", 2)));
    in.Message(w2, Enc(Credit(2)));
    in.Turn();
    in.Revoke(w);
    in.Message(w, Enc(Result(0, true)));
    in.Message(w, Enc(Hello("w-it", "IT", 2)));
    in.Turn();
    in.Identity(w, tq::fuzz::kNoKey);
    in.Message(w, Enc(Hello("w-open", "", 1)));
    in.Turn();
  });
  for (auto& [name, fill] : runs) {
    BrokerInput in;
    fill(in);
    Write(dir, name, in.bytes());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  for (const char* target : {"codec", "broker"}) {
    fs::create_directories(root / target);
  }
  WriteCodec(root / "codec");
  WriteBroker(root / "broker");
  return 0;
}
