// tq-submit's command line: the values its flags hold, the checks CLI11
// cannot make alone, and the SubmitOptions of the batch they ask for.
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
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

// What the flags say, as given.
struct SubmitFlags {
  std::string broker = kDefaultEndpoint;
  std::string file;       // "-" for standard input
  std::string countries;  // comma-separated queues; empty: generic
  std::string batch_id;   // empty: a fresh random id
  int32_t priority = 0;
  uint32_t max_attempts = 0;
  double time_limit_s = 0;
  bool wait = false;
  bool strict = false;
  bool allow_duplicates = false;  // queue a URL the file repeats again
  double timeout_s = 0;           // --wait: 0 waits for ever
  double request_timeout_s = 5;
  bool quiet = false;
  std::string log_level = "warn";
  std::vector<std::string> options;  // KEY=VALUE, handed to the workers
  std::string out_dir;               // --wait --out: results and files
  std::string layout = "tasks";
  CurveFlags curve;  // --broker-key, --key
  // --wait --fail-on unreachable,http_error: outcomes of done tasks that
  // make the exit status 1 (ParseFailOn fills it).
  std::string fail_on_list;
  std::set<std::string> fail_on;
};

// "unreachable, http_error" -> the outcome names; InvalidArgument naming an
// unknown one.
Result<std::set<std::string>> ParseFailOn(const std::string& list);

// Adds every tq-submit flag, the FILE argument and the exit codes' help to
// `app`, each writing into `*flags` (which must outlive the parse); the
// values already in `*flags` are the defaults --help shows. CLI11 itself
// checks ranges and choices; $TQ_BROKER, $TQ_BROKER_KEY and $TQ_KEY are
// read at parse time.
void AddSubmitFlags(CLI::App& app, SubmitFlags* flags);

// "IT, IN" -> {"IT", "IN"}: entries trimmed, duplicates dropped, order kept;
// "" -> {"generic"}. InvalidArgument for an empty entry or a bad queue name.
Result<std::vector<std::string>> ParseCountries(const std::string& list);

// What can be checked before the URL file is read: --country, then
// --batch-id, then --key and --broker-key together (their files are read
// by ClientOptionsFromFlags). The message is what tq-submit prints after
// "tq-submit: ".
Status ValidateSubmitFlags(const SubmitFlags& flags);

// How to reach the broker: --broker, --request-timeout and the CURVE keys
// (CurveKeysFromFlags: InvalidArgument naming the flag for a key file that
// is missing, malformed, public-only or readable by others).
Result<ClientOptions> ClientOptionsFromFlags(const SubmitFlags& flags);

// The options of the batch: queues, priority, limits, the task options from
// --option (InvalidArgument for one that is not KEY=VALUE with a KEY) and
// the batch id, a fresh random one when none was given. Call after
// ValidateSubmitFlags.
Result<SubmitOptions> SubmitOptionsFromFlags(const SubmitFlags& flags);

// Seconds as given on the command line, rounded to milliseconds.
std::chrono::milliseconds SecondsToMs(double s);

}  // namespace tq
