// SpecialTokenSplitter: candidates indexed by first byte, tried longest first at each position.
#include "tokenizer/special_tokens.h"

#include <algorithm>

namespace ember {

SpecialTokenSplitter::SpecialTokenSplitter(const Vocab& vocab) {
  for (TokenId id = 0; id < vocab.size(); ++id) {
    const TokenType type = vocab.type(id);
    if (type != TokenType::kControl && type != TokenType::kUserDefined && type != TokenType::kUnknown) continue;
    const std::string& text = vocab.text(id);
    if (text.empty()) continue;
    by_first_byte_[static_cast<unsigned char>(text[0])].push_back({text, id, type == TokenType::kUserDefined});
  }
  for (std::vector<Candidate>& list : by_first_byte_) {
    // Longest first; among equal texts the lowest id (stable sort keeps id order).
    std::stable_sort(list.begin(), list.end(),
                     [](const Candidate& a, const Candidate& b) { return a.text.size() > b.text.size(); });
  }
}

void SpecialTokenSplitter::split(std::string_view text, bool parse_control, std::vector<Fragment>& out) const {
  size_t plain_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    const Candidate* found = nullptr;
    for (const Candidate& c : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      if ((c.user_defined || parse_control) && text.compare(pos, c.text.size(), c.text) == 0) {
        found = &c;
        break;
      }
    }
    if (found == nullptr) {
      ++pos;
      continue;
    }
    if (pos > plain_start) out.push_back({text.substr(plain_start, pos - plain_start), -1});
    out.push_back({text.substr(pos, found->text.size()), found->id});
    pos += found->text.size();
    plain_start = pos;
  }
  if (plain_start < text.size()) out.push_back({text.substr(plain_start), -1});
}

}  // namespace ember
