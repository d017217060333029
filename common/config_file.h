// Config files for tq-broker and tq-worker: `--config FILE`, INI/TOML lines of
// `flag = value` (the long flag without its dashes), read by CLI11. Flags on
// the command line win over the file. CLI11 reports an unknown key without
// its line, and quietly keeps the last word of an unquoted value with spaces,
// so each file is checked line by line before CLI11 reads it.
#pragma once

#include <map>
#include <string>

#include "common/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace tq {

// What a config file may say about one flag.
struct ConfigKey {
  bool takes_value = true;  // false: a flag (`noop` or `noop = true`)
  bool single = true;       // false: a list (`[a, b]`) is fine
  bool allowed = true;      // false: a flag for the command line only
};

// Checks `text` (the contents of `file`, named in messages) against the keys
// allowed: comments (#, ;), blank lines and `key = value` only. Returns
// InvalidArgument "FILE:LINE: ..." for the first line that is not right:
// an unknown key, a command-line-only one, a section, a value missing, or an
// unquoted single value with spaces or commas (CLI11 would split it and keep a
// part).
Status CheckConfigText(const std::string& text, const std::string& file,
                       const std::map<std::string, ConfigKey>& keys);

// Adds `--config FILE` to `app`, which already has every other flag. The
// file `default_path` is read when --config is not given, and only if it
// exists; a --config FILE that is missing is an error. Unknown keys and bad
// lines throw CLI::ConfigError (a ParseError) from app.parse, with the line.
// `unless` names a flag that, when given, means no file is read at all (the
// worker's per-task child); "" for none.
void AddConfigFile(CLI::App& app, const std::string& default_path,
                   const std::string& unless = "");

}  // namespace tq
