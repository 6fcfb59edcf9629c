// BpeTokenizer against llama.cpp's test vectors for every byte-level BPE vocabulary in the shared
// data, plus the pre-tokenizer's coverage of the text, invalid UTF-8 and long inputs.
#include "tokenizer/bpe_tokenizer.h"

#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <sstream>

#include "ember/error.h"
#include "tokenizer_vectors.h"

namespace ember {
namespace {

std::string describe(const std::vector<TokenId>& ids) {
  std::ostringstream s;
  for (TokenId id : ids) s << ' ' << id;
  return s.str();
}

class BpeVectors : public testing::TestWithParam<const char*> {};

TEST_P(BpeVectors, MatchTheReference) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::filesystem::path path = data / "vocab" / (std::string("ggml-vocab-") + GetParam() + ".gguf");
  const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile::open(path.string()));
  const std::vector<tokenizer_test::Vector> vectors = tokenizer_test::read_vectors(path);
  ASSERT_GT(vectors.size(), 20u);
  // As llama.cpp's test runs them: no BOS, special tokens not parsed (added words still match).
  const EncodeOptions options{.add_special = false, .parse_special = false};
  for (const tokenizer_test::Vector& v : vectors) {
    EXPECT_EQ(describe(tokenizer.encode(v.input, options)), describe(v.expected)) << "input: \"" << v.input << "\"";
    EXPECT_EQ(tokenizer.decode(v.expected), v.input) << "round trip of \"" << v.input << "\"";
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, BpeVectors,
                         testing::Values("llama-bpe", "qwen2", "gpt-2", "falcon", "mpt", "starcoder", "refact",
                                         "deepseek-llm", "deepseek-coder"),
                         [](const testing::TestParamInfo<const char*>& param) {
                           std::string name = param.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace ember
