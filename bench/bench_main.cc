// tq-bench: starts a broker and workers on loopback in a temp dir, runs one
// scenario, prints a table (and one JSON object with --json).
//
//   throughput  N no-op tasks submitted, all N results collected
//   latency     sequential submit-then-wait round trips with an idle worker
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "bench/swarm.h"
#include "common/curve_keys.h"
#include "common/version.h"
#include "tests/support/cluster.h"
#include "tests/support/wait.h"
#include "tq/client.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using tq::testing::BrokerProcess;
using tq::testing::Process;
using tq::testing::StartWorker;
using tq::testing::TempDir;

struct ProcStats {
  double cpu_seconds = 0;  // user + system
  uint64_t peak_rss_kb = 0;
};

ProcStats ReadProcStats(pid_t pid) {
  ProcStats s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  // Fields after the ")" of the command name; utime and stime are 14 and 15.
  auto close = line.rfind(')');
  if (close != std::string::npos) {
    std::istringstream in(line.substr(close + 2));
    std::string field;
    uint64_t utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    s.cpu_seconds = double(utime + stime) / double(sysconf(_SC_CLK_TCK));
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0)
      s.peak_rss_kb = std::stoull(line.substr(6));
  }
  return s;
}

// --curve: key pairs made for this run in a temp dir, the broker keyed with
// them; the workers share one worker key, the clients one admin,submit key.
struct CurveSetup {
  std::unique_ptr<TempDir> dir;
  tq::CurveCert broker, worker, client;
  bool on() const { return dir != nullptr; }
  std::string File(const std::string& name) const { return dir->File(name); }
};
CurveSetup g_curve;

void MakeCurveKeys() {
  g_curve.dir = std::make_unique<TempDir>();
  std::filesystem::create_directory(g_curve.File("authorized"));
  auto make = [](const std::string& name, const std::string& roles,
                 tq::CurveCert* cert) {
    auto c = tq::GenerateCurveCert();
    if (!c.ok()) throw std::runtime_error(c.status().message());
    *cert = std::move(c).value();
    cert->SetMeta(tq::kMetaName, name);
    if (!roles.empty()) cert->SetMeta(tq::kMetaRoles, roles);
    for (auto [path, secret] :
         {std::pair{g_curve.File(name + ".key_secret"), true},
          std::pair{g_curve.File(roles.empty() ? name + ".key"
                                               : "authorized/" + name + ".key"),
                    false}}) {
      tq::Status st = tq::SaveCurveCert(*cert, path, secret, true);
      if (!st.ok()) throw std::runtime_error(st.message());
    }
  };
  make("bench-broker", "", &g_curve.broker);
  make("bench-worker", "worker", &g_curve.worker);
  make("bench-client", "admin,submit", &g_curve.client);
}

// A worker spec, keyed with --curve.
tq::testing::WorkerSpec Worker(const std::string& id, int slots,
                               std::vector<std::string> handler = {"--noop"}) {
  if (g_curve.on()) {
    handler.insert(handler.end(),
                   {"--broker-key", g_curve.File("bench-broker.key"), "--key",
                    g_curve.File("bench-worker.key_secret")});
  }
  return {id, "none", slots, handler};
}

std::unique_ptr<tq::Client> Connect(const std::string& endpoint,
                                    std::chrono::milliseconds timeout = 10s,
                                    int attempts = 3) {
  tq::ClientOptions o;
  o.endpoint = endpoint;
  o.request_timeout = timeout;
  o.attempts = attempts;
  if (g_curve.on()) {
    o.curve.broker_public_key = g_curve.broker.public_key;
    o.curve.client_public_key = g_curve.client.public_key;
    o.curve.client_secret_key = g_curve.client.secret_key;
  }
  auto c = tq::Client::Connect(o);
  if (!c.ok()) throw std::runtime_error(c.status().message());
  return std::move(c.value());
}

