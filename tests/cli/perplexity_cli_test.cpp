// End-to-end tests of `ember perplexity` on stories260K: its PPL against the float64 reference
// transformer run on the same chunks and windows (llama-perplexity's and Hugging Face's rules
// written out here again), the invariants between modes and flags, Ctrl-C, and bad input.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli_run.h"
#include "gguf/gguf_reader.h"
#include "reference/reference_model.h"
#include "support/test_data.h"
#include "tokenizer/tokenizer.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::ember;
using test::kStories;

// About 400 tokens: three chunks of 128.
const std::string kStory =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. One day, she saw a "
    "big red ball in the park. She ran to the ball and picked it up. It was soft and round. Lily was very happy.\n"
    "Lily had a friend named Tom. Tom was a boy who liked to run and jump. He saw Lily with the ball and said, \"Can "
    "I play with you?\" Lily smiled and said, \"Yes, let's play together!\" They threw the ball back and forth. They "
    "laughed and had a lot of fun.\n"
    "Then, a little dog came to the park. The dog was brown and had a long tail. The dog wanted to play too. It ran "
    "after the ball and barked. Lily and Tom were surprised, but they were not scared. They let the dog play with "
    "them.\n"
    "The sun was going down and the sky was orange. Lily's mom called her name. \"Lily, it is time to go home!\" "
    "Lily said goodbye to Tom and the dog. She gave the ball to Tom and said, \"You can keep it until tomorrow.\" Tom "
    "was very happy and said thank you.\n";

