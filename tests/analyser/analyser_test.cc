// The built-in analyser against the fixture web server on loopback
// (tests/support/fixture_server.py): each test asserts the fields it expects
// in the JSON log.
#include "analyser/analyser.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "analyser/content_info.h"
#include "analyser/html_scan.h"
#include "tests/support/fixture_server.h"
#include "tests/support/temp_dir.h"

namespace tq {
namespace {

using nlohmann::json;
using testing::FixtureServer;
using testing::TempDir;

// One server for the whole binary: starting Python per test costs ~100 ms.
const FixtureServer& Server() {
  static TempDir dir;
  static FixtureServer server(dir);
  return server;
}

AnalysisReport Analyse(const std::string& url,
                       std::map<std::string, std::string> options = {}) {
  auto parsed = ParseAnalysisOptions(options, Millis(60'000));
  REQUIRE(parsed.ok());
  AnalysisReport report = AnalyseUrl(url, *parsed);
  INFO(report.log.dump(2));
  return report;
}

// The entries of `list` whose `key` equals `value`.
std::vector<json> Where(const json& list, const std::string& key,
                        const std::string& value) {
  std::vector<json> out;
  for (const auto& e : list) {
    if (e.value(key, "") == value) out.push_back(e);
  }
  return out;
}

bool HasBehavior(const json& log, const std::string& prefix) {
  for (const auto& b : log["behavior"]) {
    if (b["description"].get<std::string>().rfind(prefix, 0) == 0) return true;
  }
  return false;
}

bool HasLimit(const json& log, const std::string& limit) {
  for (const auto& l : log["limits_reached"]) {
    if (l["limit"] == limit) return true;
  }
  return false;
}

TEST_CASE("PlainPageIsRecordedWithDigestsAndThugShape", "[analyser]") {
  const std::string url = Server().Url("/plain.html");
  const json log = Analyse(url).log;
  CHECK(log["url"] == url);
  CHECK(log["logtype"] == "json-log");
  CHECK(log["analyser"]["name"] == "tq-analyser");
  CHECK(log["analyser"]["version"] == kAnalyserVersion);
  CHECK(log["analyser"]["personality"]["name"] == "win7ie90");
  CHECK_FALSE(log.contains("error"));
  REQUIRE(log["locations"].size() == 1);
  const json& loc = log["locations"][0];
  const std::string body =
      "<!doctype html><html><head></head><body><p>hello</p></body></html>";
  const Digests d = ComputeDigests(body);
  CHECK(loc["url"] == url);
  CHECK(loc["status"] == 200);
  CHECK(loc["content-type"] == "text/html");
  CHECK(loc["mimetype"] == "text/html");
  CHECK(loc["size"] == body.size());
  CHECK(loc["md5"] == d.md5);
  CHECK(loc["sha1"] == d.sha1);
  CHECK(loc["sha256"] == d.sha256);
  CHECK(log["behavior"].empty());
  CHECK(log["files"].empty());
  CHECK(log["final_url"] == url);
}

TEST_CASE("CrossHostRedirectChainIsRecordedHopByHop", "[analyser]") {
  const json log = Analyse(Server().Url("/redirect/start")).log;
  const auto redirects = Where(log["connections"], "method", "http-redirect");
  REQUIRE(redirects.size() == 2);
  CHECK(redirects[0]["source"] == Server().Url("/redirect/start", 1));
  CHECK(redirects[0]["destination"] == Server().Url("/redirect/hop", 2));
  CHECK(redirects[0]["flags"]["status"] == 302);
  CHECK(redirects[1]["destination"] == Server().Url("/redirect/final", 3));
  CHECK(redirects[1]["flags"]["status"] == 301);
  REQUIRE(log["locations"].size() == 3);
  CHECK(log["locations"][0]["status"] == 302);
  CHECK(log["locations"][1]["status"] == 301);
  CHECK(log["locations"][2]["status"] == 200);
  CHECK(log["final_url"] == Server().Url("/redirect/final", 3));
  CHECK(HasBehavior(log, "cross-domain redirect chain (3 hosts)"));
  CHECK_FALSE(log.contains("error"));
}

TEST_CASE("RedirectCapIsRecordedNotFollowed", "[analyser]") {
  const json log =
      Analyse(Server().Url("/loop/0"), {{"max_redirects", "3"}}).log;
  CHECK(Where(log["connections"], "method", "http-redirect").size() == 4);
  CHECK(log["locations"].size() == 4);
  CHECK(HasLimit(log, "max_redirects"));
  CHECK(log["error"] == "too many redirects (limit 3)");
}

TEST_CASE("HiddenIframesAreFlaggedAndFetchedWithThePageAsReferer",
          "[analyser]") {
  const json log = Analyse(Server().Url("/hidden_iframe.html")).log;
  const auto frames = Where(log["connections"], "method", "iframe");
  REQUIRE(frames.size() == 4);
  CHECK(frames[0]["destination"] == Server().Url("/frame.html"));
  CHECK(frames[0]["flags"]["hidden"] == true);
  CHECK(frames[0]["flags"]["hidden_reason"] == "zero size");
  CHECK(frames[1]["flags"]["hidden_reason"] == "display:none");
  CHECK(frames[2]["flags"]["hidden_reason"] == "off-screen (left:-1000px)");
  CHECK(frames[3]["flags"]["hidden"] == false);
  CHECK(HasBehavior(log, "hidden iframe (zero size)"));
  CHECK(HasBehavior(log, "hidden iframe (display:none)"));
  CHECK(HasBehavior(log, "hidden iframe (off-screen"));
  // The page and its four frames, one level deep.
  CHECK(Where(log["locations"], "url", Server().Url("/frame.html")).size() ==
        4);
}

TEST_CASE("SubresourceCapIsRecorded", "[analyser]") {
  const json log =
      Analyse(Server().Url("/hidden_iframe.html"), {{"max_subresources", "1"}})
          .log;
  CHECK(log["locations"].size() == 2);
  CHECK(HasLimit(log, "max_subresources"));
  CHECK_FALSE(log.contains("error"));
}

TEST_CASE("ObfuscatedScriptsGiveStaticSignals", "[analyser]") {
  const json log = Analyse(Server().Url("/obfuscated.html")).log;
  CHECK(HasBehavior(log, "eval over a long argument"));
  CHECK(HasBehavior(log, "unescape over a long argument"));
  CHECK(HasBehavior(log, "high-entropy string literal"));
  CHECK(HasBehavior(log, "document.write over a long argument"));
  CHECK(HasBehavior(log, "String.fromCharCode over a long argument"));
  CHECK(HasBehavior(log,
                    "form with a password field posts to another host "
                    "(127.0.0.2)"));
  CHECK(HasBehavior(log, "link to an executable or archive"));
  CHECK(HasBehavior(log, "meta refresh to another host"));
  for (const auto& b : log["behavior"]) {
    CHECK_FALSE(b["snippet"].get<std::string>().empty());
    CHECK(b["method"] == "static analysis");
  }
  CHECK(log["analyser"]["note"].get<std::string>().find("not verdicts") !=
        std::string::npos);

  const auto js = Where(log["connections"], "method", "javascript-location");
  REQUIRE(js.size() == 1);
  CHECK(js[0]["source"] == Server().Url("/obfuscated.html"));
  CHECK(js[0]["destination"] == Server().Url("/landing.html", 3));
  const auto meta = Where(log["connections"], "method", "meta-refresh");
  REQUIRE(meta.size() == 1);
  CHECK(meta[0]["destination"] == Server().Url("/landing.html", 3));
  const auto forms = Where(log["connections"], "method", "form");
  REQUIRE(forms.size() == 1);
  CHECK(forms[0]["destination"] == Server().Url("/steal", 2));
  CHECK(forms[0]["flags"]["password"] == true);
  CHECK(forms[0]["flags"]["cross_domain"] == true);
  CHECK(forms[0]["flags"]["method"] == "POST");
  const auto embeds = Where(log["connections"], "method", "embed");
  REQUIRE(embeds.size() == 1);
  CHECK(embeds[0]["destination"] == Server().Url("/movie.swf"));
  const auto scripts = Where(log["connections"], "method", "script");
  REQUIRE(scripts.size() == 1);
  CHECK(scripts[0]["destination"] == Server().Url("/evil.js"));

  const auto external = Where(log["code"], "relationship", "external");
  REQUIRE(external.size() == 1);
  CHECK(external[0]["url"] == Server().Url("/evil.js"));
  CHECK(external[0]["language"] == "javascript");
  CHECK(Where(log["code"], "relationship", "contained").size() == 3);
}

TEST_CASE("ReportOverTheOutputCapDropsWholeListsAndStaysValidJson",
          "[analyser]") {
  const json log = Analyse(Server().Url("/obfuscated.html")).log;
  const std::string full = RenderReport(log, 1 << 20);
  CHECK(json::parse(full) == log);
  const std::string small = RenderReport(log, 4000);
  CHECK(small.size() <= 4000);
  const json cut = json::parse(small);
  CHECK(cut["code"].empty());
  CHECK(cut["locations"] == log["locations"]);
  bool recorded = false;
  for (const auto& l : cut["limits_reached"]) {
    if (l["limit"] == "max_output" && l["dropped"] == "code") recorded = true;
  }
  CHECK(recorded);
}

TEST_CASE("OversizedBodyIsCappedAndRecordedNotAnError", "[analyser]") {
  const json log =
      Analyse(Server().Url("/big"), {{"max_body_bytes", "65536"}}).log;
  REQUIRE(log["locations"].size() == 1);
  CHECK(log["locations"][0]["size"] == 65536);
  CHECK(log["locations"][0]["flags"]["truncated"] == true);
  CHECK(log["locations"][0]["sha256"] == Sha256Hex(std::string(65536, 'x')));
  CHECK(HasLimit(log, "max_body_bytes"));
  CHECK_FALSE(log.contains("error"));
}

TEST_CASE("SlowServerHitsTheTimeLimitAsANetworkError", "[analyser]") {
  const auto start = std::chrono::steady_clock::now();
  const AnalysisReport report =
      Analyse(Server().Url("/slow"), {{"timeout", "1"}});
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  CHECK(report.network_error);
  CHECK(report.log["error"].get<std::string>().rfind("timeout: ", 0) == 0);
  CHECK(HasLimit(report.log, "timeout"));
  CHECK(report.log["analyser"]["options"]["timeout_ms"] == 1000);
}

TEST_CASE("ExecutableDownloadIsRecognisedByMagicBytes", "[analyser]") {
  const std::string url = Server().Url("/payload.exe");
  const json log = Analyse(url).log;
  std::string body = std::string("MZ\x90\x00\x03\x00\x00\x00", 8) +
                     std::string(120, '\0') +
                     "This program cannot be run in DOS mode.";
  const Digests d = ComputeDigests(body);
  REQUIRE(log["locations"].size() == 1);
  CHECK(log["locations"][0]["mimetype"] == "application/x-dosexec");
  CHECK(log["locations"][0]["declared_mimetype"] == "application/octet-stream");
  REQUIRE(log["files"].size() == 1);
  CHECK(log["files"][0]["url"] == url);
  CHECK(log["files"][0]["sha256"] == d.sha256);
  CHECK(log["files"][0]["md5"] == d.md5);
  CHECK(log["files"][0]["size"] == body.size());
  CHECK(HasBehavior(
      log, "executable download (magic bytes: application/x-dosexec)"));
}

TEST_CASE("FileAndFtpUrlsAreRefusedBeforeAnyConnection", "[analyser]") {
  for (const std::string url :
       {"file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/"}) {
    const AnalysisReport report = Analyse(url);
    CHECK_FALSE(report.network_error);
    CHECK(report.log["locations"].empty());
    CHECK(report.log["error"].get<std::string>().rfind(
              "refused: only http and https URLs are fetched", 0) == 0);
    REQUIRE(report.log["refused"].size() == 1);
    CHECK(report.log["refused"][0]["url"] == url);
  }
}

TEST_CASE("RedirectToFileOrFtpIsRefused", "[analyser]") {
  for (const auto& [path, target] :
       {std::pair<std::string, std::string>{"/redirect/to-file",
                                            "file:///etc/passwd"},
        {"/redirect/to-ftp", "ftp://127.0.0.1/x"}}) {
    const AnalysisReport report = Analyse(Server().Url(path));
    CHECK_FALSE(report.network_error);
    const auto hops =
        Where(report.log["connections"], "method", "http-redirect");
    REQUIRE(hops.size() == 1);
    CHECK(hops[0]["destination"] == target);
    CHECK(report.log["locations"].size() == 1);
    CHECK(report.log["refused"][0]["url"] == target);
    CHECK(report.log["error"].get<std::string>().rfind("redirect refused", 0) ==
          0);
    CHECK(HasBehavior(report.log, "redirect to a non-http(s) URL refused"));
  }
}

TEST_CASE("RefusedConnectionIsAResultWithAClearError", "[analyser]") {
  // Port 1 on loopback: nothing listens there.
  const AnalysisReport report = Analyse("http://127.0.0.1:1/");
  CHECK(report.network_error);
  CHECK(report.log["error"].get<std::string>().rfind("connect: ", 0) == 0);
  REQUIRE(report.log["locations"].size() == 1);
  CHECK(report.log["locations"][0]["status"] == 0);
  CHECK(report.log["locations"][0]["flags"]["error_kind"] == "connect");
}

TEST_CASE("UntrustedCertificateIsATlsErrorUnlessVerificationIsOff",
          "[analyser]") {
  const std::string url = Server().TlsUrl("/plain.html");
  const AnalysisReport refused = Analyse(url);
  CHECK(refused.network_error);
  CHECK(refused.log["error"].get<std::string>().rfind("tls: ", 0) == 0);
  CHECK(refused.log["locations"][0]["flags"]["error_kind"] == "tls");

  const AnalysisReport accepted = Analyse(url, {{"tls_verify", "0"}});
  CHECK_FALSE(accepted.network_error);
  CHECK_FALSE(accepted.log.contains("error"));
  CHECK(accepted.log["locations"][0]["status"] == 200);
}

TEST_CASE("UnresolvableHostIsADnsError", "[analyser]") {
  const AnalysisReport report = Analyse("http://no-such-host.invalid/");
  CHECK(report.network_error);
  CHECK(report.log["error"].get<std::string>().rfind("dns: ", 0) == 0);
}

TEST_CASE("UserAgentAndRefererAreSentAndSubresourcesGetThePageAsReferer",
          "[analyser]") {
  const std::string page = Server().Url("/with_script.html");
  const json log = Analyse(page, {{"user_agent", "osx10safari"},
                                  {"referer", "http://origin.example/"}})
                       .log;
  const auto external = Where(log["code"], "relationship", "external");
  REQUIRE(external.size() == 1);
  CHECK(external[0]["url"] == Server().Url("/headers.js"));
  CHECK(external[0]["snippet"] == "var ua = \"" +
                                      PersonalityUserAgent("osx10safari") +
                                      "\"; var referer = \"" + page + "\";");
  CHECK(log["analyser"]["options"]["referer"] == "http://origin.example/");

  const json direct = Analyse(Server().Url("/headers.js"),
                              {{"user_agent", "MyBot/1.0"},
                               {"referer", "http://origin.example/"}})
                          .log;
  REQUIRE(direct["code"].size() == 1);
  CHECK(direct["code"][0]["snippet"] ==
        "var ua = \"MyBot/1.0\"; var referer = \"http://origin.example/\";");
}

TEST_CASE("ProxyOptionSendsRequestsThroughTheProxy", "[analyser]") {
  // The fixture server answers absolute-form requests as a proxy would; the
  // host needs no DNS because the proxy is asked for it.
  const json log = Analyse("http://no-such-host.invalid/plain.html",
                           {{"proxy", Server().Url("")}})
                       .log;
  CHECK_FALSE(log.contains("error"));
  REQUIRE(log["locations"].size() == 1);
  CHECK(log["locations"][0]["status"] == 200);
  CHECK(log["analyser"]["options"]["proxy"] == Server().Url(""));
}

TEST_CASE("HiddenReasonCoversSizeStyleAndPosition", "[analyser]") {
  CHECK(HiddenReason("0", "10", "") == "zero size");
  CHECK(HiddenReason("1", "0px", "") == "zero size");
  CHECK(HiddenReason("", "", "width: 0px; height: 0") == "zero size");
  CHECK(HiddenReason("", "", "VISIBILITY: hidden") == "visibility:hidden");
  CHECK(HiddenReason("", "", "display:none !important") == "display:none");
  CHECK(HiddenReason("", "", "position:fixed;top:-500px") ==
        "off-screen (top:-500px)");
  CHECK(HiddenReason("", "", "left:-500px") == "");  // not positioned
  CHECK(HiddenReason("300", "200", "border:0") == "");
}

TEST_CASE("MagicBytesNameTheType", "[analyser]") {
  CHECK(SniffMime("MZ\x90") == "application/x-dosexec");
  CHECK(SniffMime("\x7f"
                  "ELF\x02") == "application/x-executable");
  CHECK(SniffMime("%PDF-1.7") == "application/pdf");
  CHECK(SniffMime("PK\x03\x04") == "application/zip");
  CHECK(SniffMime("\x1f\x8b\x08") == "application/gzip");
  CHECK(SniffMime("  <!DOCTYPE html><html>") == "text/html");
  CHECK(SniffMime("var a = 1; eval(a);") == "application/javascript");
  CHECK(SniffMime("hello") == "text/plain");
  CHECK(SniffMime(std::string("\x00\x01\x02\x03", 4)) ==
        "application/octet-stream");
}

TEST_CASE("PersonalitiesNameUserAgentsAndFreeTextIsKept", "[analyser]") {
  auto named = ParseAnalysisOptions({{"user_agent", "winxpie60"}}, Millis(0));
  REQUIRE(named.ok());
  CHECK(named->personality == "winxpie60");
  CHECK(named->user_agent.find("MSIE 6.0; Windows NT 5.1") !=
        std::string::npos);
  auto custom = ParseAnalysisOptions({{"user_agent", "MyBot/1.0"}}, Millis(0));
  REQUIRE(custom.ok());
  CHECK(custom->personality == "custom");
  CHECK(custom->user_agent == "MyBot/1.0");
  for (const char* p : {"win7ie90", "linuxchrome", "osx10safari"}) {
    CHECK_FALSE(PersonalityUserAgent(p).empty());
  }
}

TEST_CASE("TimeoutStaysUnderTheTaskTimeLimit", "[analyser]") {
  auto o = ParseAnalysisOptions({{"timeout", "120"}}, Millis(10'000));
  REQUIRE(o.ok());
  CHECK(o->timeout == Millis(8'500));
  auto ms = ParseAnalysisOptions({{"timeout", "250ms"}}, Millis(0));
  REQUIRE(ms.ok());
  CHECK(ms->timeout == Millis(250));
}

TEST_CASE("BadOptionValuesAreRefused", "[analyser]") {
  CHECK_FALSE(ParseAnalysisOptions({{"timeout", "soon"}}, Millis(0)).ok());
  CHECK_FALSE(ParseAnalysisOptions({{"max_redirects", "-1"}}, Millis(0)).ok());
  CHECK_FALSE(
      ParseAnalysisOptions({{"retry_on_network_error", "maybe"}}, Millis(0))
          .ok());
}

TEST_CASE("RelativeUrlsResolveAgainstThePage", "[analyser]") {
  CHECK(ResolveUrl("http://a.example/dir/page.html", "../x.js") ==
        "http://a.example/x.js");
  CHECK(ResolveUrl("http://a.example/dir/", "//b.example/y") ==
        "http://b.example/y");
}

}  // namespace
}  // namespace tq
