// The models shipped in models/ (ember-tiny, ember-tiny-draft) against what PyTorch computed from
// the same files at export time (models/<name>.eval.json, written by tools/train-tiny/evaluate.py):
// the held-out text's tokens, its perplexity (the issue asks 1 %; ember is held to 0.1 %), the
// greedy continuation of the fixed prompt, and Q8_0 (made here with `ember quantize`) within 1 %
// of F16's perplexity.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli_run.h"
#include "support/sha256.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;

const fs::path kModels = fs::path(EMBER_SOURCE_DIR) / "models";
const fs::path kHeldOut = kModels / "ember-tiny-heldout.txt";

nlohmann::json load_json(const fs::path& path) {
  const std::string text = test::read_file(path);
  EXPECT_FALSE(text.empty()) << "cannot read " << path;
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

// `ember perplexity --json` of a model on the held-out text at PyTorch's context (every chunk, or
// the first `chunks`).
nlohmann::json ember_perplexity(const fs::path& model, int ctx, int chunks = 0) {
  std::vector<std::string> args = {"perplexity",      "-m",    model.string(),      "-f",
                                   kHeldOut.string(), "--ctx", std::to_string(ctx), "--json"};
  if (chunks > 0) args.insert(args.end(), {"--chunks", std::to_string(chunks)});
  const test::RunResult r = test::ember(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
}

class BundledModel : public testing::TestWithParam<std::string> {};

TEST_P(BundledModel, HeldOutPerplexityMatchesPyTorch) {
  const nlohmann::json expected = load_json(kModels / (GetParam() + ".eval.json"))["held_out_perplexity"];
  ASSERT_TRUE(expected.is_object()) << "no held_out_perplexity in " << GetParam() << ".eval.json";
  const nlohmann::json got = ember_perplexity(kModels / (GetParam() + ".gguf"), expected["ctx"].get<int>());
  ASSERT_TRUE(got.is_object());
  // Same chunks and scoring over the same number of tokens (their ids: TokensMatchSentencePiece).
  EXPECT_EQ(got["tokens"], expected["tokens"]);
  EXPECT_EQ(got["chunks"], expected["chunks"]);
  EXPECT_EQ(got["tokens_scored"], expected["tokens_scored"]);
  const double ppl = got["ppl"].get<double>();
  const double reference = expected["ppl"].get<double>();
  EXPECT_NEAR(ppl, reference, 0.001 * reference) << "ember " << ppl << ", PyTorch " << reference;
  // A trained model: far below the vocabulary size a guessing model would score.
  EXPECT_LT(ppl, 100.0);
}

// ember's SentencePiece gives the Python library's ids for the held-out text as `ember perplexity`
// reads it (one trailing newline dropped), BOS first: compared by a sha256 of the ids as
// `ember tokenize --ids` prints them.
TEST_P(BundledModel, TokensMatchSentencePiece) {
  const nlohmann::json expected = load_json(kModels / (GetParam() + ".eval.json"))["held_out_perplexity"];
  ASSERT_TRUE(expected.is_object());
  std::string text = test::read_file(kHeldOut);
  ASSERT_FALSE(text.empty());
  if (text.back() == '\n') text.pop_back();
  const fs::path dir = test::temp_dir("bundled_tokens_" + GetParam());
  const fs::path trimmed = dir / "heldout.txt";
  std::ofstream(trimmed, std::ios::binary) << text;
  const test::RunResult r =
      test::ember({"tokenize", "-m", (kModels / (GetParam() + ".gguf")).string(), "--ids", "-f", trimmed.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string ids = r.out;
  while (!ids.empty() && ids.back() == '\n') ids.pop_back();
  EXPECT_EQ(test::sha256_hex(std::as_bytes(std::span(ids.data(), ids.size()))),
            expected["token_ids_sha256"].get<std::string>());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), ' ') + 1, expected["tokens"].get<int64_t>());
  fs::remove_all(dir);
}

TEST_P(BundledModel, GreedyContinuationMatchesPyTorch) {
  const nlohmann::json greedy = load_json(kModels / (GetParam() + ".eval.json"))["greedy"];
  ASSERT_TRUE(greedy.is_object()) << "no greedy in " << GetParam() << ".eval.json";
  const test::RunResult r =
      test::ember({"run", "-m", (kModels / (GetParam() + ".gguf")).string(), "-p", greedy["prompt"].get<std::string>(),
                   "-n", std::to_string(greedy["tokens"].get<int>()), "--temp", "0", "--ignore-eos"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, greedy["text"].get<std::string>() + "\n");
}

INSTANTIATE_TEST_SUITE_P(Models, BundledModel, testing::Values("ember-tiny", "ember-tiny-draft"),
                         [](const testing::TestParamInfo<std::string>& param) {
                           return param.param == "ember-tiny" ? std::string("Tiny") : std::string("Draft");
                         });

TEST(BundledModel, Q8_0PerplexityWithinOnePercentOfF16) {
  const fs::path dir = test::temp_dir("bundled_q8_0");
  const fs::path q8 = dir / "ember-tiny-q8_0.gguf";
  const test::RunResult quantized =
      test::ember({"quantize", (kModels / "ember-tiny.gguf").string(), q8.string(), "Q8_0"});
  ASSERT_EQ(quantized.exit_code, 0) << quantized.err;
  // 40 of the 82 chunks: 5080 tokens scored, enough to tell a 1 % difference.
  const double f16 = ember_perplexity(kModels / "ember-tiny.gguf", 256, 40)["ppl"].get<double>();
  const double q8_0 = ember_perplexity(q8, 256, 40)["ppl"].get<double>();
  EXPECT_LT(std::fabs(q8_0 - f16), 0.01 * f16) << "F16 " << f16 << ", Q8_0 " << q8_0;
  EXPECT_NE(q8_0, f16) << "the Q8_0 file should not compute exactly what F16 does";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ember