std::string Url(uint64_t i) {
  // 61 bytes, as in the workload.
  char buf[96];
  std::snprintf(buf, sizeof buf,
                "http://bench.example.com/analysis/target/page-%014llu",
                static_cast<unsigned long long>(i));
  return buf;
}

void WaitForWorkers(tq::Client& client, size_t n) {
  bool ok = tq::testing::WaitUntil(
      [&] {
        auto w = client.Workers();
        return w.ok() && w->size() == n;
      },
      20s);
  if (!ok) throw std::runtime_error("workers did not connect");
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, size_t(p / 100.0 * double(v.size())));
  return v[i];
}

std::vector<std::string> g_extra_broker_args;

std::vector<std::string> BrokerArgs(const std::string& synchronous) {
  std::vector<std::string> args = {"--synchronous", synchronous, "--log-level",
                                   "warn"};
  args.insert(args.end(), g_extra_broker_args.begin(),
              g_extra_broker_args.end());
  if (g_curve.on()) {
    args.insert(args.end(), {"--key", g_curve.File("bench-broker.key_secret"),
                             "--authorized-keys", g_curve.File("authorized")});
  }
  return args;
}

nlohmann::json Throughput(const std::string& synchronous, uint64_t n,
                          int workers, int slots) {
  TempDir dir;
  BrokerProcess broker(dir, BrokerArgs(synchronous));
  std::vector<std::unique_ptr<Process>> procs;
  for (int i = 0; i < workers; ++i) {
    procs.push_back(StartWorker(dir, broker.endpoint(),
                                Worker("bench-" + std::to_string(i), slots)));
  }
  auto client = Connect(broker.endpoint());
  WaitForWorkers(*client, size_t(workers));
  std::vector<std::string> urls;
  urls.reserve(n);
  for (uint64_t i = 0; i < n; ++i) urls.push_back(Url(i));

  const ProcStats before = ReadProcStats(broker.process().pid());
  const auto start = Clock::now();
  auto receipt = client->Submit(urls, {});
  if (!receipt.ok()) throw std::runtime_error(receipt.status().message());
  const auto submitted = Clock::now();
  uint64_t collected = 0;
  tq::Status st = client->WaitForResults(
      receipt->batch_id,
      [&](const tq::TaskResult&) {
        ++collected;
        return true;
      },
      nullptr, 600s);
  const auto end = Clock::now();
  if (!st.ok()) throw std::runtime_error(st.message());
  const ProcStats after = ReadProcStats(broker.process().pid());
  const double seconds = std::chrono::duration<double>(end - start).count();
  nlohmann::json j;
  j["scenario"] = "throughput";
  j["synchronous"] = synchronous;
  j["tasks"] = n;
  j["results_collected"] = collected;
  j["workers"] = workers;
  j["slots_per_worker"] = slots;
  j["seconds"] = seconds;
  j["submit_seconds"] =
      std::chrono::duration<double>(submitted - start).count();
  j["tasks_per_second"] = double(collected) / seconds;
  j["broker_cpu_us_per_task"] = (after.cpu_seconds - before.cpu_seconds) * 1e6 /
                                double(std::max<uint64_t>(collected, 1));
  j["broker_peak_rss_mb"] = double(after.peak_rss_kb) / 1024.0;
  return j;
}

