// Config files (--config FILE): the line-by-line check, and CLI11 reading
// the file under it, with flags winning over the file.
#include "common/config_file.h"

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace tq {
namespace {

const std::map<std::string, ConfigKey> kKeys = {
    {"db", {}},
    {"heartbeat-interval", {}},
    {"noop", {false, true}},
    {"tags", {true, false}},
    {"config", {true, true, false}},
};

std::string Check(const std::string& text) {
  const Status s = CheckConfigText(text, "x.conf", kKeys);
  return s.ok() ? "" : s.message();
}

// A small app with a config file, as the daemons set it up.
struct App {
  CLI::App app{"test"};
  std::string db = "default.db";
  double interval = 1;
  bool noop = false;
  std::vector<std::string> tags;

  explicit App(const std::string& default_path) {
    app.option_defaults()->multi_option_policy(
        CLI::MultiOptionPolicy::TakeLast);
    app.add_option("--db", db);
    app.add_option("--heartbeat-interval", interval);
    app.add_flag("--noop", noop);
    app.add_option("--tags", tags)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    AddConfigFile(app, default_path);
  }

  // "" if the parse succeeds, else CLI11's message.
  std::string Parse(std::vector<std::string> args) {
    std::vector<const char*> argv = {"test"};
    for (const auto& a : args) argv.push_back(a.c_str());
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      return e.what();
    }
    return "";
  }
};

}  // namespace

TEST_CASE("CommentsBlankLinesAndQuotedValuesPassTheCheck", "[config_file]") {
  CHECK(Check("# a comment\n; another\n\n  db = /var/lib/tq/tq.db\n"
              "heartbeat-interval=2.5 # seconds\nnoop\nnoop = false\n"
              "db = \"/a b/c,d.db\"\ntags = [a, b]\ntags = [\n c,\n d]\n") ==
        "");
}

TEST_CASE("UnknownKeyIsNamedWithItsLineNumber", "[config_file]") {
  CHECK(Check("db = x\n\n# c\nbogus = 1\n") ==
        "x.conf:4: unknown key 'bogus' (keys are the long flags without "
        "their dashes; --help lists them)");
  CHECK(Check("--db = x\n") ==
        "x.conf:1: unknown key '--db' (did you mean db?)");
  CHECK(Check("db = x\nheartbeat_interval = 2\n") ==
        "x.conf:2: unknown key 'heartbeat_interval' (did you mean "
        "heartbeat-interval?)");
  CHECK(Check("config = y.conf\n") ==
        "x.conf:1: 'config' cannot be set in a config file");
}

TEST_CASE("BadLinesAreRefusedWithTheirLineNumber", "[config_file]") {
  CHECK(Check("[broker]\ndb = x\n") ==
        "x.conf:1: sections are not supported ([broker]): put every key at "
        "the top level");
  CHECK(Check("noop\ndb\n") == "x.conf:2: 'db' needs a value");
  CHECK(Check("db = a b\n") ==
        "x.conf:1: 'db' takes one value: put quotes around a value with "
        "spaces or commas (db = \"a b\")");
  CHECK(Check("db = a,b\n").rfind("x.conf:1: 'db' takes one value", 0) == 0);
  CHECK(Check("db = [a, b]\n") == "x.conf:1: 'db' takes one value, not a list");
  CHECK(Check("db = \"a # b\"\n") ==
        "x.conf:1: unterminated quote in the value of 'db' (a # starts a "
        "comment, even inside quotes)");
  CHECK(Check("tags = [a,\nb\n") == "x.conf: a list is not closed with ]");
  CHECK(Check("= 3\n") == "x.conf:1: a line with no key");
}

TEST_CASE("FileSetsFlagsAndTheCommandLineWins", "[config_file]") {
  testing::TempDir dir;
  testing::WriteFile(dir.File("a.conf"),
                     "db = \"/srv/tq db/x.db\"\nheartbeat-interval = 7\n"
                     "noop = true\ntags = [x, y]\n");
  App a(dir.File("absent.conf"));
  REQUIRE(a.Parse({"--config", dir.File("a.conf")}) == "");
  CHECK(a.db == "/srv/tq db/x.db");
  CHECK(a.interval == 7);
  CHECK(a.noop);
  CHECK(a.tags == std::vector<std::string>{"x", "y"});

  App b(dir.File("absent.conf"));
  REQUIRE(b.Parse({"--heartbeat-interval", "3", "--config", dir.File("a.conf"),
                   "--db", "cli.db"}) == "");
  CHECK(b.db == "cli.db");
  CHECK(b.interval == 3);
  CHECK(b.noop);
}

TEST_CASE("DefaultFileIsReadOnlyIfItExists", "[config_file]") {
  testing::TempDir dir;
  App missing(dir.File("absent.conf"));
  CHECK(missing.Parse({}) == "");
  CHECK(missing.db == "default.db");

  testing::WriteFile(dir.File("default.conf"), "db = from-default.db\n");
  App present(dir.File("default.conf"));
  CHECK(present.Parse({}) == "");
  CHECK(present.db == "from-default.db");

  // A given --config replaces the default file.
  testing::WriteFile(dir.File("other.conf"), "heartbeat-interval = 9\n");
  App other(dir.File("default.conf"));
  CHECK(other.Parse({"--config", dir.File("other.conf")}) == "");
  CHECK(other.db == "default.db");
  CHECK(other.interval == 9);
}

TEST_CASE("MissingConfigFileGivenOnTheCommandLineIsAnError", "[config_file]") {
  testing::TempDir dir;
  App a(dir.File("absent.conf"));
  CHECK(a.Parse({"--config", dir.File("nope.conf")}) ==
        dir.File("nope.conf") + " was not readable (missing?)");
}

TEST_CASE("BadDefaultFileIsAnErrorWithItsNameAndLine", "[config_file]") {
  testing::TempDir dir;
  testing::WriteFile(dir.File("default.conf"), "db = x\nwrong = 1\n");
  App a(dir.File("default.conf"));
  CHECK(a.Parse({}) == dir.File("default.conf") +
                           ":2: unknown key 'wrong' (keys are the long flags "
                           "without their dashes; --help lists them)");
  App b(dir.File("absent.conf"));
  CHECK(b.Parse({"--config", dir.File("default.conf")}) ==
        dir.File("default.conf") +
            ":2: unknown key 'wrong' (keys are the long flags without their "
            "dashes; --help lists them)");
}

}  // namespace tq