fs::path write_story(const fs::path& dir, const std::string& name, const std::string& text) {
  const fs::path path = dir / name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// ember perplexity --json with `args`; fails the test unless it exits 0 with JSON on stdout.
nlohmann::json perplexity_json(const fs::path& model, const fs::path& text, std::vector<std::string> args) {
  std::vector<std::string> cmd = {"perplexity", "-m", model.string(), "-f", text.string(), "--json"};
  cmd.insert(cmd.end(), args.begin(), args.end());
  const test::RunResult r = ember(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return nlohmann::json::object();
  return nlohmann::json::parse(r.out);
}

// The oracle: the float64 reference transformer's NLL sums over the tokens a mode scores.
struct Expected {
  double sum = 0, sum_sq = 0;
  int64_t count = 0;
  int64_t windows = 0;

  double mean() const { return sum / static_cast<double>(count); }
  double ppl() const { return std::exp(mean()); }
  double ppl_error() const {
    const double m = mean();
    return ppl() * std::sqrt((sum_sq / static_cast<double>(count) - m * m) / static_cast<double>(count - 1));
  }
  void add(const std::vector<double>& logits, int32_t token) {
    const double max = *std::max_element(logits.begin(), logits.end());
    double z = 0;
    for (double v : logits) z += std::exp(v - max);
    const double nll = std::log(z) + max - logits[static_cast<size_t>(token)];
    sum += nll;
    sum_sq += nll * nll;
    ++count;
  }
};

class Oracle {
 public:
  explicit Oracle(const fs::path& model_path) {
    const GgufFile file = GgufFile::open(model_path.string());
    model_ = std::make_unique<ReferenceModel>(ReferenceModel::load(file));
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_gguf(file));
  }

  std::vector<int32_t> tokens(const std::string& text, bool bos = true) const {
    return tokenizer_->encode(text, EncodeOptions{.add_special = bos});
  }
  int32_t bos() const { return *tokenizer_->vocab().special().bos; }

  // llama-perplexity: chunk i = tokens [i*ctx, (i+1)*ctx) with BOS first; logits at positions
  // ctx/2 .. ctx-2 predict the next token of the chunk.
  Expected chunks(const std::vector<int32_t>& tokens, int32_t ctx, bool bos) const {
    Expected e;
    for (size_t start = 0; start + static_cast<size_t>(ctx) <= tokens.size(); start += static_cast<size_t>(ctx)) {
      std::vector<int32_t> input(tokens.begin() + static_cast<long>(start),
                                 tokens.begin() + static_cast<long>(start) + ctx);
      if (bos) input[0] = this->bos();
      const std::vector<std::vector<double>> logits = model_->forward(input);
      for (int32_t j = ctx / 2; j < ctx - 1; ++j)
        e.add(logits[static_cast<size_t>(j)], input[static_cast<size_t>(j) + 1]);
      ++e.windows;
    }
    return e;
  }

  // The Hugging Face perplexity guide's loop: labels are the last trg_len tokens of each window,
  // shifted by one inside it.
  Expected strided(const std::vector<int32_t>& tokens, int32_t ctx, int32_t stride) const {
    Expected e;
    const auto n = static_cast<int64_t>(tokens.size());
    int64_t prev_end = 0;
    for (int64_t begin = 0; begin < n; begin += stride) {
      const int64_t end = std::min(begin + ctx, n);
      const int64_t trg_len = end - prev_end;
      const std::vector<int32_t> input(tokens.begin() + begin, tokens.begin() + end);
      const std::vector<std::vector<double>> logits = model_->forward(input);
      const auto len = static_cast<int64_t>(input.size());
      for (int64_t p = std::max<int64_t>(1, len - trg_len); p < len; ++p) {
        e.add(logits[static_cast<size_t>(p - 1)], input[static_cast<size_t>(p)]);
      }
      ++e.windows;
      prev_end = end;
      if (end == n) break;
    }
    return e;
  }

 private:
  std::unique_ptr<ReferenceModel> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

void expect_matches(const nlohmann::json& j, const Expected& e) {
  ASSERT_TRUE(j.contains("ppl")) << j.dump();
  EXPECT_EQ(j["tokens_scored"].get<int64_t>(), e.count);
  EXPECT_EQ(j["chunks"].get<int64_t>(), e.windows);
  // ember keeps K and V in F16 (as llama.cpp does by default): about 1e-4 from the float64 reference.
  EXPECT_NEAR(j["ppl"].get<double>(), e.ppl(), 1e-3 * e.ppl());
  EXPECT_NEAR(j["nll"].get<double>(), e.mean(), 1e-3);
  EXPECT_NEAR(j["ppl_error"].get<double>(), e.ppl_error(), 1e-2 * e.ppl_error());
  EXPECT_NEAR(j["ppl"].get<double>(), std::exp(j["nll"].get<double>()), 1e-9 * e.ppl());
}

TEST(PerplexityCli, ChunksMatchTheReferenceTransformer) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("perplexity_cli");
  const fs::path model = data / kStories;
  const fs::path text = write_story(dir, "story.txt", kStory);
  const Oracle oracle(model);
  // The command drops the file's trailing newline.
  const std::vector<int32_t> tokens = oracle.tokens(kStory.substr(0, kStory.size() - 1));
  const Expected e = oracle.chunks(tokens, 128, true);
  ASSERT_EQ(e.windows, 3);
  EXPECT_EQ(e.count, e.windows * 63);
  const nlohmann::json j = perplexity_json(model, text, {"--ctx", "128"});
  expect_matches(j, e);
  EXPECT_EQ(j["tokens"].get<int64_t>(), std::ssize(tokens));
  EXPECT_EQ(j["tokens_evaluated"].get<int64_t>(), e.windows * 128);
  EXPECT_EQ(j["ctx"], 128);
  EXPECT_EQ(j["stride"], 0);
  EXPECT_EQ(j["interrupted"], false);
  EXPECT_GT(j["seconds"].get<double>(), 0.0);

  // Odd context, batches of 7 rows (not dividing it), one thread.
  expect_matches(perplexity_json(model, text, {"--ctx", "101", "--batch", "7", "-t", "1"}),
                 oracle.chunks(tokens, 101, true));
  // --no-bos: no BOS in the text nor in the chunks.
  expect_matches(perplexity_json(model, text, {"--ctx", "128", "--no-bos"}),
                 oracle.chunks(oracle.tokens(kStory.substr(0, kStory.size() - 1), false), 128, false));
}

TEST(PerplexityCli, StridedWindowsMatchTheReferenceTransformer) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("perplexity_cli");
  const fs::path model = data / kStories;
  const fs::path text = write_story(dir, "story.txt", kStory);
  const Oracle oracle(model);
  const std::vector<int32_t> tokens = oracle.tokens(kStory.substr(0, kStory.size() - 1));
  const auto n = static_cast<int64_t>(tokens.size());
  for (int32_t stride : {100, 128}) {
    SCOPED_TRACE(testing::Message() << "stride " << stride);
    const Expected e = oracle.strided(tokens, 128, stride);
    // Overlapping windows score every token but the first; disjoint ones not their first tokens.
    EXPECT_EQ(e.count, stride < 128 ? n - 1 : n - e.windows);
    const nlohmann::json j = perplexity_json(model, text, {"--ctx", "128", "--stride", std::to_string(stride)});
    expect_matches(j, e);
    EXPECT_EQ(j["stride"], stride);
  }
}

