// Vocab::from_gguf: the tokenizer.ggml.* keys, checked for presence, type, lengths and ranges.
#include "tokenizer/vocab.h"

#include <algorithm>
#include <array>
#include <functional>
#include <span>

#include "core/log.h"
#include "ember/error.h"
#include "tokenizer/pre_tokenizer.h"

namespace ember {
namespace {

constexpr std::array<std::pair<std::string_view, TokenizerModel>, 3> kModels{{
    {"llama", TokenizerModel::kSpm},
    {"gpt2", TokenizerModel::kBpe},
    {"bert", TokenizerModel::kWpm},
}};

// Control tokens that end a turn in the chat formats of the supported families; and, as
// llama.cpp, those that end a fill-in-the-middle answer (a pad, the next file or repository).
constexpr std::string_view kEndOfTurnTexts[] = {
    "<|eot_id|>",      "<|im_end|>", "<|end|>",     "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
    "<|end_of_text|>", "▁<EOT>",     "<|fim_pad|>", "<fim_pad>",     "<|file_sep|>",  "<file_sep>", "<|repo_name|>",
};

// Fill-in-the-middle tokens by text, where the file names none: Qwen2.5-Coder, StarCoder and
// Granite, DeepSeek-Coder, CodeLlama, GLM-4.5 (llama.cpp's list).
constexpr std::string_view kFimPrefixTexts[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",   "<｜fim▁begin｜>",
                                                "<PRE>",          "▁<PRE>",       "<|code_prefix|>"};
constexpr std::string_view kFimSuffixTexts[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",   "<｜fim▁hole｜>",
                                                "<SUF>",          "▁<SUF>",       "<|code_suffix|>"};
constexpr std::string_view kFimMiddleTexts[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",   "<｜fim▁end｜>",
                                                "<MID>",          "▁<MID>",       "<|code_middle|>"};
constexpr std::string_view kFimRepoTexts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
constexpr std::string_view kFimFileSepTexts[] = {"<|file_sep|>"};

TokenizerModel parse_model(const GgufFile& file, std::string_view name) {
  for (const auto& [key, model] : kModels) {
    if (key == name) return model;
  }
  fail(ErrorCode::kUnsupported, "{}: tokenizer.ggml.model \"{}\" is not supported (supported: llama, gpt2, bert)",
       file.name(), name);
}

std::optional<TokenId> special_id(const GgufFile& file, std::string_view key, int32_t n_tokens) {
  const std::optional<int64_t> id = file.get_optional<int64_t>(key);
  if (!id) return std::nullopt;
  // Some converters write -1 (or UINT32_MAX) for "none".
  if (*id == -1 || *id == 0xFFFFFFFF) return std::nullopt;
  if (*id < 0 || *id >= n_tokens) {
    fail(ErrorCode::kInvalidArgument, "{}: {} = {} is outside the vocabulary of {} tokens", file.name(), key, *id,
         n_tokens);
  }
  return static_cast<TokenId>(*id);
}

}  // namespace

std::string_view tokenizer_model_name(TokenizerModel model) noexcept {
  for (const auto& [key, m] : kModels) {
    if (m == model) return key;
  }
  return "?";
}

Vocab Vocab::from_gguf(const GgufFile& file) {
  Vocab v;
  v.model_ = parse_model(file, file.get<std::string_view>("tokenizer.ggml.model"));
  v.pre_ = std::string(file.get_or<std::string_view>("tokenizer.ggml.pre", "default"));
  v.model_name_ = std::string(file.get_or<std::string_view>("general.name", ""));
  v.architecture_ = std::string(file.get_or<std::string_view>("general.architecture", ""));
  std::optional<PreTokenizerTraits> pre_traits;
  if (v.model_ == TokenizerModel::kBpe) {
    pre_traits = pre_tokenizer_traits(v.pre_);
    if (!pre_traits) {
      fail(ErrorCode::kUnsupported, "{}: tokenizer.ggml.pre \"{}\" is not supported (supported: {})", file.name(),
           v.pre_, supported_pre_tokenizers());
    }
  }

  const std::span<const std::string_view> tokens = file.get_strings("tokenizer.ggml.tokens");
  if (tokens.empty()) fail(ErrorCode::kInvalidArgument, "{}: tokenizer.ggml.tokens is empty", file.name());
  if (tokens.size() > static_cast<size_t>(INT32_MAX)) {
    fail(ErrorCode::kInvalidArgument, "{}: tokenizer.ggml.tokens holds {} tokens, more than token ids can address",
         file.name(), tokens.size());
  }
  const auto n = static_cast<int32_t>(tokens.size());
  v.texts_.assign(tokens.begin(), tokens.end());

  if (file.contains("tokenizer.ggml.scores")) {
    const GgufArrayView<float> scores = file.get_array<float>("tokenizer.ggml.scores");
    if (scores.size() != tokens.size()) {
      fail(ErrorCode::kInvalidArgument, "{}: tokenizer.ggml.scores has {} entries for {} tokens", file.name(),
           scores.size(), tokens.size());
    }
    v.scores_ = scores.to_vector();
  }
  if (file.contains("tokenizer.ggml.token_type")) {
    const GgufArrayView<int32_t> types = file.get_array<int32_t>("tokenizer.ggml.token_type");
    if (types.size() != tokens.size()) {
      fail(ErrorCode::kInvalidArgument, "{}: tokenizer.ggml.token_type has {} entries for {} tokens", file.name(),
           types.size(), tokens.size());
    }
    v.types_.reserve(types.size());
    for (size_t i = 0; i < types.size(); ++i) {
      const int32_t t = types[i];
      if (t < 0 || t > static_cast<int32_t>(TokenType::kByte)) {
        fail(ErrorCode::kInvalidArgument, "{}: tokenizer.ggml.token_type[{}] = {} is not a token type (0..6)",
             file.name(), i, t);
      }
      v.types_.push_back(static_cast<TokenType>(t));
    }
  }
  size_t capacity = 16;
  while (capacity < 2 * v.texts_.size()) capacity *= 2;  // load factor <= 1/2
  v.index_.assign(capacity, Slot{});
  v.index_mask_ = capacity - 1;
  for (int32_t id = 0; id < n; ++id) {
    const std::string& text = v.texts_[static_cast<size_t>(id)];
    const uint64_t hash = std::hash<std::string_view>{}(text);
    for (size_t at = hash & v.index_mask_;; at = (at + 1) & v.index_mask_) {
      Slot& slot = v.index_[at];
      if (slot.id < 0) {
        slot = {static_cast<uint32_t>(hash >> 32), id};
        break;
      }
      if (slot.hash_high == static_cast<uint32_t>(hash >> 32) && v.texts_[static_cast<size_t>(slot.id)] == text) {
        break;  // a repeated text keeps its first id
      }
    }
  }

  if (file.contains("tokenizer.ggml.merges")) {
    const std::span<const std::string_view> merges = file.get_strings("tokenizer.ggml.merges");
    v.merges_.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      const std::string_view m = merges[i];
      const size_t space = m.find(' ', 1);  // a left part may itself be a lone space in odd vocabs
      if (space == std::string_view::npos || space + 1 >= m.size()) {
        fail(ErrorCode::kInvalidArgument, "{}: tokenizer.ggml.merges[{}] = \"{}\" is not \"left right\"", file.name(),
             i, m);
      }
      v.merges_.emplace_back(std::string(m.substr(0, space)), std::string(m.substr(space + 1)));
    }
  } else if (v.model_ == TokenizerModel::kBpe) {
    fail(ErrorCode::kNotFound, "{}: a gpt2 (BPE) tokenizer needs tokenizer.ggml.merges", file.name());
  }

