#include "broker/authorized_keys.h"

#include <catch2/catch.hpp>
#include <filesystem>

#include "common/curve_keys.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace tq {
namespace {

using testing::TempDir;
using testing::WriteFile;

// Writes DIR/FILE (a public certificate) and returns its public key.
std::string WriteKey(
    const TempDir& dir, const std::string& file,
    const std::vector<std::pair<std::string, std::string>>& metadata) {
  auto cert = GenerateCurveCert();
  REQUIRE(cert.ok());
  cert->metadata = metadata;
  REQUIRE(SaveCurveCert(*cert, dir.File(file), false, true).ok());
  return cert->public_key;
}

std::string Reasons(const std::vector<KeyFileProblem>& problems) {
  std::string out;
  for (const auto& p : problems) out += p.reason + "\n";
  return out;
}

const KeyFileProblem* ProblemOf(const std::vector<KeyFileProblem>& problems,
                                const std::string& path) {
  for (const auto& p : problems) {
    if (p.file == path) return &p;
  }
  return nullptr;
}

TEST_CASE("RolesParseAndPrint", "[auth]") {
  auto roles = ParseRoles("admin, worker");
  REQUIRE(roles.ok());
  CHECK(roles->Has(Role::kWorker));
  CHECK_FALSE(roles->Has(Role::kSubmit));
  CHECK(roles->Has(Role::kAdmin));
  CHECK(roles->ToString() == "worker,admin");
  CHECK(ParseRoles("")->empty());
  CHECK_THAT(ParseRoles("worker,root").status().message(),
             Catch::Contains("unknown role 'root'"));
}

TEST_CASE("CountriesAreUpperCaseIsoCodes", "[auth]") {
  auto countries = ParseCountries("IT, DE");
  REQUIRE(countries.ok());
  CHECK(*countries == std::vector<std::string>{"IT", "DE"});
  CHECK_FALSE(ParseCountries("it").ok());
  CHECK_FALSE(ParseCountries("generic").ok());
  CHECK_FALSE(ParseCountries("XX").ok());
  CHECK_THAT(ParseCountries("IT,IT").status().message(),
             Catch::Contains("repeated"));
}

TEST_CASE("KeyNamesAreSafeFileStems", "[auth]") {
  CHECK(IsValidKeyName("it-box.01_a"));
  CHECK_FALSE(IsValidKeyName(""));
  CHECK_FALSE(IsValidKeyName(".hidden"));
  CHECK_FALSE(IsValidKeyName("-flag"));
  CHECK_FALSE(IsValidKeyName("a/b"));
  CHECK_FALSE(IsValidKeyName("a b"));
  CHECK_FALSE(IsValidKeyName(std::string(65, 'a')));
}

TEST_CASE("DirectoryGivesEachKeyItsNameRolesAndCountries", "[auth]") {
  TempDir dir;
  const std::string it_key =
      WriteKey(dir, "it-box.key",
               {{"name", "it-box"}, {"roles", "worker"}, {"countries", "IT"}});
  const std::string any_key =
      WriteKey(dir, "any-box.key", {{"name", "any-box"}, {"roles", "worker"}});
  const std::string alice_key =
      WriteKey(dir, "alice.key", {{"name", "alice"}, {"roles", "submit"}});
  // No name in the metadata: the file's stem is the name.
  const std::string ops_key =
      WriteKey(dir, "ops.key", {{"roles", "admin,submit"}});

  std::vector<KeyFileProblem> problems;
  auto table = AuthorizedKeys::LoadDirectory(dir.path(), &problems);
  REQUIRE(table.ok());
  INFO(Reasons(problems));
  CHECK(problems.empty());
  REQUIRE(table->size() == 4);

  const AuthorizedKey* it = table->FindByPublicKey(it_key);
  REQUIRE(it != nullptr);
  CHECK(it->name == "it-box");
  CHECK(it->file == dir.File("it-box.key"));
  CHECK(it->roles.ToString() == "worker");
  CHECK(it->MayServe("IT"));
  CHECK(it->MayServe("generic"));
  CHECK_FALSE(it->MayServe("DE"));

  const AuthorizedKey* any = table->FindByName("any-box");
  REQUIRE(any != nullptr);
  CHECK(any->public_key == any_key);
  CHECK(any->MayServe("DE"));

  const AuthorizedKey* alice = table->FindByPublicKey(alice_key);
  REQUIRE(alice != nullptr);
  CHECK(alice->roles.Has(Role::kSubmit));
  CHECK_FALSE(alice->roles.Has(Role::kWorker));
  CHECK_FALSE(alice->MayServe("generic"));  // not a worker at all

  const AuthorizedKey* ops = table->FindByPublicKey(ops_key);
  REQUIRE(ops != nullptr);
  CHECK(ops->name == "ops");
  CHECK(ops->roles.Has(Role::kAdmin));
  CHECK(ops->roles.Has(Role::kSubmit));

  CHECK(table->FindByPublicKey(GenerateCurveCert()->public_key) == nullptr);
  CHECK(table->FindByName("nobody") == nullptr);
}

TEST_CASE("BadFilesAreReportedAndSkipped", "[auth]") {
  TempDir dir;
  WriteKey(dir, "good.key", {{"roles", "worker"}});
  WriteKey(dir, "noroles.key", {{"name", "noroles"}});
  WriteKey(dir, "boss.key", {{"roles", "boss"}});
  WriteKey(dir, "badname.key", {{"name", "a b"}, {"roles", "worker"}});
  WriteKey(dir, "submitter.key", {{"roles", "submit"}, {"countries", "IT"}});
  WriteKey(dir, "lower.key", {{"roles", "worker"}, {"countries", "it"}});
  WriteFile(dir.File("garbage.key"), "curve\n    public-key = \"short\"\n");
  WriteFile(dir.File("README"), "keys live here\n");
  WriteFile(dir.File(".good.key.swp"), "editor junk");  // silently ignored
  auto secret = GenerateCurveCert();
  REQUIRE(
      SaveCurveCert(*secret, dir.File("leaked.key_secret"), true, false).ok());
  REQUIRE(SaveCurveCert(*secret, dir.File("twin.key"), true, false).ok());
  std::filesystem::create_directory(dir.File("sub.key"));

  std::vector<KeyFileProblem> problems;
  auto table = AuthorizedKeys::LoadDirectory(dir.path(), &problems);
  REQUIRE(table.ok());
  INFO(Reasons(problems));
  REQUIRE(table->size() == 1);
  CHECK(table->keys()[0].name == "good");
  CHECK(problems.size() == 10);

  auto reason = [&](const std::string& file) {
    const KeyFileProblem* p = ProblemOf(problems, dir.File(file));
    return p ? p->reason : std::string("(not reported)");
  };
  CHECK_THAT(reason("noroles.key"), Catch::Contains("names no role"));
  CHECK_THAT(reason("boss.key"), Catch::Contains("unknown role 'boss'"));
  CHECK_THAT(reason("badname.key"), Catch::Contains("name 'a b'"));
  CHECK_THAT(reason("submitter.key"),
             Catch::Contains("countries apply to worker keys only"));
  CHECK_THAT(reason("lower.key"), Catch::Contains("upper case"));
  CHECK_THAT(reason("garbage.key"),
             Catch::StartsWith(dir.File("garbage.key") + ":2: public-key"));
  CHECK_THAT(reason("README"), Catch::Contains("does not end in .key"));
  CHECK_THAT(reason("leaked.key_secret"), Catch::Contains("secret key file"));
  CHECK_THAT(reason("twin.key"), Catch::Contains("holds a secret key"));
  CHECK_THAT(reason("sub.key"), Catch::Contains("not a regular file"));
  for (const auto& p : problems) {
    CHECK_THAT(p.reason, Catch::StartsWith(p.file));
  }
}

TEST_CASE("DuplicateKeysAndNamesAreBothRefused", "[auth]") {
  TempDir dir;
  auto cert = GenerateCurveCert();
  REQUIRE(cert.ok());
  cert->metadata = {{"roles", "worker"}};
  REQUIRE(SaveCurveCert(*cert, dir.File("a.key"), false, false).ok());
  cert->metadata = {{"roles", "admin"}};  // same key, more power
  REQUIRE(SaveCurveCert(*cert, dir.File("b.key"), false, false).ok());
  WriteKey(dir, "c.key", {{"name", "box"}, {"roles", "worker"}});
  WriteKey(dir, "d.key", {{"name", "box"}, {"roles", "worker"}});
  WriteKey(dir, "e.key", {{"roles", "submit"}});

  std::vector<KeyFileProblem> problems;
  auto table = AuthorizedKeys::LoadDirectory(dir.path(), &problems);
  REQUIRE(table.ok());
  INFO(Reasons(problems));
  REQUIRE(table->size() == 1);
  CHECK(table->keys()[0].name == "e");
  CHECK(table->FindByPublicKey(cert->public_key) == nullptr);
  CHECK(table->FindByName("box") == nullptr);
  REQUIRE(problems.size() == 4);
  CHECK_THAT(ProblemOf(problems, dir.File("a.key"))->reason,
             Catch::Contains("public key is also in another file"));
  CHECK_THAT(ProblemOf(problems, dir.File("b.key"))->reason,
             Catch::Contains("public key is also in another file"));
  CHECK_THAT(ProblemOf(problems, dir.File("d.key"))->reason,
             Catch::Contains("name 'box' is also used"));
}

TEST_CASE("MissingDirectoryIsAnError", "[auth]") {
  TempDir dir;
  std::vector<KeyFileProblem> problems;
  auto none = AuthorizedKeys::LoadDirectory(dir.File("nope"), &problems);
  CHECK(none.status().code() == Status::Code::kNotFound);
  WriteFile(dir.File("file"), "");
  auto file = AuthorizedKeys::LoadDirectory(dir.File("file"), &problems);
  CHECK(file.status().code() == Status::Code::kInvalidArgument);
  auto empty = AuthorizedKeys::LoadDirectory(dir.path(), &problems);
  REQUIRE(empty.ok());
  CHECK(empty->size() == 0);
}

TEST_CASE("ReloadBuildsANewTableAndNamesTheRevokedKeys", "[auth]") {
  TempDir dir;
  const std::string keep = WriteKey(dir, "keep.key", {{"roles", "worker"}});
  const std::string drop = WriteKey(dir, "drop.key", {{"roles", "worker"}});
  const std::string rekey = WriteKey(dir, "rekey.key", {{"roles", "submit"}});
  auto before = AuthorizedKeys::LoadDirectory(dir.path(), nullptr);
  REQUIRE(before.ok());
  REQUIRE(before->size() == 3);

  std::filesystem::remove(dir.File("drop.key"));
  const std::string rekeyed = WriteKey(dir, "rekey.key", {{"roles", "submit"}});
  const std::string added = WriteKey(dir, "new.key", {{"roles", "admin"}});
  auto after = AuthorizedKeys::LoadDirectory(dir.path(), nullptr);
  REQUIRE(after.ok());

  // The old table is untouched: the caller decides when to swap.
  CHECK(before->FindByPublicKey(drop) != nullptr);
  CHECK(after->FindByPublicKey(drop) == nullptr);
  CHECK(after->FindByPublicKey(keep) != nullptr);
  CHECK(after->FindByPublicKey(added) != nullptr);
  CHECK(after->FindByName("rekey")->public_key == rekeyed);

  auto revoked = AuthorizedKeys::Revoked(*before, *after);
  std::vector<std::string> names;
  for (const auto& k : revoked) names.push_back(k.name);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"drop", "rekey"});
  CHECK(AuthorizedKeys::Revoked(*after, *after).empty());
}