TEST(PerplexityCli, InvariantsBetweenFlags) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("perplexity_cli");
  const fs::path model = data / kStories;
  const fs::path text = write_story(dir, "story.txt", kStory);
  // The batch size and thread count change the kernels (GEMM or GEMV rows), not the result.
  const nlohmann::json full = perplexity_json(model, text, {"--ctx", "128"});
  const nlohmann::json rows = perplexity_json(model, text, {"--ctx", "128", "--batch", "1", "-t", "2"});
  EXPECT_NEAR(rows["ppl"].get<double>(), full["ppl"].get<double>(), 1e-4 * full["ppl"].get<double>());
  EXPECT_EQ(rows["tokens_scored"], full["tokens_scored"]);
  // A batch larger than the context acts as the context.
  EXPECT_EQ(perplexity_json(model, text, {"--ctx", "128", "--batch", "1000"})["ppl"], full["ppl"]);
  // --chunks takes the first chunks.
  const nlohmann::json two = perplexity_json(model, text, {"--ctx", "128", "--chunks", "2"});
  EXPECT_EQ(two["chunks"], 2);
  EXPECT_EQ(two["tokens_scored"], 2 * 63);
  EXPECT_EQ(two["tokens_evaluated"], 256);
  EXPECT_EQ(perplexity_json(model, text, {"--ctx", "128", "--stride", "32", "--chunks", "3"})["chunks"], 3);

  // A text inside one window: every stride runs that one window, scoring all tokens after BOS.
  const fs::path short_text = write_story(dir, "short.txt", "Lily saw a big dog. The dog was happy.");
  const nlohmann::json s1 = perplexity_json(model, short_text, {"--ctx", "128", "--stride", "1"});
  const nlohmann::json s128 = perplexity_json(model, short_text, {"--ctx", "128", "--stride", "128"});
  EXPECT_EQ(s1["chunks"], 1);
  EXPECT_EQ(s1["tokens_scored"].get<int64_t>(), s1["tokens"].get<int64_t>() - 1);
  EXPECT_EQ(s1["ppl"], s128["ppl"]);
  EXPECT_EQ(s1["tokens_scored"], s128["tokens_scored"]);
}

// --kv-type: what the cache keeps moves the score a little, never much. The bundled model's heads
// hold 64 values (Q8_0 applies); measured there: f32 294.06, f16 294.06, q8_0 293.67.
TEST(PerplexityCli, KvTypeMovesTheScoreSlightly) {
  const fs::path dir = test::temp_dir("perplexity_cli_kv");
  const fs::path model = fs::path(EMBER_SOURCE_DIR) / "models" / "ember-tiny.gguf";
  const fs::path text = write_story(dir, "story.txt", kStory + kStory);
  const double f32 = perplexity_json(model, text, {"--ctx", "128", "--kv-type", "f32"})["ppl"].get<double>();
  const double f16 = perplexity_json(model, text, {"--ctx", "128"})["ppl"].get<double>();
  const double q8 = perplexity_json(model, text, {"--ctx", "128", "--kv-type", "q8_0"})["ppl"].get<double>();
  std::printf("ember-tiny ppl: f32 KV %.4f, f16 %.4f, q8_0 %.4f\n", f32, f16, q8);
  EXPECT_NEAR(f16, f32, 1e-3 * f32);
  EXPECT_NEAR(q8, f32, 1e-2 * f32);
  EXPECT_NE(q8, f16);  // the cache really is another type
}

