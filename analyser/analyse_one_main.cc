#include "analyser/analyse_one_main.h"

#include <signal.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "analyser/analyser.h"

namespace tq {
namespace {

constexpr int kExitUsage = 2;

int Usage(const std::string& message) {
  std::fprintf(stderr, "tq-worker: %s\n", message.c_str());
  return kExitUsage;
}

}  // namespace

int AnalyseOneMain(const std::string& url, const std::string& options_json,
                   uint32_t time_limit_ms, uint64_t max_output) {
  signal(SIGPIPE, SIG_IGN);
  std::map<std::string, std::string> options;
  auto parsed = nlohmann::json::parse(options_json, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Usage("--options-json: not a JSON object");
  }
  for (const auto& [k, v] : parsed.items()) {
    if (!v.is_string())
      return Usage("--options-json: " + k + " is not a string");
    options[k] = v.get<std::string>();
  }
  auto opts = ParseAnalysisOptions(options, Millis(time_limit_ms));
  if (!opts.ok()) {
    std::printf("%s\n", nlohmann::json{{"url", url},
                                       {"logtype", "json-log"},
                                       {"error", opts.status().message()}}
                            .dump()
                            .c_str());
    return kExitUsage;
  }
  AnalysisReport report = AnalyseUrl(url, *opts);
  // One byte for the newline: the whole line fits the worker's --max-output.
  const std::string out =
      RenderReport(std::move(report.log), max_output > 0 ? max_output - 1 : 0);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (report.network_error && opts->retry_on_network_error) {
    return kExitAnalyseNetworkError;
  }
  return 0;
}

}  // namespace tq
