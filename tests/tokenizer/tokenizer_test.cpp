// Tokenizer (the facade) and Detokenizer: BOS / EOS rules, special-token parsing, the reference
// prompt of stories260K, round trips on random Unicode, invalid UTF-8, streaming that never splits
// a character, and linear growth on long inputs.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "core/utf8.h"
#include "tokenizer_vectors.h"

namespace ember {
namespace {

Tokenizer load(const std::filesystem::path& data, const std::string& name) {
  return Tokenizer::from_gguf(GgufFile::open((data / "vocab" / ("ggml-vocab-" + name + ".gguf")).string()));
}

TEST(Tokenizer, Stories260KPromptMatchesLlama2c) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const Tokenizer tokenizer =
      Tokenizer::from_gguf(GgufFile::open((data / "models" / "stories260K" / "stories260K.gguf").string()));
  // llama2.c's run.c tokenizes the prompt with BOS to exactly these ids.
  EXPECT_EQ(tokenizer.encode("Once upon a time"), (std::vector<TokenId>{1, 403, 407, 261, 378}));
  EXPECT_EQ(tokenizer.decode(std::vector<TokenId>{1, 403, 407, 261, 378}), "Once upon a time");
}

TEST(Tokenizer, AddsBosWhereTheVocabularyAsks) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const Tokenizer spm = load(data, "llama-spm");
  EXPECT_EQ(spm.encode("Hello").front(), 1);
  EXPECT_NE(spm.encode("Hello", {.add_special = false}).front(), 1);
  // Llama 3's pre-tokenizer implies BOS (<|begin_of_text|>); GPT-2's does not.
  const Tokenizer llama3 = load(data, "llama-bpe");
  EXPECT_EQ(llama3.encode("Hello").front(), 128000);
  const Tokenizer gpt2 = load(data, "gpt-2");
  EXPECT_EQ(gpt2.encode("Hello"), gpt2.encode("Hello", {.add_special = false}));
  // BERT wraps the text in [CLS] ... [SEP].
  const Tokenizer bert = load(data, "bert-bge");
  const std::vector<TokenId> ids = bert.encode("hello world");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 101);
  EXPECT_EQ(ids.back(), 102);
}

TEST(Tokenizer, ControlTokensOnlyWhenParsingSpecial) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const Tokenizer tokenizer = load(data, "llama-bpe");
  const std::string text = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
  const std::vector<TokenId> parsed = tokenizer.encode(text, {.add_special = false, .parse_special = true});
  EXPECT_EQ(parsed.front(), *tokenizer.vocab().find("<|start_header_id|>"));
  EXPECT_EQ(parsed.back(), *tokenizer.vocab().find("<|eot_id|>"));
  EXPECT_EQ(tokenizer.decode(parsed, {.render_special = true}), text);
  EXPECT_EQ(tokenizer.decode(parsed), "user\n\nHi");
  // Untrusted text can never produce a control token: it is spelled with ordinary ones.
  const std::vector<TokenId> plain = tokenizer.encode(text, {.add_special = false});
  for (TokenId id : plain) EXPECT_NE(tokenizer.vocab().type(id), TokenType::kControl) << id;
  EXPECT_EQ(tokenizer.decode(plain), text);
}

TEST(Tokenizer, SpmPrefixesASpaceAfterEachSpecialToken) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const Tokenizer tokenizer = load(data, "llama-spm");
  const EncodeOptions parse{.add_special = false, .parse_special = true};
  // As llama.cpp: the text after a special token is tokenized as if it started the text.
  std::vector<TokenId> expected = tokenizer.encode("Hi", {.add_special = false});
  expected.push_back(2);  // </s>
  const std::vector<TokenId> again = tokenizer.encode("Hi", {.add_special = false});
  expected.insert(expected.end(), again.begin(), again.end());
  EXPECT_EQ(tokenizer.encode("Hi</s>Hi", parse), expected);
}

// What decode(encode(text)) gives: the text itself, except that SPM spells spaces as "▁", so a
// "▁" written in the text comes back as a space (as with SentencePiece itself).
std::string round_trip_of(const Tokenizer& tokenizer, const std::string& text) {
  if (tokenizer.vocab().model() != TokenizerModel::kSpm) return text;
  std::string out;
  for (size_t at = 0; at < text.size();) {
    if (text.compare(at, 3, "\xE2\x96\x81") == 0) {
      out += ' ';
      at += 3;
    } else {
      out += text[at++];
    }
  }
  return out;
}

