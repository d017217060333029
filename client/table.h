// Aligned text columns for tq-ctl's human output.
#pragma once

#include <string>
#include <vector>

namespace tq {

struct Table {
  std::vector<std::string> header;
  // Per column; right alignment suits numbers. Missing entries: left.
  std::vector<bool> right_align;
  std::vector<std::vector<std::string>> rows;
};

// Columns two spaces apart, each as wide as its widest cell, no trailing
// spaces, every line ending in '\n'.
std::string FormatTable(const Table& table);

}  // namespace tq
