// Tokenizer: special-token splitting in front of the model's tokenizer, the BOS / EOS / SEP rules,
// and each token type's spelling on the way back.
#include "tokenizer/tokenizer.h"

#include <mutex>
#include <optional>
#include <variant>

#include "core/utf8.h"
#include "ember/error.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/wpm_tokenizer.h"

namespace ember {
namespace {

void append_unescaped_spaces(std::string_view text, std::string& out) {
  for (size_t at = 0; at < text.size();) {
    if (text.compare(at, kSpaceMark.size(), kSpaceMark) == 0) {
      out.push_back(' ');
      at += kSpaceMark.size();
    } else {
      out.push_back(text[at++]);
    }
  }
}

// "<0xNN>" -> NN.
std::optional<char> byte_token_value(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return std::nullopt;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    const int digit = c >= '0' && c <= '9'   ? c - '0'
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                             : -1;
    if (digit < 0) return std::nullopt;
    value = value * 16 + digit;
  }
  return static_cast<char>(value);
}

}  // namespace

struct Tokenizer::Impl {
  std::once_flag trie_once;
  std::unique_ptr<VocabTrie> trie;

  explicit Impl(Vocab v) : vocab(std::move(v)), special(vocab) {
    switch (vocab.model()) {
      case TokenizerModel::kSpm: model.emplace<SpmTokenizer>(vocab); break;
      case TokenizerModel::kBpe: model.emplace<BpeTokenizer>(vocab); break;
      case TokenizerModel::kWpm: model.emplace<WpmTokenizer>(vocab); break;
    }
  }

  // Appends the tokens of plain text; `at_start` says whether it begins the text or follows a
  // special token (where SPM puts its prefix space).
  void encode_plain(std::string_view text, bool at_start, std::vector<TokenId>& out) const {
    if (const auto* spm = std::get_if<SpmTokenizer>(&model)) {
      spm->encode(text, at_start && vocab.add_space_prefix(), out);
    } else if (const auto* bpe = std::get_if<BpeTokenizer>(&model)) {
      bpe->encode(text, out);
    } else {
      const std::vector<TokenId> ids = std::get<WpmTokenizer>(model).encode(text);
      out.insert(out.end(), ids.begin(), ids.end());
    }
  }

  const Vocab vocab;
  const SpecialTokenSplitter special;
  std::variant<std::monostate, SpmTokenizer, BpeTokenizer, WpmTokenizer> model;
};

Tokenizer Tokenizer::from_gguf(const GgufFile& file) { return Tokenizer(Vocab::from_gguf(file)); }

Tokenizer::Tokenizer(Vocab vocab) : impl_(std::make_unique<Impl>(std::move(vocab))) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

const Vocab& Tokenizer::vocab() const noexcept { return impl_->vocab; }

const VocabTrie& Tokenizer::vocab_trie() const {
  std::call_once(impl_->trie_once,
                 [&] { impl_->trie = std::make_unique<VocabTrie>(VocabTrie::from_tokenizer(*this)); });
  return *impl_->trie;
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  const Vocab& vocab = impl_->vocab;
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 4);
  if (options.add_special && vocab.add_bos()) out.push_back(*vocab.special().bos);

  std::vector<SpecialTokenSplitter::Fragment> fragments;
  impl_->special.split(text, options.parse_special, fragments);
  bool after_special = true;  // the start of the text counts as following a special token
  for (const SpecialTokenSplitter::Fragment& fragment : fragments) {
    if (fragment.token >= 0) {
      out.push_back(fragment.token);
      after_special = true;
    } else {
      impl_->encode_plain(fragment.text, after_special, out);
      after_special = false;
    }
  }

  if (options.add_special && vocab.add_eos()) out.push_back(*vocab.special().eos);
  if (options.add_special && vocab.add_sep()) out.push_back(*vocab.special().sep);
  return out;
}

void Tokenizer::append_piece(TokenId id, bool render_special, std::string& out) const {
  const Vocab& vocab = impl_->vocab;
  if (id < 0 || id >= vocab.size()) {
    // Ids can come from outside (an API request's tokens, a logit bias): an error, not a crash.
    fail(ErrorCode::kInvalidArgument, "token id {} is outside the vocabulary of {} tokens", id, vocab.size());
  }
  const std::string& text = vocab.text(id);
  switch (vocab.type(id)) {
    case TokenType::kControl:
    case TokenType::kUnknown:
      if (render_special) out += text;
      return;
    case TokenType::kUnused: return;
    case TokenType::kByte:
      if (const std::optional<char> byte = byte_token_value(text)) {
        out.push_back(*byte);
        return;
      }
      break;
    case TokenType::kUserDefined:
      // Added tokens are stored as written (a BPE one is not in the byte-level alphabet).
      if (vocab.model() == TokenizerModel::kBpe) {
        out += text;
        return;
      }
      break;
    case TokenType::kNormal:
    case TokenType::kUndefined: break;
  }
  if (vocab.model() == TokenizerModel::kBpe) {
    if (!byte_level::decode(text, out)) out += text;
  } else {
    append_unescaped_spaces(text, out);
  }
}

std::string Tokenizer::decode(std::span<const TokenId> ids, const DecodeOptions& options) const {
  std::string out;
  bool strip = options.strip_space_prefix && impl_->vocab.add_space_prefix();
  for (TokenId id : ids) {
    const size_t before = out.size();
    append_piece(id, options.render_special, out);
    if (strip && out.size() > before) {
      if (out[before] == ' ') out.erase(before, 1);
      strip = false;
    }
  }
  return out;
}

Detokenizer::Detokenizer(const Tokenizer& tokenizer, const DecodeOptions& options)
    : tokenizer_(tokenizer), options_(options) {}

std::string Detokenizer::push(TokenId id) {
  const size_t before = pending_.size();
  tokenizer_.append_piece(id, options_.render_special, pending_);
  if (at_start_ && pending_.size() > before) {
    if (options_.strip_space_prefix && tokenizer_.vocab().add_space_prefix() && pending_[before] == ' ') {
      pending_.erase(before, 1);
    }
    at_start_ = false;
  }
  const size_t held = utf8::incomplete_tail(pending_);
  std::string ready = utf8::sanitize(std::string_view(pending_).substr(0, pending_.size() - held));
  pending_.erase(0, pending_.size() - held);
  return ready;
}

std::string Detokenizer::flush() {
  std::string rest = utf8::sanitize(pending_);
  pending_.clear();
  return rest;
}

void Detokenizer::reset() {
  pending_.clear();
  at_start_ = true;
}

}  // namespace ember
