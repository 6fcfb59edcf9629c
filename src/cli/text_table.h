// TextTable: rows of cells printed as aligned columns (left- or right-aligned per column).
#pragma once

#include <string>
#include <vector>

namespace ember::cli {

class TextTable {
 public:
  enum class Align { kLeft, kRight };

  // `indent` spaces before every row; columns are separated by two spaces.
  explicit TextTable(std::vector<Align> aligns, size_t indent = 2) : aligns_(std::move(aligns)), indent_(indent) {}

  void add_row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  bool empty() const noexcept { return rows_.empty(); }
  // Appends the rows to `out`, one line each; the last column is never padded.
  void render(std::string& out) const;

 private:
  std::vector<Align> aligns_;
  size_t indent_;
  std::vector<std::vector<std::string>> rows_;
};

// Display width of UTF-8 text: code points, not bytes (good enough for aligning columns).
size_t text_width(const std::string& text) noexcept;

}  // namespace ember::cli
