#include "common/curve_keys.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace tq {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

unsigned ModeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

CurveCert NewCert() {
  auto cert = GenerateCurveCert();
  REQUIRE(cert.ok());
  return cert.value();
}

// What czmq's zcert_save_secret writes (keys from libzmq's test vectors).
constexpr const char* kCzmqSecret =
    "#   ****  Generated on 2015-02-16 01:23:56 by CZMQ  ****\n"
    "#   ZeroMQ CURVE **Secret** Certificate\n"
    "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its "
    "permissions.\n"
    "\n"
    "metadata\n"
    "    name = \"Pieter Hintjens\"\n"
    "    email = 'ph@imatix.com'    # single quotes are ZPL too\n"
    "    version = 1\n"
    "curve\n"
    "    public-key = \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"\n"
    "    secret-key = \"JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6\"\n";

TEST_CASE("CurveIsAvailableInThisLibzmq", "[curve]") {
  CHECK(CurveAvailable());
}

TEST_CASE("Z85KeysAreRecognised", "[curve]") {
  CurveCert cert = NewCert();
  CHECK(IsZ85Key(cert.public_key));
  CHECK(IsZ85Key(cert.secret_key));
  CHECK_FALSE(IsZ85Key(""));
  CHECK_FALSE(IsZ85Key(cert.public_key.substr(1)));
  CHECK_FALSE(IsZ85Key(cert.public_key + "0"));
  CHECK_FALSE(IsZ85Key(std::string(40, '~')));  // not in the alphabet
  CHECK_FALSE(IsZ85Key(std::string(40, '#')));  // 85^5 - 1 > 2^32
}

TEST_CASE("GeneratedCertRoundTripsThroughItsTwoFiles", "[curve]") {
  TempDir dir;
  CurveCert cert = NewCert();
  cert.SetMeta(kMetaName, "it-box");
  cert.SetMeta(kMetaRoles, "worker");
  cert.SetMeta(kMetaCountries, "IT,DE");
  const std::string secret_path = dir.File("it-box.key_secret");
  const std::string public_path = dir.File("it-box.key");
  REQUIRE(SaveCurveCert(cert, secret_path, true, false).ok());
  REQUIRE(SaveCurveCert(cert, public_path, false, false).ok());
  CHECK(ModeOf(secret_path) == 0600);
  CHECK(ModeOf(public_path) == 0644);
  CHECK(ReadFile(public_path).find("secret-key") == std::string::npos);
  CHECK(ReadFile(secret_path).find("**Secret** Certificate") !=
        std::string::npos);

  auto pub = LoadCurveCert(public_path);
  REQUIRE(pub.ok());
  CHECK(pub->public_key == cert.public_key);
  CHECK_FALSE(pub->has_secret());
  CHECK(pub->metadata == cert.metadata);

  auto sec = LoadSecretCurveCert(secret_path);
  REQUIRE(sec.ok());
  CHECK(sec->public_key == cert.public_key);
  CHECK(sec->secret_key == cert.secret_key);
  CHECK(sec->Meta(kMetaCountries) == "IT,DE");
  CHECK(sec->Meta("absent").empty());
}

TEST_CASE("SaveRefusesToOverwriteUnlessAsked", "[curve]") {
  TempDir dir;
  const std::string path = dir.File("a.key");
  CurveCert first = NewCert();
  CurveCert second = NewCert();
  REQUIRE(SaveCurveCert(first, path, false, false).ok());
  Status again = SaveCurveCert(second, path, false, false);
  CHECK(again.code() == Status::Code::kInvalidArgument);
  CHECK(again.message().find("already exists") != std::string::npos);
  CHECK(LoadCurveCert(path)->public_key == first.public_key);
  REQUIRE(SaveCurveCert(second, path, false, true).ok());
  CHECK(LoadCurveCert(path)->public_key == second.public_key);
  // No temporary file is left behind either way.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);
}

