// What deploy/ ships: the systemd units (systemd-analyze verify and its
// offline security score), the example configs (every flag named, each line
// accepted), the man pages, the bash completion, and the .deb packages
// (built by CPack from this build, unpacked with dpkg -x, run from there).
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace tq {
namespace {

using namespace std::chrono_literals;

const std::string kSource = TQ_SOURCE_DIR;
const std::string kBin = TQ_BIN_DIR;
const std::string kBuild = kBin + "/..";

struct Run {
  int rc = -1;
  std::string out;
  std::string err;
};

// Runs argv to its end (at most `timeout`) with `env` added.
Run RunToEnd(const testing::TempDir& dir, std::vector<std::string> argv,
             const std::vector<std::string>& env = {},
             std::chrono::milliseconds timeout = 60s) {
  static int n = 0;
  const std::string base = dir.File("run" + std::to_string(++n));
  Run r;
  {
    testing::Process p(std::move(argv), base + ".out", base + ".err", env);
    const auto rc = p.Wait(timeout);
    r.rc = rc.value_or(-1000);  // -1000: still running, killed by ~Process
  }
  r.out = testing::ReadFile(base + ".out");
  r.err = testing::ReadFile(base + ".err");
  return r;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

// The long flags a command's --help lists.
std::set<std::string> HelpFlags(const std::string& help) {
  std::set<std::string> flags;
  const std::regex line(R"(^  (?:-[A-Za-z],)?--([A-Za-z0-9][A-Za-z0-9-]*))");
  std::istringstream in(help);
  std::string l;
  while (std::getline(in, l)) {
    std::smatch m;
    if (std::regex_search(l, m, line)) flags.insert(m[1]);
  }
  return flags;
}

// An example config's settings: `key = value` or `#key = value` lines.
std::vector<std::pair<std::string, std::string>> ExampleSettings(
    const std::string& text) {
  std::vector<std::pair<std::string, std::string>> settings;
  const std::regex line(R"(^#?([a-z][a-z0-9-]*) = (.*)$)");
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) {
    std::smatch m;
    if (std::regex_match(l, m, line)) settings.emplace_back(m[1], l);
  }
  return settings;
}

std::string Uncommented(const std::string& line) {
  return line[0] == '#' ? line.substr(1) : line;
}

// The example config of `command` names every flag its --help lists (but
// those a config cannot set), and each of its settings, uncommented alone,
// is accepted by the command.
void CheckExampleConfig(const std::string& command, const std::string& file,
                        const std::set<std::string>& not_configurable) {
  testing::TempDir dir;
  const Run help =
      RunToEnd(dir, {kBin + "/" + command, "--config", "", "--help"});
  REQUIRE(help.rc == 0);
  const std::set<std::string> flags = HelpFlags(help.out);
  REQUIRE(flags.count("config") == 1);

  const std::string text = testing::ReadFile(file);
  const auto settings = ExampleSettings(text);
  std::set<std::string> named;
  for (const auto& [key, line] : settings) named.insert(key);
  for (const std::string& flag : flags) {
    if (flag == "help" || flag == "config" || not_configurable.count(flag)) {
      continue;
    }
    INFO(file << " does not name --" << flag);
    CHECK(named.count(flag) == 1);
  }

  for (const auto& [key, line] : settings) {
    testing::WriteFile(dir.File("one.conf"), Uncommented(line) + "\n");
    const Run r = RunToEnd(dir, {kBin + "/" + command, "--config",
                                 dir.File("one.conf"), "--help"});
    if (r.rc != 0 && flags.count(key) == 0) {
      // A flag of another branch (the broker's CURVE flags) not in this
      // build yet.
      WARN(command << " has no --" << key << " yet: " << line);
      continue;
    }
    INFO(line << ": " << r.err);
    CHECK(r.rc == 0);
  }
  // And the file as shipped.
  const Run as_is =
      RunToEnd(dir, {kBin + "/" + command, "--config", file, "--help"});
  INFO(as_is.err);
  CHECK(as_is.rc == 0);
}

// The units with /usr/bin/ pointing at this build's binaries, in `dir`.
void CopyUnits(const testing::TempDir& dir) {
  for (const char* unit : {"tq-broker.service", "tq-worker@.service"}) {
    std::string text =
        testing::ReadFile(kSource + "/deploy/systemd/" + std::string(unit));
    text = std::regex_replace(text, std::regex("/usr/bin/"), kBin + "/");
    testing::WriteFile(dir.File(unit), text);
  }
}

}  // namespace

TEST_CASE("SystemdUnitsPassSystemdAnalyzeVerify", "[deploy]") {
  testing::TempDir dir;
  CopyUnits(dir);
  // verify also checks that each Documentation=man: page exists.
  const Run r = RunToEnd(
      dir,
      {"/usr/bin/systemd-analyze", "verify", dir.File("tq-broker.service"),
       dir.File("tq-worker@it.service")},
      {"MANPATH=" + kBuild + "/share/man"});
  INFO("systemd-analyze verify: " << r.out << r.err);
  CHECK(r.rc == 0);
  // Unknown keys are only warnings there, with exit status 0.
  CHECK(r.err.empty());
  CHECK(r.out.empty());
}

TEST_CASE("SystemdUnitsAreHardened", "[deploy]") {
  testing::TempDir dir;
  CopyUnits(dir);
  for (const char* unit : {"tq-broker.service", "tq-worker@it.service"}) {
    // --threshold is the exposure times ten: at most 2.0, "OK".
    const Run r =
        RunToEnd(dir, {"/usr/bin/systemd-analyze", "security", "--offline=yes",
                       "--threshold=20", dir.File(unit)});
    INFO(unit << ": "
              << r.out.substr(r.out.rfind("→") == std::string::npos
                                  ? 0
                                  : r.out.rfind("→"))
              << r.err);
    CHECK(r.rc == 0);
  }
  const std::string worker =
      testing::ReadFile(kSource + "/deploy/systemd/tq-worker@.service");
  // Stop drains: SIGTERM to the worker only, time for a default-limit task.
  CHECK(worker.find("\nKillMode=mixed\n") != std::string::npos);
  CHECK(worker.find("\nTimeoutStopSec=330\n") != std::string::npos);
  CHECK(worker.find("--config /etc/tq/worker-%i.conf") != std::string::npos);
}

TEST_CASE("ExampleConfigsNameEveryFlagAndEachSettingIsAccepted", "[deploy]") {
  // --version and the worker's --check are actions, not settings.
  CheckExampleConfig("tq-broker", kSource + "/deploy/config/broker.conf",
                     {"version"});
  CheckExampleConfig("tq-worker", kSource + "/deploy/config/worker.conf",
                     {"analyse-one", "options-json", "time-limit-ms", "version",
                      "check", "check-url"});
}

TEST_CASE("EveryCommandHasAManPage", "[deploy]") {
  testing::TempDir dir;
  for (const char* cmd : {"tq-broker", "tq-worker", "tq-submit", "tq-ctl",
                          "tq-keygen", "tq-geoip", "tq-bench"}) {
    const std::string page =
        kBuild + "/share/man/man1/" + std::string(cmd) + ".1.gz";
    INFO(page);
    REQUIRE(Exists(page));
    // man renders it, with the flags from --help.
    const Run r = RunToEnd(dir, {"/usr/bin/man", "-l", page},
                           {"MANWIDTH=100", "MAN_KEEP_FORMATTING=0"});
    CHECK(r.rc == 0);
    CHECK(r.out.find("--help") != std::string::npos);
  }
  const Run ctl = RunToEnd(
      dir, {"/usr/bin/man", "-l", kBuild + "/share/man/man1/tq-ctl.1.gz"},
      {"MANWIDTH=100"});
  CHECK(ctl.out.find("SUBCOMMANDS") != std::string::npos);
  CHECK(ctl.out.find("Usage: tq-ctl purge [OPTIONS] QUEUE") !=
        std::string::npos);
  const Run broker = RunToEnd(
      dir, {"/usr/bin/man", "-l", kBuild + "/share/man/man1/tq-broker.1.gz"},
      {"MANWIDTH=100"});
  CHECK(broker.out.find("/etc/tq/broker.conf") != std::string::npos);
}

TEST_CASE("BashCompletionCompletesSubcommandsFlagsAndChoices", "[deploy]") {
  testing::TempDir dir;
  const std::string script =
      ("source " + kSource +
       "/deploy/bash-completion/tq\n"
       "t() { COMP_WORDS=(\"$@\"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1));\n"
       "  _tq; echo \"$*=${COMPREPLY[*]}\"; }\n"
       "complete -p tq-ctl tq-worker\n"
       "t tq-ctl q\n"
       "t tq-ctl --broker tcp://127.0.0.1:1 w\n"
       "t tq-ctl purge --he\n"
       "t tq-worker --conc\n"
       "t tq-worker --geo-resolver ''\n"
       "t tq-broker --config /x --synchronous n\n"
       "t tq-geoip l\n");
  const Run r = RunToEnd(dir, {"/bin/bash", "--norc", "-c", script},
                         {"PATH=" + kBin + ":/usr/bin:/bin"});
  INFO(r.out << r.err);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("complete -o filenames -F _tq tq-ctl") != std::string::npos);
  CHECK(r.out.find("\ntq-ctl q=queues\n") != std::string::npos);
  CHECK(r.out.find("\ntq-ctl --broker tcp://127.0.0.1:1 w=workers\n") !=
        std::string::npos);
  CHECK(r.out.find("\ntq-ctl purge --he=--help\n") != std::string::npos);
  CHECK(r.out.find("\ntq-worker --conc=--concurrency\n") != std::string::npos);
  CHECK(r.out.find("\ntq-worker --geo-resolver =geoip cymru\n") !=
        std::string::npos);
  CHECK(r.out.find("\ntq-broker --config /x --synchronous n=normal\n") !=
        std::string::npos);
  CHECK(r.out.find("\ntq-geoip l=lookup\n") != std::string::npos);
}

