#include "analyser/http_fetcher.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <mutex>

namespace tq {
namespace {

constexpr char kAllowedProtocols[] = "http,https";

struct BodySink {
  std::string* body;
  size_t cap;
  bool truncated = false;
};

size_t WriteBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  const size_t n = size * nmemb;
  const size_t room = sink->cap - std::min(sink->cap, sink->body->size());
  if (n > room) {
    sink->body->append(data, room);
    sink->truncated = true;
    return 0;  // stops the transfer; reported as a cap, not an error
  }
  sink->body->append(data, n);
  return n;
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string Lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

void Classify(CURLcode code, const char* detail, FetchResponse* r) {
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
      r->error_kind = "scheme";
      break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      r->error_kind = "dns";
      break;
    case CURLE_COULDNT_CONNECT:
      r->error_kind = "connect";
      break;
    case CURLE_OPERATION_TIMEDOUT:
      r->error_kind = "timeout";
      break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
      r->error_kind = "tls";
      break;
    default:
      r->error_kind = "network";
  }
  r->error = detail && *detail ? detail : curl_easy_strerror(code);
}

}  // namespace

std::string UrlScheme(const std::string& url) {
  const size_t colon = url.find(':');
  if (colon == std::string::npos || colon == 0) return "";
  for (size_t i = 0; i < colon; ++i) {
    const auto c = static_cast<unsigned char>(url[i]);
    if (!std::isalnum(c) && c != '+' && c != '-' && c != '.') return "";
  }
  return Lower(url.substr(0, colon));
}

bool IsHttpUrl(const std::string& url) {
  const std::string s = UrlScheme(url);
  return (s == "http" || s == "https") && url.compare(s.size(), 3, "://") == 0;
}

std::string UrlHost(const std::string& url) {
  if (!IsHttpUrl(url)) return "";
  const size_t start = url.find("://") + 3;
  size_t end = url.find_first_of("/?#", start);
  if (end == std::string::npos) end = url.size();
  std::string authority = url.substr(start, end - start);
  const size_t at = authority.rfind('@');
  if (at != std::string::npos) authority.erase(0, at + 1);
  if (!authority.empty() && authority[0] == '[') {
    return Lower(authority.substr(0, authority.find(']') + 1));
  }
  return Lower(authority.substr(0, authority.find(':')));
}

FetchResponse Fetch(const FetchRequest& request) {
  FetchResponse r;
  r.url = request.url;
  const auto started = std::chrono::steady_clock::now();
  auto finish = [&] {
    r.duration_ms = static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started)
            .count());
    return r;
  };
  // Checked here too so that a refused scheme never reaches libcurl.
  if (!IsHttpUrl(request.url)) {
    const std::string scheme = UrlScheme(request.url);
    r.error_kind = "scheme";
    r.error = "refused: only http and https URLs are fetched (scheme '" +
              (scheme.empty() ? std::string("none") : scheme) + "')";
    return finish();
  }
  if (request.timeout.count() <= 0) {
    r.error_kind = "timeout";
    r.error = "no time left for this request";
    return finish();
  }
  GlobalInit();
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(),
                                              curl_easy_cleanup);
  if (!curl) {
    r.error_kind = "network";
    r.error = "curl_easy_init failed";
    return finish();
  }
  CURL* h = curl.get();
  char error_buf[CURL_ERROR_SIZE] = {};
  BodySink sink{&r.body, request.max_body_bytes};
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, kAllowedProtocols);
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, kAllowedProtocols);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(request.timeout.count()));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.timeout.count()));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buf);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_USERAGENT, request.user_agent.c_str());
  if (!request.referer.empty()) {
    curl_easy_setopt(h, CURLOPT_REFERER, request.referer.c_str());
  }
  // "" disables the proxy even when http_proxy is set in the environment.
  curl_easy_setopt(h, CURLOPT_PROXY, request.proxy.c_str());
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, request.tls_verify ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, request.tls_verify ? 2L : 0L);
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                   static_cast<curl_off_t>(0));  // the sink enforces the cap

  const CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  r.status = status;
  const char* ct = nullptr;
  if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) {
    r.content_type = ct;
  }
  const char* redirect = nullptr;
  if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &redirect) == CURLE_OK &&
      redirect) {
    r.redirect_url = redirect;
  }
  const char* ip = nullptr;
  if (curl_easy_getinfo(h, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip) {
    r.remote_ip = ip;
  }
  r.body_truncated = sink.truncated;
  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && sink.truncated)) {
    Classify(rc, error_buf, &r);
  }
  return finish();
}

}  // namespace tq
