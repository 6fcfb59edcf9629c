// Fill-in-the-middle prompts for code models: the text before a gap and the text after it, in the
// token order the model was trained on, so that the model writes the gap.
#pragma once

#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace ember {

// Whether the vocabulary has the three fill-in-the-middle tokens (SpecialTokens::fim_*).
bool has_fill_in_middle(const Vocab& vocab) noexcept;

// [BOS] PRE prefix SUF suffix MID, as llama.cpp's server builds it: BOS where the vocabulary adds
// one, the prefix and suffix tokenized without special tokens (control-token text in code stays
// text). The model then writes the middle and ends it with an end-of-generation token. Throws
// Error(kUnsupported) when the vocabulary has no fill-in-the-middle tokens.
std::vector<TokenId> fill_in_middle_prompt(const Tokenizer& tokenizer, std::string_view prefix,
                                           std::string_view suffix);

}  // namespace ember
