// tq-keygen, the real binary.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "common/curve_keys.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace tq {
namespace {

using namespace std::chrono_literals;
using testing::Binary;
using testing::Process;
using testing::ReadFile;
using testing::TempDir;

struct Run {
  int code = -1;
  std::string out;
  std::string err;
};

Run Keygen(const TempDir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), Binary("tq-keygen"));
  const std::string out = dir.File("keygen.out");
  const std::string err = dir.File("keygen.err");
  Process p(args, out, err);
  auto code = p.Wait(30s);
  REQUIRE(code.has_value());
  return {*code, ReadFile(out), ReadFile(err)};
}

unsigned ModeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

TEST_CASE("KeygenWritesASecretAndAPublicCertificate", "[keygen]") {
  TempDir dir;
  const std::string keys = dir.File("keys");
  Run r = Keygen(dir, {"it-box", "--dir", keys, "--role", "worker",
                       "--countries", "IT,DE"});
  REQUIRE(r.code == 0);
  const std::string secret_path = keys + "/it-box.key_secret";
  const std::string public_path = keys + "/it-box.key";
  CHECK(ModeOf(secret_path) == 0600);
  CHECK(ModeOf(public_path) == 0644);

  auto secret = LoadSecretCurveCert(secret_path);
  REQUIRE(secret.ok());
  auto pub = LoadCurveCert(public_path);
  REQUIRE(pub.ok());
  CHECK_FALSE(pub->has_secret());
  CHECK(pub->public_key == secret->public_key);
  CHECK(pub->Meta(kMetaName) == "it-box");
  CHECK(pub->Meta(kMetaRoles) == "worker");
  CHECK(pub->Meta(kMetaCountries) == "IT,DE");
  CHECK_THAT(r.out, Catch::Contains("public key: " + pub->public_key));
}

TEST_CASE("KeygenRefusesToOverwriteWithoutForce", "[keygen]") {
  TempDir dir;
  REQUIRE(Keygen(dir, {"ops", "--dir", dir.path(), "--role", "admin,submit"})
              .code == 0);
  const std::string before = LoadCurveCert(dir.File("ops.key"))->public_key;
  CHECK(LoadCurveCert(dir.File("ops.key"))->Meta(kMetaRoles) == "submit,admin");

  Run again = Keygen(dir, {"ops", "--dir", dir.path(), "--role", "admin"});
  CHECK(again.code == 2);
  CHECK_THAT(again.err,
             Catch::Contains("already exists") && Catch::Contains("--force"));
  CHECK(LoadCurveCert(dir.File("ops.key"))->public_key == before);

  Run forced =
      Keygen(dir, {"ops", "--dir", dir.path(), "--role", "admin", "--force"});
  REQUIRE(forced.code == 0);
  auto after = LoadSecretCurveCert(dir.File("ops.key_secret"));
  REQUIRE(after.ok());
  CHECK(after->public_key != before);
  CHECK(LoadCurveCert(dir.File("ops.key"))->public_key == after->public_key);
}

TEST_CASE("KeygenTakesRolesBeforeOrAfterTheName", "[keygen]") {
  TempDir dir;
  Run r = Keygen(dir, {"--role", "worker", "box", "--role", "submit", "--dir",
                       dir.path()});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(LoadCurveCert(dir.File("box.key"))->Meta(kMetaRoles) ==
        "worker,submit");
  // A broker's own key has no role.
  REQUIRE(Keygen(dir, {"broker", "--dir", dir.path()}).code == 0);
  CHECK(LoadCurveCert(dir.File("broker.key"))->Meta(kMetaRoles).empty());
}

TEST_CASE("KeygenExplainsBadArguments", "[keygen]") {
  TempDir dir;
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const Case cases[] = {
      {{"x", "--role", "boss"}, "unknown role 'boss'"},
      {{"x", "--countries", "IT"}, "add --role worker"},
      {{"x", "--role", "worker", "--countries", "it"}, "upper case"},
      {{"../x"}, "must be 1-64"},
      {{}, "NAME is required"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.push_back("--dir");
    args.push_back(dir.path());
    Run r = Keygen(dir, args);
    INFO(r.err);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains(c.expected));
  }
  Run help = Keygen(dir, {"--help"});
  CHECK(help.code == 0);
  CHECK_THAT(help.out, Catch::Contains("--authorized-keys"));
}

}  // namespace
}  // namespace tq
