// Vocab::from_gguf on every real vocabulary in ../shared/data/vocab, and on hand-made files with
// each kind of broken tokenizer metadata (errors must name the key).
#include "tokenizer/vocab.h"

#include <gtest/gtest.h>

#include <map>

#include "ember/error.h"
#include "gguf/gguf_writer.h"
#include "support/test_data.h"

namespace ember {
namespace {

TEST(Vocab, LoadsEveryRealVocabulary) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::map<std::string, TokenizerModel> expected = {
      {"llama-spm", TokenizerModel::kSpm},
      {"phi-3", TokenizerModel::kSpm},
      {"baichuan", TokenizerModel::kSpm},
      {"llama-bpe", TokenizerModel::kBpe},
      {"qwen2", TokenizerModel::kBpe},
      {"gpt-2", TokenizerModel::kBpe},
      {"gpt-neox", TokenizerModel::kBpe},
      {"falcon", TokenizerModel::kBpe},
      {"mpt", TokenizerModel::kBpe},
      {"starcoder", TokenizerModel::kBpe},
      {"refact", TokenizerModel::kBpe},
      {"deepseek-llm", TokenizerModel::kBpe},
      {"deepseek-coder", TokenizerModel::kBpe},
      {"bert-bge", TokenizerModel::kWpm},
  };
  for (const auto& [name, model] : expected) {
    SCOPED_TRACE(name);
    const GgufFile file = GgufFile::open((data / "vocab" / ("ggml-vocab-" + name + ".gguf")).string());
    const Vocab vocab = Vocab::from_gguf(file);
    EXPECT_EQ(vocab.model(), model);
    ASSERT_GT(vocab.size(), 1000);
    // Every token's text finds a token with that text (the first, where a text repeats).
    for (TokenId id = 0; id < vocab.size(); ++id) {
      const std::optional<TokenId> found = vocab.find(vocab.text(id));
      ASSERT_TRUE(found.has_value()) << id;
      ASSERT_EQ(vocab.text(*found), vocab.text(id));
      ASSERT_LE(*found, id);
    }
    if (model == TokenizerModel::kBpe) {
      ASSERT_FALSE(vocab.merges().empty());
      // Each merge joins two tokens into a token (what BPE relies on), checked on the first ones.
      for (size_t rank = 0; rank < 100 && rank < vocab.merges().size(); ++rank) {
        const auto& [left, right] = vocab.merges()[rank];
        EXPECT_TRUE(vocab.find(left) && vocab.find(right) && vocab.find(left + right)) << left << " " << right;
      }
    }
    for (TokenId id : vocab.end_of_generation()) EXPECT_TRUE(vocab.is_end_of_generation(id));
  }
}

TEST(Vocab, Llama3AndLlama2SpecialTokens) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const Vocab spm = Vocab::from_gguf(GgufFile::open((data / "vocab" / "ggml-vocab-llama-spm.gguf").string()));
  EXPECT_EQ(spm.size(), 32000);
  EXPECT_EQ(spm.special().bos, 1);
  EXPECT_EQ(spm.special().eos, 2);
  EXPECT_EQ(spm.special().unk, 0);
  EXPECT_EQ(spm.text(1), "<s>");
  EXPECT_TRUE(spm.add_bos());
  EXPECT_EQ(spm.type(3), TokenType::kByte);  // <0x00>
  EXPECT_EQ(spm.end_of_generation(), std::vector<TokenId>{2});

  const Vocab bpe = Vocab::from_gguf(GgufFile::open((data / "vocab" / "ggml-vocab-llama-bpe.gguf").string()));
  EXPECT_EQ(bpe.pre(), "llama-bpe");
  const std::optional<TokenId> eot = bpe.find("<|eot_id|>");
  ASSERT_TRUE(eot.has_value());
  EXPECT_TRUE(bpe.is_end_of_generation(*eot));
  EXPECT_FALSE(bpe.is_end_of_generation(*bpe.find("Hello")));
}

// A small valid vocabulary, then one key broken at a time.
GgufWriter base_writer(std::string_view model = "gpt2", std::string merge = "a b") {
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", model);
  const std::vector<std::string> tokens = {"a", "b", "ab", "<|im_end|>"};
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  const std::vector<int32_t> types = {1, 1, 1, 3};
  w.add_array<int32_t>("tokenizer.ggml.token_type", types);
  const std::vector<std::string> merges = {merge};
  w.add_string_array("tokenizer.ggml.merges", merges);
  return w;
}