// Tasks of 0.2 s on 2 workers; one worker is SIGKILLed (its connection
// closes) or SIGSTOPped (silent: only heartbeats tell) while it runs a task.
// Measures the time from the kill to the start of that task's re-run.
nlohmann::json Recovery(const std::string& synchronous, bool silent) {
  TempDir dir;
  BrokerProcess broker(dir, BrokerArgs(synchronous));
  const std::vector<std::string> handler = {"--exec", "sleep 0.2"};
  auto victim =
      StartWorker(dir, broker.endpoint(), Worker("victim", 1, handler));
  auto client = Connect(broker.endpoint());
  WaitForWorkers(*client, 1);
  std::vector<std::string> urls;
  // Two tasks: one for the victim, one for the other worker, whose second
  // slot stays free for the re-run.
  for (uint64_t i = 0; i < 2; ++i) urls.push_back(Url(i));
  auto receipt = client->Submit(urls, {});
  if (!receipt.ok()) throw std::runtime_error(receipt.status().message());
  auto other = StartWorker(dir, broker.endpoint(), Worker("other", 2, handler));
  WaitForWorkers(*client, 2);
  // Kill it mid-task: it holds one and has been at it for a moment.
  bool holding = tq::testing::WaitUntil(
      [&] {
        auto ws = client->Workers();
        if (!ws.ok()) return false;
        for (const auto& w : *ws) {
          if (w.worker_id == "victim" && w.in_flight == 1) return true;
        }
        return false;
      },
      20s, 1ms);
  if (!holding) throw std::runtime_error("victim never held a task");
  const int64_t killed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count();
  victim->Signal(silent ? SIGSTOP : SIGKILL);
  std::map<uint32_t, int> seen;
  int64_t rerun_start_ms = -1;
  tq::Status st = client->WaitForResults(
      receipt->batch_id,
      [&](const tq::TaskResult& r) {
        ++seen[r.index];
        // The re-run: the other worker's task that started after the kill
        // (its own task started before; the victim's lost lease costs no
        // attempt, so attempts do not tell them apart).
        const int64_t started_ms = r.finished_ms - int64_t(r.duration_ms);
        if (r.worker == "other" && started_ms >= killed_ms) {
          rerun_start_ms = started_ms;
        }
        return true;
      },
      nullptr, 120s);
  victim->Kill();
  if (!st.ok()) throw std::runtime_error(st.message());
  bool once = seen.size() == urls.size();
  for (auto& [index, n] : seen) once = once && n == 1;
  nlohmann::json j;
  j["scenario"] = silent ? "recovery-silent" : "recovery";
  j["synchronous"] = synchronous;
  j["kill"] = silent ? "SIGSTOP (no FIN: heartbeats only)" : "SIGKILL";
  j["rerun_after_ms"] = rerun_start_ms < 0 ? -1 : rerun_start_ms - killed_ms;
  j["every_result_once"] = once;
  j["results"] = seen.size();
  return j;
}

// `count` workers (one DEALER each, from one thread of this process) with
// heartbeats on: dispatch rate, broker CPU while they idle, and fairness.
nlohmann::json Fanout(const std::string& synchronous, int count, uint64_t n) {
  TempDir dir;
  BrokerProcess broker(dir, BrokerArgs(synchronous));
  tq::bench::Swarm swarm(broker.endpoint(), count);
  auto client = Connect(broker.endpoint());
  WaitForWorkers(*client, size_t(count));
  // Idle: only heartbeats flow.
  const ProcStats idle_before = ReadProcStats(broker.process().pid());
  std::this_thread::sleep_for(5s);  // a measurement window, not a wait
  const ProcStats idle_after = ReadProcStats(broker.process().pid());

  std::vector<std::string> urls;
  for (uint64_t i = 0; i < n; ++i) urls.push_back(Url(i));
  const auto start = Clock::now();
  auto receipt = client->Submit(urls, {});
  if (!receipt.ok()) throw std::runtime_error(receipt.status().message());
  tq::Status st = client->WaitForResults(
      receipt->batch_id, [](const tq::TaskResult&) { return true; }, nullptr,
      600s);
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  if (!st.ok()) throw std::runtime_error(st.message());
  swarm.Stop();
  auto per_worker = swarm.TasksPerWorker();
  auto [lo, hi] = std::minmax_element(per_worker.begin(), per_worker.end());
  nlohmann::json j;
  j["scenario"] = "fanout";
  j["synchronous"] = synchronous;
  j["workers"] = count;
  j["tasks"] = n;
  j["tasks_per_second"] = double(n) / seconds;
  j["idle_broker_cpu_percent"] =
      (idle_after.cpu_seconds - idle_before.cpu_seconds) / 5.0 * 100.0;
  j["min_tasks_per_worker"] = *lo;
  j["max_tasks_per_worker"] = *hi;
  j["fairness_max_over_min"] = *lo ? double(*hi) / double(*lo) : -1.0;
  return j;
}