TEST_CASE("PackagesUnpackIntoAScratchRootAndRunFromThere", "[deploy]") {
  testing::TempDir dir;
  // CPack of this build: installs the components, strips, packages.
  const Run pack =
      RunToEnd(dir,
               {"/usr/bin/cpack", "--config", kBuild + "/CPackConfig.cmake",
                "-B", dir.File("packages")},
               {}, 240s);
  INFO(pack.out << pack.err);
  REQUIRE(pack.rc == 0);
  const std::string root = dir.File("root");
  for (const char* package : {"tq-broker", "tq-worker", "tq-tools"}) {
    const std::string deb =
        dir.File("packages/" + std::string(package) + "_0.1.0_amd64.deb");
    REQUIRE(Exists(deb));
    const Run x = RunToEnd(dir, {"/usr/bin/dpkg", "-x", deb, root});
    INFO(x.err);
    REQUIRE(x.rc == 0);
    // The shared libraries it needs are declared (dpkg-shlibdeps).
    const Run depends =
        RunToEnd(dir, {"/usr/bin/dpkg-deb", "-f", deb, "Depends"});
    CHECK(depends.out.find("libzmq5") != std::string::npos);
    CHECK(depends.out.find("libc6") != std::string::npos);
  }
  // The maintainer scripts are valid sh.
  for (const char* package : {"tq-broker", "tq-worker"}) {
    const std::string control = dir.File(std::string(package) + ".control");
    const Run e = RunToEnd(
        dir, {"/usr/bin/dpkg-deb", "-e",
              dir.File("packages/" + std::string(package) + "_0.1.0_amd64.deb"),
              control});
    REQUIRE(e.rc == 0);
    for (const char* script : {"postinst", "prerm", "postrm"}) {
      const Run n = RunToEnd(dir, {"/bin/sh", "-n", control + "/" + script});
      INFO(package << " " << script << ": " << n.err);
      CHECK(n.rc == 0);
    }
  }
  const Run conffiles = RunToEnd(
      dir, {"/usr/bin/dpkg-deb", "-I",
            dir.File("packages/tq-broker_0.1.0_amd64.deb"), "conffiles"});
  CHECK(conffiles.out == "/etc/tq/broker.conf\n");

  for (const std::string f :
       {"/etc/tq/broker.conf", "/usr/lib/systemd/system/tq-broker.service",
        "/usr/lib/systemd/system/tq-worker@.service",
        "/usr/lib/sysusers.d/tq-broker.conf",
        "/usr/share/doc/tq-worker/examples/worker.conf",
        "/usr/share/tq/country.mmdb", "/usr/share/man/man1/tq-ctl.1.gz",
        "/usr/share/bash-completion/completions/tq-ctl", "/usr/bin/tq-submit",
        "/usr/bin/tq-ctl", "/usr/bin/tq-keygen", "/usr/bin/tq-geoip"}) {
    INFO(f);
    CHECK(Exists(root + f));
  }

  const Run help = RunToEnd(dir, {root + "/usr/bin/tq-broker", "--help"});
  CHECK(help.rc == 0);
  CHECK(help.out.find("tq-broker: keeps the durable task queues") !=
        std::string::npos);
  const Run worker_help = RunToEnd(
      dir, {root + "/usr/bin/tq-worker", "--config",
            root + "/usr/share/doc/tq-worker/examples/worker.conf", "--help"});
  CHECK(worker_help.rc == 0);

  // The unpacked broker runs on the shipped config and finds the country
  // database the package put beside its bin/.
  testing::Process broker(
      {root + "/usr/bin/tq-broker", "--config", root + "/etc/tq/broker.conf",
       "--db", dir.File("tq.db"), "--listen", "tcp://127.0.0.1:0",
       "--ready-file", dir.File("endpoint")},
      dir.File("broker.out"), dir.File("broker.err"));
  const bool ready = testing::WaitUntil(
      [&] { return !testing::ReadFile(dir.File("endpoint")).empty(); }, 30s);
  const std::string log = testing::ReadFile(dir.File("broker.err"));
  INFO(log);
  REQUIRE(ready);
  // tq-broker looks in share/tq beside its bin/ first.
  const bool found_db =
      log.find("GeoIP database " + root +
               "/usr/bin/../share/tq/country.mmdb") != std::string::npos ||
      log.find("GeoIP database " + root + "/usr/share/tq/country.mmdb") !=
          std::string::npos;
  CHECK(found_db);
  broker.Signal(SIGTERM);
  CHECK(broker.Wait(30s) == 0);
}

}  // namespace tq
