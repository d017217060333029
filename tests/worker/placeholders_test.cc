// {outdir}, {referer}, {useragent}, {proxy}, {timeout} substitution in --exec
// templates, and gathering what a tool wrote into its {outdir}.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"
#include "worker/command_line.h"
#include "worker/outdir_gather.h"

namespace tq {
namespace {

TEST_CASE("EveryPlaceholderIsSubstitutedWithinItsWord", "[placeholders]") {
  auto t = CommandTemplate::Parse(
      "thug -F -n {outdir} -u {useragent} -r {referer} -p {proxy} "
      "-T {timeout} --x={url}! {unknown}");
  REQUIRE(t.ok());
  CHECK(t->uses_outdir());
  Placeholders v;
  v.url = "http://a/ b;rm -rf";
  v.outdir = "/w/task-1";
  v.useragent = "win7ie90";
  v.referer = "http://r/";
  v.proxy = "socks5://p:1080";
  v.timeout = "30";
  std::vector<std::string> argv;
  t->ExpandInto(v, &argv);
  CHECK(argv == std::vector<std::string>{
                    "thug", "-F", "-n", "/w/task-1", "-u", "win7ie90", "-r",
                    "http://r/", "-p", "socks5://p:1080", "-T", "30",
                    "--x=http://a/ b;rm -rf!", "{unknown}"});
}

TEST_CASE("EmptyValuesStayOneEmptyArgument", "[placeholders]") {
  auto t = CommandTemplate::Parse("tool -r {referer} {url}");
  REQUIRE(t.ok());
  CHECK_FALSE(t->uses_outdir());
  Placeholders v;
  v.url = "http://a/";
  std::vector<std::string> argv;
  t->ExpandInto(v, &argv);
  CHECK(argv == std::vector<std::string>{"tool", "-r", "", "http://a/"});
}

TEST_CASE("GatherEmbedsSmallFilesAndListsLargeOnes", "[placeholders]") {
  testing::TempDir dir;
  const std::string out = dir.File("out");
  std::filesystem::create_directories(out + "/a");
  std::ofstream(out + "/a/analysis.json") << R"({"url": "http://x/"})";
  std::ofstream(out + "/big.bin") << std::string(2000, '\x01');
  std::ofstream(out + "/note.txt") << "hello";
  GatherLimits limits;
  limits.max_file_bytes = 1000;
  const auto g = GatherOutdir(out, limits);
  CHECK(g["analysis"]["url"] == "http://x/");
  CHECK(g["analysis_file"] == "a/analysis.json");
  REQUIRE(g["files"].size() == 3);
  CHECK(g["files"][0]["name"] == "a/analysis.json");
  CHECK(g["files"][1]["name"] == "big.bin");
  CHECK(g["files"][1]["size"] == 2000);
  CHECK(g["files"][1]["content_omitted"] ==
        "larger than the per-file cap of 1000 bytes");
  CHECK(g["files"][2]["content"] == "hello");
  CHECK(g["files"][2]["sha256"] ==
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
}

TEST_CASE("GatherFilesAttachesWithinCapsAndNamesWhatIsNot", "[placeholders]") {
  testing::TempDir dir;
  const std::string out = dir.File("out");
  std::filesystem::create_directories(out + "/a");
  std::ofstream(out + "/a/analysis.json") << R"({"url": "http://x/"})";
  std::ofstream(out + "/big.bin") << std::string(2000, '\x01');
  std::ofstream(out + "/note.txt") << "hello";
  std::ofstream(out + "/z.txt") << std::string(990, 'z');
  AttachLimits limits;
  limits.max_file_bytes = 1000;
  limits.max_total_bytes = 1000;
  std::vector<ResultFile> files;
  const auto g = GatherOutdirFiles(out, limits, &files);
  CHECK(g["analysis"]["url"] == "http://x/");
  REQUIRE(g["files"].size() == 4);
  CHECK(g["files"][0]["attached"] == true);
  CHECK_FALSE(g["files"][0].contains("content"));
  CHECK(g["files"][1]["error"].get<std::string>().find("per-file cap") !=
        std::string::npos);
  CHECK(g["files"][3]["error"].get<std::string>().find("per-task cap") !=
        std::string::npos);
  CHECK(g["file_errors"].size() == 2);
  REQUIRE(files.size() == 2);
  CHECK(files[0].name == "a/analysis.json");
  CHECK(files[1].name == "note.txt");
  CHECK(files[1].content == "hello");
  CHECK(files[1].sha256 ==
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
}

TEST_CASE("Base64MatchesRfc4648", "[placeholders]") {
  CHECK(Base64("") == "");
  CHECK(Base64("f") == "Zg==");
  CHECK(Base64("fo") == "Zm8=");
  CHECK(Base64("foobar") == "Zm9vYmFy");
}

}  // namespace
}  // namespace tq
