#include "common/endpoint.h"

#include <cctype>

namespace tq {
namespace {

constexpr std::string_view kScheme = "tcp://";
constexpr const char* kExample = "tcp://127.0.0.1:7070";

Status Malformed(std::string_view text, const std::string& why,
                 const std::string& guess = {}) {
  std::string m = "'" + std::string(text) + "' is not a broker endpoint";
  if (!why.empty()) m += " (" + why + ")";
  m += ": expected tcp://HOST:PORT, e.g. ";
  m += kExample;
  if (!guess.empty() && guess != kExample)
    m += " (did you mean " + guess + "?)";
  return Status::InvalidArgument(std::move(m));
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

std::string Endpoint::ToZmq() const {
  return std::string(kScheme) + host + ":" +
         (port == 0 ? std::string("*") : std::to_string(port));
}

Result<Endpoint> ParseEndpoint(std::string_view text, EndpointUse use) {
  if (text.empty()) return Malformed(text, "empty");
  if (text.substr(0, kScheme.size()) != kScheme) {
    size_t sep = text.find("://");
    if (sep != std::string_view::npos) {
      return Malformed(
          text, "scheme '" + std::string(text.substr(0, sep)) + "' is not tcp");
    }
    // 127.0.0.1:7070 or localhost: the scheme (and maybe the port) missing.
    std::string guess = std::string(kScheme) + std::string(text);
    if (text.find(':') == std::string_view::npos) guess += ":7070";
    return Malformed(text, "no scheme", guess);
  }
  std::string_view rest = text.substr(kScheme.size());
  size_t colon = rest.rfind(':');
  // "[::1]" alone has colons but no port after the bracket.
  if (colon == std::string_view::npos ||
      (rest.front() == '[' && colon < rest.find(']'))) {
    return Malformed(text, "no port", std::string(text) + ":7070");
  }
  std::string_view host = rest.substr(0, colon);
  std::string_view port_text = rest.substr(colon + 1);
  if (host.empty()) return Malformed(text, "no host");
  if (host.find('/') != std::string_view::npos) {
    return Malformed(text, "'/' in the host");
  }
  if (host == "*" && use == EndpointUse::kConnect) {
    return Malformed(text, "'*' only for --listen");
  }
  Endpoint e;
  e.host = std::string(host);
  if (port_text == "*" && use == EndpointUse::kBind) return e;
  if (!AllDigits(port_text)) {
    return Malformed(
        text, port_text.empty()
                  ? "no port"
                  : "port '" + std::string(port_text) + "' is not a number");
  }
  // Compare the digits, not a parsed int: "70000" must not wrap to 4464.
  if (port_text.size() > 5 || std::stoi(std::string(port_text)) > 65535) {
    return Status::InvalidArgument("'" + std::string(text) + "': port " +
                                   std::string(port_text) +
                                   " is out of range 1-65535");
  }
  e.port = std::stoi(std::string(port_text));
  if (e.port == 0 && use == EndpointUse::kConnect) {
    return Status::InvalidArgument(
        "'" + std::string(text) +
        "': port 0 is out of range 1-65535 (0 only for --listen)");
  }
  return e;
}

Status CheckEndpoint(std::string_view text, EndpointUse use,
                     std::string_view flag) {
  auto parsed = ParseEndpoint(text, use);
  if (parsed.ok()) return Status::Ok();
  if (flag.empty()) return parsed.status();
  return Status::InvalidArgument(std::string(flag) + ": " +
                                 parsed.status().message());
}

}  // namespace tq