// M tasks queued, the broker SIGKILLed and started again on the same
// database: time until it serves again and until the first task comes back
// from a worker started then; the broker's peak RSS with M queued.
nlohmann::json Restart(const std::string& synchronous, uint64_t m) {
  TempDir dir;
  BrokerProcess broker(dir, BrokerArgs(synchronous));
  auto client = Connect(broker.endpoint());
  std::vector<std::string> urls;
  urls.reserve(m);
  for (uint64_t i = 0; i < m; ++i) urls.push_back(Url(i));
  auto receipt = client->Submit(urls, {});
  if (!receipt.ok()) throw std::runtime_error(receipt.status().message());
  urls.clear();
  urls.shrink_to_fit();
  const auto killed = Clock::now();
  broker.KillAndRestart();  // returns once the new broker listens
  const auto serving = Clock::now();
  const ProcStats loaded = ReadProcStats(broker.process().pid());
  auto worker = StartWorker(dir, broker.endpoint(), Worker("bench-0", 1));
  auto page = client->FetchResults(receipt->batch_id, 0, 1, 30000ms);
  if (!page.ok()) throw std::runtime_error(page.status().message());
  const auto first = Clock::now();
  nlohmann::json j;
  j["scenario"] = "restart";
  j["synchronous"] = synchronous;
  j["queued"] = m;
  j["restart_to_serving_seconds"] =
      std::chrono::duration<double>(serving - killed).count();
  j["restart_to_first_result_seconds"] =
      std::chrono::duration<double>(first - killed).count();
  j["broker_rss_mb_with_queue"] = double(loaded.peak_rss_kb) / 1024.0;
  return j;
}

// M tasks queued on a queue nobody serves, then purged while a worker is
// connected and a second client asks for the queue list in a loop: how long
// the purge takes, how long the list waited at worst, and whether the
// worker's session survived (its heartbeats kept flowing).
nlohmann::json Purge(const std::string& synchronous, uint64_t m) {
  TempDir dir;
  BrokerProcess broker(dir, BrokerArgs(synchronous));
  auto worker = StartWorker(dir, broker.endpoint(), Worker("bench-0", 1));
  auto client = Connect(broker.endpoint());
  WaitForWorkers(*client, 1);
  std::vector<std::string> urls;
  urls.reserve(m);
  for (uint64_t i = 0; i < m; ++i) urls.push_back(Url(i));
  tq::SubmitOptions fr;
  fr.queues = {"FR"};
  auto receipt = client->Submit(urls, fr);
  if (!receipt.ok()) throw std::runtime_error(receipt.status().message());
  urls.clear();
  urls.shrink_to_fit();

  std::atomic<bool> purging{true};
  double worst_list_ms = 0;
  uint64_t lists = 0;
  std::thread watcher([&] {
    auto watch = Connect(broker.endpoint());
    while (purging) {
      const auto start = Clock::now();
      if (!watch->Queues().ok()) break;
      worst_list_ms = std::max(
          worst_list_ms,
          std::chrono::duration<double, std::milli>(Clock::now() - start)
              .count());
      ++lists;
    }
  });
  auto admin = Connect(broker.endpoint(), 120s, 1);
  const auto start = Clock::now();
  auto purged = admin->Purge("FR");
  const auto end = Clock::now();
  purging = false;
  watcher.join();
  if (!purged.ok()) throw std::runtime_error(purged.status().message());
  auto workers = client->Workers();
  const bool stayed = workers.ok() && workers->size() == 1;
  nlohmann::json j;
  j["scenario"] = "purge";
  j["synchronous"] = synchronous;
  j["queued"] = m;
  j["purged"] = *purged;
  j["purge_seconds"] = std::chrono::duration<double>(end - start).count();
  j["queue_list_requests"] = lists;
  j["queue_list_worst_ms"] = worst_list_ms;
  j["worker_stayed_connected"] = stayed;
  return j;
}

