// Aligned plain-text columns for the CLI's reports.
#include "cli/text_table.h"

#include <algorithm>

namespace ember::cli {

size_t text_width(const std::string& text) noexcept {
  return static_cast<size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

void TextTable::render(std::string& out) const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], text_width(row[c]));
  }
  for (const auto& row : rows_) {
    std::string line(indent_, ' ');
    for (size_t c = 0; c < row.size(); ++c) {
      const bool last = c + 1 == row.size();
      const size_t pad = widths[c] - text_width(row[c]);
      const Align align = c < aligns_.size() ? aligns_[c] : Align::kLeft;
      if (align == Align::kRight) line.append(pad, ' ');
      line += row[c];
      if (align == Align::kLeft && !last) line.append(pad, ' ');
      if (!last) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  }
}

}  // namespace ember::cli
