// Vocab: a model's tokenizer vocabulary read from GGUF metadata (tokenizer.ggml.*): tokens,
// scores, token types, BPE merges, special token ids and flags, validated with errors that name
// the key. The tokenizers (SPM, BPE, WPM) are built on it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gguf/gguf_reader.h"

namespace ember {

// tokenizer.ggml.model.
enum class TokenizerModel { kSpm, kBpe, kWpm };

std::string_view tokenizer_model_name(TokenizerModel model) noexcept;

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

using TokenId = int32_t;

// "▁" (U+2581): how SentencePiece and converted WordPiece vocabularies spell a space / word start.
inline constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

struct SpecialTokens {
  std::optional<TokenId> bos, eos, eot, eom, unk, pad, sep, mask;
  // Fill-in-the-middle (code models): the tokens before the prefix, the suffix and the middle to
  // write. From tokenizer.ggml.fim_{pre,suf,mid}_token_id (or the older prefix/suffix/middle keys),
  // else found by their texts (<|fim_prefix|>, <fim_prefix>, <｜fim▁begin｜>, ▁<PRE>, ...).
  std::optional<TokenId> fim_prefix, fim_suffix, fim_middle;
  // Repository-level fill-in-the-middle (Qwen2.5-Coder): the token before the repository's name
  // and the one before each file's name (tokenizer.ggml.fim_rep_token_id / fim_sep_token_id, else
  // <|repo_name|>, <|file_sep|>, ...). Either may be absent.
  std::optional<TokenId> fim_repo, fim_file_sep;
};

class Vocab {
 public:
  // Throws Error(kNotFound / kTypeMismatch / kInvalidArgument / kUnsupported) naming the file and
  // the key: no token list, lists of different lengths, an unknown model, a special id out of range.
  static Vocab from_gguf(const GgufFile& file);

  TokenizerModel model() const noexcept { return model_; }
  // tokenizer.ggml.pre ("default" when absent): selects the BPE pre-tokenizer.
  const std::string& pre() const noexcept { return pre_; }
  // general.name and general.architecture ("" when absent): llama.cpp keys some token attributes
  // on them (see special_tokens.cpp).
  const std::string& model_name() const noexcept { return model_name_; }
  const std::string& architecture() const noexcept { return architecture_; }
  int32_t size() const noexcept { return static_cast<int32_t>(texts_.size()); }

  const std::string& text(TokenId id) const { return texts_.at(static_cast<size_t>(id)); }
  float score(TokenId id) const { return scores_.empty() ? 0.0f : scores_.at(static_cast<size_t>(id)); }
  TokenType type(TokenId id) const { return types_.empty() ? TokenType::kNormal : types_.at(static_cast<size_t>(id)); }
  // The id of a token's text (the first, if a text repeats).
  std::optional<TokenId> find(std::string_view text) const;

  // BPE merges as (left, right) pairs; a pair's rank is its index (lower merges first).
  const std::vector<std::pair<std::string, std::string>>& merges() const noexcept { return merges_; }

  const SpecialTokens& special() const noexcept { return special_; }
  // The tokens that end a generation: eos, eot, eom and the control tokens models use for it
  // (<|im_end|>, <|eot_id|>, <|end|>, <end_of_turn>, <|endoftext|>, ...), sorted, unique.
  const std::vector<TokenId>& end_of_generation() const noexcept { return eog_; }
  bool is_end_of_generation(TokenId id) const;

  bool add_bos() const noexcept { return add_bos_; }
  bool add_eos() const noexcept { return add_eos_; }
  // Append the separator token (BERT's [SEP]) after the text.
  bool add_sep() const noexcept { return add_sep_; }
  bool add_space_prefix() const noexcept { return add_space_prefix_; }
  bool remove_extra_whitespaces() const noexcept { return remove_extra_whitespaces_; }

  Vocab(Vocab&&) noexcept = default;
  Vocab& operator=(Vocab&&) noexcept = default;
  Vocab(const Vocab&) = delete;  // large: moved, never copied by accident
  Vocab& operator=(const Vocab&) = delete;

 private:
  Vocab() = default;

  TokenizerModel model_ = TokenizerModel::kSpm;
  std::string pre_;
  std::string model_name_;
  std::string architecture_;
  std::vector<std::string> texts_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  // Text -> id: open addressing with linear probing (one cache miss per lookup on a 150k-token
  // vocabulary, where a node-based map costs several; BPE's load does a million lookups).
  struct Slot {
    uint32_t hash_high = 0;  // the hash's upper half, to skip most text comparisons
    TokenId id = -1;         // -1: empty
  };
  std::vector<Slot> index_;
  size_t index_mask_ = 0;
  std::vector<std::pair<std::string, std::string>> merges_;
  SpecialTokens special_;
  std::vector<TokenId> eog_;
  bool add_bos_ = false, add_eos_ = false, add_sep_ = false, add_space_prefix_ = false,
       remove_extra_whitespaces_ = false;
};

}  // namespace ember
