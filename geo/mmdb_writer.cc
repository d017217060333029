#include "geo/mmdb_writer.h"

#include <map>
#include <unordered_map>

namespace tq::geo {
namespace {

// Tree records while building: a node index, a data value, or empty.
constexpr uint32_t kEmpty = 0xffffffffu;
constexpr uint32_t kDataBit = 0x80000000u;
bool IsNode(uint32_t r) { return (r & kDataBit) == 0; }

// MaxMind DB data types (spec section "Output Data Types").
enum Type {
  kString = 2,
  kUint16 = 5,
  kUint32 = 6,
  kMap = 7,
  kUint64 = 9,
  kArray = 11
};

void PutControl(std::string& out, int type, size_t size) {
  const uint8_t type_bits = type > 7 ? 0 : uint8_t(type << 5);
  std::string size_bytes;
  uint8_t size_field;
  if (size < 29) {
    size_field = uint8_t(size);
  } else if (size < 29 + 256) {
    size_field = 29;
    size_bytes.push_back(char(size - 29));
  } else if (size < 285 + 65536) {
    size_field = 30;
    const size_t v = size - 285;
    size_bytes = {char(v >> 8), char(v)};
  } else {
    size_field = 31;
    const size_t v = size - 65821;
    size_bytes = {char(v >> 16), char(v >> 8), char(v)};
  }
  out.push_back(char(type_bits | size_field));
  if (type > 7) out.push_back(char(type - 7));  // extended type byte
  out += size_bytes;
}

void PutString(std::string& out, const std::string& s) {
  PutControl(out, kString, s.size());
  out += s;
}

void PutUnsigned(std::string& out, int type, uint64_t v) {
  std::string bytes;
  for (; v != 0; v >>= 8) bytes.insert(bytes.begin(), char(v & 0xff));
  PutControl(out, type, bytes.size());
  out += bytes;
}

class Tree {
 public:
  Tree() { NewNode(kEmpty, kEmpty); }

  void Insert(U128 first, U128 last, uint32_t value) {
    // The root stays node 0 (Insert never replaces the depth-0 slot).
    Insert(0, 0, 0, first, last, value);
  }

  // Merges subtrees whose two halves hold the same leaf.
  void Collapse() {
    for (int side = 0; side < 2; ++side)
      nodes_[0].rec[side] = Collapse(nodes_[0].rec[side]);
  }

  // The record found after following `bits` bits of `prefix` from the root.
  uint32_t Find(U128 prefix, int bits) const {
    uint32_t r = 0;
    for (int d = 0; d < bits && IsNode(r); ++d)
      r = nodes_[r].rec[Bit(prefix, d)];
    return r;
  }

  // Makes the network prefix/bits point at `target` (creating nodes).
  void Alias(U128 prefix, int bits, uint32_t target) {
    uint32_t n = 0;
    for (int d = 0; d < bits - 1; ++d) {
      const int b = Bit(prefix, d);
      uint32_t child = nodes_[n].rec[b];
      if (!IsNode(child)) {
        const uint32_t made = NewNode(child, child);
        nodes_[n].rec[b] = made;
        child = made;
      }
      n = child;
    }
    nodes_[n].rec[Bit(prefix, bits - 1)] = target;
  }

  struct Node {
    uint32_t rec[2];
  };
  const std::vector<Node>& nodes() const { return nodes_; }

 private:
  static int Bit(U128 v, int depth) { return int((v >> (127 - depth)) & 1); }

  uint32_t NewNode(uint32_t left, uint32_t right) {
    nodes_.push_back({{left, right}});
    return uint32_t(nodes_.size() - 1);
  }

  // Stores `value` over [first, last] within the slot holding `rec`, which
  // covers the network lo/depth; returns the slot's new record.
  uint32_t Insert(uint32_t rec, int depth, U128 lo, U128 first, U128 last,
                  uint32_t value) {
    const U128 span_minus_1 =
        depth == 0 ? ~U128(0) : (U128(1) << (128 - depth)) - 1;
    const U128 hi = lo + span_minus_1;
    if (first <= lo && hi <= last && depth > 0) return value;
    uint32_t node = IsNode(rec) ? rec : NewNode(rec, rec);
    const U128 mid = lo + (U128(1) << (127 - depth));
    if (first < mid) {
      const uint32_t r =
          Insert(nodes_[node].rec[0], depth + 1, lo, first, last, value);
      nodes_[node].rec[0] = r;
    }
    if (last >= mid) {
      const uint32_t r =
          Insert(nodes_[node].rec[1], depth + 1, mid, first, last, value);
      nodes_[node].rec[1] = r;
    }
    return node;
  }

  uint32_t Collapse(uint32_t rec) {
    if (!IsNode(rec)) return rec;
    for (int side = 0; side < 2; ++side) {
      const uint32_t r = Collapse(nodes_[rec].rec[side]);
      nodes_[rec].rec[side] = r;
    }
    const uint32_t a = nodes_[rec].rec[0], b = nodes_[rec].rec[1];
    return !IsNode(a) && a == b ? a : rec;
  }

