#include "worker/handler_outcome.h"

#include <nlohmann/json.hpp>

#include "common/outcome.h"

namespace tq {
namespace {

// The JSON object a handler printed, if its output is one (a bounded parse:
// outputs are capped by --max-output).
nlohmann::json OutputObject(const std::string& output) {
  const size_t start = output.find_first_not_of(" \t\r\n");
  if (start == std::string::npos || output[start] != '{') return nullptr;
  auto doc = nlohmann::json::parse(output, nullptr, /*allow_exceptions=*/false);
  return doc.is_object() ? doc : nullptr;
}

std::string StringField(const nlohmann::json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : "";
}

// The last non-empty line of `text`, at most 300 bytes.
std::string LastLine(const std::string& text) {
  size_t end = text.find_last_not_of(" \t\r\n");
  if (end == std::string::npos) return "";
  const size_t begin = text.rfind('\n', end);
  std::string line =
      text.substr(begin == std::string::npos ? 0 : begin + 1,
                  end - (begin == std::string::npos ? 0 : begin + 1) + 1);
  return line.substr(0, 300);
}

}  // namespace

void ApplyHandlerOutcome(Handler handler, TaskOutcome* o) {
  o->outcome.clear();
  o->outcome_reason.clear();
  const bool exec_unreachable = handler == Handler::kExec && !o->ok &&
                                o->exit_code == kExitTargetUnreachable;
  if (!o->ok && !exec_unreachable) return;
  const nlohmann::json doc = OutputObject(o->output);
  if (exec_unreachable) {
    o->ok = true;
    o->error.clear();
    o->outcome = std::string(OutcomeName(Outcome::kUnreachable));
    std::string why = doc.is_object() ? StringField(doc, "outcome_reason") : "";
    if (why.empty()) why = LastLine(o->stderr_tail);
    o->outcome_reason =
        why.empty() ? "the handler exited with status 3 (target unreachable)"
                    : why;
    return;
  }
  if (doc.is_object()) {
    if (auto named = ParseOutcome(StringField(doc, "outcome"))) {
      o->outcome = std::string(OutcomeName(*named));
      o->outcome_reason = StringField(doc, "outcome_reason");
      if (o->outcome_reason.empty() && *named != Outcome::kOk) {
        o->outcome_reason = StringField(doc, "error");
      }
      o->outcome_reason = o->outcome_reason.substr(0, 1000);
      return;
    }
  }
  o->outcome = std::string(OutcomeName(Outcome::kOk));
}

}  // namespace tq