TEST_CASE("AFileCzmqWroteIsRead", "[curve]") {
  auto cert = ParseCurveCert(kCzmqSecret, "czmq.cert");
  REQUIRE(cert.ok());
  CHECK(cert->public_key == "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
  CHECK(cert->secret_key == "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6");
  CHECK(cert->Meta("name") == "Pieter Hintjens");
  CHECK(cert->Meta("email") == "ph@imatix.com");
  CHECK(cert->Meta("version") == "1");
}

TEST_CASE("MalformedFilesAreReportedWithFileAndLine", "[curve]") {
  const std::string pk = "    public-key = \"" + NewCert().public_key + "\"\n";
  struct Case {
    std::string text;
    std::string expected;  // in the message
  };
  const Case cases[] = {
      {"curve\n\tpublic-key = \"x\"\n", "f.key:2: tab in indentation"},
      {"curve\n   public-key = \"x\"\n", "f.key:2: indent by 4 spaces"},
      {"curve\n    public-key = \"abc\n", "f.key:2: missing closing \""},
      {"curve\n    public-key = \"tooshort\"\n", "f.key:2: public-key is not"},
      {"metadata\n    name = \"a\"\n", "f.key: no curve/public-key"},
      {"    public-key = \"x\"\n", "f.key:1: public-key is outside any"},
      {"curve\n" + pk + "    secret-key = 'nope'\n",
       "f.key:3: secret-key is not"},
      {"metadata\n    name = \"a\" junk\ncurve\n" + pk,
       "f.key:2: unexpected text after the closing quote"},
      {"metadata\n    name = a\n    name = b\ncurve\n" + pk,
       "f.key:3: metadata name repeated"},
      {"curve\n" + pk + pk, "f.key:3: public-key repeated"},
      {"curve = x\n" + pk, "f.key:1: section curve takes no value"},
      {"curve\n    other\n        deeper = 1\n", "f.key:3: nested too deep"},
      {"curve\n    !bad = 1\n", "f.key:2: expected a name"},
      {"curve\n" + pk + "    secret-key = \"" + NewCert().secret_key + "\"\n",
       "f.key: the secret key does not belong to the public key"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    auto cert = ParseCurveCert(c.text, "f.key");
    REQUIRE_FALSE(cert.ok());
    CHECK(cert.status().code() == Status::Code::kCorruption);
    CHECK_THAT(cert.status().message(), Catch::Contains(c.expected));
  }
}

TEST_CASE("LoadingReportsMissingAndOversizedFiles", "[curve]") {
  TempDir dir;
  auto missing = LoadCurveCert(dir.File("none.key"));
  CHECK(missing.status().code() == Status::Code::kNotFound);
  WriteFile(dir.File("big.key"), std::string(100 * 1024, '#'));
  CHECK(LoadCurveCert(dir.File("big.key")).status().code() ==
        Status::Code::kTooLarge);
  auto a_dir = LoadCurveCert(dir.path());
  CHECK(a_dir.status().code() == Status::Code::kIoError);
}

TEST_CASE("SecretLoaderRefusesPublicOnlyFilesAndOpenModes", "[curve]") {
  TempDir dir;
  CurveCert cert = NewCert();
  REQUIRE(SaveCurveCert(cert, dir.File("w.key"), false, false).ok());
  REQUIRE(SaveCurveCert(cert, dir.File("w.key_secret"), true, false).ok());

  auto pub = LoadSecretCurveCert(dir.File("w.key"));
  REQUIRE_FALSE(pub.ok());
  CHECK_THAT(pub.status().message(),
             Catch::Contains("holds only a public key") &&
                 Catch::Contains("w.key_secret"));

  REQUIRE(chmod(dir.File("w.key_secret").c_str(), 0644) == 0);
  auto open = LoadSecretCurveCert(dir.File("w.key_secret"));
  REQUIRE_FALSE(open.ok());
  CHECK_THAT(open.status().message(),
             Catch::Contains("0644") && Catch::Contains("chmod 600"));
  REQUIRE(chmod(dir.File("w.key_secret").c_str(), 0400) == 0);
  CHECK(LoadSecretCurveCert(dir.File("w.key_secret")).ok());
}

TEST_CASE("PublicKeyArgumentsAreTextOrAFile", "[curve]") {
  TempDir dir;
  CurveCert cert = NewCert();
  REQUIRE(SaveCurveCert(cert, dir.File("b.key"), false, false).ok());
  CHECK(ResolvePublicKey(cert.public_key).value() == cert.public_key);
  CHECK(ResolvePublicKey(dir.File("b.key")).value() == cert.public_key);
  auto bad = ResolvePublicKey("neither");
  CHECK(bad.status().code() == Status::Code::kNotFound);
  CHECK_THAT(bad.status().message(), Catch::Contains("neither a Z85"));
}

TEST_CASE("MetadataThatZplCannotHoldIsRefused", "[curve]") {
  CurveCert cert = NewCert();
  cert.SetMeta("name", "a \"quoted\" name");
  CHECK_FALSE(FormatCurveCert(cert, false).ok());
  cert.metadata.clear();
  cert.SetMeta("bad name", "x");
  CHECK_FALSE(FormatCurveCert(cert, false).ok());
}

}  // namespace
}  // namespace tq
