#include "broker/http_access.h"

#include <arpa/inet.h>

#include <fstream>
#include <sstream>

namespace tq {

std::string_view HttpRoleName(HttpRole r) {
  switch (r) {
    case HttpRole::kViewer:
      return "viewer";
    case HttpRole::kSubmit:
      return "submit";
    case HttpRole::kAdmin:
      return "admin";
  }
  return "viewer";
}

Result<HttpAddress> ParseHttpAddress(std::string_view text) {
  HttpAddress a;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() ||
        text[close + 1] != ':') {
      return Status::InvalidArgument("--http '" + std::string(text) +
                                     "': expected [IPV6]:PORT");
    }
    a.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Status::InvalidArgument("--http '" + std::string(text) +
                                     "': expected ADDRESS:PORT or off");
    }
    a.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string_view::npos) {
    return Status::InvalidArgument("--http '" + std::string(text) +
                                   "': bad port");
  }
  a.port = std::stoi(std::string(port));
  if (a.port > 65535) {
    return Status::InvalidArgument("--http '" + std::string(text) +
                                   "': port over 65535");
  }
  return a;
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost") return true;
  const std::string h(host);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6);
  }
  return false;
}

Result<AccessTable> AccessTable::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::IoError("cannot read --http-token-file " + path);
  std::stringstream text;
  text << in.rdbuf();
  auto table = Parse(text.str());
  if (!table.ok()) {
    return Status::InvalidArgument(path + ":" + table.status().message());
  }
  return table;
}

Result<AccessTable> AccessTable::Parse(const std::string& text) {
  AccessTable t;
  std::istringstream in(text);
  std::string line;
  for (size_t no = 1; std::getline(in, line); ++no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::istringstream words(line);
    std::string role, token, extra;
    words >> role;
    if (role.empty() || role[0] == '#') continue;
    words >> token >> extra;
    const std::string where = std::to_string(no) + ": ";
    if (token.empty() || !extra.empty()) {
      return Status::InvalidArgument(where + "expected ROLE TOKEN");
    }
    HttpRole r;
    if (role == "viewer") {
      r = HttpRole::kViewer;
    } else if (role == "submit") {
      r = HttpRole::kSubmit;
    } else if (role == "admin") {
      r = HttpRole::kAdmin;
    } else {
      return Status::InvalidArgument(where + "role '" + role +
                                     "' is not viewer, submit or admin");
    }
    if (token.size() < 16) {
      return Status::InvalidArgument(where +
                                     "token shorter than 16 characters");
    }
    t.roles_[token] = r;
  }
  if (t.roles_.empty()) {
    return Status::InvalidArgument("0: no tokens in the file");
  }
  return t;
}

std::optional<HttpRole> AccessTable::RoleOf(std::string_view token) const {
  if (open()) return HttpRole::kAdmin;
  // Compare against every token in constant time per entry.
  std::optional<HttpRole> found;
  for (const auto& [t, r] : roles_) {
    if (SecretEquals(t, token)) found = r;
  }
  return found;
}

Status CheckExposure(const std::string& host, const AccessTable& table) {
  if (IsLoopbackHost(host) || !table.open()) return Status::Ok();
  return Status::InvalidArgument(
      "--http " + host +
      " is not a loopback address: give --http-token-file (lines 'ROLE "
      "TOKEN'), or listen on 127.0.0.1 and put a TLS proxy in front");
}

bool SecretEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? a[i] : 0;
    const unsigned char y = i < b.size() ? b[i] : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

std::string HostOfHeader(std::string_view h) {
  if (!h.empty() && h.front() == '[') {
    const size_t close = h.find(']');
    return std::string(h.substr(1, close == h.npos ? h.npos : close - 1));
  }
  const size_t colon = h.rfind(':');
  return std::string(h.substr(0, colon));
}

}  // namespace tq