// Random text from the scripts and characters tokenizers get wrong.
std::string random_unicode(std::mt19937& rng, size_t n_chars) {
  static const std::vector<std::string> kPieces = {
      "a",
      "Z",
      "7",
      "42",
      "1234567",
      " ",
      "  ",
      "    ",
      "\t",
      "\n",
      "\r\n",
      "\n\n\n",
      ".",
      ",",
      "!",
      "'s",
      "'LL",
      "é",
      "e\xCC\x81",  // precomposed and combining acute
      "\xE4\xB8\xAD",
      "\xE6\x96\x87",
      "\xED\x95\x9C",                                  // 中 文 한
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9",  // 👨‍👩 (ZWJ sequence)
      "\xF0\x9F\xA6\x99",                              // 🦙
      "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D",              // שלום (RTL)
      "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7",      // مرحبا
      "\xE2\x80\x8F",                                  // right-to-left mark
      std::string("\x00", 1),
      "\x01",
      "\x1B",
      "\x7F",  // control characters
      "\xC2\xA0",
      "\xE3\x80\x80",  // no-break and ideographic space
      "Hello",
      " world",
      "HTTPServer",
      "don't",
      "<|",
      "|>",
      "<s>",
      "\xE2\x96\x81",
  };
  std::uniform_int_distribution<size_t> pick(0, kPieces.size() - 1);
  std::string text;
  for (size_t i = 0; i < n_chars; ++i) text += kPieces[pick(rng)];
  return text;
}

TEST(Tokenizer, RoundTripsRandomUnicode) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  std::mt19937 rng(1234);
  for (const char* name : {"llama-spm", "phi-3", "llama-bpe", "qwen2", "gpt-2", "deepseek-llm", "deepseek-coder",
                           "falcon", "mpt", "starcoder", "refact", "gpt-neox", "baichuan"}) {
    SCOPED_TRACE(name);
    const Tokenizer tokenizer = load(data, name);
    for (int round = 0; round < 30; ++round) {
      const std::string text = random_unicode(rng, 1 + static_cast<size_t>(round) * 7);
      const std::vector<TokenId> ids = tokenizer.encode(text, {.add_special = false});
      ASSERT_EQ(tokenizer.decode(ids), round_trip_of(tokenizer, text)) << "text: \"" << text << "\"";
    }
  }
}

TEST(Tokenizer, InvalidUtf8IsReplacedNeverACrash) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> byte(0, 255);
  for (const char* name : {"llama-spm", "llama-bpe", "qwen2", "bert-bge", "deepseek-llm"}) {
    SCOPED_TRACE(name);
    const Tokenizer tokenizer = load(data, name);
    for (int round = 0; round < 50; ++round) {
      std::string text;
      for (int i = 0; i < 1 + round * 3; ++i) text += static_cast<char>(byte(rng));
      const std::vector<TokenId> ids = tokenizer.encode(text, {.parse_special = true});
      for (TokenId id : ids) ASSERT_TRUE(id >= 0 && id < tokenizer.vocab().size());
      const std::string back = tokenizer.decode(ids);
      if (tokenizer.vocab().model() == TokenizerModel::kSpm) {
        // Byte fallback keeps every byte (a "▁" may come back as a space, or as its bytes where
        // an invalid lead byte before it swallowed part of it).
        EXPECT_EQ(round_trip_of(tokenizer, back), round_trip_of(tokenizer, text));
      } else if (tokenizer.vocab().model() == TokenizerModel::kBpe) {
        EXPECT_EQ(back, utf8::sanitize(text));  // byte-level BPE keeps the replaced text
      }
    }
  }
}