  std::vector<Node> nodes_;
};

void PutRecords(std::string& out, int record_size, uint32_t left,
                uint32_t right) {
  if (record_size == 24) {
    for (uint32_t v : {left, right})
      out += {char(v >> 16), char(v >> 8), char(v)};
  } else if (record_size == 28) {
    out += {char(left >> 16), char(left >> 8), char(left)};
    out.push_back(char(((left >> 24) & 0x0f) << 4 | ((right >> 24) & 0x0f)));
    out += {char(right >> 16), char(right >> 8), char(right)};
  } else {
    for (uint32_t v : {left, right})
      out += {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  }
}

}  // namespace

Result<std::string> BuildCountryMmdb(const std::vector<GeoRange>& ranges,
                                     const MmdbMeta& meta, MmdbStats* stats) {
  // Distinct values, each one data record.
  std::map<std::string, uint32_t> value_ids;  // "C:IT" / "R:EU"
  std::vector<std::string> value_keys;
  Tree tree;
  for (const GeoRange& r : ranges) {
    if (r.last < r.first)
      return Status::InvalidArgument("a range ends before it starts");
    const std::string key =
        r.country.empty() ? "R:" + r.region : "C:" + r.country;
    auto [it, added] = value_ids.emplace(key, uint32_t(value_keys.size()));
    if (added) value_keys.push_back(key);
    tree.Insert(r.first, r.last, kDataBit | it->second);
  }
  tree.Collapse();
  // IPv4 lives at ::/96; the IPv4-mapped and 6to4 networks lead there too.
  const uint32_t v4 = tree.Find(0, 96);
  tree.Alias(U128(0xffff) << 32, 96, v4);
  tree.Alias(U128(0x2002) << 112, 16, v4);

  // Number the reachable nodes breadth-first (the tree is a DAG now).
  const auto& nodes = tree.nodes();
  std::vector<uint32_t> new_id(nodes.size(), kEmpty);
  std::vector<uint32_t> order = {0};
  new_id[0] = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    for (uint32_t r : nodes[order[i]].rec) {
      if (IsNode(r) && new_id[r] == kEmpty) {
        new_id[r] = uint32_t(order.size());
        order.push_back(r);
      }
    }
  }
  const uint64_t node_count = order.size();

  std::string data;
  std::vector<uint32_t> data_offset(value_keys.size());
  for (size_t i = 0; i < value_keys.size(); ++i) {
    data_offset[i] = uint32_t(data.size());
    const std::string code = value_keys[i].substr(2);
    PutControl(data, kMap, 1);
    if (value_keys[i][0] == 'C') {
      PutString(data, "country");
      PutControl(data, kMap, 1);
      PutString(data, "iso_code");
      PutString(data, code);
    } else {
      PutString(data, "tq_region");
      PutString(data, code);
    }
  }

  const uint64_t max_record = node_count + 16 + data.size();
  const int record_size = max_record < (1u << 24)   ? 24
                          : max_record < (1u << 28) ? 28
                                                    : 32;
  if (max_record >= (uint64_t(1) << 32))
    return Status::TooLarge("the search tree does not fit 32-bit records");
  auto encode = [&](uint32_t r) -> uint32_t {
    if (r == kEmpty) return uint32_t(node_count);
    if (IsNode(r)) return new_id[r];
    return uint32_t(node_count + 16 + data_offset[r & ~kDataBit]);
  };

  std::string out;
  out.reserve(node_count * record_size / 4 + data.size() + 512);
  for (uint32_t n : order)
    PutRecords(out, record_size, encode(nodes[n].rec[0]),
               encode(nodes[n].rec[1]));
  out.append(16, '\0');  // data section separator
  out += data;

  out += "\xAB\xCD\xEFMaxMind.com";
  PutControl(out, kMap, 9);
  PutString(out, "binary_format_major_version");
  PutUnsigned(out, kUint16, 2);
  PutString(out, "binary_format_minor_version");
  PutUnsigned(out, kUint16, 0);
  PutString(out, "build_epoch");
  PutUnsigned(out, kUint64, meta.build_epoch);
  PutString(out, "database_type");
  PutString(out, meta.database_type);
  PutString(out, "description");
  PutControl(out, kMap, 1);
  PutString(out, "en");
  PutString(out, meta.description);
  PutString(out, "ip_version");
  PutUnsigned(out, kUint16, 6);
  PutString(out, "languages");
  PutControl(out, kArray, 1);
  PutString(out, "en");
  PutString(out, "node_count");
  PutUnsigned(out, kUint32, node_count);
  PutString(out, "record_size");
  PutUnsigned(out, kUint16, uint64_t(record_size));

  if (stats) {
    stats->ranges = ranges.size();
    stats->values = value_keys.size();
    stats->nodes = node_count;
    stats->record_size = record_size;
    stats->bytes = out.size();
  }
  return out;
}

}  // namespace tq::geo
