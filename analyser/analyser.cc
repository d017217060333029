#include "analyser/analyser.h"

#include <uriparser/Uri.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <vector>

#include "analyser/content_info.h"
#include "analyser/html_scan.h"
#include "analyser/http_fetcher.h"
#include "analyser/js_signals.h"

namespace tq {
namespace {

using nlohmann::json;
using SteadyTime = std::chrono::steady_clock::time_point;

constexpr Millis kDefaultTimeout{30'000};
// Room left between the analysis' own deadline and the task's time limit,
// for starting the process and writing the report.
constexpr Millis kReportMargin{1'500};
constexpr Millis kMinTimeout{500};
constexpr size_t kMaxBodyCap = 64 * 1024 * 1024;
constexpr int kMaxRedirectsCap = 50;
constexpr int kMaxSubresourcesCap = 200;
constexpr size_t kMaxCodeSnippet = 4096;
constexpr size_t kMaxCodeEntries = 50;
// Keeps the report well under the worker's --max-output (1 MiB by default)
// whatever the page holds.
constexpr size_t kMaxListEntries = 500;
constexpr char kHintNote[] =
    "behavior entries are static hints, not verdicts: a signal says a "
    "pattern is present, not that the page is malicious";

struct Personality {
  const char* name;
  const char* user_agent;
};

constexpr Personality kPersonalities[] = {
    {"winxpie60", "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)"},
    {"winxpie80",
     "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1; Trident/4.0)"},
    {"win7ie90",
     "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)"},
    {"win10ie110",
     "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko"},
    {"linuxchrome",
     "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
     "Gecko) Chrome/120.0.0.0 Safari/537.36"},
    {"linuxfirefox",
     "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 "
     "Firefox/120.0"},
    {"osx10safari",
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.1 Safari/605.1.15"},
    {"win10chrome",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Chrome/120.0.0.0 Safari/537.36"},
};
constexpr char kDefaultPersonality[] = "win7ie90";

Result<long long> ParseCount(const std::string& key, const std::string& v,
                             long long lo, long long hi) {
  try {
    size_t used = 0;
    const long long n = std::stoll(v, &used);
    if (used == v.size() && n >= lo && n <= hi) return n;
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument(
      "option " + key + "='" + v + "': expected an integer in [" +
      std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

Result<bool> ParseBool(const std::string& key, const std::string& v) {
  if (v == "1" || v == "true" || v == "yes") return true;
  if (v == "0" || v == "false" || v == "no" || v.empty()) return false;
  return Status::InvalidArgument("option " + key + "='" + v +
                                 "': expected 1 or 0");
}

std::string Iso8601Now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      now.time_since_epoch())
                      .count() %
                  1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

// Builds the report while the analysis walks the page.
class Analysis {
 public:
  Analysis(const std::string& url, const AnalysisOptions& options)
      : url_(url),
        options_(options),
        deadline_(std::chrono::steady_clock::now() + options.timeout) {
    log_ = {
        {"url", url},
        {"timestamp", Iso8601Now()},
        {"logtype", "json-log"},
        {"analyser",
         {{"name", "tq-analyser"},
          {"version", kAnalyserVersion},
          {"personality",
           {{"name", options.personality}, {"useragent", options.user_agent}}},
          {"options",
           {{"useragent", options.user_agent},
            {"referer", options.referer},
            {"proxy", options.proxy},
            {"timeout_ms", options.timeout.count()},
            {"max_body_bytes", options.max_body_bytes},
            {"max_redirects", options.max_redirects},
            {"max_subresources", options.max_subresources}}},
          {"note", kHintNote}}},
        {"connections", json::array()},
        {"locations", json::array()},
        {"behavior", json::array()},
        {"code", json::array()},
        {"files", json::array()},
        {"limits_reached", json::array()}};
  }

  // The main page's outcome (docs/analysis-json.md): set once, by the
  // first thing that went wrong with it.
  static void SetOutcome(AnalysisReport* report, const char* outcome,
                         const json& reason) {
    if (report->outcome != "ok") return;
    report->outcome = outcome;
    report->outcome_reason =
        reason.is_string() ? reason.get<std::string>() : "";
  }

  AnalysisReport Run() {
    AnalysisReport report;
    const Page page = FetchChain(url_, options_.referer, "", &report);
    if (page.ok) AnalysePage(page);
    log_["outcome"] = report.outcome;
    if (!report.outcome_reason.empty()) {
      log_["outcome_reason"] = report.outcome_reason;
    }
    report.log = std::move(log_);
    return report;
  }

 private:
  struct Page {
    bool ok = false;
    std::string url;  // final URL after redirects
    FetchResponse response;
    std::string mime;
  };

  Millis Remaining() const {
    return std::chrono::duration_cast<Millis>(deadline_ -
                                              std::chrono::steady_clock::now());
  }

  void Limit(const std::string& what, const std::string& where) {
    for (const auto& l : log_["limits_reached"]) {
      if (l["limit"] == what && l["url"] == where) return;
    }
    log_["limits_reached"].push_back({{"limit", what}, {"url", where}});
  }

  void Behavior(const std::string& description, const std::string& snippet) {
    if (log_["behavior"].size() >= kMaxListEntries) {
      Limit("behavior_entries", url_);
      return;
    }
    log_["behavior"].push_back({{"description", description},
                                {"snippet", Shorten(snippet)},
                                {"method", "static analysis"},
                                {"timestamp", Iso8601Now()}});
  }

  void Connection(const std::string& source, const std::string& destination,
                  const std::string& method, json flags = json::object()) {
    if (log_["connections"].size() >= kMaxListEntries) {
      Limit("connection_entries", url_);
      return;
    }
    log_["connections"].push_back({{"source", source},
                                   {"destination", destination},
                                   {"method", method},
                                   {"flags", std::move(flags)}});
  }

  void Code(const std::string& code, const std::string& relationship,
            const std::string& url) {
    if (log_["code"].size() >= kMaxCodeEntries) {
      Limit("code_entries", url);
      return;
    }
    json entry = {{"snippet", Shorten(code, kMaxCodeSnippet)},
                  {"language", "javascript"},
                  {"relationship", relationship},
                  {"method", "static analysis"},
                  {"url", url},
                  {"size", code.size()}};
    log_["code"].push_back(std::move(entry));
  }

  // Records one fetched resource in locations (and files for executables).
  std::string Location(const FetchResponse& r) {
    json flags = json::object();
    if (r.body_truncated) {
      flags["truncated"] = true;
      Limit("max_body_bytes", r.url);
    }
    if (!r.error.empty()) {
      flags["error"] = r.error;
      flags["error_kind"] = r.error_kind;
      if (r.error_kind == "timeout") Limit("timeout", r.url);
    }
    const std::string sniffed = SniffMime(r.body);
    const std::string declared =
        r.content_type.substr(0, r.content_type.find(';'));
    json entry = {{"url", r.url},
                  {"status", r.status},
                  {"content-type", r.content_type},
                  {"declared_mimetype", declared},
                  {"mimetype", sniffed},
                  {"size", r.body.size()},
                  {"time_ms", r.duration_ms},
                  {"remote_ip", r.remote_ip},
                  {"flags", std::move(flags)}};
    if (r.status != 0) {
      const Digests d = ComputeDigests(r.body);
      entry["md5"] = d.md5;
      entry["sha1"] = d.sha1;
      entry["sha256"] = d.sha256;
      if (!r.body.empty() &&
          (IsExecutableMime(sniffed) || IsExecutableMime(declared))) {
        log_["files"].push_back({{"url", r.url},
                                 {"md5", d.md5},
                                 {"sha1", d.sha1},
                                 {"sha256", d.sha256},
                                 {"size", r.body.size()},
                                 {"mimetype", sniffed},
                                 {"declared_mimetype", declared}});
        Behavior("executable download (" +
                     (IsExecutableMime(sniffed) ? "magic bytes: " + sniffed
                                                : "declared: " + declared) +
                     ")",
                 r.url);
      }
    }
    log_["locations"].push_back(std::move(entry));
    return sniffed;
  }

  // Fetches `url`, following redirects hop by hop (each one recorded) up to
  // the cap. `method` names how the first URL was reached ("" for the page
  // itself).
  Page FetchChain(const std::string& start, const std::string& referer,
                  const std::string& method, AnalysisReport* report) {
    Page page;
    std::string url = start;
    std::vector<std::string> hosts = {UrlHost(start)};
    std::vector<std::string> chain = {start};
    for (int hop = 0;; ++hop) {
      if (!IsHttpUrl(url)) {
        const std::string scheme = UrlScheme(url);
        const std::string why =
            "refused: only http and https URLs are fetched (scheme '" +
            (scheme.empty() ? std::string("none") : scheme) + "')";
        if (method.empty()) {
          log_["error"] = hop == 0 ? why : "redirect " + why;
          SetOutcome(report, "unreachable", log_["error"]);
        }
        if (hop > 0) Behavior("redirect to a non-http(s) URL refused", url);
        log_["refused"].push_back({{"url", url}, {"reason", why}});
        return page;
      }
      FetchRequest request;
      request.url = url;
      request.user_agent = options_.user_agent;
      request.referer = hop == 0 ? referer : chain[chain.size() - 2];
      request.proxy = options_.proxy;
      request.max_body_bytes = options_.max_body_bytes;
      request.timeout = Remaining();
      request.tls_verify = options_.tls_verify;
      FetchResponse r = Fetch(request);
      const std::string mime = Location(r);
      if (!r.error.empty() && !r.body_truncated) {
        if (hop == 0 && method.empty()) {
          log_["error"] = r.error_kind + ": " + r.error;
          report->network_error = true;
        } else if (method.empty()) {
          log_["error"] = r.error_kind + ": " + r.error + " (at " + url + ")";
          report->network_error = true;
        }
        if (method.empty()) {
          SetOutcome(report,
                     r.error_kind == "timeout" ? "timeout" : "unreachable",
                     log_["error"]);
        }
        return page;
      }
      const bool redirect =
          r.status >= 300 && r.status < 400 && !r.redirect_url.empty();
      if (!redirect) {
        if (method.empty() && r.status >= 400) {
          SetOutcome(report, "http_error",
                     "HTTP " + std::to_string(r.status) + " (at " + url + ")");
        }
        page.ok = true;
        page.url = url;
        page.mime = mime;
        page.response = std::move(r);
        break;
      }
      const std::string next = r.redirect_url;
      Connection(url, next, "http-redirect", {{"status", r.status}});
      if (hop >= options_.max_redirects) {
        Limit("max_redirects", url);
        if (method.empty()) {
          log_["error"] = "too many redirects (limit " +
                          std::to_string(options_.max_redirects) + ")";
          SetOutcome(report, "http_error", log_["error"]);
        }
        return page;
      }
      url = next;
      chain.push_back(url);
      hosts.push_back(UrlHost(url));
    }
    std::vector<std::string> distinct;
    for (const auto& h : hosts) {
      if (!h.empty() &&
          std::find(distinct.begin(), distinct.end(), h) == distinct.end()) {
        distinct.push_back(h);
      }
    }
    if (distinct.size() > 1) {
      std::string path;
      for (const auto& u : chain) path += (path.empty() ? "" : " -> ") + u;
      Behavior("cross-domain redirect chain (" +
                   std::to_string(distinct.size()) + " hosts)",
               path);
    }
    if (method.empty()) log_["final_url"] = page.url;
    return page;
  }

  // `where` names the script in descriptions; `source` is the URL that
  // holds it (the page for inline scripts).
  void ScanScript(const std::string& code, const std::string& where,
                  const std::string& source) {
    for (const auto& s : ScanJavaScript(code)) {
      Behavior(s.description + " in " + where, s.snippet);
    }
    for (const auto& target : JavaScriptRedirects(code)) {
      Connection(source, ResolveOr(source, target), "javascript-location",
                 {{"followed", false}});
    }
  }

  static std::string ResolveOr(const std::string& base,
                               const std::string& ref) {
    const std::string abs = ResolveUrl(base, ref);
    return abs.empty() ? ref : abs;
  }

  bool TakeSubresource(const std::string& url) {
    if (subresources_ >= options_.max_subresources) {
      Limit("max_subresources", url);
      return false;
    }
    if (Remaining() <= Millis(0)) {
      Limit("timeout", url);
      return false;
    }
    ++subresources_;
    return true;
  }

  void AnalysePage(const Page& page) {
    const bool html =
        page.mime == "text/html" ||
        page.response.content_type.find("html") != std::string::npos;
    if (!html) {
      if (page.mime == "application/javascript") {
        Code(page.response.body, "contained", page.url);
        ScanScript(page.response.body, page.url, page.url);
      }
      return;
    }
    ScanHtmlPage(page, /*fetch_subresources=*/true);
  }

  void ScanHtmlPage(const Page& page, bool fetch_subresources) {
    const HtmlFindings f = ScanHtml(page.response.body);
    const std::string base =
        f.base_href.empty() ? page.url : ResolveUrl(page.url, f.base_href);
    auto resolve = [&](const std::string& ref) {
      const std::string abs = ResolveUrl(base, ref);
      return abs.empty() ? ref : abs;
    };
    const std::string page_host = UrlHost(page.url);

    for (const auto& s : f.scripts) {
      if (s.src.empty()) {
        if (s.code.find_first_not_of(" \t\r\n") == std::string::npos) continue;
        Code(s.code, "contained", page.url);
        ScanScript(s.code, "inline script of " + page.url, page.url);
        continue;
      }
      const std::string src = resolve(s.src);
      Connection(page.url, src, "script");
      if (!fetch_subresources || !TakeSubresource(src)) continue;
      AnalysisReport ignored;
      const Page script = FetchChain(src, page.url, "script", &ignored);
      if (!script.ok) continue;
      Code(script.response.body, "external", script.url);
      ScanScript(script.response.body, "script " + script.url, script.url);
    }
    for (const auto& fr : f.frames) {
      const std::string src = fr.src.empty() ? "" : resolve(fr.src);
      json flags = {{"hidden", fr.hidden}};
      if (fr.hidden) flags["hidden_reason"] = fr.hidden_why;
      Connection(page.url, src, fr.tag, flags);
      if (fr.hidden) {
        Behavior("hidden " + fr.tag + " (" + fr.hidden_why + ")", fr.snippet);
      }
      if (src.empty() || !fetch_subresources || !TakeSubresource(src)) continue;
      AnalysisReport ignored;
      const Page frame = FetchChain(src, page.url, fr.tag, &ignored);
      // One level deep: the frame's own scripts are scanned, not fetched.
      if (frame.ok &&
          (frame.mime == "text/html" ||
           frame.response.content_type.find("html") != std::string::npos)) {
        ScanHtmlPage(frame, /*fetch_subresources=*/false);
      }
    }
    for (const auto& target : f.meta_refresh) {
      const std::string dest = resolve(target);
      Connection(page.url, dest, "meta-refresh", {{"followed", false}});
      if (UrlHost(dest) != page_host) {
        Behavior("meta refresh to another host", dest);
      }
    }
    for (const auto& form : f.forms) {
      const std::string action =
          form.action.empty() ? page.url : resolve(form.action);
      const bool off_site = UrlHost(action) != page_host;
      Connection(page.url, action, "form",
                 {{"method", form.method},
                  {"cross_domain", off_site},
                  {"password", form.has_password}});
      if (form.has_password && off_site) {
        Behavior("form with a password field posts to another host (" +
                     UrlHost(action) + ")",
                 action);
      }
    }
    for (const auto& e : f.embeds) {
      Connection(page.url, e.src.empty() ? "" : resolve(e.src), e.tag,
                 {{"type", e.type}});
    }
    for (const auto& href : f.download_links) {
      const std::string dest = resolve(href);
      Connection(page.url, dest, "link", {{"download", true}});
      Behavior("link to an executable or archive", dest);
    }
  }

  const std::string url_;
  const AnalysisOptions& options_;
  const SteadyTime deadline_;
  json log_;
  int subresources_ = 0;
};

}  // namespace

std::string PersonalityUserAgent(const std::string& name) {
  for (const auto& p : kPersonalities) {
    if (name == p.name) return p.user_agent;
  }
  return "";
}

Result<AnalysisOptions> ParseAnalysisOptions(
    const std::map<std::string, std::string>& options, Millis time_limit) {
  AnalysisOptions o;
  o.personality = kDefaultPersonality;
  o.user_agent = PersonalityUserAgent(kDefaultPersonality);
  Millis timeout = kDefaultTimeout;
  for (const auto& [key, value] : options) {
    if (key == "user_agent" || key == "useragent") {
      const std::string ua = PersonalityUserAgent(value);
      o.personality = ua.empty() ? "custom" : value;
      o.user_agent = ua.empty() ? value : ua;
    } else if (key == "referer") {
      o.referer = value;
    } else if (key == "proxy") {
      o.proxy = value;
    } else if (key == "timeout") {
      const bool ms =
          value.size() > 2 && value.compare(value.size() - 2, 2, "ms") == 0;
      auto n = ParseCount(key, ms ? value.substr(0, value.size() - 2) : value,
                          1, ms ? 86'400'000 : 86'400);
      if (!n.ok()) return n.status();
      timeout = Millis(ms ? *n : *n * 1000);
    } else if (key == "max_body_bytes") {
      auto n = ParseCount(key, value, 1, kMaxBodyCap);
      if (!n.ok()) return n.status();
      o.max_body_bytes = static_cast<size_t>(*n);
    } else if (key == "max_redirects") {
      auto n = ParseCount(key, value, 0, kMaxRedirectsCap);
      if (!n.ok()) return n.status();
      o.max_redirects = static_cast<int>(*n);
    } else if (key == "max_subresources") {
      auto n = ParseCount(key, value, 0, kMaxSubresourcesCap);
      if (!n.ok()) return n.status();
      o.max_subresources = static_cast<int>(*n);
    } else if (key == "retry_on_network_error") {
      auto b = ParseBool(key, value);
      if (!b.ok()) return b.status();
      o.retry_on_network_error = *b;
    } else if (key == "tls_verify") {
      auto b = ParseBool(key, value);
      if (!b.ok()) return b.status();
      o.tls_verify = *b;
    }
  }
  if (time_limit.count() > 0) {
    timeout =
        std::min(timeout, std::max(kMinTimeout, time_limit - kReportMargin));
  }
  o.timeout = timeout;
  return o;
}

AnalysisReport AnalyseUrl(const std::string& url,
                          const AnalysisOptions& options) {
  return Analysis(url, options).Run();
}

std::string RenderReport(json log, size_t max_bytes) {
  auto dump = [&] {
    return log.dump(-1, ' ', false, json::error_handler_t::replace);
  };
  std::string out = dump();
  for (const char* key : {"code", "behavior", "connections", "locations"}) {
    if (out.size() <= max_bytes) break;
    if (!log.contains(key) || log[key].empty()) continue;
    log[key] = json::array();
    log["limits_reached"].push_back({{"limit", "max_output"},
                                     {"url", log.value("url", "")},
                                     {"dropped", key}});
    out = dump();
  }
  return out;
}

std::string ResolveUrl(const std::string& base, const std::string& ref) {
  UriUriA base_uri, ref_uri, out;
  const char* err = nullptr;
  if (uriParseSingleUriA(&base_uri, base.c_str(), &err) != URI_SUCCESS) {
    return "";
  }
  if (uriParseSingleUriA(&ref_uri, ref.c_str(), &err) != URI_SUCCESS) {
    uriFreeUriMembersA(&base_uri);
    return "";
  }
  std::string result;
  if (uriAddBaseUriA(&out, &ref_uri, &base_uri) == URI_SUCCESS) {
    int chars = 0;
    if (uriToStringCharsRequiredA(&out, &chars) == URI_SUCCESS) {
      result.resize(static_cast<size_t>(chars) + 1);
      if (uriToStringA(result.data(), &out, chars + 1, nullptr) ==
          URI_SUCCESS) {
        result.resize(static_cast<size_t>(chars));
      } else {
        result.clear();
      }
    }
    uriFreeUriMembersA(&out);
  }
  uriFreeUriMembersA(&ref_uri);
  uriFreeUriMembersA(&base_uri);
  return result;
}

}  // namespace tq
