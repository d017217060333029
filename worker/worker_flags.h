// tq-worker's command line: the values its flags hold, and the checks CLI11
// cannot make alone (which flags go together, country codes, the --exec
// command), turned into the WorkerOptions the worker runs with.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "client/curve_flags.h"
#include "common/defaults.h"
#include "common/status.h"
#include "worker/exec_runner.h"
#include "worker/worker.h"

namespace CLI {
class App;
}  // namespace CLI

namespace tq {

inline constexpr uint32_t kMaxWorkerConcurrency = 1024;
// A Result must fit in one message, with room for the rest of it.
inline constexpr uint64_t kMaxWorkerOutputLimit =
    static_cast<uint64_t>(kMaxMessageBytes) - 1024 * 1024;

// What the flags say, as given; WorkerOptionsFromFlags checks it.
struct WorkerFlags {
  std::string broker = kDefaultEndpoint;
  // ISO code, "none" (generic queue only) or "auto" (found from an address).
  std::string country = "none";
  // How --country auto finds the country here (else the broker does).
  std::string geoip_db;
  std::string geo_resolver;  // "", "geoip" or "cymru"
  std::string dns_servers;   // for cymru: HOST:PORT,...
  std::string public_ip;
  // --queues IT[,generic]: the queues to serve, at most one country; "":
  // the country's queue (if any) and generic.
  std::string queues;
  bool no_generic = false;  // --no-generic: not the generic queue
  uint32_t concurrency = 1;
  std::string id;  // empty: <hostname>-<pid>
  // The handler: --noop, --exec (set even when given empty), else --analyse.
  std::optional<std::string> exec;
  bool noop = false;
  bool analyse = false;
  std::optional<std::string> work_dir;  // unset: made under $TMPDIR, removed
  uint64_t max_output = kDefaultMaxOutputBytes;
  std::string log_level = "info";
  // `--analyse-one URL`: the analyser's child, which the worker runs per task.
  std::string analyse_one;
  std::string options_json = "{}";
  uint32_t time_limit_ms = 0;
  CurveFlags curve;  // --broker-key, --key
  // --check [--check-url URL]: the self-check alone (worker/self_check.h).
  bool check = false;
  std::string check_url;
};

// The defaults, with --broker from $TQ_BROKER when that is set.
WorkerFlags DefaultWorkerFlags();

// Adds every tq-worker flag to `app`, each writing into `*flags` (which must
// outlive the parse); the values already in `*flags` are the defaults --help
// shows. CLI11 itself checks ranges, choices and mutually exclusive handlers.
void AddWorkerFlags(CLI::App& app, WorkerFlags* flags);

// Read when --config is not given, if it exists; tq-worker@NAME.service
// passes --config /etc/tq/worker-NAME.conf.
inline constexpr char kDefaultWorkerConfig[] = "/etc/tq/worker.conf";

// Adds --config FILE to an `app` that has the flags already (see
// common/config_file.h): flags win over the file, the file over $TQ_BROKER.
// The analyser's child (--analyse-one) reads no file: its parent passes all
// it needs.
void AddWorkerConfigFile(
    CLI::App& app, const std::string& default_path = kDefaultWorkerConfig);

// The checks CLI11 cannot make, bar the handler's, in the order tq-worker
// reports them: --geoip-db, --geo-resolver and --public-ip only with
// --country auto, a resolver with what it needs, --public-ip an address,
// --country a code (or auto or none), --queues codes or generic agreeing
// with --country, --no-generic with a country, --broker not empty, --key and
// --broker-key together. Returns
// InvalidArgument with the message tq-worker prints after "tq-worker: ".
Status ValidateWorkerFlags(const WorkerFlags& flags);

// The options the flags ask for, or the usage error as above: first the
// handler (the analyser's child is `self_exe`, this program, "" when unknown;
// --exec must parse), then ValidateWorkerFlags, then the CURVE key files
// (CurveKeysFromFlags). The identity's country is ""
// for auto and none. Left to the caller: what the host decides (hostname, pid,
// the default worker id and work dir) and the country --country auto finds.
Result<WorkerOptions> WorkerOptionsFromFlags(const WorkerFlags& flags,
                                             const std::string& self_exe);

}  // namespace tq
