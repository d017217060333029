// CURVE end to end (docs/security.md): real tq-broker, tq-worker, tq-submit
// and tq-ctl on loopback with keys made by tq-keygen. Who may connect, what
// each role may do, revocation, the refusal to listen beyond loopback
// without keys, and a capture of the traffic.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/curve_keys.h"
#include "tests/e2e/e2e_client.h"
#include "tests/support/cluster.h"
#include "tests/support/tool_run.h"
#include "tests/support/wait.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using testing::Binary;
using testing::BrokerProcess;
using testing::Process;
using testing::ReadFile;
using testing::RunTool;
using testing::StartWorker;
using testing::TempDir;
using testing::ToolRun;
using testing::WaitUntil;
using testing::WorkerSpec;
using testing::WriteFile;

// ctest's SKIP_RETURN_CODE for the capture test (tests/CMakeLists.txt).
constexpr int kSkipped = 77;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A temp dir with the broker's key pair, client key pairs, and the
// authorized-keys directory holding the public files of `authorized`.
class Keys {
 public:
  explicit Keys(const TempDir& dir) : dir_(dir) {
    std::filesystem::create_directory(authorized_dir());
    Make("broker", "", "", false);
  }
  // tq-keygen NAME --role ROLES [--countries C]; authorized unless told.
  void Make(const std::string& name, const std::string& roles,
            const std::string& countries = "", bool authorize = true) {
    std::vector<std::string> argv = {Binary("tq-keygen"), name, "--dir",
                                     dir_.path()};
    for (const std::string& r : Split(roles)) {
      argv.insert(argv.end(), {"--role", r});
    }
    if (!countries.empty()) argv.insert(argv.end(), {"--countries", countries});
    ToolRun r = RunTool(dir_, argv);
    INFO(r.err);
    REQUIRE(r.code == 0);
    if (authorize) {
      std::filesystem::copy_file(dir_.File(name + ".key"),
                                 authorized_dir() + "/" + name + ".key");
    }
  }
  std::string authorized_dir() const { return dir_.File("authorized"); }
  std::vector<std::string> BrokerArgs() const {
    return {"--key", dir_.File("broker.key_secret"), "--authorized-keys",
            authorized_dir()};
  }
  // --broker-key and --key for a client with key `name`.
  std::vector<std::string> Flags(const std::string& name,
                                 const std::string& broker = "broker") const {
    return {"--broker-key", dir_.File(broker + ".key"), "--key",
            dir_.File(name + ".key_secret")};
  }
  ClientOptions Options(const std::string& endpoint,
                        const std::string& name) const {
    auto own = LoadSecretCurveCert(dir_.File(name + ".key_secret"));
    auto broker = ResolvePublicKey(dir_.File("broker.key"));
    REQUIRE(own.ok());
    REQUIRE(broker.ok());
    ClientOptions o;
    o.endpoint = endpoint;
    o.request_timeout = 3s;
    o.attempts = 5;
    o.curve.broker_public_key = *broker;
    o.curve.client_public_key = own->public_key;
    o.curve.client_secret_key = own->secret_key;
    return o;
  }
  std::unique_ptr<Client> Connect(const std::string& endpoint,
                                  const std::string& name) const {
    auto c = Client::Connect(Options(endpoint, name));
    REQUIRE(c.ok());
    return std::move(c.value());
  }

 private:
  static std::vector<std::string> Split(const std::string& csv) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start < csv.size()) {
      size_t comma = csv.find(',', start);
      if (comma == std::string::npos) comma = csv.size();
      out.push_back(csv.substr(start, comma - start));
      start = comma + 1;
    }
    return out;
  }
  const TempDir& dir_;
};

