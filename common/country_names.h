// Country names people type where a code is wanted ("italy", "UK", "usa").
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tq {

// The ISO 3166-1 alpha-2 code for a country's English name, common name,
// alpha-3 code or everyday alias, any case: "italy" -> IT, "UK" -> GB,
// "DEU" -> DE. Nothing for anything else (including valid alpha-2 codes).
std::optional<std::string> CountryCodeForName(std::string_view name);

}  // namespace tq
