// The --exec command template: shell-like word splitting (quoting only, never
// run through a shell) and {url} substitution into argv.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tq {

// Splits `command` into words the way a POSIX shell treats quoting: single
// quotes keep everything literal; double quotes keep everything literal except
// that a backslash escapes $ ` " \ and newline; outside quotes a backslash
// escapes any character and unquoted blanks separate words. There is no
// expansion of any kind ($VAR, globs, `...`, $(...) stay literal). Unquoted
// control operators and redirections (| & ; < > ( )) are refused, since
// without a shell they would silently become plain arguments. Errors:
// InvalidArgument for an unterminated quote, an unquoted operator, or an
// empty command.
Result<std::vector<std::string>> SplitCommand(std::string_view command);

// Per-task values for the placeholders of an --exec template.
struct Placeholders {
  std::string url;
  std::string outdir;  // a fresh directory for this run
  std::string referer;
  std::string useragent;
  std::string proxy;
  std::string timeout;  // seconds
};

// An argv template with {url}, {outdir}, {referer}, {useragent}, {proxy} and
// {timeout} placeholders, built once from --exec. Other braces stay literal.
class CommandTemplate {
 public:
  static Result<CommandTemplate> Parse(std::string_view command);

  // argv for one task: each placeholder in each word is replaced by its
  // value; a word stays exactly one argv element whatever the values hold.
  void ExpandInto(const Placeholders& values,
                  std::vector<std::string>* argv) const;

  // argv for one task: every "{url}" in every word is replaced by `url`; each
  // word stays exactly one argv element whatever the URL contains.
  std::vector<std::string> Expand(std::string_view url) const;
  void ExpandInto(std::string_view url, std::vector<std::string>* argv) const;

  const std::vector<std::string>& words() const { return words_; }
  bool uses_url() const { return uses_url_; }
  bool uses_outdir() const { return uses_outdir_; }

 private:
  std::vector<std::string> words_;
  bool uses_url_ = false;
  bool uses_outdir_ = false;
};

inline constexpr std::string_view kUrlPlaceholder = "{url}";

}  // namespace tq
