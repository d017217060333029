// --broker-key and --key as every client binary reads them: which go
// together, and what comes of the files they name. The messages are the
// ones the programs print after their names.
#include "client/curve_flags.h"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/curve_keys.h"
#include "tests/support/temp_dir.h"

namespace tq {
namespace {

using testing::TempDir;

// A key pair saved as DIR/NAME.key and DIR/NAME.key_secret.
CurveCert SaveKeyPair(const TempDir& dir, const std::string& name) {
  auto cert = GenerateCurveCert();
  REQUIRE(cert.ok());
  cert->SetMeta(kMetaName, name);
  REQUIRE(SaveCurveCert(*cert, dir.File(name + kPublicKeySuffix), false, false)
              .ok());
  REQUIRE(SaveCurveCert(*cert, dir.File(name + kSecretKeySuffix), true, false)
              .ok());
  return std::move(cert).value();
}

std::string KeysError(const CurveFlags& flags) {
  auto keys = CurveKeysFromFlags(flags);
  REQUIRE_FALSE(keys.ok());
  CHECK(keys.status().code() == Status::Code::kInvalidArgument);
  return keys.status().message();
}

std::string Parse(const std::vector<std::string>& args, CurveFlags* flags) {
  CLI::App app{"client"};
  AddCurveFlags(app, flags);
  std::vector<const char*> argv = {"client"};
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

}  // namespace

TEST_CASE("NoCurveFlagsMeanNoKeys", "[curve_flags]") {
  CHECK(ValidateCurveFlags({}).ok());
  auto keys = CurveKeysFromFlags({});
  REQUIRE(keys.ok());
  CHECK_FALSE(keys->enabled());
}

TEST_CASE("KeyAndBrokerKeyGoTogether", "[curve_flags]") {
  CurveFlags key_only;
  key_only.key = "me.key_secret";
  CHECK(ValidateCurveFlags(key_only).message() ==
        "--key (or $TQ_KEY) needs --broker-key KEY_OR_FILE (or "
        "$TQ_BROKER_KEY): the broker's public key, e.g. broker.key");
  CurveFlags broker_only;
  broker_only.broker_key = "broker.key";
  CHECK(ValidateCurveFlags(broker_only).message() ==
        "--broker-key (or $TQ_BROKER_KEY) needs --key FILE (or $TQ_KEY): "
        "this client's NAME.key_secret, made by tq-keygen NAME");
  // Checked before any file is read: neither file exists.
  CHECK(KeysError(key_only) == ValidateCurveFlags(key_only).message());
  CHECK(KeysError(broker_only) == ValidateCurveFlags(broker_only).message());
}

TEST_CASE("KeyFilesBecomeTheThreeKeys", "[curve_flags]") {
  TempDir dir;
  const CurveCert broker = SaveKeyPair(dir, "broker");
  const CurveCert me = SaveKeyPair(dir, "me");
  CurveFlags flags;
  flags.broker_key = dir.File("broker.key");
  flags.key = dir.File("me.key_secret");
  auto keys = CurveKeysFromFlags(flags);
  REQUIRE(keys.ok());
  CHECK(keys->enabled());
  CHECK(keys->broker_public_key == broker.public_key);
  CHECK(keys->client_public_key == me.public_key);
  CHECK(keys->client_secret_key == me.secret_key);
}

TEST_CASE("BrokerKeyMayBeTheZ85TextItself", "[curve_flags]") {
  TempDir dir;
  const CurveCert broker = SaveKeyPair(dir, "broker");
  SaveKeyPair(dir, "me");
  CurveFlags flags;
  flags.broker_key = broker.public_key;
  flags.key = dir.File("me.key_secret");
  auto keys = CurveKeysFromFlags(flags);
  REQUIRE(keys.ok());
  CHECK(keys->broker_public_key == broker.public_key);
}

TEST_CASE("PublicFileGivenAsKeyNamesTheSecretFile", "[curve_flags]") {
  TempDir dir;
  SaveKeyPair(dir, "broker");
  SaveKeyPair(dir, "me");
  CurveFlags flags;
  flags.broker_key = dir.File("broker.key");
  flags.key = dir.File("me.key");
  CHECK(KeysError(flags) == "--key: " + dir.File("me.key") +
                                " holds only a public key (its secret is in " +
                                dir.File("me.key_secret") + ")");
}

TEST_CASE("SecretFileOthersMayReadIsRefused", "[curve_flags]") {
  TempDir dir;
  SaveKeyPair(dir, "broker");
  SaveKeyPair(dir, "me");
  const std::string secret = dir.File("me.key_secret");
  REQUIRE(chmod(secret.c_str(), 0640) == 0);
  CurveFlags flags;
  flags.broker_key = dir.File("broker.key");
  flags.key = secret;
  CHECK(KeysError(flags) == "--key: " + secret +
                                " holds a secret key but its mode 0640 lets "
                                "others read it: chmod 600 " +
                                secret);
}

TEST_CASE("MissingOrMalformedFilesNameTheFlag", "[curve_flags]") {
  TempDir dir;
  SaveKeyPair(dir, "broker");
  SaveKeyPair(dir, "me");
  CurveFlags flags;
  flags.broker_key = dir.File("nope.key");
  flags.key = dir.File("me.key_secret");
  CHECK(KeysError(flags) == "--broker-key: '" + dir.File("nope.key") +
                                "' is neither a Z85 public key nor a key file");
  flags.broker_key = dir.File("broker.key");
  flags.key = dir.File("nope.key_secret");
  CHECK(KeysError(flags) ==
        "--key: no such key file: " + dir.File("nope.key_secret"));
  // Not quite a key: one character short.
  flags.broker_key = std::string(kZ85KeyLength - 1, 'a');
  flags.key = dir.File("me.key_secret");
  CHECK(KeysError(flags).rfind("--broker-key: ", 0) == 0);
}

TEST_CASE("OwnPublicKeyAsBrokerKeyIsRefused", "[curve_flags]") {
  TempDir dir;
  SaveKeyPair(dir, "me");
  CurveFlags flags;
  flags.broker_key = dir.File("me.key");
  flags.key = dir.File("me.key_secret");
  CHECK(KeysError(flags) == "--broker-key is the public key of --key " +
                                dir.File("me.key_secret") +
                                " itself; give the broker's key (its "
                                "broker.key file)");
}

TEST_CASE("CurveFlagsComeFromTheEnvironmentAndFlagsWin", "[curve_flags]") {
  ScopedEnv broker_key(kBrokerKeyEnvVar, "from-env.key");
  ScopedEnv key(kKeyEnvVar, "from-env.key_secret");
  CurveFlags from_env;
  REQUIRE(Parse({}, &from_env).empty());
  CHECK(from_env.broker_key == "from-env.key");
  CHECK(from_env.key == "from-env.key_secret");
  CurveFlags given;
  REQUIRE(Parse({"--broker-key", "b.key", "--key", "me.key_secret"}, &given)
              .empty());
  CHECK(given.broker_key == "b.key");
  CHECK(given.key == "me.key_secret");
}

}  // namespace tq
