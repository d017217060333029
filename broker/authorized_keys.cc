#include "broker/authorized_keys.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <system_error>
#include <unordered_set>

#include "common/curve_keys.h"
#include "common/queue_name.h"

namespace tq {
namespace {

constexpr size_t kMaxKeyNameLength = 64;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Splits "a, b,c" into trimmed, non-empty items.
std::vector<std::string> SplitList(std::string_view csv) {
  std::vector<std::string> items;
  size_t pos = 0;
  while (pos <= csv.size()) {
    size_t comma = csv.find(',', pos);
    if (comma == std::string_view::npos) comma = csv.size();
    std::string_view item = csv.substr(pos, comma - pos);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item[0]))) {
      item.remove_prefix(1);
    }
    while (!item.empty() &&
           std::isspace(static_cast<unsigned char>(item.back()))) {
      item.remove_suffix(1);
    }
    if (!item.empty()) items.emplace_back(item);
    pos = comma + 1;
  }
  return items;
}

}  // namespace

Result<RoleSet> ParseRoles(std::string_view csv) {
  RoleSet roles;
  for (const std::string& item : SplitList(csv)) {
    if (item == "worker") {
      roles.Add(Role::kWorker);
    } else if (item == "submit") {
      roles.Add(Role::kSubmit);
    } else if (item == "admin") {
      roles.Add(Role::kAdmin);
    } else {
      return Status::InvalidArgument("unknown role '" + item +
                                     "' (worker, submit, admin)");
    }
  }
  return roles;
}

Result<std::vector<std::string>> ParseCountries(std::string_view csv) {
  std::vector<std::string> countries;
  for (const std::string& item : SplitList(csv)) {
    if (!IsIsoCountryCode(item)) {
      return Status::InvalidArgument(
          "'" + item +
          "' is not an ISO 3166-1 alpha-2 country code in upper "
          "case (e.g. IT)");
    }
    if (std::find(countries.begin(), countries.end(), item) !=
        countries.end()) {
      return Status::InvalidArgument("country " + item + " repeated");
    }
    countries.push_back(item);
  }
  return countries;
}

bool IsValidKeyName(std::string_view name) {
  if (name.empty() || name.size() > kMaxKeyNameLength) return false;
  if (name.front() == '.' || name.front() == '-') return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

PeerIdentity AuthorizedKey::Identity() const {
  PeerIdentity id;
  id.keyed = true;
  id.key_name = name;
  id.public_key = public_key;
  id.roles = roles;
  id.countries = countries;
  return id;
}

bool AuthorizedKey::MayServe(std::string_view queue) const {
  if (!roles.Has(Role::kWorker)) return false;
  if (queue == "generic" || countries.empty()) return true;
  return std::find(countries.begin(), countries.end(), queue) !=
         countries.end();
}

Result<AuthorizedKey> LoadAuthorizedKey(const std::string& path) {
  auto cert = LoadCurveCert(path);
  if (!cert.ok()) return cert.status();
  auto refuse = [&](const std::string& why) {
    return Status::InvalidArgument(path + ": " + why);
  };
  if (cert->has_secret()) {
    return refuse(
        "holds a secret key; only public keys (NAME.key) belong here");
  }
  AuthorizedKey key;
  key.file = path;
  key.public_key = cert->public_key;
  key.name = cert->Meta(kMetaName);
  if (key.name.empty()) {
    std::string stem = std::filesystem::path(path).filename().string();
    if (EndsWith(stem, kPublicKeySuffix)) {
      stem.resize(stem.size() - std::string_view(kPublicKeySuffix).size());
    }
    key.name = stem;
  }
  if (!IsValidKeyName(key.name)) {
    return refuse("name '" + key.name +
                  "' is not 1-64 of A-Z a-z 0-9 . _ - (not starting with . "
                  "or -)");
  }
  auto roles = ParseRoles(cert->Meta(kMetaRoles));
  if (!roles.ok()) return refuse(roles.status().message());
  if (roles->empty()) {
    return refuse(
        "names no role: add roles = \"worker\", \"submit\" or \"admin\" "
        "under metadata");
  }
  key.roles = roles.value();
  auto countries = ParseCountries(cert->Meta(kMetaCountries));
  if (!countries.ok()) return refuse(countries.status().message());
  key.countries = std::move(countries.value());
  if (!key.countries.empty() && !key.roles.Has(Role::kWorker)) {
    return refuse("countries apply to worker keys only");
  }
  return key;
}

AuthorizedKeys AuthorizedKeys::FromKeys(std::vector<AuthorizedKey> keys,
                                        std::vector<KeyFileProblem>* problems) {
  // Count first so that both members of a duplicate pair are refused.
  std::unordered_map<std::string, int> key_count, name_count;
  for (const auto& k : keys) {
    ++key_count[k.public_key];
    ++name_count[k.name];
  }
  AuthorizedKeys table;
  for (auto& k : keys) {
    std::string why;
    if (key_count[k.public_key] > 1) {
      why = "its public key is also in another file; refusing every copy";
    } else if (name_count[k.name] > 1) {
      why = "its name '" + k.name +
            "' is also used by another key; refusing both";
    }
    if (!why.empty()) {
      if (problems) problems->push_back({k.file, k.file + ": " + why});
      continue;
    }
    size_t index = table.keys_.size();
    table.by_public_key_.emplace(k.public_key, index);
    table.by_name_.emplace(k.name, index);
    table.keys_.push_back(std::move(k));
  }
  return table;
}

Result<AuthorizedKeys> AuthorizedKeys::LoadDirectory(
    const std::string& dir, std::vector<KeyFileProblem>* problems) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    if (!fs::exists(dir, ec)) {
      return Status::NotFound("no such directory: " + dir);
    }
    return Status::InvalidArgument(dir + " is not a directory");
  }
  std::vector<std::string> paths;
  fs::directory_iterator it(dir, ec);
  if (ec) return Status::IoError("cannot read " + dir + ": " + ec.message());
  for (const fs::directory_entry& entry : it) {
    paths.push_back(entry.path().string());
  }
  std::sort(paths.begin(), paths.end());

  auto report = [&](const std::string& file, const std::string& why) {
    if (problems) problems->push_back({file, file + ": " + why});
  };
  std::vector<AuthorizedKey> keys;
  for (const std::string& path : paths) {
    const std::string file = fs::path(path).filename().string();
    if (file.starts_with(".")) continue;  // editor swap files, dotfiles
    if (EndsWith(file, kSecretKeySuffix)) {
      report(path,
             "a secret key file: it does not belong here (keep it on its "
             "machine; NAME.key is enough)");
      continue;
    }
    if (!EndsWith(file, kPublicKeySuffix)) {
      report(path, "ignored: the name does not end in .key");
      continue;
    }
    if (!fs::is_regular_file(path, ec)) {
      report(path, "not a regular file");
      continue;
    }
    auto key = LoadAuthorizedKey(path);
    if (!key.ok()) {
      // The loader's message already starts with the path.
      if (problems) problems->push_back({path, key.status().message()});
      continue;
    }
    keys.push_back(std::move(key.value()));
  }
  return FromKeys(std::move(keys), problems);
}

