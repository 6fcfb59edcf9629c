// Fill-in-the-middle: its tokens found in the real code vocabularies (by key, else by text), the
// prompt's order with code that spells a control token kept as text, and the error without them.
#include "tokenizer/fill_in_middle.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ember/error.h"
#include "gguf/gguf_writer.h"
#include "support/test_data.h"

namespace ember {
namespace {

Tokenizer load_vocab_file(const std::filesystem::path& data, const std::string& name) {
  return Tokenizer::from_gguf(GgufFile::open((data / "vocab" / ("ggml-vocab-" + name + ".gguf")).string()));
}

std::vector<TokenId> concat(std::initializer_list<std::vector<TokenId>> parts) {
  std::vector<TokenId> out;
  for (const std::vector<TokenId>& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// These vocabulary files name no fill-in-the-middle ids: the tokens are found by their texts.
TEST(FillInMiddle, TokensOfTheCodeVocabulariesAreFoundByText) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  struct Case {
    const char* vocab;
    TokenId prefix, suffix, middle;
  };
  for (const Case& c : {Case{"qwen2", 151659, 151661, 151660}, Case{"deepseek-coder", 32016, 32015, 32017},
                        Case{"starcoder", 1, 3, 2}, Case{"refact", 1, 3, 2}}) {
    SCOPED_TRACE(c.vocab);
    const Tokenizer t = load_vocab_file(data, c.vocab);
    const SpecialTokens& s = t.vocab().special();
    EXPECT_EQ(s.fim_prefix, c.prefix);
    EXPECT_EQ(s.fim_suffix, c.suffix);
    EXPECT_EQ(s.fim_middle, c.middle);
    EXPECT_TRUE(has_fill_in_middle(t.vocab()));
  }
  for (const char* name : {"llama-spm", "llama-bpe", "gpt-2", "phi-3"}) {
    SCOPED_TRACE(name);
    EXPECT_FALSE(has_fill_in_middle(load_vocab_file(data, name).vocab()));
  }
  // A pad or the next file ends a fill-in-the-middle answer, as the end of text does.
  const Tokenizer qwen = load_vocab_file(data, "qwen2");
  for (const char* text : {"<|fim_pad|>", "<|file_sep|>", "<|repo_name|>", "<|endoftext|>"}) {
    EXPECT_TRUE(qwen.vocab().is_end_of_generation(*qwen.vocab().find(text))) << text;
  }
  EXPECT_FALSE(qwen.vocab().is_end_of_generation(*qwen.vocab().find("<|fim_middle|>")));
}

// [BOS] PRE prefix SUF suffix MID; the prefix and suffix as plain text, so code that spells a
// control token does not become it.
TEST(FillInMiddle, PromptOrderAndCodeAsText) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string prefix = "def add(a, b):\n    s = '<|fim_middle|>'\n", suffix = "\n    return s\n";
  const EncodeOptions text{.add_special = false, .parse_special = false};
  for (const char* name : {"qwen2", "deepseek-coder", "starcoder"}) {
    SCOPED_TRACE(name);
    const Tokenizer t = load_vocab_file(data, name);
    const SpecialTokens& s = t.vocab().special();
    std::vector<TokenId> bos;
    if (t.vocab().add_bos()) bos.push_back(*s.bos);
    const std::vector<TokenId> prompt = fill_in_middle_prompt(t, prefix, suffix);
    EXPECT_EQ(
        prompt,
        concat(
            {bos, {*s.fim_prefix}, t.encode(prefix, text), {*s.fim_suffix}, t.encode(suffix, text), {*s.fim_middle}}));
    EXPECT_EQ(std::count(prompt.begin(), prompt.end(), *s.fim_middle), 1);  // the one at the end
  }
  // deepseek-coder's vocabulary adds a BOS; Qwen's does not.
  EXPECT_EQ(fill_in_middle_prompt(load_vocab_file(data, "deepseek-coder"), "a", "b").front(),
            load_vocab_file(data, "deepseek-coder").vocab().special().bos);
  EXPECT_EQ(fill_in_middle_prompt(load_vocab_file(data, "qwen2"), "a", "b").front(), 151659);
  // An empty prefix or suffix: the markers alone.
  const Tokenizer qwen = load_vocab_file(data, "qwen2");
  EXPECT_EQ(fill_in_middle_prompt(qwen, "", ""), (std::vector<TokenId>{151659, 151661, 151660}));

  try {
    fill_in_middle_prompt(load_vocab_file(data, "llama-spm"), "a", "b");
    ADD_FAILURE() << "no error without fill-in-the-middle tokens";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("fill-in-the-middle"), std::string::npos) << e.what();
  }
}

// The keys win over the texts; llama.cpp's older key names count; an id outside the vocabulary is
// an error naming the key; by text, only control or user-defined tokens count.
TEST(FillInMiddle, KeysNameTheTokens) {
  const auto vocab_with = [](const std::vector<std::pair<std::string, uint32_t>>& keys, int32_t fim_type = 3) {
    GgufWriter w;
    w.add_string("tokenizer.ggml.model", "gpt2");
    const std::vector<std::string> tokens = {"a", "b", "ab", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "x", "y"};
    w.add_string_array("tokenizer.ggml.tokens", tokens);
    const std::vector<int32_t> types = {1, 1, 1, fim_type, fim_type, fim_type, 1, 1};
    w.add_array<int32_t>("tokenizer.ggml.token_type", types);
    const std::vector<std::string> merges = {"a b"};
    w.add_string_array("tokenizer.ggml.merges", merges);
    for (const auto& [key, id] : keys) w.add<uint32_t>(key, id);
    return Vocab::from_gguf(GgufFile::parse(w.write_to_memory(), "fim.gguf"));
  };
  const Vocab by_text = vocab_with({});
  EXPECT_EQ(by_text.special().fim_prefix, 3);
  EXPECT_EQ(by_text.special().fim_suffix, 4);
  EXPECT_EQ(by_text.special().fim_middle, 5);
  EXPECT_EQ(vocab_with({}, /*user-defined*/ 4).special().fim_prefix, 3);
  const Vocab ordinary = vocab_with({}, /*normal*/ 1);
  EXPECT_FALSE(has_fill_in_middle(ordinary));
  EXPECT_FALSE(ordinary.special().fim_prefix.has_value());
  const Vocab by_key = vocab_with({{"tokenizer.ggml.fim_pre_token_id", 6},
                                   {"tokenizer.ggml.fim_suf_token_id", 7},
                                   {"tokenizer.ggml.middle_token_id", 0}});  // the older name
  EXPECT_EQ(by_key.special().fim_prefix, 6);
  EXPECT_EQ(by_key.special().fim_suffix, 7);
  EXPECT_EQ(by_key.special().fim_middle, 0);
  try {
    vocab_with({{"tokenizer.ggml.fim_mid_token_id", 8}});
    ADD_FAILURE() << "no error for an id outside the vocabulary";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.fim_mid_token_id"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ember
