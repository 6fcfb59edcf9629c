// SpmTokenizer against llama.cpp's test vectors for the SentencePiece vocabularies (Llama 2,
// Phi-3), plus byte fallback, invalid UTF-8 and a long input.
#include "tokenizer/spm_tokenizer.h"

#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <sstream>

#include "ember/error.h"
#include "tokenizer_vectors.h"

namespace ember {
namespace {

TEST(SpmTokenizer, MatchesTheReferenceVectors) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  for (const char* name : {"llama-spm", "phi-3"}) tokenizer_test::expect_vectors(data, name, /*round_trip=*/true);
}

TEST(SpmTokenizer, FallsBackToBytesAndSurvivesInvalidUtf8) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const Tokenizer full = Tokenizer::from_gguf(GgufFile::open((data / "vocab" / "ggml-vocab-llama-spm.gguf").string()));
  const Vocab& vocab = full.vocab();
  const SpmTokenizer tokenizer(vocab);
  // U+10348 (Gothic hwair) is no Llama 2 token: its four bytes come out as <0xF0> <0x90> <0x8D> <0x88>.
  const std::vector<TokenId> ids = tokenizer.encode("\xF0\x90\x8D\x88");
  ASSERT_EQ(ids.size(), 5u);  // "▁" then four byte tokens
  EXPECT_EQ(vocab.text(ids[1]), "<0xF0>");
  EXPECT_EQ(vocab.text(ids[4]), "<0x88>");
  // A lone continuation byte and a truncated sequence are bytes too, never a crash.
  const std::vector<TokenId> bad = tokenizer.encode(
      "a\x80"
      "b\xE2\x96");
  EXPECT_FALSE(bad.empty());
  EXPECT_EQ(full.decode(bad), std::string("a\x80") + "b\xE2\x96");
  EXPECT_EQ(full.decode(ids), "\xF0\x90\x8D\x88");
  for (TokenId id : bad) ASSERT_LT(id, vocab.size());
  // Long inputs stay fast (no quadratic merging): 200 KB of text.
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "the cat ";
  EXPECT_GT(tokenizer.encode(text).size(), 20000u);
}

TEST(SpmTokenizer, RejectsOtherVocabularies) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const Vocab vocab = Vocab::from_gguf(GgufFile::open((data / "vocab" / "ggml-vocab-gpt-2.gguf").string()));
  EXPECT_THROW(SpmTokenizer{vocab}, Error);
}

}  // namespace
}  // namespace ember
