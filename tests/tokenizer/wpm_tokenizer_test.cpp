// WpmTokenizer against llama.cpp's test vectors for the WordPiece vocabulary (bert-bge), plus
// hand-checked normalization and splitting cases, invalid UTF-8, long inputs and other vocabularies.
#include "tokenizer/wpm_tokenizer.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <random>
#include <sstream>
#include <string>

#include "ember/error.h"
#include "tokenizer_vectors.h"

namespace ember {
namespace {

using tokenizer_test::describe;

std::filesystem::path bge_path(const std::filesystem::path& data) {
  return data / "vocab" / "ggml-vocab-bert-bge.gguf";
}

// The ids of token texts ("▁" starts a word), each of which must be in the vocabulary.
std::vector<TokenId> pieces(const Vocab& vocab, std::initializer_list<std::string_view> texts) {
  std::vector<TokenId> ids;
  for (std::string_view text : texts) {
    const std::optional<TokenId> id = vocab.find(text);
    EXPECT_TRUE(id.has_value()) << "no token \"" << text << "\"";
    ids.push_back(id.value_or(-1));
  }
  return ids;
}

TEST(WpmTokenizer, MatchesTheReferenceVectors) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::filesystem::path path = bge_path(data);
  const Vocab vocab = Vocab::from_gguf(GgufFile::open(path.string()));
  const WpmTokenizer tokenizer(vocab);
  const std::vector<tokenizer_test::Vector> vectors = tokenizer_test::read_vectors(path);
  ASSERT_GT(vectors.size(), 20u);
  for (const tokenizer_test::Vector& v : vectors) {
    EXPECT_EQ(describe(tokenizer.encode(v.input)), describe(v.expected)) << "input: \"" << v.input << "\"";
  }
}

TEST(WpmTokenizer, NormalizesAndSplitsLikeBert) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const Vocab vocab = Vocab::from_gguf(GgufFile::open(bge_path(data).string()));
  const WpmTokenizer tokenizer(vocab);
  ASSERT_TRUE(vocab.special().unk);
  const TokenId unk = *vocab.special().unk;
  const auto encode = [&](std::string_view text) { return describe(tokenizer.encode(text)); };
  const auto expect = [&](std::initializer_list<std::string_view> texts) { return describe(pieces(vocab, texts)); };

  // Lowercased, the accents of precomposed letters dropped (the base letter of the decomposition).
  EXPECT_EQ(encode("Héllo WÖRLD"), expect({"▁hello", "▁world"}));
  EXPECT_EQ(encode("ÇA"), expect({"▁ca"}));
  // Punctuation (ASCII or not) and ASCII symbols are words of their own; other symbols and
  // numbers stay inside their word.
  EXPECT_EQ(encode("a,b.c"), expect({"▁a", "▁,", "▁b", "▁.", "▁c"}));
  EXPECT_EQ(encode("«hi»"), expect({"▁«", "▁hi", "▁»"}));
  EXPECT_EQ(encode("1+1=2"), expect({"▁1", "▁+", "▁1", "▁=", "▁2"}));
  EXPECT_EQ(encode("x\xC2\xA9"), expect({"▁x", "\xC2\xA9"}));  // U+00A9 © is So: a continuation, not a word
  EXPECT_EQ(encode("4\xC2\xBD"), expect({"▁4", "\xC2\xBD"}));  // U+00BD ½ is No
  // CJK ideographs are one word each; "想" is no token, so it alone is unk.
  EXPECT_EQ(encode("我想apple"), describe({pieces(vocab, {"▁我"})[0], unk, pieces(vocab, {"▁apple"})[0]}));
  // Any Unicode whitespace ends a word: tab, no-break space, ideographic space, line separator.
  EXPECT_EQ(encode("a\tb\xC2\xA0"
                   "c\xE3\x80\x80"
                   "d\xE2\x80\xA8"
                   "e"),
            expect({"▁a", "▁b", "▁c", "▁d", "▁e"}));
  // NUL, controls and format characters (zero-width space, soft hyphen) vanish without ending the
  // word.
  EXPECT_EQ(encode(std::string_view("hel\0lo", 6)), expect({"▁hello"}));
  EXPECT_EQ(encode("hel\x01lo"), expect({"▁hello"}));
  EXPECT_EQ(encode("hel\xE2\x80\x8Blo hel\xC2\xADlo"), expect({"▁hello", "▁hello"}));
  // Greedy longest match from the left: a word is its longest prefix token, then continuations.
  EXPECT_EQ(encode("discards"), expect({"▁disc", "ards"}));
  // A word with a position no token starts at is one unk, not a partial match: the unknown "🦙"
  // takes "abc" and "def" with it.
  EXPECT_EQ(encode("abc\xF0\x9F\xA6\x99"
                   "def hello"),
            describe({unk, pieces(vocab, {"▁hello"})[0]}));
  // Unassigned code points (U+0378) are kept (llama.cpp flags them undefined, not control), so
  // their word is unk rather than "a".
  EXPECT_EQ(encode("a\xCD\xB8"), describe({unk}));
  // A Hangul syllable normalizes to its leading jamo only, as llama.cpp does (its NFD keeps one
  // code point per code point): "한" (U+D55C) -> "ᄒ" (U+1112).
  EXPECT_EQ(encode("\xED\x95\x9C"), expect({"▁\xE1\x84\x92"}));
  // Combining marks written as code points of their own are not stripped (llama.cpp's NFD maps
  // one code point to one), and the vocabulary has no piece for U+0301: a decomposed "é" is unk
  // where the precomposed one is "e" (Hugging Face's BERT would strip the mark: "e" both times).
  EXPECT_EQ(encode("e\xCC\x81"), describe({unk}));
  EXPECT_EQ(encode("\xC3\xA9"), expect({"▁e"}));
  // Nothing to tokenize.
  EXPECT_TRUE(tokenizer.encode("").empty());
  EXPECT_TRUE(tokenizer.encode(" \t\n\x01\xE2\x80\x8B ").empty());
}

