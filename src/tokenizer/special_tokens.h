// Special-token splitting: before a text is tokenized, the texts of control, user-defined and
// unknown tokens written in it are cut out as those tokens, leftmost first and, where several
// start at one place, the longest (Hugging Face's added-token matching). Control and unknown
// tokens are only recognized when the caller parses special tokens (trusted text such as a chat
// template's); user-defined tokens always are (they are ordinary words the model's tokenizer
// added, as Hugging Face and llama.cpp treat them). Some models' special tokens also eat the
// whitespace next to them (llama.cpp's lstrip / rstrip token attributes, set by model name).
#pragma once

#include <string_view>
#include <vector>

#include "tokenizer/token_trie.h"
#include "tokenizer/vocab.h"

namespace ember {

class SpecialTokenSplitter {
 public:
  explicit SpecialTokenSplitter(const Vocab& vocab);

  // A piece of the text: plain text (token < 0) or one special token.
  struct Fragment {
    std::string_view text;
    TokenId token = -1;
  };

  // Appends the fragments of `text`, in order; plain fragments are never empty. O(n · the longest
  // special token that matches a prefix at each position).
  void split(std::string_view text, bool parse_control, std::vector<Fragment>& out) const;

 private:
  TokenTrie trie_;
};

}  // namespace ember
