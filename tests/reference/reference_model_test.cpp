// The float64 reference transformer on the real stories260K model: its logits against llama2.c's
// run.c at every position, its greedy text against llama.cpp's for the F32/F16/Q8_0/Q4_0 files.
#include "reference/reference_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "support/stories_data.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using Logits = std::vector<std::vector<double>>;

// ---- stories260K against llama2.c and llama.cpp ----

using test::kStoriesDir;

// The text of `tokens` as llama.cpp's llama-simple prints it: SentencePiece pieces with ▁ as a
// space and <0xNN> as that byte, control tokens (<s>) verbatim.
std::string detokenize(const GgufFile& file, const std::vector<int32_t>& tokens) {
  const auto pieces = file.get_strings("tokenizer.ggml.tokens");
  std::string text;
  for (int32_t id : tokens) {
    const std::string_view piece = pieces[static_cast<size_t>(id)];
    if (piece.size() == 6 && piece.starts_with("<0x") && piece.ends_with(">")) {
      text += static_cast<char>(std::stoi(std::string(piece.substr(3, 2)), nullptr, 16));
      continue;
    }
    for (size_t i = 0; i < piece.size(); ++i) {
      if (piece.substr(i, 3) == "\xe2\x96\x81") {
        text += ' ';
        i += 2;
      } else {
        text += piece[i];
      }
    }
  }
  return text;
}

TEST(ReferenceModelStories, F32LogitsEqualRunCAtEveryPosition) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const test::StoriesRunC run_c = test::load_stories_run_c(data);
  ASSERT_EQ(run_c.inputs.size(), 52u);
  const GgufFile file = GgufFile::open((data / kStoriesDir / "stories260K.gguf").string());
  const ReferenceModel model = ReferenceModel::load(file);
  const ReferenceConfig& c = model.config();
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.n_vocab, 512);
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.n_layer, 5);
  EXPECT_EQ(c.n_head, 8);
  EXPECT_EQ(c.n_head_kv, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.n_ff, 172);
  EXPECT_EQ(c.n_rot, 8);
  EXPECT_EQ(c.n_ctx_train, 128);  // the converter's value; the model was trained with 512
  EXPECT_DOUBLE_EQ(c.rope_base, 10000.0);

  const Logits logits = model.forward(run_c.inputs);
  const double diff = reference_max_abs_diff(logits, run_c.logits);
  // The JSON has 6 significant digits (%g): logits over 10 are rounded to 1e-4, so part of the
  // difference is that rounding; what exceeds it is run.c's float32 arithmetic.
  double beyond_printing = 0;
  for (size_t t = 0; t < logits.size(); ++t) {
    for (size_t i = 0; i < logits[t].size(); ++i) {
      const double printed = run_c.logits[t][i];
      const double half_digit = printed == 0 ? 0 : 0.5 * std::pow(10.0, std::floor(std::log10(std::abs(printed))) - 5);
      beyond_printing = std::max(beyond_printing, std::abs(logits[t][i] - printed) - half_digit);
    }
  }
  std::printf("stories260K F32: max |logit - run.c| over %zu positions = %.3g (%.3g beyond run.c's printed digits)\n",
              logits.size(), diff, beyond_printing);
  EXPECT_LE(diff, 1e-4);
  EXPECT_LE(beyond_printing, 2e-5);
  // Each greedy token is the argmax of the previous position's logits.
  for (size_t i = 0; i < run_c.greedy.size(); ++i) {
    EXPECT_EQ(reference_argmax(logits[run_c.prompt.size() - 1 + i]), run_c.greedy[i]) << "greedy token " << i;
  }
  // Drafted with run.c's tokens, which the loop above already checked one by one: one forward pass.
  EXPECT_EQ(model.greedy(run_c.prompt, std::ssize(run_c.greedy), run_c.greedy), run_c.greedy);
}

// The GGUF keeps llama2.c's Q/K row order, for which "normal" rope (pairs 2i, 2i+1) is right:
// neox rope on the same weights is far off.
TEST(ReferenceModelStories, NeoxRopeDoesNotFitTheLlamaArch) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const test::StoriesRunC run_c = test::load_stories_run_c(data);
  const GgufFile file = GgufFile::open((data / kStoriesDir / "stories260K.gguf").string());
  ReferenceConfig config = reference_config_from_gguf(file);
  config.traits.rope = ReferenceTraits::Rope::kNeox;
  const double diff = reference_max_abs_diff(ReferenceModel::load(file, config).forward(run_c.inputs), run_c.logits);
  std::printf("stories260K F32 with neox rope: max |logit - run.c| = %.3g\n", diff);
  EXPECT_GT(diff, 0.1);
}

// F16, Q8_0 and Q4_0: the reference on the dequantized weights, against run.c's float32 logits and
// llama.cpp's greedy text of the same file.
TEST(ReferenceModelStories, QuantizedFilesAgainstRunCAndLlamaCpp) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const test::StoriesRunC run_c = test::load_stories_run_c(data);
  const auto texts = test::load_stories_llama_cpp_texts(data);
  ASSERT_EQ(texts.size(), 4u);
  // Largest |logit - run.c| allowed per file: about twice what was measured (F32 5.8e-5, F16 0.011,
  // Q8_0 0.27, Q4_0 7.5: its greedy text leaves run.c's after ~20 tokens, and these are run.c's tokens).
  const std::vector<std::pair<std::string, double>> files = {{"stories260K.gguf", 1e-4},
                                                             {"stories260K-F16.gguf", 0.025},
                                                             {"stories260K-Q8_0.gguf", 0.5},
                                                             {"stories260K-Q4_0.gguf", 15.0}};
  std::vector<int32_t> draft = run_c.greedy;  // the F32 continuation: a good guess for the others
  for (const auto& [name, tolerance] : files) {
    SCOPED_TRACE(name);
    const GgufFile file = GgufFile::open((data / kStoriesDir / name).string());
    const ReferenceModel model = ReferenceModel::load(file);
    const double diff = reference_max_abs_diff(model.forward(run_c.inputs), run_c.logits);
    EXPECT_LE(diff, tolerance);

    // Greedy until the text is as long as llama.cpp's.
    ASSERT_TRUE(texts.count(name));
    const std::string& expected = texts.at(name);
    std::vector<int32_t> generated;
    std::string text;
    while (text.size() < expected.size() && generated.size() < 200) {
      std::vector<int32_t> guess = generated;  // what is known, then the rest of the draft
      if (draft.size() > guess.size()) guess.insert(guess.end(), draft.begin() + std::ssize(guess), draft.end());
      generated = model.greedy(run_c.prompt, std::ssize(generated) + 8, guess);
      std::vector<int32_t> all = run_c.prompt;
      all.insert(all.end(), generated.begin(), generated.end());
      text = detokenize(file, all);
    }
    size_t agree = 0;
    while (agree < expected.size() && agree < text.size() && text[agree] == expected[agree]) ++agree;
    std::printf("%s: max |logit - run.c| = %.3g; greedy text equals llama.cpp's for %zu of %zu bytes (%zu tokens)\n",
                name.c_str(), diff, agree, expected.size(), generated.size());
    EXPECT_EQ(text.substr(0, expected.size()), expected);
    if (name == "stories260K.gguf") draft = generated;
  }
}

}  // namespace
}  // namespace ember
