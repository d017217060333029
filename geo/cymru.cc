#include "geo/cymru.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <poll.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "common/queue_name.h"

namespace tq {
namespace {

struct Query {
  bool done = false;
  int status = ARES_ENOTFOUND;
  std::vector<std::string> texts;
};

void OnAnswer(void* arg, int status, int /*timeouts*/, unsigned char* abuf,
              int alen) {
  auto* q = static_cast<Query*>(arg);
  q->done = true;
  q->status = status;
  if (status != ARES_SUCCESS) return;
  ares_txt_ext* txt = nullptr;
  q->status = ares_parse_txt_reply_ext(abuf, alen, &txt);
  std::string current;
  for (ares_txt_ext* t = txt; t != nullptr; t = t->next) {
    // A record may be split in several strings; record_start marks a new one.
    if (t->record_start && !current.empty()) {
      q->texts.push_back(current);
      current.clear();
    }
    current.append(reinterpret_cast<const char*>(t->txt), t->length);
  }
  if (!current.empty()) q->texts.push_back(current);
  if (txt) ares_free_data(txt);
}

std::string Trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\"");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\"") - b + 1);
}

}  // namespace

std::string CymruQueryName(const IpAddress& ip) {
  std::string name;
  if (ip.v4) {
    for (int i = 3; i >= 0; --i) name += std::to_string(ip.bytes[i]) + ".";
    return name + "origin.asn.cymru.com";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    name += kHex[ip.bytes[i] & 0xf];
    name += '.';
    name += kHex[ip.bytes[i] >> 4];
    name += '.';
  }
  return name + "origin6.asn.cymru.com";
}

CymruResolver::CymruResolver(std::string servers,
                             std::chrono::milliseconds timeout)
    : servers_(std::move(servers)), timeout_(timeout) {}

GeoAnswer CymruResolver::Resolve(const std::string& text) {
  auto ip = ParseIpAddress(text);
  if (!ip.ok()) return {GeoOutcome::kMalformed, "", ip.status().message()};
  if (auto why = NonPublicReason(*ip)) {
    return {GeoOutcome::kNotPublic, "",
            ip->ToString() + " is " + *why + ", which has no country"};
  }
  static std::once_flag init;
  std::call_once(init, [] { ares_library_init(ARES_LIB_INIT_ALL); });

  const std::string name = CymruQueryName(*ip);
  ares_channel channel = nullptr;
  ares_options opts{};
  opts.timeout = static_cast<int>(timeout_.count());
  opts.tries = 2;
  if (ares_init_options(&channel, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) !=
      ARES_SUCCESS) {
    return {GeoOutcome::kDatabaseError, "", "cannot start the DNS resolver"};
  }
  if (!servers_.empty() &&
      ares_set_servers_ports_csv(channel, servers_.c_str()) != ARES_SUCCESS) {
    ares_destroy(channel);
    return {GeoOutcome::kDatabaseError, "",
            "bad DNS server list '" + servers_ + "'"};
  }
  Query q;
  ares_query(channel, name.c_str(), ns_c_in, ns_t_txt, OnAnswer, &q);
  while (!q.done) {
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    const int bits = ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
    std::vector<pollfd> fds;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      short ev = 0;
      if (ARES_GETSOCK_READABLE(bits, i)) ev |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(bits, i)) ev |= POLLOUT;
      if (ev) fds.push_back({socks[i], ev, 0});
    }
    if (fds.empty()) break;
    timeval tv{};
    timeval* wait = ares_timeout(channel, nullptr, &tv);
    const int ms =
        wait ? int(wait->tv_sec * 1000 + wait->tv_usec / 1000) : 1000;
    poll(fds.data(), fds.size(), ms);
    for (const pollfd& p : fds) {
      ares_process_fd(channel, (p.revents & POLLIN) ? p.fd : ARES_SOCKET_BAD,
                      (p.revents & POLLOUT) ? p.fd : ARES_SOCKET_BAD);
    }
    if (std::all_of(fds.begin(), fds.end(),
                    [](const pollfd& p) { return p.revents == 0; })) {
      ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
    }
  }
  ares_destroy(channel);

  const std::string where = "Team Cymru (TXT " + name + ")";
  if (q.status == ARES_ENOTFOUND || q.status == ARES_ENODATA) {
    return {GeoOutcome::kNotInDatabase, "",
            ip->ToString() + " is not announced according to " + where};
  }
  if (q.status != ARES_SUCCESS || q.texts.empty()) {
    return {GeoOutcome::kDatabaseError, "",
            "asking " + where + ": " +
                (q.status != ARES_SUCCESS ? ares_strerror(q.status)
                                          : "empty answer")};
  }
  // "ASN | prefix | CC | registry | date"
  const std::string& t = q.texts.front();
  size_t start = 0;
  std::string field;
  for (int i = 0; i < 3; ++i) {
    const size_t bar = t.find('|', start);
    field = t.substr(
        start, bar == std::string::npos ? std::string::npos : bar - start);
    if (bar == std::string::npos && i < 2) {
      field.clear();
      break;
    }
    start = bar + 1;
  }
  std::string code = Trim(field);
  if (code == "UK") code = "GB";
  if (!IsIsoCountryCode(code)) {
    return {GeoOutcome::kNoCountry, "",
            where + " answered '" + t + "', which names no country"};
  }
  return {GeoOutcome::kFound, code, ip->ToString() + " is in " + code};
}

}  // namespace tq