  v.special_.bos = special_id(file, "tokenizer.ggml.bos_token_id", n);
  // BERT files name their [CLS], which takes BOS's place, separately.
  if (!v.special_.bos) v.special_.bos = special_id(file, "tokenizer.ggml.cls_token_id", n);
  v.special_.eos = special_id(file, "tokenizer.ggml.eos_token_id", n);
  v.special_.eot = special_id(file, "tokenizer.ggml.eot_token_id", n);
  v.special_.eom = special_id(file, "tokenizer.ggml.eom_token_id", n);
  v.special_.unk = special_id(file, "tokenizer.ggml.unknown_token_id", n);
  v.special_.pad = special_id(file, "tokenizer.ggml.padding_token_id", n);
  v.special_.sep = special_id(file, "tokenizer.ggml.seperator_token_id", n);  // sic: llama.cpp's key
  v.special_.mask = special_id(file, "tokenizer.ggml.mask_token_id", n);
  // Fill-in-the-middle: the current keys, the older ones, then the texts. An id outside the
  // vocabulary is ignored with a warning, as llama.cpp does: a code feature's broken key should not
  // keep the model from loading.
  const auto tolerant_id = [&](std::string_view key) -> std::optional<TokenId> {
    try {
      return special_id(file, key, n);
    } catch (const Error& e) {
      EMBER_LOG_WARN("{}; ignored", e.what());
      return std::nullopt;
    }
  };
  const auto fim = [&](std::string_view key, std::string_view old_key, std::span<const std::string_view> texts) {
    std::optional<TokenId> id = tolerant_id(key);
    if (!id && !old_key.empty()) id = tolerant_id(old_key);
    // By text, only a control or user-defined token: an ordinary "<PRE>" in some vocabulary is text.
    for (size_t i = 0; !id && i < texts.size(); ++i) {
      const std::optional<TokenId> found = v.find(texts[i]);
      if (found && (v.type(*found) == TokenType::kControl || v.type(*found) == TokenType::kUserDefined)) id = found;
    }
    return id;
  };
  v.special_.fim_prefix = fim("tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id", kFimPrefixTexts);
  v.special_.fim_suffix = fim("tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id", kFimSuffixTexts);
  v.special_.fim_middle = fim("tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id", kFimMiddleTexts);
  v.special_.fim_repo = fim("tokenizer.ggml.fim_rep_token_id", {}, kFimRepoTexts);
  v.special_.fim_file_sep = fim("tokenizer.ggml.fim_sep_token_id", {}, kFimFileSepTexts);

