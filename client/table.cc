#include "client/table.h"

#include <algorithm>

namespace tq {

std::string FormatTable(const Table& table) {
  size_t columns = table.header.size();
  for (const auto& row : table.rows) columns = std::max(columns, row.size());
  std::vector<size_t> width(columns, 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t c = 0; c < row.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
    }
  };
  measure(table.header);
  for (const auto& row : table.rows) measure(row);

  std::string out;
  auto emit = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t c = 0; c < columns; ++c) {
      const std::string cell = c < row.size() ? row[c] : "";
      std::string pad(width[c] - cell.size(), ' ');
      bool right = c < table.right_align.size() && table.right_align[c];
      if (c > 0) line += "  ";
      line += right ? pad + cell : cell + pad;
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out += line;
    out += '\n';
  };
  if (!table.header.empty()) emit(table.header);
  for (const auto& row : table.rows) emit(row);
  return out;
}

}  // namespace tq
