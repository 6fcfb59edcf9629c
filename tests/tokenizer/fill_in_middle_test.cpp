// Fill-in-the-middle: its tokens found in the real code vocabularies (by key, else by text), the
// prompt's order with code that spells a control token kept as text, and the error without them.
#include "tokenizer/fill_in_middle.h"

#include <gtest/gtest.h>

#include <algorithm>
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

// The keys win over the texts; llama.cpp's older key names count; by text, only control or
// user-defined tokens count.
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
  // An id outside the vocabulary is ignored (as llama.cpp does): the text finds the token instead.
  EXPECT_EQ(vocab_with({{"tokenizer.ggml.fim_mid_token_id", 8}}).special().fim_middle, 5);
  EXPECT_FALSE(vocab_with({{"tokenizer.ggml.fim_mid_token_id", 8}}, /*normal*/ 1).special().fim_middle.has_value());
  const Vocab repo = vocab_with({{"tokenizer.ggml.fim_rep_token_id", 6}, {"tokenizer.ggml.fim_sep_token_id", 7}});
  EXPECT_EQ(repo.special().fim_repo, 6);
  EXPECT_EQ(repo.special().fim_file_sep, 7);
  EXPECT_FALSE(by_text.special().fim_repo.has_value());
}

// llama.cpp's /infill layout. Qwen2.5-Coder's vocabulary has the repository tokens:
//   REPO "myproject\n" (SEP name "\n" text)... SEP "filename\n" PRE prefix prompt SUF suffix MID
// and DeepSeek-Coder's has not: BOS, then each file after a "--- snippet ---" line.
TEST(FillInMiddle, InfillPromptWithOtherFiles) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const EncodeOptions text{.add_special = false, .parse_special = false};
  const std::vector<InfillFile> files = {{"util.py", "def helper():\n    return 1\n"}, {"tmp", "X = 2\n"}};
  const std::string prefix = "def add(a, b):\n    ", suffix = "\n    return s\n";
  const std::string prompt = "s = <|fim_pad|>";  // the prompt may spell control tokens
  const InfillParts parts{.prefix = prefix, .suffix = suffix, .prompt = prompt, .extra = files};

  const Tokenizer qwen = load_vocab_file(data, "qwen2");
  const SpecialTokens& q = qwen.vocab().special();
  ASSERT_EQ(q.fim_repo, *qwen.vocab().find("<|repo_name|>"));
  ASSERT_EQ(q.fim_file_sep, *qwen.vocab().find("<|file_sep|>"));
  const std::vector<TokenId> expected = concat({{*q.fim_repo},
                                                qwen.encode("myproject\n", text),
                                                {*q.fim_file_sep},
                                                qwen.encode("util.py\n", text),
                                                qwen.encode(files[0].text, text),
                                                {*q.fim_file_sep},
                                                qwen.encode("tmp\n", text),
                                                qwen.encode(files[1].text, text),
                                                {*q.fim_file_sep},
                                                qwen.encode("filename\n", text),
                                                {*q.fim_prefix},
                                                qwen.encode(prefix, text),
                                                qwen.encode(prompt, {.add_special = false, .parse_special = true}),
                                                {*q.fim_suffix},
                                                qwen.encode(suffix, text),
                                                {*q.fim_middle}});
  EXPECT_EQ(infill_prompt(qwen, parts, 4096), expected);
  EXPECT_NE(std::find(expected.begin(), expected.end(), *qwen.vocab().find("<|fim_pad|>")), expected.end());

  const Tokenizer deepseek = load_vocab_file(data, "deepseek-coder");
  const SpecialTokens& d = deepseek.vocab().special();
  ASSERT_FALSE(d.fim_repo.has_value());
  const std::vector<TokenId> snippet = deepseek.encode("\n\n--- snippet ---\n\n", text);
  EXPECT_EQ(infill_prompt(deepseek, parts, 4096),
            concat({{*d.bos},
                    snippet,
                    deepseek.encode(files[0].text, text),
                    snippet,
                    deepseek.encode(files[1].text, text),
                    {*d.fim_prefix},
                    deepseek.encode(prefix, text),
                    deepseek.encode(prompt, {.add_special = false, .parse_special = true}),
                    {*d.fim_suffix},
                    deepseek.encode(suffix, text),
                    {*d.fim_middle}}));
}

// Cut to fit: the prefix keeps its last tokens (3/4 of the budget), the suffix its first (a quarter
// less the prompt and the three markers), the other files their last, in what remains.
TEST(FillInMiddle, InfillPromptIsCutToFit) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const Tokenizer qwen = load_vocab_file(data, "qwen2");
  const SpecialTokens& q = qwen.vocab().special();
  const EncodeOptions text{.add_special = false, .parse_special = false};
  std::string prefix, suffix;
  for (int i = 0; i < 100; ++i) {
    prefix += "x" + std::to_string(i) + " = " + std::to_string(i * 7) + "\n";
    suffix += "y" + std::to_string(i) + " = " + std::to_string(i * 3) + "\n";
  }
  const std::vector<TokenId> prefix_ids = qwen.encode(prefix, text), suffix_ids = qwen.encode(suffix, text);
  ASSERT_GT(prefix_ids.size(), 100u);
  ASSERT_GT(suffix_ids.size(), 100u);
  const std::vector<TokenId> z = qwen.encode("z", text);
  ASSERT_EQ(z.size(), 1u);
  // Budget 120: the prefix's last 90, the suffix's first 30 - (3 + 1); no room for the files.
  const std::vector<InfillFile> files = {{"big.py", prefix + suffix}};
  EXPECT_EQ(infill_prompt(qwen, InfillParts{.prefix = prefix, .suffix = suffix, .prompt = "z", .extra = files}, 120),
            concat({{*q.fim_prefix},
                    std::vector<TokenId>(prefix_ids.end() - 90, prefix_ids.end()),
                    z,
                    {*q.fim_suffix},
                    std::vector<TokenId>(suffix_ids.begin(), suffix_ids.begin() + 26),
                    {*q.fim_middle}}));
  // Short code: the files' last tokens fill the rest, up to the current file's separator.
  const std::vector<TokenId> gap = concat(
      {{*q.fim_prefix}, qwen.encode("a = 1\n", text), {*q.fim_suffix}, qwen.encode("b = 2\n", text), {*q.fim_middle}});
  const std::vector<TokenId> cut =
      infill_prompt(qwen, InfillParts{.prefix = "a = 1\n", .suffix = "b = 2\n", .prompt = "", .extra = files}, 100);
  ASSERT_EQ(cut.size(), 100u);
  EXPECT_TRUE(std::equal(gap.begin(), gap.end(), cut.end() - static_cast<ptrdiff_t>(gap.size())));
  const std::vector<TokenId> file_tail =
      concat({qwen.encode(files[0].text, text), {*q.fim_file_sep}, qwen.encode("filename\n", text)});
  const auto extra_size = static_cast<ptrdiff_t>(cut.size() - gap.size());
  EXPECT_TRUE(std::equal(cut.begin(), cut.begin() + extra_size, file_tail.end() - extra_size));
  // No room at all: the markers and the prompt.
  EXPECT_EQ(infill_prompt(qwen, InfillParts{.prefix = prefix, .suffix = suffix, .prompt = "", .extra = {}}, 0),
            (std::vector<TokenId>{*q.fim_prefix, *q.fim_suffix, *q.fim_middle}));
}

}  // namespace
}  // namespace ember
