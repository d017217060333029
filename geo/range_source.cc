#include "geo/range_source.h"

#include <algorithm>
#include <cctype>
#include <fstream>

#include "common/queue_name.h"
#include "geo/ip_address.h"

namespace tq::geo {
namespace {

std::string Trim(std::string s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::vector<std::string> Split(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    out.push_back(Trim(line.substr(start, comma - start)));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

U128 FromBytes(const IpAddress& ip) {
  U128 v = 0;
  const int n = ip.v4 ? 4 : 16;
  for (int i = 0; i < n; ++i) v = (v << 8) | ip.bytes[i];
  return v;
}

bool Overlaps(U128 first, U128 last, U128 net, int bits) {
  const U128 net_last = net | ((U128(1) << (128 - bits)) - 1);
  return first <= net_last && last >= net;
}

}  // namespace

Result<U128> ParseRangeAddress(const std::string& text) {
  if (!text.empty() &&
      std::all_of(text.begin(), text.end(),
                  [](unsigned char c) { return std::isdigit(c); })) {
    if (text.size() > 10)
      return Status::InvalidArgument("'" + text + "' is too large for IPv4");
    const uint64_t v = std::stoull(text);
    if (v > 0xffffffffull)
      return Status::InvalidArgument("'" + text + "' is too large for IPv4");
    return U128(v);
  }
  auto ip = ParseIpAddress(text);
  if (!ip.ok()) return ip.status();
  return FromBytes(*ip);
}

Status LoadRanges(const std::string& path, std::vector<GeoRange>* out,
                  LoadStats* stats) {
  std::ifstream in(path);
  if (!in) return Status::IoError("cannot read " + path);
  std::string line;
  size_t line_no = 0;
  bool seen_data = false;
  while (std::getline(in, line)) {
    ++line_no;
    line = Trim(line);
    if (line.empty() || line[0] == '#') continue;
    auto where = [&] { return path + ":" + std::to_string(line_no) + ": "; };
    const auto fields = Split(line);
    if (!seen_data && !fields.empty() &&
        (fields[0] == "network" || fields[0] == "from")) {
      continue;  // header
    }
    seen_data = true;
    GeoRange r;
    std::string code;
    if (fields.size() == 2) {
      const auto slash = fields[0].find('/');
      if (slash == std::string::npos)
        return Status::InvalidArgument(where() + "expected network/bits,CC");
      auto ip = ParseIpAddress(fields[0].substr(0, slash));
      if (!ip.ok())
        return Status::InvalidArgument(where() + ip.status().message());
      int bits = -1;
      try {
        bits = std::stoi(fields[0].substr(slash + 1));
      } catch (...) {
      }
      const int width = ip->v4 ? 32 : 128;
      if (bits < 0 || bits > width)
        return Status::InvalidArgument(where() + "bad prefix length");
      const U128 base = FromBytes(*ip);
      const U128 host_mask =
          bits == width ? 0 : ((U128(1) << (width - bits)) - 1);
      if (base & host_mask)
        return Status::InvalidArgument(where() + "host bits set in " +
                                       fields[0]);
      r.first = base;
      r.last = base | host_mask;
      code = fields[1];
    } else if (fields.size() == 3) {
      auto first = ParseRangeAddress(fields[0]);
      auto last = ParseRangeAddress(fields[1]);
      if (!first.ok())
        return Status::InvalidArgument(where() + first.status().message());
      if (!last.ok())
        return Status::InvalidArgument(where() + last.status().message());
      if (*last < *first)
        return Status::InvalidArgument(where() + "range ends before it starts");
      r.first = *first;
      r.last = *last;
      code = fields[2];
    } else {
      return Status::InvalidArgument(where() +
                                     "expected FROM,TO,CC or NETWORK/BITS,CC");
    }
    if (code.empty() || code == "??") {
      ++stats->unknown;
      continue;
    }
    if (code == "UK") {
      code = "GB";
      ++stats->uk_as_gb;
    }
    if (IsIsoCountryCode(code)) {
      r.country = code;
    } else {
      r.region = code;
      ++stats->regions[code];
    }
    // IPv6 data inside the networks that lead to the IPv4 tree would be
    // shadowed by it; leave it out and say so.
    if (r.first > 0xffffffffu &&
        (Overlaps(r.first, r.last, 0, 96) ||
         Overlaps(r.first, r.last, U128(0xffff) << 32, 96) ||
         Overlaps(r.first, r.last, U128(0x2002) << 112, 16))) {
      ++stats->aliased_dropped;
      continue;
    }
    ++stats->ranges;
    out->push_back(std::move(r));
  }
  return Status::Ok();
}

}  // namespace tq::geo