nlohmann::json Latency(const std::string& synchronous, int trips, int warmup) {
  TempDir dir;
  BrokerProcess broker(dir, BrokerArgs(synchronous));
  auto worker = StartWorker(dir, broker.endpoint(), Worker("bench-0", 1));
  auto client = Connect(broker.endpoint());
  WaitForWorkers(*client, 1);
  std::vector<double> ms;
  std::vector<double> ack_ms;  // the part until the submission is acknowledged
  for (int i = 0; i < warmup + trips; ++i) {
    const auto start = Clock::now();
    auto receipt = client->Submit({Url(uint64_t(i))}, {});
    if (!receipt.ok()) throw std::runtime_error(receipt.status().message());
    const double acked =
        std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    uint64_t cursor = 0;
    bool done = false;
    for (int polls = 0; !done && polls < 100; ++polls) {
      auto page = client->FetchResults(receipt->batch_id, cursor, 10, 5000ms);
      if (!page.ok()) throw std::runtime_error(page.status().message());
      cursor = page->cursor;
      done = !page->results.empty();
    }
    if (!done) throw std::runtime_error("a round trip did not finish");
    const double elapsed =
        std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (i >= warmup) {
      ms.push_back(elapsed);
      ack_ms.push_back(acked);
    }
  }
  nlohmann::json j;
  j["scenario"] = "latency";
  j["synchronous"] = synchronous;
  j["trips"] = trips;
  j["p50_ms"] = Percentile(ms, 50);
  j["p90_ms"] = Percentile(ms, 90);
  j["p99_ms"] = Percentile(ms, 99);
  j["p999_ms"] = Percentile(ms, 99.9);
  j["max_ms"] = *std::max_element(ms.begin(), ms.end());
  j["submit_ack_p50_ms"] = Percentile(ack_ms, 50);
  return j;
}

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() &&
         s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A table cell: numbers rounded, with the unit the key names.
