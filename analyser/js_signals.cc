#include "analyser/js_signals.h"

#include <array>
#include <cctype>
#include <regex>

#include "analyser/content_info.h"

namespace tq {
namespace {

// Scanning stops here: a script is scanned only this far.
constexpr size_t kMaxScanChars = 2 * 1024 * 1024;
constexpr size_t kMaxSignalsPerKind = 5;

bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
}

// The argument text of the call whose "(" is at `open`, up to the matching
// ")" (quotes respected), or to the end if unbalanced.
std::string_view CallArgument(std::string_view code, size_t open) {
  int depth = 0;
  char quote = 0;
  for (size_t i = open; i < code.size(); ++i) {
    const char c = code[i];
    if (quote) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if (c == '"' || c == '\'' || c == '`') {
      quote = c;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')' && --depth == 0) {
      return code.substr(open + 1, i - open - 1);
    }
  }
  return code.substr(open + 1);
}

void LongCalls(std::string_view code, std::vector<Signal>* out) {
  static constexpr std::array<std::string_view, 4> kCalls = {
      "eval", "unescape", "document.write", "String.fromCharCode"};
  for (auto name : kCalls) {
    size_t found = 0;
    size_t pos = 0;
    while (found < kMaxSignalsPerKind &&
           (pos = code.find(name, pos)) != std::string_view::npos) {
      const size_t start = pos;
      pos += name.size();
      if (start > 0 && IsIdentChar(code[start - 1]) &&
          name != "document.write") {
        continue;
      }
      size_t p = pos;
      // document.writeln is document.write too.
      if (name == "document.write" && code.substr(p, 2) == "ln") p += 2;
      while (p < code.size() &&
             std::isspace(static_cast<unsigned char>(code[p]))) {
        ++p;
      }
      if (p >= code.size() || code[p] != '(') continue;
      const std::string_view arg = CallArgument(code, p);
      if (arg.size() < kLongArgumentChars) continue;
      out->push_back({std::string(name) + " over a long argument (" +
                          std::to_string(arg.size()) + " characters)",
                      Shorten(code.substr(start))});
      ++found;
    }
  }
}

void Literals(std::string_view code, std::vector<Signal>* out) {
  size_t long_found = 0, random_found = 0;
  size_t i = 0;
  while (i < code.size()) {
    const char q = code[i];
    if (q != '"' && q != '\'' && q != '`') {
      ++i;
      continue;
    }
    const size_t start = i++;
    while (i < code.size() && code[i] != q && code[i] != '\n') {
      if (code[i] == '\\') ++i;
      ++i;
    }
    const std::string_view literal =
        code.substr(start + 1, std::min(i, code.size()) - start - 1);
    ++i;
    if (literal.size() >= kLongLiteralChars &&
        long_found < kMaxSignalsPerKind) {
      out->push_back({"very long string literal (" +
                          std::to_string(literal.size()) + " characters)",
                      Shorten(code.substr(start))});
      ++long_found;
    } else if (literal.size() >= kEntropyLiteralChars &&
               random_found < kMaxSignalsPerKind) {
      const double h = ShannonEntropy(literal);
      if (h >= kHighEntropyBits) {
        char bits[16];
        std::snprintf(bits, sizeof bits, "%.2f", h);
        out->push_back({"high-entropy string literal (" + std::string(bits) +
                            " bits/char over " +
                            std::to_string(literal.size()) + " characters)",
                        Shorten(code.substr(start))});
        ++random_found;
      }
    }
  }
}

}  // namespace

std::string Shorten(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  return std::string(s.substr(0, max)) + "...";
}

std::vector<Signal> ScanJavaScript(std::string_view code) {
  code = code.substr(0, kMaxScanChars);
  std::vector<Signal> out;
  LongCalls(code, &out);
  Literals(code, &out);
  return out;
}

std::vector<std::string> JavaScriptRedirects(std::string_view code) {
  // A regex over JavaScript source (not HTML): statically visible redirects
  // only; anything computed at run time is out of reach without a JS engine.
  static const std::regex kAssign(
      R"((?:^|[^\w$.])(?:(?:window|document|top|self|parent)\.)?location(?:\.href)?\s*=\s*(["'])([^"'\n]{1,2048})\1)");
  static const std::regex kCall(
      R"(location\.(?:replace|assign)\s*\(\s*(["'])([^"'\n]{1,2048})\1)");
  std::vector<std::string> out;
  // std::regex recurses per character: keep its input small.
  const std::string text(code.substr(0, 256 * 1024));
  for (const auto* re : {&kAssign, &kCall}) {
    for (auto it = std::sregex_iterator(text.begin(), text.end(), *re);
         it != std::sregex_iterator() && out.size() < 20; ++it) {
      out.push_back((*it)[2].str());
    }
  }
  return out;
}

}  // namespace tq