TEST(PerplexityCli, TextOutput) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("perplexity_cli");
  const fs::path text = write_story(dir, "story.txt", kStory);
  const test::RunResult r =
      ember({"perplexity", "-m", (data / kStories).string(), "-f", text.string(), "--ctx", "128", "--chunks", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("PPL = ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(" +/- "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("126 tokens scored in 2 chunks of 128 tokens"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("256 tokens evaluated in "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" tokens/s\n"), std::string::npos) << r.out;
  // Piped stderr: one line with the time of the first chunk, no progress bar.
  EXPECT_NE(r.err.find("ember: perplexity: "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
}

TEST(PerplexityCli, CtrlCReportsTheWindowsDone) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("perplexity_cli_sigint");
  std::string long_text;
  for (int i = 0; i < 16; ++i) long_text += kStory;
  const fs::path text = write_story(dir, "long.txt", long_text);
  // Thousands of windows of 128 tokens: far more than the test waits for.
  test::PipedEmber p({"perplexity", "-m", (data / kStories).string(), "-f", text.string(), "--ctx", "128", "--stride",
                      "1", "--json", "-t", "1"},
                     dir / "err");
  ASSERT_TRUE(p.started());
  // The ETA line comes after the first window, with the Ctrl-C handler in place.
  std::string err;
  for (int i = 0; i < 3000 && err.find("ember: perplexity: ") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    err = test::read_file(dir / "err");
  }
  ASSERT_NE(err.find("ember: perplexity: "), std::string::npos) << err;
  p.signal(SIGINT);
  const std::string out = p.read_rest();
  const int status = p.wait_status();
  err = test::read_file(dir / "err");
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status) << "\n" << err;
  EXPECT_EQ(WEXITSTATUS(status), 0) << err;
  const nlohmann::json j = nlohmann::json::parse(out);
  EXPECT_EQ(j["interrupted"], true);
  EXPECT_GE(j["chunks"].get<int64_t>(), 1);
  EXPECT_LT(j["chunks"].get<int64_t>(), j["chunks_planned"].get<int64_t>());
  EXPECT_GT(j["ppl"].get<double>(), 1.0);
  EXPECT_NE(err.find("ember: interrupted (Ctrl-C)"), std::string::npos) << err;
}

// Runs ember and expects `code`, nothing on stdout and one line on stderr containing `needle`.
void expect_failure(const std::vector<std::string>& args, int code, const std::string& needle) {
  SCOPED_TRACE(testing::Message() << "args: " << testing::PrintToString(args));
  const test::RunResult r = ember(args);
  EXPECT_EQ(r.exit_code, code) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("ember: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

TEST(PerplexityCli, BadInputFailsWithOneLine) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("perplexity_cli");
  const std::string model = (data / kStories).string();
  const std::string text = write_story(dir, "story.txt", kStory).string();
  const std::string empty = write_story(dir, "empty.txt", "\n").string();
  const std::string short_text = write_story(dir, "short.txt", "Lily saw a dog.").string();
  const std::string one_token = write_story(dir, "one.txt", "a").string();
  const std::string pp = "perplexity";
  // Bad command lines: exit 2.
  expect_failure({pp, "-m", model}, 2, "--file");
  expect_failure({pp, "-f", text}, 2, "--model");
  expect_failure({pp, "-m", model, "-f", text, "--ctx", "1"}, 2, "--ctx");
  expect_failure({pp, "-m", model, "-f", text, "--ctx", "2"}, 2, "--ctx");
  expect_failure({pp, "-m", model, "-f", text, "--ctx", "128", "--stride", "0"}, 2, "--stride");
  expect_failure({pp, "-m", model, "-f", text, "--ctx", "128", "--stride", "129"}, 2, "--stride");
  expect_failure({pp, "-m", model, "-f", text, "--batch", "0"}, 2, "--batch");
  expect_failure({pp, "-m", model, "-f", text, "--chunks", "0"}, 2, "--chunks");
  expect_failure({pp, "-m", model, "-f", text, "-t", "-1"}, 2, "--threads");
  // Failures: exit 1, naming the file or the numbers.
  // The default --ctx (256) shrinks to a smaller model's context; a given one does not.
  const test::RunResult fitted = ember({pp, "-m", model, "-f", text});
  EXPECT_EQ(fitted.exit_code, 0) << fitted.err;
  EXPECT_NE(fitted.out.find("chunks of 128 tokens"), std::string::npos) << fitted.out;
  expect_failure({pp, "-m", model, "-f", text, "--ctx", "129"}, 1, "--ctx 129 exceeds the 128-token context");
  expect_failure({pp, "-m", model, "-f", (data / "no-such-file.txt").string(), "--ctx", "128"}, 1, "cannot open");
  expect_failure({pp, "-m", model, "-f", data.string(), "--ctx", "128"}, 1, "cannot read");
  expect_failure({pp, "-m", model, "-f", empty, "--ctx", "128"}, 1, "is empty");
  expect_failure({pp, "-m", model, "-f", short_text, "--ctx", "128"}, 1, "less than one chunk of --ctx 128");
  expect_failure({pp, "-m", model, "-f", one_token, "--ctx", "128", "--stride", "8", "--no-bos"}, 1,
                 "nothing to score");
  expect_failure({pp, "-m", (data / "no-such-model.gguf").string(), "-f", text, "--ctx", "128"}, 1,
                 "no-such-model.gguf");
}

}  // namespace
}  // namespace ember