std::vector<std::string> Concat(std::vector<std::string> a,
                                const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<std::string> Ctl(const std::string& endpoint,
                             const std::vector<std::string>& keys,
                             const std::vector<std::string>& args) {
  return Concat(Concat({Binary("tq-ctl"), "--broker", endpoint}, keys), args);
}

// The worker `id`, as the admin client sees it, or nullopt.
std::optional<WorkerSummary> FindWorker(Client& admin, const std::string& id) {
  auto workers = admin.Workers();
  if (!workers.ok()) return std::nullopt;
  for (const WorkerSummary& w : *workers) {
    if (w.worker_id == id) return w;
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("KeyedBrokerAdmitsOnlyAuthorizedKeysThatKnowItsKey", "[e2e][curve]") {
  TempDir dir;
  Keys keys(dir);
  keys.Make("ops", "admin");
  keys.Make("eve", "admin", "", /*authorize=*/false);
  BrokerProcess broker(dir, keys.BrokerArgs());
  const std::string& ep = broker.endpoint();

  ToolRun ok = RunTool(dir, Ctl(ep, keys.Flags("ops"), {"queues"}));
  INFO(ok.err);
  CHECK(ok.code == 0);

  const std::vector<std::string> quick = {"--timeout", "0.3", "queues"};
  // The client says the handshake failed as soon as its monitor sees it,
  // then gives up at its deadline.
  const std::string no_answer = "tq-ctl: waiting for broker at " + ep +
                                ": handshake failed (CURVE keys?)\n"
                                "tq-ctl: no answer from " +
                                ep + " after 3 attempts of 300 ms\n";
  ToolRun no_key = RunTool(dir, Ctl(ep, {}, quick));
  CHECK(no_key.code == 4);
  CHECK(no_key.err == no_answer);
  ToolRun unknown = RunTool(dir, Ctl(ep, keys.Flags("eve"), quick));
  CHECK(unknown.code == 4);
  CHECK(unknown.err == no_answer);
  // The right client key, the wrong broker key: the handshake cannot open.
  ToolRun wrong_broker = RunTool(dir, Ctl(ep, keys.Flags("ops", "eve"), quick));
  CHECK(wrong_broker.code == 4);
  CHECK(wrong_broker.err == no_answer);
  for (const ToolRun* r : {&no_key, &unknown, &wrong_broker}) {
    CHECK(r->took < 10s);  // three 300 ms attempts, not a hang
  }
  CHECK(Contains(broker.Log(), "ZAP: refused CURVE client key"));
  CHECK(Contains(broker.Log(), "unknown key"));
}

TEST_CASE("SubmitKeyCannotPurgeReadAnotherBatchOrActAsWorker", "[e2e][curve]") {
  TempDir dir;
  Keys keys(dir);
  keys.Make("ops", "admin");
  keys.Make("alice", "submit");
  keys.Make("bob", "submit");
  BrokerProcess broker(dir, keys.BrokerArgs());
  const std::string& ep = broker.endpoint();

  const std::string urls = dir.File("urls.txt");
  WriteFile(urls, "http://127.0.0.1/a\nhttp://127.0.0.1/b\n");
  ToolRun submit = RunTool(dir, Concat({Binary("tq-submit"), "--broker", ep,
                                        "-q", "--batch-id", "alice-1", urls},
                                       keys.Flags("alice")));
  INFO(submit.err);
  REQUIRE(submit.code == 0);

  ToolRun purge =
      RunTool(dir, Ctl(ep, keys.Flags("alice"), {"purge", "generic", "--yes"}));
  CHECK(purge.code == 4);
  CHECK(Contains(purge.err, "PERMISSION_DENIED"));
  CHECK(Contains(purge.err, "lacks the admin role"));

  ToolRun own =
      RunTool(dir, Ctl(ep, keys.Flags("alice"), {"batch", "alice-1"}));
  CHECK(own.code == 0);
  ToolRun other =
      RunTool(dir, Ctl(ep, keys.Flags("bob"), {"batch", "alice-1"}));
  CHECK(other.code == 4);
  CHECK(Contains(other.err, "may use only the batches it submitted"));
  ToolRun other_results =
      RunTool(dir, Ctl(ep, keys.Flags("bob"), {"results", "alice-1"}));
  CHECK(other_results.code == 4);
  CHECK(!Contains(other_results.out, "127.0.0.1/a"));
  ToolRun other_cancel =
      RunTool(dir, Ctl(ep, keys.Flags("bob"), {"cancel", "alice-1"}));
  CHECK(other_cancel.code == 4);

  // As a worker: refused at Hello, never listed, never given a task.
  auto worker = StartWorker(
      dir, ep, {"alice-w", "none", 2, Concat({"--noop"}, keys.Flags("alice"))});
  CHECK(WaitUntil(
      [&] {
        return Contains(broker.Log(), "lacks the worker role needed for hello");
      },
      20s));
  auto ops = keys.Connect(ep, "ops");
  CHECK_FALSE(FindWorker(*ops, "alice-w").has_value());
  auto p = ops->Progress("alice-1");
  REQUIRE(p.ok());
  CHECK(p->queued == 2);
}

TEST_CASE("ItalianWorkerKeyNeverGetsAGermanTaskAndCannotSubmit",
          "[e2e][curve]") {
  TempDir dir;
  Keys keys(dir);
  keys.Make("ops", "admin,submit");
  keys.Make("it-box", "worker", "IT");
  BrokerProcess broker(dir, keys.BrokerArgs());
  const std::string& ep = broker.endpoint();

  auto ops = keys.Connect(ep, "ops");
  SubmitOptions so;
  so.queues = {"IT", "DE"};
  so.batch_id = "mixed";
  auto receipt = ops->Submit({"http://127.0.0.1/1", "http://127.0.0.1/2"}, so);
  REQUIRE(receipt.ok());
  REQUIRE(receipt->accepted == 4);

  // Asking for DE with the IT key is refused.
  auto de = StartWorker(
      dir, ep, {"it-as-de", "DE", 2, Concat({"--noop"}, keys.Flags("it-box"))});
  CHECK(WaitUntil(
      [&] {
        return Contains(broker.Log(), "may serve only IT and generic, not DE");
      },
      20s));
  de.reset();
  auto it = StartWorker(
      dir, ep, {"it-1", "IT", 4, Concat({"--noop"}, keys.Flags("it-box"))});
  BatchProgress p;
  REQUIRE(WaitUntil(
      [&] {
        auto now = ops->Progress("mixed");
        if (now.ok()) p = *now;
        return now.ok() && p.done == 2;
      },
      30s));
  auto queues = ops->Queues();
  REQUIRE(queues.ok());
  for (const QueueSummary& q : *queues) {
    if (q.name == "DE") CHECK(q.counts.queued == 2);
    if (q.name == "IT") CHECK(q.counts.done == 2);
  }
  auto w = FindWorker(*ops, "it-1");
  REQUIRE(w.has_value());
  CHECK(w->key_name == "it-box");
  CHECK(w->queues == std::vector<std::string>{"IT", "generic"});
  ToolRun ctl = RunTool(dir, Ctl(ep, keys.Flags("ops"), {"workers"}));
  CHECK(Contains(ctl.out, "it-box"));

  const std::string urls = dir.File("urls.txt");
  WriteFile(urls, "http://127.0.0.1/x\n");
  ToolRun submit = RunTool(dir, Concat({Binary("tq-submit"), "--broker", ep,
                                        "-q", "--country", "DE", urls},
                                       keys.Flags("it-box")));
  CHECK(submit.code == 4);
  CHECK(Contains(submit.err, "lacks the submit role"));
}

// A worker refused at Hello for good exits at once, status 4, naming its key
// and the reason; it does not say Hello again and again.
TEST_CASE("WorkerRefusedAtHelloExitsFourNamingItsKeyAndWhy", "[e2e][curve]") {
  TempDir dir;
  Keys keys(dir);
  keys.Make("alice", "submit");
  keys.Make("it-box", "worker", "IT");
  BrokerProcess broker(dir, keys.BrokerArgs());
  const std::string& ep = broker.endpoint();

  struct Case {
    std::string id, country, key, why;
  };
  for (const Case& c :
       {Case{"alice-w", "none", "alice", "lacks the worker role"},
        Case{"it-as-de", "DE", "it-box", "may serve only IT and generic"}}) {
    INFO(c.id);
    auto worker = StartWorker(
        dir, ep, {c.id, c.country, 1, Concat({"--noop"}, keys.Flags(c.key))});
    const auto code = worker->Wait(20s);
    REQUIRE(code.has_value());
    CHECK(*code == 4);
    const std::string log = ReadFile(dir.File("worker-" + c.id + ".log"));
    CHECK(Contains(log, "refused this worker (id '" + c.id + "')"));
    CHECK(Contains(log, "key '" + c.key + "'"));
    CHECK(Contains(log, c.why));
    CHECK(Contains(log, "not retrying, exit 4"));
  }
  // Each said Hello once.
  const std::string log = broker.Log();
  size_t hellos = 0;
  for (size_t at = log.find("lacks the worker role needed for hello");
       at != std::string::npos;
       at = log.find("lacks the worker role needed for hello", at + 1)) {
    ++hellos;
  }
  CHECK(hellos == 1);

  // Not refused but unreachable: a worker keeps trying, and joins once the
  // broker is there (transient errors still retry).
  TempDir other;
  Keys other_keys(other);
  other_keys.Make("box", "worker");
  int port = 0;
  {
    BrokerProcess first(other, other_keys.BrokerArgs());  // finds a free port
    port = first.port();
    first.process().Kill();
  }
  auto patient = StartWorker(
      other, "tcp://127.0.0.1:" + std::to_string(port),
      {"patient", "none", 1, Concat({"--noop"}, other_keys.Flags("box"))});
  CHECK_FALSE(patient->Wait(1500ms).has_value());
  BrokerProcess late(other, other_keys.BrokerArgs(), port);
  CHECK(WaitUntil([&] { return Contains(late.Log(), "worker patient joined"); },
                  20s));
  CHECK(patient->Running());
}

TEST_CASE("RevokingAKeyEndsItsSessionAndRequeuesItsTasks", "[e2e][curve]") {
  TempDir dir;
  Keys keys(dir);
  keys.Make("ops", "admin,submit");
  keys.Make("box-a", "worker");
  BrokerProcess broker(dir, keys.BrokerArgs());
  const std::string& ep = broker.endpoint();
  auto ops = keys.Connect(ep, "ops");
  SubmitOptions so;
  so.batch_id = "slow";
  REQUIRE(ops->Submit({"http://127.0.0.1/1", "http://127.0.0.1/2"}, so).ok());

  auto worker = StartWorker(
      dir, ep,
      {"w-a", "none", 2,
       Concat({"--exec", "sh -c 'sleep 60' {url}"}, keys.Flags("box-a"))});
  REQUIRE(WaitUntil(
      [&] {
        auto w = FindWorker(*ops, "w-a");
        return w && w->in_flight == 2;
      },
      30s));

  std::filesystem::remove(keys.authorized_dir() + "/box-a.key");
  broker.process().Signal(SIGHUP);
  BatchProgress p;
  CHECK(WaitUntil(
      [&] {
        auto now = ops->Progress("slow");
        if (now.ok()) p = *now;
        return now.ok() && p.queued == 2 && p.leased == 0 &&
               !FindWorker(*ops, "w-a");
      },
      10s));
  CHECK(p.queued == 2);
  const std::string log = broker.Log();
  CHECK(Contains(log, "revoked: box-a"));
  CHECK(Contains(log, "key 'box-a' revoked: ending the session of worker w-a"));
  // It stays out: what it sends now is refused.
  CHECK(WaitUntil(
      [&] {
        return Contains(broker.Log(), "key 'box-a' (no role (revoked?))");
      },
      20s));
}

// tq-ctl reload-keys: the broker reads its directory again (like SIGHUP)
// and the command prints what changed and the sessions it closed.
TEST_CASE("CtlReloadKeysPrintsWhatChangedAndTheSessionsClosed",
          "[e2e][curve]") {
  TempDir dir;
  Keys keys(dir);
  keys.Make("ops", "admin,submit");
  keys.Make("box-a", "worker");
  keys.Make("bob", "submit");
  BrokerProcess broker(dir, keys.BrokerArgs());
  const std::string& ep = broker.endpoint();
  auto ops = keys.Connect(ep, "ops");
  SubmitOptions so;
  so.batch_id = "slow";
  REQUIRE(ops->Submit({"http://127.0.0.1/1", "http://127.0.0.1/2"}, so).ok());
  auto worker = StartWorker(
      dir, ep,
      {"w-a", "none", 2,
       Concat({"--exec", "sh -c 'sleep 60' {url}"}, keys.Flags("box-a"))});
  REQUIRE(WaitUntil(
      [&] {
        auto w = FindWorker(*ops, "w-a");
        return w && w->in_flight == 2;
      },
      30s));

  // Nothing changed yet.
  ToolRun same = RunTool(dir, Ctl(ep, keys.Flags("ops"), {"reload-keys"}));
  INFO(same.err);
  REQUIRE(same.code == 0);
  CHECK(Contains(same.out, "reloaded the authorized keys: 4 admitted"));
  CHECK(Contains(same.out, "no change"));
  CHECK(Contains(same.out, "sessions closed: 0"));

  // carol added, box-a removed, bob's roles changed, one bad file.
  keys.Make("carol", "submit");
  std::filesystem::remove(keys.authorized_dir() + "/box-a.key");
  const std::string bob = keys.authorized_dir() + "/bob.key";
  std::string text = ReadFile(bob);
  const std::string roles = "roles = \"submit\"";
  const size_t at = text.find(roles);
  REQUIRE(at != std::string::npos);
  text.replace(at, roles.size(), "roles = \"admin,submit\"");
  WriteFile(bob, text);
  WriteFile(keys.authorized_dir() + "/junk.key", "not a certificate\n");

  ToolRun changed = RunTool(dir, Ctl(ep, keys.Flags("ops"), {"reload-keys"}));
  INFO(changed.out);
  INFO(changed.err);
  REQUIRE(changed.code == 0);
  CHECK(Contains(changed.out, "reloaded the authorized keys: 4 admitted"));
  CHECK(Contains(changed.out, "added: carol"));
  CHECK(Contains(changed.out, "removed: box-a"));
  CHECK(Contains(changed.out, "changed: bob: roles submit -> submit,admin"));
  CHECK(Contains(changed.out, "sessions closed: 1 (keys box-a, bob)"));
  CHECK(Contains(changed.out, "skipped: "));
  CHECK(Contains(changed.out, "junk.key"));
  CHECK_FALSE(Contains(changed.out, "no change"));
  // The session of box-a is gone and its tasks are queued again.
  CHECK(WaitUntil(
      [&] {
        auto p = ops->Progress("slow");
        return p.ok() && p->queued == 2 && !FindWorker(*ops, "w-a");
      },
      10s));
  CHECK(Contains(broker.Log(), "added: carol"));

  // --json, and the admin role is needed.
  ToolRun json =
      RunTool(dir, Ctl(ep, keys.Flags("ops"), {"reload-keys", "--json"}));
  REQUIRE(json.code == 0);
  CHECK(Contains(json.out, "\"sessions_closed\": 0"));
  CHECK(Contains(json.out, "\"added\": []"));
  ToolRun denied = RunTool(dir, Ctl(ep, keys.Flags("carol"), {"reload-keys"}));
  CHECK(denied.code == 4);
  CHECK(Contains(denied.err, "lacks the admin role"));
}

TEST_CASE("NonLoopbackListenWithoutKeysRefusesToStart", "[e2e][curve]") {
  TempDir dir;
  ToolRun refused =
      RunTool(dir, {Binary("tq-broker"), "--db", dir.File("tq.db"), "--listen",
                    "tcp://0.0.0.0:0"});
  CHECK(refused.code == 2);
  CHECK(Contains(refused.err,
                 "refusing to listen on tcp://0.0.0.0:0 without "
                 "keys"));
  CHECK(Contains(refused.err, "tq-keygen broker --dir"));
  CHECK(Contains(refused.err, "--insecure"));
  CHECK_FALSE(std::filesystem::exists(dir.File("tq.db")));

  // --insecure starts it, with a warning.
  const std::string ready = dir.File("ready");
  Process insecure({Binary("tq-broker"), "--db", dir.File("tq.db"), "--listen",
                    "tcp://0.0.0.0:0", "--insecure", "--ready-file", ready},
                   "", dir.File("insecure.log"));
  CHECK(WaitUntil([&] { return !ReadFile(ready).empty(); }, 20s));
  CHECK(Contains(ReadFile(dir.File("insecure.log")), "INSECURE: listening"));
}

// Hidden from the default run ([.]): tests/CMakeLists.txt registers it on
// its own with SKIP_RETURN_CODE, for when tcpdump cannot capture.
TEST_CASE("KeyedTrafficShowsNoUrlOrResultInClear", "[.][e2e][curve][capture]") {
  const char* tcpdump = "/usr/bin/tcpdump";
  if (access(tcpdump, X_OK) != 0) {
    WARN("SKIPPED: no tcpdump (deploy/install-deps.sh installs it)");
    std::exit(kSkipped);
  }
  const std::string url = "http://127.0.0.1/secret-investigation-4711";
  const std::string result = "RESULT-BYTES-93817";
  // What the capture of one run holds.
  auto capture = [&](bool keyed) {
    TempDir dir;
    Keys keys(dir);
    keys.Make("ops", "admin,submit");
    keys.Make("box", "worker");
    std::vector<std::string> args;
    if (keyed) args = keys.BrokerArgs();
    BrokerProcess broker(dir, args);
    const std::string pcap = dir.File("lo.pcap");
    // -Z root: the temp dir is root's (0700), so tcpdump keeps its user.
    // --immediate-mode: no packets left in a kernel block at SIGINT.
    Process dump(
        {tcpdump, "-Z", "root", "--immediate-mode", "-i", "lo", "-U", "-s", "0",
         "-w", pcap, "tcp port", std::to_string(broker.port())},
        "", dir.File("tcpdump.err"));
    const bool listening = WaitUntil(
        [&] {
          return Contains(ReadFile(dir.File("tcpdump.err")), "listening on") ||
                 !dump.Running();
        },
        20s);
    if (!listening || !dump.Running()) {
      WARN("SKIPPED: tcpdump cannot capture here: "
           << ReadFile(dir.File("tcpdump.err")));
      std::exit(kSkipped);
    }
    const std::vector<std::string> worker_keys =
        keyed ? keys.Flags("box") : std::vector<std::string>{};
    auto worker = StartWorker(
        dir, broker.endpoint(),
        {"w", "none", 1,
         Concat({"--exec", "sh -c 'echo " + result + "' {url}"}, worker_keys)});
    auto client = keyed ? keys.Connect(broker.endpoint(), "ops")
                        : testing::Connect(broker.endpoint());
    SubmitOptions so;
    so.batch_id = "b";
    REQUIRE(client->Submit({url}, so).ok());
    auto results = testing::CollectByUrl(*client, "b", 60s);
    REQUIRE(results.size() == 1);
    CHECK(Contains(results.begin()->second.output, result));
    worker.reset();
    client.reset();
    dump.Signal(SIGINT);  // tcpdump flushes and exits
    REQUIRE(dump.Wait(20s).has_value());
    INFO("tcpdump: " << ReadFile(dir.File("tcpdump.err")));
    CHECK(Contains(ReadFile(dir.File("tcpdump.err")), "packets captured"));
    return ReadFile(pcap);
  };
  const std::string plain = capture(false);
  REQUIRE(plain.size() > 24);  // more than a pcap header
  // The capture works: without keys both are there in clear.
  CHECK(Contains(plain, url));
  CHECK(Contains(plain, result));
  const std::string keyed = capture(true);
  REQUIRE(keyed.size() > 24);
  CHECK_FALSE(Contains(keyed, url));
  CHECK_FALSE(Contains(keyed, result));
  CHECK_FALSE(Contains(keyed, "secret-investigation"));
}

}  // namespace tq
