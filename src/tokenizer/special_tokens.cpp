// SpecialTokenSplitter: the special tokens in a trie, tagged with whether they always match and
// whether they strip the whitespace beside them.
#include "tokenizer/special_tokens.h"

#include <algorithm>
#include <string>

namespace ember {
namespace {

enum Tag : uint8_t {
  kUserDefined = 1,  // matches without parse_special
  kLeftStrip = 2,    // eats the whitespace before it
  kRightStrip = 4,   // eats the whitespace after it
};

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

bool contains_any(const std::string& haystack, std::initializer_list<std::string_view> needles) {
  return std::any_of(needles.begin(), needles.end(),
                     [&](std::string_view needle) { return haystack.find(needle) != std::string::npos; });
}

// llama.cpp's token attributes set by model name (GGUF does not store them): Phi-3's special
// tokens eat the whitespace after them (its chat template writes "<|user|>\n" but the model was
// trained on "<|user|>" directly followed by the text); Jina v2's <mask> eats the space before it.
enum class StripRule { kNone, kJinaMask, kPhi3 };

StripRule strip_rule(const Vocab& vocab) {
  std::string name = vocab.model_name();
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (contains_any(vocab.pre(), {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) ||
      contains_any(vocab.architecture(), {"nomic-bert-moe", "jina-bert-v3"})) {
    return StripRule::kJinaMask;
  }
  return contains_any(name, {"phi-3", "phi3"}) ? StripRule::kPhi3 : StripRule::kNone;
}

uint8_t strip_tags(StripRule rule, std::string_view text) {
  switch (rule) {
    case StripRule::kJinaMask: return text == "<mask>" ? kLeftStrip : 0;
    case StripRule::kPhi3: return text == "<unk>" || text == "<s>" || text == "<|endoftext|>" ? 0 : kRightStrip;
    case StripRule::kNone: break;
  }
  return 0;
}

}  // namespace

SpecialTokenSplitter::SpecialTokenSplitter(const Vocab& vocab) {
  const StripRule rule = strip_rule(vocab);  // once: it looks at the vocabulary's names only
  for (TokenId id = 0; id < vocab.size(); ++id) {
    const TokenType type = vocab.type(id);
    if (type != TokenType::kControl && type != TokenType::kUserDefined && type != TokenType::kUnknown) continue;
    const std::string& text = vocab.text(id);
    trie_.insert(text, id,
                 static_cast<uint8_t>((type == TokenType::kUserDefined ? kUserDefined : 0) | strip_tags(rule, text)));
  }
}

void SpecialTokenSplitter::split(std::string_view text, bool parse_control, std::vector<Fragment>& out) const {
  const auto accept = [parse_control](uint8_t tag) { return parse_control || (tag & kUserDefined) != 0; };
  size_t plain_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    const TokenTrie::Match match =
        trie_.can_start(static_cast<unsigned char>(text[pos])) ? trie_.longest(text, pos, accept) : TokenTrie::Match{};
    if (match.id < 0) {
      ++pos;
      continue;
    }
    size_t plain_end = pos;
    if (match.tag & kLeftStrip) {
      while (plain_end > plain_start && is_ascii_space(text[plain_end - 1])) --plain_end;
    }
    if (plain_end > plain_start) out.push_back({text.substr(plain_start, plain_end - plain_start), -1});
    out.push_back({text.substr(pos, match.length), match.id});
    pos += match.length;
    if (match.tag & kRightStrip) {
      while (pos < text.size() && is_ascii_space(text[pos])) ++pos;
    }
    plain_start = pos;
  }
  if (plain_start < text.size()) out.push_back({text.substr(plain_start), -1});
}

}  // namespace ember