TEST(Detokenizer, StreamsWholeCharactersOnly) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  std::mt19937 rng(7);
  for (const char* name : {"llama-spm", "llama-bpe", "qwen2"}) {
    SCOPED_TRACE(name);
    const Tokenizer tokenizer = load(data, name);
    for (int round = 0; round < 20; ++round) {
      const std::string text = random_unicode(rng, 40);
      const std::vector<TokenId> ids = tokenizer.encode(text);  // with BOS: decoding skips it
      Detokenizer stream(tokenizer);
      std::string streamed;
      for (TokenId id : ids) {
        const std::string part = stream.push(id);
        ASSERT_TRUE(utf8::is_valid(part)) << "a split character was emitted";
        streamed += part;
      }
      streamed += stream.flush();
      EXPECT_EQ(streamed, round_trip_of(tokenizer, text));
      EXPECT_EQ(streamed, tokenizer.decode(ids));
    }
  }
}

TEST(Detokenizer, HoldsASplitCharacterAndReplacesWhatCannotComplete) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const Tokenizer tokenizer = load(data, "llama-spm");
  const TokenId e4 = *tokenizer.vocab().find("<0xE4>");
  const TokenId b8 = *tokenizer.vocab().find("<0xB8>");
  const TokenId ad = *tokenizer.vocab().find("<0xAD>");
  Detokenizer stream(tokenizer);
  EXPECT_EQ(stream.push(e4), "");
  EXPECT_EQ(stream.push(b8), "");
  EXPECT_EQ(stream.push(ad), "\xE4\xB8\xAD");  // 中 once its third byte arrives
  EXPECT_EQ(stream.push(e4), "");
  // A character that can never complete is one U+FFFD per byte, then the stream goes on.
  const TokenId a = tokenizer.encode("a", {.add_special = false}).back();
  EXPECT_EQ(stream.push(a), "\xEF\xBF\xBD" + tokenizer.decode(std::vector<TokenId>{a}, {.strip_space_prefix = false}));
  EXPECT_EQ(stream.push(e4), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");
}

TEST(Detokenizer, StripsTheSpmPrefixSpaceOnlyAtTheStartOfAText) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const Tokenizer tokenizer = load(data, "llama-spm");
  const std::vector<TokenId> ids = tokenizer.encode("Hello world");  // <s> ▁Hello ▁world
  Detokenizer from_start(tokenizer);
  std::string text;
  for (TokenId id : ids) text += from_start.push(id);
  EXPECT_EQ(text, "Hello world");
  // A continuation (generated tokens after a prompt) keeps its spaces.
  Detokenizer continuation(tokenizer, {.strip_space_prefix = false});
  EXPECT_EQ(continuation.push(ids.back()), " world");
  // Special tokens show only when asked for.
  Detokenizer special(tokenizer, {.render_special = true});
  EXPECT_EQ(special.push(1), "<s>");
}

// Seconds to encode `text`.
double encode_seconds(const Tokenizer& tokenizer, const std::string& text) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<TokenId> ids = tokenizer.encode(text);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(ids.size(), text.size() / 64);
  return seconds;
}

TEST(Tokenizer, LongInputsGrowLinearly) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  std::mt19937 rng(5);
  // One long "word" of letters without spaces is the worst case for merges; mixed text the common one.
  const std::string mixed = random_unicode(rng, 40000);
  std::string word;
  while (word.size() < 64 * 1024) word += "abcdefghijklmnopqrstuvwxyz";
  for (const char* name : {"llama-spm", "llama-bpe"}) {
    SCOPED_TRACE(name);
    const Tokenizer tokenizer = load(data, name);
    for (const std::string& unit : {mixed.substr(0, 64 * 1024), word}) {
      std::string big;
      for (int i = 0; i < 16; ++i) big += unit;  // 1 MiB
      // Best of three, small and big interleaved so that a busy machine slows both alike.
      double small_s = 1e9, big_s = 1e9;
      for (int i = 0; i < 3; ++i) {
        small_s = std::min(small_s, encode_seconds(tokenizer, big.substr(0, big.size() / 4)));
        big_s = std::min(big_s, encode_seconds(tokenizer, big));
      }
      // 4x the input: about 4x the time (measured 3-7x: n log n and caches add a little);
      // quadratic would be 16x.
      EXPECT_LT(big_s, 12 * small_s + 0.01) << small_s << " s for 256 KiB, " << big_s << " s for 1 MiB";
    }
  }
}

}  // namespace
}  // namespace ember
