// tq-ctl's command line: the subcommand, the values its flags hold, and the
// checks CLI11 cannot make alone.
#pragma once

#include <string>
#include <vector>

#include "client/curve_flags.h"
#include "common/defaults.h"
#include "tq/client.h"
#include "tq/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace tq {

enum class CtlCommand {
  kNone,  // not parsed yet: CLI11 requires one subcommand
  kQueues,
  kWorkers,
  kBatch,
  kResults,
  kCancel,
  kRetry,
  kPurge,
  kRelease,     // end a worker's quarantine
  kCancelTask,  // cancel TASK_ID [--terminate]
  kEvents,      // follow the cluster live
  kPause,
  kResume,
  // The views (#19): the same queries the web console shows.
  kStatus,
  kBatches,
  kTask,
  kActive,
  kReloadKeys,  // the broker reads --authorized-keys again
};

// What the command line says, as given.
struct CtlFlags {
  CtlCommand command = CtlCommand::kNone;
  std::string broker = kDefaultEndpoint;
  bool json = false;
  double request_timeout_s = 5;
  std::string log_level = "warn";
  std::string batch_id;  // batch, results, cancel, retry --batch
  std::string queue;     // purge, retry --queue
  std::string out_dir;   // results --out
  std::string layout = "tasks";
  std::string worker_id;  // release
  bool yes = false;       // purge --yes: no confirmation asked
  // cancel: a task id (all digits), else a batch id (the older form);
  // --batch ID names a batch outright.
  std::string cancel_target;
  uint64_t task_id = 0;       // task ID; cancel TASK_ID, once resolved
  bool terminate = false;     // cancel TASK_ID --terminate
  std::string worker_filter;  // events --worker
  bool all = false;           // queues --all: empty unserved queues too
  uint32_t limit = 50;        // batches --limit
  uint64_t before = 0;        // batches --before (a page's next_before)
  std::string worker;         // active --worker
  CurveFlags curve;           // --broker-key, --key
};

// The subcommands' names, in --help's order, for "unknown command" messages.
std::string CtlCommandNames();

// After CLI11 accepted the command line: one command was named and nothing
// is left over (`remaining`: CLI11's extras). InvalidArgument naming the
// unknown command and the valid ones, or the unexpected argument.
Status CheckCtlCommand(const CtlFlags& flags,
                       const std::vector<std::string>& remaining);

// Adds tq-ctl's global flags, its subcommands with theirs and the exit codes'
// help to `app`, each writing into `*flags` (which must outlive the parse);
// the subcommand given sets flags->command. The values already in `*flags`
// are the defaults --help shows; $TQ_BROKER, $TQ_BROKER_KEY and $TQ_KEY are
// read at parse time.
void AddCtlFlags(CLI::App& app, CtlFlags* flags);

// After parsing: `cancel X` with X all digits is a task, else a batch (sets
// command to kCancelTask with task_id, or batch_id). --terminate goes with a
// task only; --batch and a positional argument not together.
Status ResolveCancelTarget(CtlFlags* flags);

// Refuses here, as a usage error, what the broker would refuse later: a
// malformed --broker endpoint, retry without a batch or queue, a malformed
// batch id, a bad queue name,
// --key without --broker-key or the reverse. The message is what tq-ctl
// prints after "tq-ctl: ".
Status ValidateCtlFlags(const CtlFlags& flags);

// How to reach the broker: --broker, --timeout and the CURVE keys
// (CurveKeysFromFlags: InvalidArgument naming the flag for a key file that
// is missing, malformed, public-only or readable by others).
Result<ClientOptions> ClientOptionsFromFlags(const CtlFlags& flags);

}  // namespace tq
