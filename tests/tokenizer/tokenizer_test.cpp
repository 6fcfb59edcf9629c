// Tokenizer (the facade) and Detokenizer: BOS / EOS rules, special-token parsing, the reference
// prompt of stories260K, round trips on random Unicode, invalid UTF-8, streaming that never splits
// a character, and linear growth of the work (instructions, not a clock) on long inputs.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/utf8.h"
#include "ember/error.h"
#include "support/sanitized.h"
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

TEST(Tokenizer, Phi3SpecialTokensEatTheWhitespaceAfterThem) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const Tokenizer tokenizer = load(data, "phi-3");
  // llama.cpp gives these ids for Phi-3's chat format: its special tokens (but <s>, <unk>,
  // <|endoftext|>) strip the newline after them, as the model's own tokenizer does.
  EXPECT_EQ(tokenizer.encode("<|user|>\nSYS\nHI<|end|>\n<|assistant|>\n", {.parse_special = true}),
            (std::vector<TokenId>{1, 32010, 317, 21554, 13, 17628, 32007, 32001}));
  // Other vocabularies keep the whitespace.
  const Tokenizer llama3 = load(data, "llama-bpe");
  const std::vector<TokenId> ids = llama3.encode("<|eot_id|>\nx", {.add_special = false, .parse_special = true});
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(llama3.decode(ids, {.render_special = true}), "<|eot_id|>\nx");
}

TEST(Tokenizer, IdsOutsideTheVocabularyAreAnError) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const Tokenizer tokenizer = load(data, "llama-spm");
  EXPECT_THROW(tokenizer.decode(std::vector<TokenId>{1, 32000}), Error);
  EXPECT_THROW(tokenizer.decode(std::vector<TokenId>{-1}), Error);
  Detokenizer stream(tokenizer);
  EXPECT_THROW(stream.push(1 << 30), Error);
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

TEST(Tokenizer, ConcurrentEncodesAgreeWithOneThread) {
  // One const Tokenizer shared by threads (as the server will): the word caches and the per-thread
  // PCRE2 state must not mix results. Also run under ThreadSanitizer by `make test`.
  EMBER_SHARED_DATA_OR_SKIP(data);
  for (const char* name : {"llama-bpe", "llama-spm"}) {
    SCOPED_TRACE(name);
    const Tokenizer tokenizer = load(data, name);
    std::mt19937 rng(11);
    std::vector<std::string> texts;
    for (int i = 0; i < 8; ++i) texts.push_back(random_unicode(rng, 400));
    std::vector<std::vector<TokenId>> expected;
    for (const std::string& text : texts) expected.push_back(tokenizer.encode(text, {.parse_special = true}));
    std::vector<std::thread> threads;
    std::atomic<int> mismatches{0};
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int round = 0; round < 6; ++round) {
          const size_t i = static_cast<size_t>((t + round) % 8);
          if (tokenizer.encode(texts[i], {.parse_special = true}) != expected[i]) ++mismatches;
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    EXPECT_EQ(mismatches.load(), 0);
  }
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
  // A flush mid-stream (a pause) does not strip the next token's space again; reset() starts over.
  Detokenizer paused(tokenizer);
  EXPECT_EQ(paused.push(ids[1]), "Hello");
  EXPECT_EQ(paused.flush(), "");
  EXPECT_EQ(paused.push(ids[2]), " world");
  paused.reset();
  EXPECT_EQ(paused.push(ids[2]), "world");
  // Special tokens show only when asked for.
  Detokenizer special(tokenizer, {.render_special = true});
  EXPECT_EQ(special.push(1), "<s>");
}

// Work this thread does, in a unit that does not depend on the machine's load: retired
// instructions where the kernel lets a process count its own (perf_event_open), else the thread's
// CPU time (which at least excludes time spent waiting for the CPU).
class WorkMeter {
 public:
  WorkMeter() {
    perf_event_attr attr{};
    attr.type = PERF_TYPE_HARDWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_HW_INSTRUCTIONS;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    fd_ = static_cast<int>(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
  }
  ~WorkMeter() {
    if (fd_ >= 0) close(fd_);
  }
  WorkMeter(const WorkMeter&) = delete;
  WorkMeter& operator=(const WorkMeter&) = delete;

  bool counts_instructions() const { return fd_ >= 0; }
  double now() const {
    uint64_t instructions = 0;
    if (fd_ >= 0 && read(fd_, &instructions, sizeof instructions) == sizeof instructions) {
      return static_cast<double>(instructions);
    }
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
  }

 private:
  int fd_ = -1;
};

// The first `bytes` of `text`, cut at a character boundary.
std::string prefix(const std::string& text, size_t bytes) {
  while (bytes > 0 && (static_cast<unsigned char>(text[bytes]) & 0xC0) == 0x80) --bytes;
  return text.substr(0, bytes);
}

TEST(Tokenizer, LongInputsGrowLinearly) {
  EMBER_SHARED_DATA_OR_SKIP(data);
#ifdef EMBER_TEST_SANITIZED
  // 256 KiB against 32 KiB under AddressSanitizer (1 MiB took it half a minute): quadratic work
  // still shows as 64x; the release build checks the 1 MiB inputs.
  constexpr size_t kBig = 1 << 18;
#else
  constexpr size_t kBig = 1 << 20;
#endif
  std::mt19937 rng(5);
  std::string mixed;  // fresh random text, not a repeated block (which the word cache would hide)
  while (mixed.size() < kBig) mixed += random_unicode(rng, 1000);
  std::string word;  // one kBig-byte word: the worst case for merges
  while (word.size() < kBig) word += "abcdefghijklmnopqrstuvwxyz";
  std::string brackets;  // DeepSeek has thousands of "[PAD…]" special tokens starting with '['
  while (brackets.size() < kBig) brackets += "a[0] = b[i][j]; [";

  const WorkMeter meter;
  const struct {
    const char* vocab;
    const std::string* text;
  } cases[] = {{"llama-spm", &mixed}, {"llama-spm", &word},        {"llama-bpe", &mixed},
               {"llama-bpe", &word},  {"deepseek-llm", &brackets}, {"bert-bge", &mixed}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.vocab);
    const std::string big = prefix(*c.text, kBig);
    const std::string small = prefix(big, kBig / 8);
    // Each run on a fresh tokenizer, its word cache empty: a warm cache would hold all of the small
    // text's words but not the big one's (the cache is bounded), which once made linear work look
    // 27x for 8x the input.
    const auto work = [&](const std::string& text) {
      double best = 1e300;
      for (int i = 0; i < (meter.counts_instructions() ? 1 : 3); ++i) {
        const Tokenizer tokenizer = load(data, c.vocab);
        const double start = meter.now();
        const std::vector<TokenId> ids = tokenizer.encode(text);
        best = std::min(best, meter.now() - start);
        EXPECT_GT(ids.size(), text.size() / 64);
      }
      return best;
    };
    const double small_work = work(small);
    const double big_work = work(big);
    // 8x the input: about 8x the instructions (n log n adds a little); quadratic would be 64x. CPU
    // time grows faster once the working set outgrows the caches: llama-spm on the mixed text took
    // 25-30x (cold or warm word cache) on a 2-core VM with no counters, so time gets the bound 40,
    // still well under quadratic's 64x.
    const double limit = meter.counts_instructions() ? 14 : 40;
    EXPECT_LT(big_work, limit * small_work)
        << (meter.counts_instructions() ? "instructions: " : "CPU seconds: ") << small_work << " for " << small.size()
        << " bytes, " << big_work << " for " << big.size();
  }
}

}  // namespace
}  // namespace ember
