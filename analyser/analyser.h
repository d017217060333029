// The built-in analyser: a bounded, static look at one URL the way a
// honeyclient would see it, reported as a JSON document shaped like Thug's
// JSON log (docs/analysis-json.md). It fetches over http(s) only and never
// runs the page's scripts.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace tq {

inline constexpr char kAnalyserVersion[] = "1.0";

struct AnalysisOptions {
  std::string personality;  // a named user agent, or "custom"
  std::string user_agent;
  std::string referer;
  std::string proxy;
  Millis timeout{30'000};  // the whole analysis
  size_t max_body_bytes = 5 * 1024 * 1024;
  int max_redirects = 10;
  int max_subresources = 20;
  bool retry_on_network_error = false;
  bool tls_verify = true;
};

// Reads a task's options (user_agent, referer, proxy, timeout in seconds or
// with an "ms" suffix, max_body_bytes, max_redirects, max_subresources,
// retry_on_network_error, tls_verify). The timeout is kept under the task's
// time limit so the analysis reports before it is killed. Unknown keys are
// ignored (they may be meant for an --exec tool); bad values are
// InvalidArgument.
Result<AnalysisOptions> ParseAnalysisOptions(
    const std::map<std::string, std::string>& options, Millis time_limit);

// The user-agent string for a personality name (win7ie90, winxpie60,
// linuxchrome, osx10safari, ...), or "" when the name is not one.
std::string PersonalityUserAgent(const std::string& name);

struct AnalysisReport {
  nlohmann::json log;
  // The main URL could not be fetched because of the network (DNS, refused,
  // TLS, timeout); a refused scheme is not a network error.
  bool network_error = false;
  // How the main page went: "ok", "unreachable" (DNS, refused, reset, TLS,
  // a refused scheme), "timeout" or "http_error" (status >= 400, too many
  // redirects); also in the log as "outcome" and "outcome_reason".
  std::string outcome = "ok";
  std::string outcome_reason;
};

AnalysisReport AnalyseUrl(const std::string& url,
                          const AnalysisOptions& options);

// The report as compact JSON of at most `max_bytes` when possible: if it is
// larger, whole lists are emptied (code, then behavior, connections,
// locations), each recorded in limits_reached as "max_output", so the
// output stays valid JSON instead of being cut.
std::string RenderReport(nlohmann::json log, size_t max_bytes);

// Resolves `ref` against `base` (RFC 3986); "" if either does not parse.
std::string ResolveUrl(const std::string& base, const std::string& ref);

}  // namespace tq
