// Who may use the web console: the address it listens on, the tokens of
// --http-token-file and their roles, and the checks a request passes.
// Pure functions and a small immutable table: no HTTP library here.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tq {

// Ordered: each role may do what the ones before it may.
enum class HttpRole { kViewer = 0, kSubmit = 1, kAdmin = 2 };
std::string_view HttpRoleName(HttpRole r);

// "127.0.0.1:8080", "[::1]:0", "localhost:8080", "0.0.0.0:80" -> host, port.
struct HttpAddress {
  std::string host;  // without brackets
  int port = 0;
};
Result<HttpAddress> ParseHttpAddress(std::string_view text);

// Loopback literals (127.0.0.0/8, ::1) and "localhost".
bool IsLoopbackHost(std::string_view host);

class AccessTable {
 public:
  // No tokens: open, but only on loopback.
  AccessTable() = default;

  // Lines "ROLE TOKEN" (viewer, submit or admin; tokens of 16+ characters
  // without spaces), '#' comments and blank lines ignored. InvalidArgument
  // naming the line for anything else; IoError if unreadable.
  static Result<AccessTable> Load(const std::string& path);
  static Result<AccessTable> Parse(const std::string& text);

  bool open() const { return roles_.empty(); }
  size_t size() const { return roles_.size(); }
  // The role of a presented token; nullopt if unknown. With no tokens at
  // all (loopback), everyone is admin.
  std::optional<HttpRole> RoleOf(std::string_view token) const;

 private:
  std::map<std::string, HttpRole, std::less<>> roles_;
};

// Whether the console may start on `host` with `table`: a token file is
// required anywhere but loopback. The error says what to do.
Status CheckExposure(const std::string& host, const AccessTable& table);

// Equal length-independent comparison for secrets.
bool SecretEquals(std::string_view a, std::string_view b);

// The Host header's host part ("127.0.0.1:8080" -> "127.0.0.1",
// "[::1]:80" -> "::1").
std::string HostOfHeader(std::string_view host_header);

}  // namespace tq