Vocab load_vocab(const GgufWriter& w) { return Vocab::from_gguf(GgufFile::parse(w.write_to_memory(), "test.gguf")); }

void expect_error_naming(const GgufWriter& w, std::string_view key) {
  try {
    load_vocab(w);
    ADD_FAILURE() << "no error for " << key;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
  }
}

TEST(Vocab, HandMadeVocabularyAndItsEndOfGeneration) {
  GgufWriter w = base_writer();
  w.add<uint32_t>("tokenizer.ggml.eos_token_id", 1);
  const Vocab vocab = load_vocab(w);
  ASSERT_EQ(vocab.merges().size(), 1u);
  EXPECT_EQ(vocab.merges()[0], (std::pair<std::string, std::string>("a", "b")));
  EXPECT_EQ(vocab.end_of_generation(), (std::vector<TokenId>{1, 3}));  // eos and the control <|im_end|>
  EXPECT_FALSE(vocab.add_bos());
  EXPECT_EQ(vocab.pre(), "default");
}

TEST(Vocab, DefaultFlagsNeedTheirTokensExplicitOnesFail) {
  // A BERT file without a separator id: the default [SEP] is simply not added.
  GgufWriter bert = base_writer("bert");
  const Vocab vocab = load_vocab(bert);
  EXPECT_FALSE(vocab.add_sep());
  EXPECT_FALSE(vocab.add_bos());
  // Asking for it explicitly is an error naming both keys.
  bert.add<bool>("tokenizer.ggml.add_sep_token", true);
  expect_error_naming(bert, "tokenizer.ggml.add_sep_token");
  expect_error_naming(bert, "tokenizer.ggml.seperator_token_id");
  // BERT's CLS stands in for BOS.
  GgufWriter with_cls = base_writer("bert");
  with_cls.add<uint32_t>("tokenizer.ggml.cls_token_id", 2);
  const Vocab cls = load_vocab(with_cls);
  EXPECT_EQ(cls.special().bos, 2);
  EXPECT_TRUE(cls.add_bos());
}

TEST(Vocab, AMovedFromVocabulary) {
  Vocab vocab = load_vocab(base_writer());
  const Vocab moved = std::move(vocab);
  EXPECT_EQ(moved.find("ab"), 2);
  EXPECT_FALSE(vocab.find("ab"));  // NOLINT(bugprone-use-after-move): defined, empty
}

TEST(Vocab, BrokenMetadataIsAnErrorNamingTheKey) {
  {
    GgufWriter w;
    w.add_string("tokenizer.ggml.model", "gpt2");
    expect_error_naming(w, "tokenizer.ggml.tokens");
  }
  expect_error_naming(base_writer("sentencepiece-v9"), "tokenizer.ggml.model");
  {
    GgufWriter w = base_writer();
    const std::vector<float> scores = {0.0f, 1.0f};
    w.add_array<float>("tokenizer.ggml.scores", scores);
    expect_error_naming(w, "tokenizer.ggml.scores");
  }
  {
    GgufWriter w = base_writer();
    w.add<uint32_t>("tokenizer.ggml.bos_token_id", 4);
    expect_error_naming(w, "tokenizer.ggml.bos_token_id");
  }
  {
    GgufWriter w = base_writer();
    w.add<bool>("tokenizer.ggml.add_bos_token", true);
    expect_error_naming(w, "tokenizer.ggml.add_bos_token");
  }
  {
    GgufWriter w;
    w.add_string("tokenizer.ggml.model", "gpt2");
    const std::vector<std::string> tokens = {"a", "b"};
    w.add_string_array("tokenizer.ggml.tokens", tokens);
    expect_error_naming(w, "tokenizer.ggml.merges");
  }
  expect_error_naming(base_writer("gpt2", "ab"), "tokenizer.ggml.merges[0]");  // not "left right"
  {
    GgufWriter w;
    w.add_string("tokenizer.ggml.model", "llama");
    const std::vector<std::string> tokens = {"a", "b"};
    w.add_string_array("tokenizer.ggml.tokens", tokens);
    const std::vector<int32_t> types = {1, 9};
    w.add_array<int32_t>("tokenizer.ggml.token_type", types);
    w.add<uint32_t>("tokenizer.ggml.bos_token_id", 0);
    expect_error_naming(w, "tokenizer.ggml.token_type");
  }
}

}  // namespace
}  // namespace ember