  // Defaults as llama.cpp's: SPM adds BOS and a space prefix; WPM adds its CLS (as BOS) and SEP;
  // BPE adds BOS for the pre-tokenizers whose models expect it (Llama 3, Tekken).
  const bool default_bos =
      v.model_ == TokenizerModel::kSpm || v.model_ == TokenizerModel::kWpm || (pre_traits && pre_traits->add_bos);
  // A flag the file sets needs its token (an error naming the key); a default without the token
  // is off.
  const auto flag = [&](std::string_view key, bool fallback, const std::optional<TokenId>& token,
                        std::string_view token_key) {
    const std::optional<bool> set = file.get_optional<bool>(key);
    if (!set) return fallback && token.has_value();
    if (*set && !token)
      fail(ErrorCode::kInvalidArgument, "{}: {} is set but there is no {}", file.name(), key, token_key);
    return *set;
  };
  v.add_bos_ = flag("tokenizer.ggml.add_bos_token", default_bos, v.special_.bos, "tokenizer.ggml.bos_token_id");
  v.add_eos_ = flag("tokenizer.ggml.add_eos_token", false, v.special_.eos, "tokenizer.ggml.eos_token_id");
  v.add_sep_ = flag("tokenizer.ggml.add_sep_token", v.model_ == TokenizerModel::kWpm, v.special_.sep,
                    "tokenizer.ggml.seperator_token_id");
  v.add_space_prefix_ = file.get_or<bool>("tokenizer.ggml.add_space_prefix", v.model_ == TokenizerModel::kSpm);
  v.remove_extra_whitespaces_ = file.get_or<bool>("tokenizer.ggml.remove_extra_whitespaces", false);

  // As llama.cpp: the repository tokens end a fill-in-the-middle answer too, however they were found.
  for (const std::optional<TokenId>& id :
       {v.special_.eos, v.special_.eot, v.special_.eom, v.special_.fim_repo, v.special_.fim_file_sep}) {
    if (id) v.eog_.push_back(*id);
  }
  for (std::string_view text : kEndOfTurnTexts) {
    const std::optional<TokenId> id = v.find(text);
    if (id && (v.type(*id) == TokenType::kControl || v.type(*id) == TokenType::kUserDefined)) v.eog_.push_back(*id);
  }
  std::sort(v.eog_.begin(), v.eog_.end());
  v.eog_.erase(std::unique(v.eog_.begin(), v.eog_.end()), v.eog_.end());
  return v;
}

std::optional<TokenId> Vocab::find(std::string_view text) const {
  if (index_.empty()) return std::nullopt;  // a moved-from Vocab
  const uint64_t hash = std::hash<std::string_view>{}(text);
  for (size_t at = hash & index_mask_;; at = (at + 1) & index_mask_) {
    const Slot& slot = index_[at];
    if (slot.id < 0) return std::nullopt;
    if (slot.hash_high == static_cast<uint32_t>(hash >> 32) && texts_[static_cast<size_t>(slot.id)] == text) {
      return slot.id;
    }
  }
}

bool Vocab::is_end_of_generation(TokenId id) const { return std::binary_search(eog_.begin(), eog_.end(), id); }

}  // namespace ember
