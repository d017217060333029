// How a task that ran went for its target: the top-level outcome of a done
// task (docs/lifecycle.md, "Outcomes"). On the wire and in results it is its
// name; the broker counts done tasks by it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace tq {

enum class Outcome : uint8_t { kOk, kUnreachable, kHttpError, kTimeout };
inline constexpr int kOutcomeCount = 4;

inline constexpr std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kUnreachable:
      return "unreachable";
    case Outcome::kHttpError:
      return "http_error";
    case Outcome::kTimeout:
      return "timeout";
  }
  return "ok";
}

// The outcome named `name`, or nullopt for anything else.
inline std::optional<Outcome> ParseOutcome(std::string_view name) {
  for (int i = 0; i < kOutcomeCount; ++i) {
    if (OutcomeName(Outcome(i)) == name) return Outcome(i);
  }
  return std::nullopt;
}

}  // namespace tq