std::string FormatValue(const std::string& key, const nlohmann::json& v) {
  if (!v.is_number()) return v.is_string() ? v.get<std::string>() : v.dump();
  if (v.is_number_integer() && !EndsWith(key, "_ms") &&
      !EndsWith(key, "_seconds") && !EndsWith(key, "_bytes")) {
    return v.dump();
  }
  const double x = v.get<double>();
  char buf[64];
  if (EndsWith(key, "_per_second")) {
    snprintf(buf, sizeof buf, "%.0f /s", x);
  } else if (EndsWith(key, "_ms")) {
    snprintf(buf, sizeof buf, x < 10 ? "%.2f ms" : "%.1f ms", x);
  } else if (EndsWith(key, "_seconds")) {
    snprintf(buf, sizeof buf, "%.2f s", x);
  } else if (EndsWith(key, "_bytes")) {
    snprintf(buf, sizeof buf, "%.1f MiB", x / (1024.0 * 1024.0));
  } else {
    snprintf(buf, sizeof buf, "%.3g", x);
  }
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tq-bench: measures tq on loopback (broker + workers in a temp dir)"};
  std::string scenario = "throughput";
  std::string synchronous = "full";
  uint64_t tasks = 100'000;
  int workers = 2;
  int slots = 1;
  int trips = 2000;
  int fanout_workers = 1000;
  int runs = 1;
  bool json = false;
  app.set_version_flag("--version", tq::VersionText("tq-bench"));
  app.add_option("scenario", scenario,
                 "throughput, latency, recovery (SIGKILL a worker), "
                 "recovery-silent (SIGSTOP it), fanout (1,000 workers), "
                 "restart (-n tasks queued, broker SIGKILLed) or purge (-n "
                 "tasks queued, then purged)")
      ->check(CLI::IsMember({"throughput", "latency", "recovery",
                             "recovery-silent", "fanout", "restart", "purge"}))
      ->capture_default_str();
  app.add_option("--synchronous", synchronous,
                 "broker durability: full or normal")
      ->check(CLI::IsMember({"full", "normal"}))
      ->capture_default_str();
  app.add_option("-n,--tasks", tasks,
                 "tasks for throughput and fanout; queued tasks for restart "
                 "and purge (default there: 1000000)")
      ->capture_default_str();
  app.add_option("-w,--workers", workers, "worker processes")
      ->capture_default_str();
  app.add_option("-c,--slots", slots, "slots per worker")
      ->capture_default_str();
  app.add_option("--fanout-workers", fanout_workers, "workers for fanout")
      ->capture_default_str();
  app.add_option("--trips", trips, "round trips for latency")
      ->capture_default_str();
  app.add_option("--runs", runs, "repeat and report each run plus the median")
      ->capture_default_str();
  app.add_option("--broker-arg", g_extra_broker_args,
                 "extra tq-broker argument (repeat), e.g. "
                 "--broker-arg=--commit-interval=0")
      ->allow_extra_args(false);
  app.add_flag("--json", json, "print one JSON object instead of a table");
  bool curve = false;
  app.add_flag("--curve", curve,
               "CURVE keys on every socket: keys made in a temp dir, the "
               "broker started with --key and --authorized-keys (not for "
               "fanout, whose DEALERs are bare)");
  app.footer(
      "Exit codes: 0 measured, 1 the run failed, 2 usage error (no "
      "arguments prints this help: a run can take minutes).");
  if (argc <= 1) {
    std::printf("%s", app.help().c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  // The broker and workers die with the bench: Ctrl-C, SIGTERM or a crash.
  tq::testing::Process::KillChildrenWithParent();
  if ((scenario == "restart" || scenario == "purge") &&
      app.count("--tasks") == 0) {
    tasks = 1'000'000;
  }

  if (curve && scenario == "fanout") {
    std::fprintf(stderr, "tq-bench: --curve is not supported for fanout\n");
    return 2;
  }
  try {
    if (curve) MakeCurveKeys();
    nlohmann::json all = nlohmann::json::array();
    for (int r = 0; r < runs; ++r) {
      if (scenario == "throughput") {
        all.push_back(Throughput(synchronous, tasks, workers, slots));
      } else if (scenario == "restart") {
        all.push_back(Restart(synchronous, tasks));
      } else if (scenario == "purge") {
        all.push_back(Purge(synchronous, tasks));
      } else if (scenario == "fanout") {
        all.push_back(Fanout(synchronous, fanout_workers, tasks));
      } else if (scenario == "latency") {
        all.push_back(Latency(synchronous, trips, 200));
      } else {
        all.push_back(Recovery(synchronous, scenario == "recovery-silent"));
      }
    }
    const std::string key =
        scenario == "throughput" || scenario == "fanout" ? "tasks_per_second"
        : scenario == "latency"                          ? "p50_ms"
        : scenario == "restart" ? "restart_to_first_result_seconds"
        : scenario == "purge"   ? "purge_seconds"
                                : "rerun_after_ms";
    std::vector<nlohmann::json> sorted(all.begin(), all.end());
    std::sort(sorted.begin(), sorted.end(), [&](auto& a, auto& b) {
      return a[key].template get<double>() < b[key].template get<double>();
    });
    nlohmann::json out;
    out["cores"] = std::thread::hardware_concurrency();
    out["curve"] = curve;
    out["runs"] = all;
    out["median"] = sorted[sorted.size() / 2];
    if (json) {
      std::printf("%s\n", out.dump().c_str());
    } else {
      std::printf(
          "tq-bench %s (%u cores, synchronous=%s%s, %d run%s; median run)\n",
          scenario.c_str(), std::thread::hardware_concurrency(),
          synchronous.c_str(), curve ? ", CURVE" : "", runs,
          runs == 1 ? "" : "s");
      for (auto& [k, v] : out["median"].items()) {
        std::printf("  %-34s %s\n", k.c_str(), FormatValue(k, v).c_str());
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tq-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
