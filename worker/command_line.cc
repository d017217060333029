#include "worker/command_line.h"

#include <utility>

namespace tq {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n'; }

bool IsOperator(char c) {
  switch (c) {
    case '|':
    case '&':
    case ';':
    case '<':
    case '>':
    case '(':
    case ')':
      return true;
    default:
      return false;
  }
}

// Inside double quotes a backslash only escapes these (POSIX 2.2.3).
bool EscapableInDoubleQuotes(char c) {
  return c == '$' || c == '`' || c == '"' || c == '\\' || c == '\n';
}

}  // namespace

Result<std::vector<std::string>> SplitCommand(std::string_view command) {
  std::vector<std::string> words;
  std::string word;
  // A word exists once any character or quote was seen: '' is an empty word.
  bool in_word = false;
  size_t i = 0;
  const size_t n = command.size();
  while (i < n) {
    const char c = command[i];
    if (IsBlank(c)) {
      if (in_word) {
        words.push_back(std::move(word));
        word.clear();
        in_word = false;
      }
      ++i;
    } else if (c == '\'') {
      const size_t close = command.find('\'', i + 1);
      if (close == std::string_view::npos) {
        return Status::InvalidArgument(
            "unterminated single quote in command starting at position " +
            std::to_string(i));
      }
      word.append(command.substr(i + 1, close - i - 1));
      in_word = true;
      i = close + 1;
    } else if (c == '"') {
      const size_t open = i;
      ++i;
      bool closed = false;
      while (i < n) {
        const char d = command[i];
        if (d == '"') {
          closed = true;
          ++i;
          break;
        }
        if (d == '\\' && i + 1 < n && EscapableInDoubleQuotes(command[i + 1])) {
          // Backslash-newline is a line continuation: both vanish.
          if (command[i + 1] != '\n') word.push_back(command[i + 1]);
          i += 2;
          continue;
        }
        word.push_back(d);
        ++i;
      }
      if (!closed) {
        return Status::InvalidArgument(
            "unterminated double quote in command starting at position " +
            std::to_string(open));
      }
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 == n) {
        // A trailing backslash has nothing to escape; sh keeps it.
        word.push_back('\\');
        in_word = true;
        ++i;
      } else if (command[i + 1] == '\n') {
        i += 2;  // line continuation
      } else {
        word.push_back(command[i + 1]);
        in_word = true;
        i += 2;
      }
    } else if (IsOperator(c)) {
      return Status::InvalidArgument(
          std::string("unquoted '") + c + "' at position " + std::to_string(i) +
          ": commands are not run through a shell; quote it to pass it as "
          "an argument, or use sh -c '...' explicitly");
    } else {
      word.push_back(c);
      in_word = true;
      ++i;
    }
  }
  if (in_word) words.push_back(std::move(word));
  if (words.empty()) return Status::InvalidArgument("empty command");
  return words;
}

Result<CommandTemplate> CommandTemplate::Parse(std::string_view command) {
  auto words = SplitCommand(command);
  if (!words.ok()) return words.status();
  CommandTemplate t;
  t.words_ = std::move(words).value();
  for (const auto& w : t.words_) {
    if (w.find(kUrlPlaceholder) != std::string::npos) t.uses_url_ = true;
    if (w.find("{outdir}") != std::string::npos) t.uses_outdir_ = true;
  }
  return t;
}

void CommandTemplate::ExpandInto(std::string_view url,
                                 std::vector<std::string>* argv) const {
  Placeholders values;
  values.url = std::string(url);
  ExpandInto(values, argv);
}

void CommandTemplate::ExpandInto(const Placeholders& values,
                                 std::vector<std::string>* argv) const {
  const std::pair<std::string_view, const std::string*> names[] = {
      {"{url}", &values.url},         {"{outdir}", &values.outdir},
      {"{referer}", &values.referer}, {"{useragent}", &values.useragent},
      {"{proxy}", &values.proxy},     {"{timeout}", &values.timeout}};
  argv->resize(words_.size());
  for (size_t i = 0; i < words_.size(); ++i) {
    const std::string& w = words_[i];
    std::string& out = (*argv)[i];
    out.clear();
    size_t pos = 0;
    while (pos < w.size()) {
      const size_t brace = w.find('{', pos);
      if (brace == std::string::npos) break;
      out.append(w, pos, brace - pos);
      pos = brace;
      bool matched = false;
      for (const auto& [name, value] : names) {
        if (w.compare(brace, name.size(), name) == 0) {
          out.append(*value);
          pos = brace + name.size();
          matched = true;
          break;
        }
      }
      if (!matched) {
        out.push_back('{');
        ++pos;
      }
    }
    if (pos < w.size()) out.append(w, pos, std::string::npos);
  }
}

std::vector<std::string> CommandTemplate::Expand(std::string_view url) const {
  std::vector<std::string> argv;
  ExpandInto(url, &argv);
  return argv;
}

}  // namespace tq
