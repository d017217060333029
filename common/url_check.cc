#include "common/url_check.h"

#include <uriparser/Uri.h>

#include <algorithm>
#include <cctype>
#include <string>

namespace tq {

Status ValidateUrl(std::string_view url, size_t max_bytes) {
  if (url.empty()) return Status::InvalidArgument("empty URL");
  if (url.size() > max_bytes) {
    return Status::InvalidArgument("URL is " + std::to_string(url.size()) +
                                   " bytes long (limit " +
                                   std::to_string(max_bytes) + ")");
  }
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
  return Status::Ok();
}

}  // namespace tq
