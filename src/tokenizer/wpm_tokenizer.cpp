// WpmTokenizer: one pass over the code points builds each normalized word in a reused buffer; each
// finished word is matched greedily against the vocabulary with string_view lookups.
#include "tokenizer/wpm_tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <optional>
#include <string>

#include "core/check.h"
#include "core/utf8.h"
#include "ember/error.h"

namespace ember {
namespace {

// "▁" (U+2581): the converted vocabulary spells BERT's word-initial pieces with it ("▁hello") and
// continuation pieces bare ("llo" for BERT's "##llo").

// Unicode White_Space (PropList.txt), the set llama.cpp splits on: the ASCII controls \t..\r and
// U+0085 count although their category is Cc, and every Zs / Zl / Zp code point is in it.
bool is_whitespace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// The CJK ideograph blocks BERT splits into single characters, as llama.cpp lists them (Extension E
// from 0x2B920, as in Hugging Face's Rust tokenizer, where Unicode starts it at 0x2B820).
bool is_cjk_ideograph(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// The first code point of `cp`'s canonical decomposition: the base letter of a precomposed
// accented letter, the leading jamo of a Hangul syllable, `cp` itself when it has none. llama.cpp
// normalizes this way (one code point in, one out), so the accents of precomposed letters vanish
// while separately written combining marks stay; the vectors ("Äpfel", "Cửa Việt") need the former.
char32_t canonical_head(char32_t cp) {
  if (cp < 0xC0) return cp;  // nothing below U+00C0 has a canonical decomposition
  utf8proc_int32_t parts[8];
  utf8proc_int32_t unused_boundclass = 0;
  const utf8proc_ssize_t n =
      utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), parts, 8, UTF8PROC_DECOMPOSE, &unused_boundclass);
  return n > 0 ? static_cast<char32_t>(parts[0]) : cp;
}

enum class CharClass {
  kSpace,    // ends the current word
  kDropped,  // vanishes without ending the word
  kAlone,    // a word of its own
  kWord,     // part of the current word
};

CharClass classify(char32_t cp) {
  if (is_whitespace(cp)) return CharClass::kSpace;
  if (cp == 0 || cp == utf8::kReplacement) return CharClass::kDropped;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    // Unassigned code points (Cn) are not dropped: llama.cpp's tables flag them "undefined", not
    // "control", so they stay in their word (which then usually becomes unk).
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CS: return CharClass::kDropped;
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO: return CharClass::kAlone;
    // Only ASCII symbols split ($ + < = > ^ ` | ~); others ("½" is No, "©" So) stay in the word.
    case UTF8PROC_CATEGORY_SM:
    case UTF8PROC_CATEGORY_SC:
    case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO: return cp < 0x7F ? CharClass::kAlone : CharClass::kWord;
    default: return is_cjk_ideograph(cp) ? CharClass::kAlone : CharClass::kWord;
  }
}

}  // namespace

WpmTokenizer::WpmTokenizer(const Vocab& vocab) {
  if (vocab.model() != TokenizerModel::kWpm) {
    fail(ErrorCode::kInvalidArgument, "WPM tokenizer: the vocabulary is {}, not bert (WordPiece)",
         tokenizer_model_name(vocab.model()));
  }
  // The longest token at a position is one walk down the trie: O(length of that token), where
  // trying every length up to the longest token would be quadratic in it.
  for (TokenId id = 0; id < vocab.size(); ++id) pieces_.insert(vocab.text(id), id);
  if (vocab.special().unk) {
    unk_ = *vocab.special().unk;
  } else if (const std::optional<TokenId> id = vocab.find("[UNK]")) {
    unk_ = *id;  // files converted without tokenizer.ggml.unknown_token_id still name BERT's unk
  }
}

void WpmTokenizer::encode_word(std::string_view word, std::vector<TokenId>& out) const {
  const size_t first = out.size();
  // BERT's tokenizer (max_input_chars_per_word) makes a word of more than 100 characters one unk,
  // which also bounds the greedy match's cost (a position may walk as far as the longest token).
  size_t chars = 0;
  for (size_t at = kSpaceMark.size(); at < word.size(); at += utf8::decode(word, at).length) ++chars;
  if (chars > kMaxWordChars) {
    if (unk_ >= 0) out.push_back(unk_);
    return;
  }
  for (size_t at = 0; at < word.size();) {
    const TokenTrie::Match match = pieces_.longest(word, at, [](uint8_t) { return true; });
    if (match.id < 0) {
      // Like BERT: a word that does not split completely into pieces is one unknown token, not a
      // partial match followed by unk.
      out.resize(first);
      if (unk_ >= 0) out.push_back(unk_);
      return;
    }
    out.push_back(match.id);
    at += match.length;
  }
}

std::vector<TokenId> WpmTokenizer::encode(std::string_view text) const {
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 1);
  std::string word(kSpaceMark);  // the word being built, always behind its "▁"
  const auto finish_word = [&] {
    if (word.size() == kSpaceMark.size()) return;  // nothing since the last word ended
    encode_word(word, out);
    word.resize(kSpaceMark.size());
  };
  for (size_t at = 0; at < text.size();) {
    const utf8::Decoded decoded = utf8::decode(text, at);
    at += decoded.length;
    const char32_t cp = canonical_head(decoded.code_point);
    const CharClass kind = classify(cp);
    if (kind == CharClass::kSpace) {
      finish_word();
      continue;
    }
    if (kind == CharClass::kDropped) continue;
    const char32_t lower = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
    if (kind == CharClass::kAlone) {
      finish_word();
      utf8::append(word, lower);
      finish_word();
    } else {
      utf8::append(word, lower);
    }
  }
  finish_word();
  return out;
}

}  // namespace ember
