// Fill-in-the-middle prompts for code models: the text before a gap and the text after it, in the
// token order the model was trained on, so that the model writes the gap.
#pragma once

#include <cstdint>
#include <span>
#include <string>
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

// Another file of the project, given as context (llama.cpp's input_extra chunk).
struct InfillFile {
  std::string filename;  // "tmp" where the client names none
  std::string text;
};

// What llama.cpp's /infill takes: the code before and after the cursor, the start of the middle
// already typed (`prompt`), and other files.
struct InfillParts {
  std::string_view prefix, suffix, prompt;
  std::span<const InfillFile> extra;
};

// llama.cpp's /infill prompt, cut to fit `max_tokens`:
//   [BOS] extra PRE prefix prompt SUF suffix MID
// where extra is, with the repository tokens (Qwen2.5-Coder),
//   REPO "myproject\n" (SEP filename "\n" text)... SEP "filename\n"
// and without them each file's text after "\n\n--- snippet ---\n\n". The prefix keeps its last
// tokens, at most 3/4 of min(2048, max_tokens) (llama.cpp's batch); the suffix its first, at most
// the last quarter less the prompt and the markers; the extra files their last, in what is left of
// max_tokens. Prefix, suffix and files are plain text; the prompt may spell control tokens. BOS
// comes first (llama.cpp puts the files before it; the models were trained with it first). Throws
// Error(kUnsupported) without the three fill-in-the-middle tokens.
std::vector<TokenId> infill_prompt(const Tokenizer& tokenizer, const InfillParts& parts, int32_t max_tokens);

}  // namespace ember
