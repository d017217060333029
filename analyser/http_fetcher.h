// One HTTP(S) request with libcurl, never following redirects (the analyser
// follows them itself so that every hop is recorded). Only http and https
// are ever spoken: other schemes are refused before any connection.
#pragma once

#include <cstdint>
#include <string>

#include "common/clock.h"

namespace tq {

struct FetchRequest {
  std::string url;
  std::string user_agent;
  std::string referer;  // empty: none
  std::string proxy;    // empty: no proxy, whatever the environment says
  size_t max_body_bytes = 5 * 1024 * 1024;
  Millis timeout{30'000};
  bool tls_verify = true;
};

struct FetchResponse {
  std::string url;
  long status = 0;  // 0 when no response came
  std::string content_type;
  std::string redirect_url;  // absolute Location of a 3xx, if any
  std::string body;
  bool body_truncated = false;  // the cap was reached; not an error
  std::string remote_ip;
  uint32_t duration_ms = 0;
  // Empty when a response came. Otherwise one of "scheme", "dns",
  // "connect", "tls", "timeout", "network", and a readable message.
  std::string error_kind;
  std::string error;
};

// True for URLs whose scheme is http or https (case-insensitive).
bool IsHttpUrl(const std::string& url);
// The lower-cased scheme of `url`, or "" when it has none.
std::string UrlScheme(const std::string& url);
// The lower-cased host of an http(s) URL, or "".
std::string UrlHost(const std::string& url);

FetchResponse Fetch(const FetchRequest& request);

}  // namespace tq