TEST(WpmTokenizer, SurvivesInvalidUtf8AndLongInputs) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const Vocab vocab = Vocab::from_gguf(GgufFile::open(bge_path(data).string()));
  const WpmTokenizer tokenizer(vocab);
  // Invalid bytes decode to U+FFFD, which is dropped like in the reference: a stray continuation
  // byte, a truncated sequence, an overlong form, a surrogate.
  EXPECT_EQ(describe(tokenizer.encode("a\x80"
                                      "b\xE2\x96")),
            describe(tokenizer.encode("ab")));
  EXPECT_EQ(describe(tokenizer.encode("\xC0\xAF hi \xED\xA0\x80")), describe(tokenizer.encode("hi")));
  for (const std::string_view bad : {"\xFF", "\xF4\x90\x80\x80", "\xE2", "\xF0\x9F\xA6", "\x80\x80\x80"}) {
    for (TokenId id : tokenizer.encode(bad)) ASSERT_LT(id, vocab.size());
  }
  // Random bytes (half of them from the UTF-8 lead / continuation range) only ever give ids of the
  // vocabulary.
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    std::string bytes(rng() % 48, '\0');
    for (char& b : bytes) b = static_cast<char>(rng() % 2 ? rng() % 256 : 0x80 + rng() % 0x78);
    for (TokenId id : tokenizer.encode(bytes)) ASSERT_TRUE(id >= 0 && id < vocab.size()) << round;
  }
  // 200 KB of words: linear.
  std::string words;
  for (int i = 0; i < 25000; ++i) words += "the cat ";
  EXPECT_EQ(tokenizer.encode(words).size(), 50000u);
  // A word of up to 100 characters splits into pieces; a longer one is one unk, as in BERT's own
  // tokenizer (max_input_chars_per_word).
  const std::string hundred(100, 'a');
  const std::vector<TokenId> ids = tokenizer.encode(hundred);
  EXPECT_GT(ids.size(), 1u);
  for (TokenId id : ids) ASSERT_NE(id, *vocab.special().unk);
  EXPECT_EQ(describe(tokenizer.encode(hundred + "a")), describe({*vocab.special().unk}));
  EXPECT_EQ(describe(tokenizer.encode(std::string(200000, 'a'))), describe({*vocab.special().unk}));
  // A word with one unknown character at its end is one unk.
  EXPECT_EQ(describe(tokenizer.encode(std::string(50, 'a') + "\xF0\x9F\xA6\x99")), describe({*vocab.special().unk}));
}

TEST(WpmTokenizer, RejectsOtherVocabularies) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  for (const char* name : {"gpt-2", "llama-spm"}) {
    const Vocab vocab =
        Vocab::from_gguf(GgufFile::open((data / "vocab" / (std::string("ggml-vocab-") + name + ".gguf")).string()));
    EXPECT_THROW(WpmTokenizer{vocab}, Error) << name;
  }
}

}  // namespace
}  // namespace ember
