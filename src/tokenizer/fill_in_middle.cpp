// Fill-in-the-middle prompts: the prefix-suffix-middle order every supported code model uses.
#include "tokenizer/fill_in_middle.h"

#include "ember/error.h"

namespace ember {

bool has_fill_in_middle(const Vocab& vocab) noexcept {
  const SpecialTokens& s = vocab.special();
  return s.fim_prefix && s.fim_suffix && s.fim_middle;
}

std::vector<TokenId> fill_in_middle_prompt(const Tokenizer& tokenizer, std::string_view prefix,
                                           std::string_view suffix) {
  const Vocab& vocab = tokenizer.vocab();
  if (!has_fill_in_middle(vocab)) {
    fail(ErrorCode::kUnsupported,
         "this model has no fill-in-the-middle tokens (tokenizer.ggml.fim_pre_token_id, fim_suf_token_id, "
         "fim_mid_token_id, or tokens such as <|fim_prefix|>): it was not trained to fill a gap");
  }
  const SpecialTokens& s = vocab.special();
  const EncodeOptions text{.add_special = false, .parse_special = false};
  std::vector<TokenId> out;
  if (vocab.add_bos() && s.bos) out.push_back(*s.bos);
  out.push_back(*s.fim_prefix);
  for (const TokenId id : tokenizer.encode(prefix, text)) out.push_back(id);
  out.push_back(*s.fim_suffix);
  for (const TokenId id : tokenizer.encode(suffix, text)) out.push_back(id);
  out.push_back(*s.fim_middle);
  return out;
}

}  // namespace ember
