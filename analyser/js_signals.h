// Static hints over JavaScript source, without running it: calls that decode
// or write long strings, long or random-looking string literals, and
// redirects through `location`. Hints, not verdicts.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tq {

struct Signal {
  std::string description;
  std::string snippet;  // the text that triggered it, shortened
};

inline constexpr size_t kLongArgumentChars = 100;
inline constexpr size_t kLongLiteralChars = 1000;
inline constexpr size_t kEntropyLiteralChars = 200;
inline constexpr double kHighEntropyBits = 4.8;
inline constexpr size_t kMaxSignalSnippet = 200;

std::vector<Signal> ScanJavaScript(std::string_view code);

// Targets of statically visible redirects: location = "...",
// location.href = "...", location.replace("..."), location.assign("...").
std::vector<std::string> JavaScriptRedirects(std::string_view code);

std::string Shorten(std::string_view s, size_t max = kMaxSignalSnippet);

}  // namespace tq
