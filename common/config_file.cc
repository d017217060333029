#include "common/config_file.h"

#include <CLI/CLI.hpp>
#include <iterator>
#include <memory>
#include <sstream>
#include <utility>
#include <vector>

namespace tq {
namespace {

std::string Trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  const size_t end = s.find_last_not_of(" \t\r");
  return s.substr(begin, end - begin + 1);
}

bool IsQuote(char c) { return c == '"' || c == '\''; }

std::string Unquote(const std::string& s) {
  if (s.size() >= 2 && IsQuote(s.front()) && s.back() == s.front()) {
    return s.substr(1, s.size() - 2);
  }
  return s;
}

std::string UnknownKey(const std::string& key,
                       const std::map<std::string, ConfigKey>& keys) {
  std::string message = "unknown key '" + key + "'";
  std::string hint = key;
  while (hint.rfind("-", 0) == 0) hint.erase(0, 1);
  for (char& c : hint) {
    if (c == '_') c = '-';
  }
  if (hint != key && keys.count(hint) > 0) {
    return message + " (did you mean " + hint + "?)";
  }
  return message +
         " (keys are the long flags without their dashes; --help "
         "lists them)";
}

// The keys of `app`'s flags: every long name but help's; --config and flags
// made not configurable are there to be refused by name.
std::map<std::string, ConfigKey> KeysOf(const CLI::App& app) {
  std::map<std::string, ConfigKey> keys;
  for (const CLI::Option* opt : app.get_options()) {
    if (opt == app.get_help_ptr() || opt == app.get_help_all_ptr()) continue;
    ConfigKey key;
    key.allowed = opt != app.get_config_ptr() && opt->get_configurable();
    key.takes_value = opt->get_expected_min() > 0;
    key.single = opt->get_items_expected_max() <= 1;
    for (const std::string& name : opt->get_lnames()) keys[name] = key;
  }
  return keys;
}

// CLI11's TOML reader, after CheckConfigText has passed the file.
class CheckedConfig : public CLI::ConfigTOML {
 public:
  CheckedConfig(const CLI::App* app, std::string unless)
      : app_(app), unless_(std::move(unless)) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    if (!unless_.empty()) {
      const CLI::Option* skip = app_->get_option_no_throw(unless_);
      if (skip != nullptr && skip->count() > 0) return {};
    }
    const std::string text((std::istreambuf_iterator<char>(input)),
                           std::istreambuf_iterator<char>());
    const Status checked = CheckConfigText(text, FileName(), KeysOf(*app_));
    if (!checked.ok()) throw CLI::ConfigError(checked.message());
    std::istringstream again(text);
    return CLI::ConfigTOML::from_config(again);
  }

 private:
  // The file being read: the last --config given, else the default.
  std::string FileName() const {
    const CLI::Option* opt = app_->get_config_ptr();
    if (opt == nullptr) return "config";
    if (!opt->results().empty()) return opt->results().back();
    return opt->get_default_str();
  }

  const CLI::App* app_;
  std::string unless_;
};

}  // namespace

Status CheckConfigText(const std::string& text, const std::string& file,
                       const std::map<std::string, ConfigKey>& keys) {
  std::istringstream lines(text);
  std::string raw;
  int number = 0;
  bool in_list = false;  // inside a [ ... ] list spread over lines
  // Bounded by the text: each turn consumes one line.
  while (std::getline(lines, raw)) {
    ++number;
    const std::string line = Trim(raw);
    auto error = [&](const std::string& what) {
      return Status::InvalidArgument(file + ":" + std::to_string(number) +
                                     ": " + what);
    };
    if (in_list) {
      in_list = line.empty() || line.back() != ']';
      continue;
    }
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      return error("sections are not supported (" + line +
                   "): put every key at the top level");
    }
    const size_t eq = line.find('=');
    const std::string key = Unquote(Trim(line.substr(0, eq)));
    const auto found = keys.find(key);
    if (key.empty()) return error("a line with no key");
    if (found == keys.end()) return error(UnknownKey(key, keys));
    const ConfigKey& spec = found->second;
    if (!spec.allowed) {
      return error("'" + key + "' cannot be set in a config file");
    }
    if (eq == std::string::npos) {
      if (spec.takes_value) return error("'" + key + "' needs a value");
      continue;
    }
    // CLI11 cuts a value at the first '#', inside quotes or not.
    std::string value = Trim(line.substr(eq + 1));
    value = Trim(value.substr(0, value.find('#')));
    if (!value.empty() && IsQuote(value[0])) {
      if (value.size() < 2 || value.back() != value[0]) {
        return error("unterminated quote in the value of '" + key +
                     "' (a # starts a comment, even inside quotes)");
      }
      continue;
    }
    if (!value.empty() && value[0] == '[') {
      if (spec.single)
        return error("'" + key + "' takes one value, not a list");
      in_list = value.back() != ']';
      continue;
    }
    if (spec.single && value.find_first_of(" \t,") != std::string::npos) {
      return error("'" + key +
                   "' takes one value: put quotes around a value with spaces "
                   "or commas (" +
                   key + " = \"" + value + "\")");
    }
  }
  if (in_list) {
    return Status::InvalidArgument(file + ": a list is not closed with ]");
  }
  return Status::Ok();
}

void AddConfigFile(CLI::App& app, const std::string& default_path,
                   const std::string& unless) {
  app.set_config("--config", default_path,
                 "read flags from this file: lines of `flag = value`, the "
                 "long flag without its dashes; flags given here win. The "
                 "default file is read only if it exists");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.config_formatter(std::make_shared<CheckedConfig>(&app, unless));
}

}  // namespace tq
