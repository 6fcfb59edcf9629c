// Fill-in-the-middle prompts: the prefix-suffix-middle order every supported code model uses.
#include "tokenizer/fill_in_middle.h"

#include <algorithm>

#include "ember/error.h"

namespace ember {

namespace {

constexpr EncodeOptions kPlainText{.add_special = false, .parse_special = false};

void require_fill_in_middle(const Vocab& vocab) {
  if (!has_fill_in_middle(vocab)) {
    fail(ErrorCode::kUnsupported,
         "this model has no fill-in-the-middle tokens (tokenizer.ggml.fim_pre_token_id, fim_suf_token_id, "
         "fim_mid_token_id, or tokens such as <|fim_prefix|>): it was not trained to fill a gap");
  }
}

void append(std::vector<TokenId>& out, std::span<const TokenId> tokens) {
  out.insert(out.end(), tokens.begin(), tokens.end());
}

// The other files as the model was trained to see a repository (llama.cpp's layout).
std::vector<TokenId> extra_context(const Tokenizer& tokenizer, std::span<const InfillFile> files) {
  const SpecialTokens& s = tokenizer.vocab().special();
  std::vector<TokenId> out;
  if (s.fim_repo) {
    out.push_back(*s.fim_repo);
    append(out, tokenizer.encode("myproject\n", kPlainText));
  }
  for (const InfillFile& file : files) {
    if (s.fim_file_sep) {
      out.push_back(*s.fim_file_sep);
      append(out, tokenizer.encode(file.filename + "\n", kPlainText));
    } else {
      append(out, tokenizer.encode("\n\n--- snippet ---\n\n", kPlainText));
    }
    append(out, tokenizer.encode(file.text, kPlainText));
  }
  if (s.fim_file_sep) {  // the file being edited (llama.cpp does not know its name either)
    out.push_back(*s.fim_file_sep);
    append(out, tokenizer.encode("filename\n", kPlainText));
  }
  return out;
}

}  // namespace

bool has_fill_in_middle(const Vocab& vocab) noexcept {
  const SpecialTokens& s = vocab.special();
  return s.fim_prefix && s.fim_suffix && s.fim_middle;
}

std::vector<TokenId> fill_in_middle_prompt(const Tokenizer& tokenizer, std::string_view prefix,
                                           std::string_view suffix) {
  const Vocab& vocab = tokenizer.vocab();
  require_fill_in_middle(vocab);
  const SpecialTokens& s = vocab.special();
  std::vector<TokenId> out;
  if (vocab.add_bos() && s.bos) out.push_back(*s.bos);
  out.push_back(*s.fim_prefix);
  append(out, tokenizer.encode(prefix, kPlainText));
  out.push_back(*s.fim_suffix);
  append(out, tokenizer.encode(suffix, kPlainText));
  out.push_back(*s.fim_middle);
  return out;
}

std::vector<TokenId> infill_prompt(const Tokenizer& tokenizer, const InfillParts& parts, int32_t max_tokens) {
  const Vocab& vocab = tokenizer.vocab();
  require_fill_in_middle(vocab);
  const SpecialTokens& s = vocab.special();
  const std::vector<TokenId> prefix = tokenizer.encode(parts.prefix, kPlainText);
  const std::vector<TokenId> suffix = tokenizer.encode(parts.suffix, kPlainText);
  const std::vector<TokenId> prompt = tokenizer.encode(parts.prompt, {.add_special = false, .parse_special = true});
  const auto size = [](const std::vector<TokenId>& v) { return static_cast<int64_t>(v.size()); };
  const int64_t batch = std::clamp<int64_t>(max_tokens, 0, 2048);
  const int64_t prefix_take = std::min(size(prefix), 3 * (batch / 4));
  // llama.cpp reserves 2 for the markers; three and a BOS keep the code within the batch.
  const int64_t markers = 3 + (vocab.add_bos() && s.bos ? 1 : 0);
  const int64_t suffix_take = std::min(size(suffix), std::max<int64_t>(0, batch / 4 - (markers + size(prompt))));

  std::vector<TokenId> gap;  // PRE prefix prompt SUF suffix MID
  gap.push_back(*s.fim_prefix);
  append(gap, std::span(prefix).last(static_cast<size_t>(prefix_take)));
  append(gap, prompt);
  gap.push_back(*s.fim_suffix);
  append(gap, std::span(suffix).first(static_cast<size_t>(suffix_take)));
  gap.push_back(*s.fim_middle);

  std::vector<TokenId> out;
  if (vocab.add_bos() && s.bos) out.push_back(*s.bos);
  const std::vector<TokenId> extra = extra_context(tokenizer, parts.extra);
  const int64_t extra_take =
      std::clamp<int64_t>(int64_t{max_tokens} - size(out) - size(gap), 0, size(extra));  // the files' ends
  append(out, std::span(extra).last(static_cast<size_t>(extra_take)));
  append(out, gap);
  return out;
}

}  // namespace ember
