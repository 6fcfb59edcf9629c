// Special-token splitting: before a text is tokenized, the texts of control, user-defined and
// unknown tokens written in it are cut out as those tokens, leftmost first and, where several
// start at one place, the longest. Control and unknown tokens are only recognized when the caller
// parses special tokens (trusted text such as a chat template's); user-defined tokens always are
// (they are ordinary words the model's tokenizer added, as Hugging Face and llama.cpp treat them).
#pragma once

#include <array>
#include <string_view>
#include <vector>

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

  // Appends the fragments of `text`, in order; plain fragments are never empty.
  void split(std::string_view text, bool parse_control, std::vector<Fragment>& out) const;

 private:
  struct Candidate {
    std::string_view text;  // into the vocabulary
    TokenId id;
    bool user_defined;
  };
  // Candidates by their first byte, longest first.
  std::array<std::vector<Candidate>, 256> by_first_byte_;
};

}  // namespace ember
