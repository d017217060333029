#include "common/url_check.h"

#include <idn2.h>
#include <uriparser/Uri.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <string>

namespace tq {
namespace {

constexpr size_t kNone = std::string_view::npos;

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x80;
  });
}

size_t FirstNonAscii(std::string_view s, size_t from = 0) {
  for (size_t i = from; i < s.size(); ++i) {
    if (static_cast<unsigned char>(s[i]) >= 0x80) return i;
  }
  return kNone;
}

Status TooLong(size_t size, size_t max_bytes, const char* what = "") {
  return Status::InvalidArgument("URL is " + std::to_string(size) +
                                 " bytes long" + what + " (limit " +
                                 std::to_string(max_bytes) + ")");
}

// Control characters and spaces, with their 1-based byte column.
Status CheckCharacters(std::string_view url) {
  for (size_t i = 0; i < url.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(url[i]);
    if (c < 0x20 || c == 0x7f) {
      return Status::InvalidArgument("control character at column " +
                                     std::to_string(i + 1));
    }
    if (c == ' ') {
      return Status::InvalidArgument("space at column " +
                                     std::to_string(i + 1));
    }
  }
  return Status::Ok();
}

// Where the host of "scheme://[userinfo@]host[:port]..." lies, found by text
// alone because uriparser refuses the raw UTF-8 of an IDN. Empty (begin ==
// end) when there is no authority or the host is an IP literal.
struct Span {
  size_t begin = 0;
  size_t end = 0;
};

Span FindRegNameHost(std::string_view url) {
  const size_t sep = url.find("://");
  if (sep == kNone || sep == 0) return {};
  for (size_t i = 0; i < sep; ++i) {
    unsigned char c = static_cast<unsigned char>(url[i]);
    bool ok = std::isalpha(c) ||
              (i > 0 && (std::isdigit(c) || c == '+' || c == '-' || c == '.'));
    if (!ok) return {};
  }
  const size_t authority = sep + 3;
  size_t authority_end = url.find_first_of("/?#", authority);
  if (authority_end == kNone) authority_end = url.size();
  std::string_view auth = url.substr(authority, authority_end - authority);
  const size_t at = auth.rfind('@');
  const size_t begin = authority + (at == kNone ? 0 : at + 1);
  if (begin < authority_end && url[begin] == '[') return {};
  size_t end = url.find(':', begin);
  if (end == kNone || end > authority_end) end = authority_end;
  return {begin, end};
}

// The IDN's ASCII form, or why it has none. Only letters, digits, hyphens
// and dots may come out: TR46 maps some characters to '/', '@', ':' and the
// like, which would move where the host ends. (libidn2's STD3 flag is not
// used: version 2.3 drops such characters silently instead of refusing.)
Result<std::string> HostToAscii(std::string_view host) {
  const std::string input(host);
  uint8_t* out = nullptr;
  const int rc = idn2_lookup_u8(reinterpret_cast<const uint8_t*>(input.c_str()),
                                &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
  std::unique_ptr<uint8_t, decltype(&idn2_free)> owned(out, &idn2_free);
  const std::string invalid =
      "host '" + input + "' is not a valid internationalized domain name: ";
  if (rc != IDN2_OK)
    return Status::InvalidArgument(invalid + idn2_strerror(rc));
  std::string ascii(reinterpret_cast<const char*>(out));
  for (char c : ascii) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
          c == '.')) {
      return Status::InvalidArgument(invalid + "it maps to '" + ascii +
                                     "', not letters, digits, '-' and '.'");
    }
  }
  return ascii;
}

// Syntax, scheme, host and port of an ASCII URL free of spaces and controls.
Status CheckStructure(std::string_view url) {
  UriUriA uri;
  const char* error_pos = nullptr;
  const char* first = url.data();
  const char* after_last = url.data() + url.size();
  if (uriParseSingleUriExA(&uri, first, after_last, &error_pos) !=
      URI_SUCCESS) {
    size_t column = error_pos ? size_t(error_pos - first) + 1 : 1;
    return Status::InvalidArgument("not a valid URL (syntax error at column " +
                                   std::to_string(column) + ")");
  }
  auto text = [](const UriTextRangeA& r) {
    return r.first ? std::string(r.first, r.afterLast) : std::string();
  };
  std::string scheme = text(uri.scheme);
  std::string host = text(uri.hostText);
  std::string port = text(uri.portText);
  uriFreeUriMembersA(&uri);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (scheme.empty()) {
    return Status::InvalidArgument(
        "not an absolute URL (no scheme; expected http:// or https://)");
  }
  if (scheme != "http" && scheme != "https") {
    return Status::InvalidArgument("scheme '" + scheme +
                                   "' is not http or https");
  }
  if (host.empty()) return Status::InvalidArgument("URL has no host");
  // An empty port ("host:/") means the default one (RFC 3986 3.2.3).
  if (!port.empty()) {
    // uriparser lets only digits through; leading zeros are harmless.
    const size_t digits = port.find_first_not_of('0');
    const bool in_range =
        digits != kNone && port.size() - digits <= 5 &&
        std::strtoul(port.c_str() + digits, nullptr, 10) <= 65535;
    if (!in_range) {
      return Status::InvalidArgument("port " + port +
                                     " is out of range (1-65535)");
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateUrl(std::string_view url, size_t max_bytes) {
  if (url.empty()) return Status::InvalidArgument("empty URL");
  if (url.size() > max_bytes) return TooLong(url.size(), max_bytes);
  if (Status s = CheckCharacters(url); !s.ok()) return s;
  if (size_t i = FirstNonAscii(url); i != kNone) {
    Span host = FindRegNameHost(url);
    if (i >= host.begin && i < host.end) {
      return Status::InvalidArgument(
          "host is not ASCII (an internationalized domain name must be sent "
          "in its xn-- form)");
    }
    return Status::InvalidArgument("non-ASCII byte at column " +
                                   std::to_string(i + 1) +
                                   " (percent-encode it)");
  }
  return CheckStructure(url);
}

Result<std::string> NormalizeUrl(std::string_view url, size_t max_bytes) {
  if (IsAscii(url)) {
    if (Status s = ValidateUrl(url, max_bytes); !s.ok()) return s;
    return std::string(url);
  }
  if (url.size() > max_bytes) return TooLong(url.size(), max_bytes);
  if (Status s = CheckCharacters(url); !s.ok()) return s;
  const Span host = FindRegNameHost(url);
  const std::string_view host_text =
      url.substr(host.begin, host.end - host.begin);
  for (size_t i = FirstNonAscii(url); i != kNone;
       i = FirstNonAscii(url, i + 1)) {
    if (i < host.begin || i >= host.end) {
      return Status::InvalidArgument("non-ASCII byte at column " +
                                     std::to_string(i + 1) +
                                     " (only the host may be non-ASCII; "
                                     "percent-encode the rest)");
    }
  }
  // Check the rest of the URL with a stand-in host of the same length, so a
  // syntax error's column counts bytes of the URL as given.
  std::string stand_in(url);
  stand_in.replace(host.begin, host_text.size(), host_text.size(), 'x');
  if (Status s = CheckStructure(stand_in); !s.ok()) return s;
  auto ascii = HostToAscii(host_text);
  if (!ascii.ok()) return ascii.status();
  std::string converted(url);
  converted.replace(host.begin, host_text.size(), *ascii);
  if (converted.size() > max_bytes) {
    return TooLong(converted.size(), max_bytes, " with its host in xn-- form");
  }
  if (Status s = CheckStructure(converted); !s.ok()) return s;
  return converted;
}

}  // namespace tq