TEST_CASE("DiffNamesTheKeysAddedRemovedAndChanged", "[auth]") {
  TempDir dir;
  WriteKey(dir, "same.key", {{"roles", "worker"}});
  WriteKey(dir, "drop.key", {{"roles", "worker"}});
  WriteKey(dir, "rekey.key", {{"roles", "submit"}});
  WriteKey(dir, "box.key", {{"roles", "worker"}, {"countries", "IT"}});
  auto before = AuthorizedKeys::LoadDirectory(dir.path(), nullptr);
  REQUIRE(before.ok());

  std::filesystem::remove(dir.File("drop.key"));
  WriteKey(dir, "rekey.key", {{"roles", "submit,admin"}});
  WriteKey(dir, "box.key", {{"roles", "worker"}, {"countries", "IT,FR"}});
  WriteKey(dir, "new.key", {{"roles", "admin"}});
  auto after = AuthorizedKeys::LoadDirectory(dir.path(), nullptr);
  REQUIRE(after.ok());

  const auto changes = AuthorizedKeys::Diff(*before, *after);
  CHECK(changes.added == std::vector<std::string>{"new"});
  CHECK(changes.removed == std::vector<std::string>{"drop"});
  REQUIRE(changes.changed.size() == 2);
  CHECK(changes.changed[0] == "box: new public key; countries IT -> IT,FR");
  CHECK(changes.changed[1] ==
        "rekey: new public key; roles submit -> submit,admin");
  const auto none = AuthorizedKeys::Diff(*after, *after);
  CHECK(none.added.empty());
  CHECK(none.removed.empty());
  CHECK(none.changed.empty());
}

}  // namespace
}  // namespace tq