const AuthorizedKey* AuthorizedKeys::FindByPublicKey(
    std::string_view public_key) const {
  auto it = by_public_key_.find(std::string(public_key));
  return it == by_public_key_.end() ? nullptr : &keys_[it->second];
}

const AuthorizedKey* AuthorizedKeys::FindByName(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &keys_[it->second];
}

std::vector<AuthorizedKey> AuthorizedKeys::Revoked(
    const AuthorizedKeys& before, const AuthorizedKeys& after) {
  std::vector<AuthorizedKey> gone;
  for (const auto& k : before.keys_) {
    if (after.FindByPublicKey(k.public_key) == nullptr) gone.push_back(k);
  }
  return gone;
}

namespace {

std::string CountriesText(const std::vector<std::string>& countries) {
  if (countries.empty()) return "any";
  std::string text;
  for (const std::string& c : countries) {
    if (!text.empty()) text += ",";
    text += c;
  }
  return text;
}

}  // namespace

AuthorizedKeys::Changes AuthorizedKeys::Diff(const AuthorizedKeys& before,
                                             const AuthorizedKeys& after) {
  Changes changes;
  for (const AuthorizedKey& k : after.keys_) {
    if (before.FindByName(k.name) == nullptr) changes.added.push_back(k.name);
  }
  for (const AuthorizedKey& was : before.keys_) {
    const AuthorizedKey* now = after.FindByName(was.name);
    if (now == nullptr) {
      changes.removed.push_back(was.name);
      continue;
    }
    std::vector<std::string> what;
    if (now->public_key != was.public_key) what.push_back("new public key");
    if (now->roles != was.roles) {
      what.push_back("roles " + was.roles.ToString() + " -> " +
                     now->roles.ToString());
    }
    if (now->countries != was.countries) {
      what.push_back("countries " + CountriesText(was.countries) + " -> " +
                     CountriesText(now->countries));
    }
    if (what.empty()) continue;
    std::string line = was.name + ":";
    for (size_t i = 0; i < what.size(); ++i) {
      line += (i == 0 ? " " : "; ") + what[i];
    }
    changes.changed.push_back(std::move(line));
  }
  return changes;
}

}  // namespace tq
