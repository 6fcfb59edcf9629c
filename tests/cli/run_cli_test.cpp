// End-to-end tests of `ember run` on the stories260K model: llama.cpp's greedy text, reproducible
// seeds, the stats panel, the stop conditions, Ctrl-C (once: stop and print the stats; twice:
// quit), and bad input failing with one line.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <thread>

#include "cli/cli_run.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_split.h"
#include "gguf/gguf_writer.h"
#include "support/test_data.h"
#include "tokenizer/tokenizer.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::ember;
using test::kStories;
using test::kStoriesPrompt;
using test::lines_of;

// llama.cpp's greedy text for the prompt (llama-simple, ../shared/data/models/stories260K/reference).
const std::string kGreedyText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

// The words of the piped stats line for `label` ("  prefill     5  tokens ..."), the label first;
// empty when there is no such line.
std::vector<std::string> stats_row(const std::string& err, const std::string& label) {
  for (const std::string& line : lines_of(err)) {
    if (line.rfind("  " + label + " ", 0) != 0) continue;
    std::vector<std::string> words;
    std::istringstream in(line.substr(2 + label.size()));
    for (std::string w; in >> w;) words.push_back(w);
    words.insert(words.begin(), label);
    return words;
  }
  return {};
}

std::string stats_value(const std::string& err, const std::string& label) {
  for (const std::string& line : lines_of(err)) {
    if (line.rfind("  " + label + " ", 0) == 0) {
      const size_t at = line.find_first_not_of(' ', 2 + label.size());
      return at == std::string::npos ? "" : line.substr(at);
    }
  }
  return "";
}

test::RunResult run_model(const fs::path& model, std::vector<std::string> args) {
  args.insert(args.begin(), {"run", "-m", model.string()});
  return ember(args);
}

TEST(RunCli, GreedyTextIsLlamaCppsOnAnyThreadCount) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto r = run_model(data / kStories, {"--temp", "0", "-p", kStoriesPrompt, "-n", "40"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(kGreedyText, 0), 0u) << r.out;
  EXPECT_EQ(r.out.back(), '\n');
  const auto one_thread = run_model(data / kStories, {"--temp", "0", "-p", kStoriesPrompt, "-n", "40", "-t", "1"});
  EXPECT_EQ(one_thread.out, r.out);
  // The quantized files take the same path (llama.cpp's Q8_0 text starts the same way).
  const auto q8 =
      run_model(data / "models/stories260K/stories260K-Q8_0.gguf", {"--temp", "0", "-p", kStoriesPrompt, "-n", "40"});
  ASSERT_EQ(q8.exit_code, 0) << q8.err;
  EXPECT_EQ(q8.out.rfind("Once upon a time, there was a little girl named Lily.", 0), 0u) << q8.out;
}

TEST(RunCli, SameSeedGivesTheSameTextAndTheRandomSeedIsShown) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::vector<std::string> args = {"-p", kStoriesPrompt, "-n", "60", "--seed", "42"};
  const auto a = run_model(data / kStories, args);
  const auto b = run_model(data / kStories, args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(stats_value(a.err, "sampler").find("seed 42"), std::string::npos) << a.err;
  const auto other = run_model(data / kStories, {"-p", kStoriesPrompt, "-n", "60", "--seed", "43"});
  EXPECT_NE(a.out, other.out);  // 60 sampled tokens: equal only by a tiny chance

  // Without --seed: a random seed, printed so that the run can be repeated.
  const auto random = run_model(data / kStories, {"-p", kStoriesPrompt, "-n", "60"});
  ASSERT_EQ(random.exit_code, 0) << random.err;
  const std::string sampler = stats_value(random.err, "sampler");
  const size_t at = sampler.find("seed ");
  ASSERT_NE(at, std::string::npos) << random.err;
  const auto again = run_model(data / kStories, {"-p", kStoriesPrompt, "-n", "60", "--seed", sampler.substr(at + 5)});
  EXPECT_EQ(again.out, random.out);
}

TEST(RunCli, PipedStatsArePlainLinesWithEveryField) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto r = run_model(data / kStories, {"--temp", "0", "-p", kStoriesPrompt, "-n", "40"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = lines_of(r.err);
  ASSERT_EQ(lines.size(), 12u) << r.err;
  EXPECT_EQ(lines[0], "ember run stats:");
  EXPECT_EQ(r.err.find("\xE2\x94"), std::string::npos) << "box drawing on a pipe";
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << "escape sequences on a pipe";

  EXPECT_EQ(stats_value(r.err, "model"), "llama, llama, F32, 292.80K params");
  EXPECT_NE(stats_value(r.err, "backend").find(" threads"), std::string::npos) << r.err;
  // BOS + 4 prompt tokens in one step; 40 tokens sampled, the first from the prompt's logits.
  const auto prefill = stats_row(r.err, "prefill");
  ASSERT_EQ(prefill.size(), 7u) << r.err;
  EXPECT_EQ(prefill[1], "5");
  EXPECT_EQ(prefill[4], "ms");
  EXPECT_EQ(prefill[6], "tok/s");
  const auto decode = stats_row(r.err, "decode");
  ASSERT_EQ(decode.size(), 7u) << r.err;
  EXPECT_EQ(decode[1], "39");
  EXPECT_EQ(decode[6], "tok/s");
  const auto sampling = stats_row(r.err, "sampling");
  ASSERT_EQ(sampling.size(), 7u) << r.err;
  EXPECT_EQ(sampling[1], "40");
  EXPECT_EQ(sampling[6], "µs/token");
  const auto total = stats_row(r.err, "total");
  ASSERT_EQ(total.size(), 7u) << r.err;
  EXPECT_EQ(total[1], "40");
  EXPECT_EQ(total[2], "generated");
  EXPECT_GE(std::stod(total[3]), std::stod(decode[3]));
  EXPECT_NE(stats_value(r.err, "load").find(" ms"), std::string::npos);
  EXPECT_EQ(stats_value(r.err, "weights"), "1.12 MiB mapped, 0 B repacked");  // F32: nothing to repack
  EXPECT_EQ(stats_value(r.err, "KV cache"), "80.00 KiB (128 tokens, f16)");   // the model's 128-token context
  EXPECT_EQ(stats_value(r.err, "sampler"), "greedy (--temp 0)");
  EXPECT_EQ(stats_value(r.err, "stopped"), "token limit (-n 40)");
}

TEST(RunCli, StopsWhenTheContextIsFull) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  // 5 prompt tokens in a 16-token context: 11 more fit, and the 12th is printed without a slot.
  const auto r = run_model(data / kStories, {"--temp", "0", "-p", kStoriesPrompt, "-n", "-1", "-c", "16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(stats_value(r.err, "stopped"), "context full (16 tokens, --ctx-size)");
  EXPECT_EQ(stats_row(r.err, "total").at(1), "12");
  EXPECT_EQ(stats_row(r.err, "decode").at(1), "11");
  EXPECT_EQ(r.out.rfind("Once upon a time, there was a little girl", 0), 0u) << r.out;
  // -n 0 runs the prompt only.
  const auto none = run_model(data / kStories, {"--temp", "0", "-p", kStoriesPrompt, "-n", "0"});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out, std::string(kStoriesPrompt) + "\n");
  EXPECT_EQ(stats_row(none.err, "sampling").at(1), "0");
}

// A copy of stories260K whose end-of-sequence token is `eos_text`: greedy generation stops there.
fs::path stories_with_eos(const fs::path& data, const std::string& eos_text) {
  const GgufFile in = GgufFile::open((data / kStories).string());
  const Tokenizer tokenizer = Tokenizer::from_gguf(in);
  const std::optional<TokenId> eos = tokenizer.vocab().find(eos_text);
  EXPECT_TRUE(eos.has_value()) << eos_text;
  GgufWriter w;
  for (const GgufKeyValue& kv : in.metadata()) {
    if (kv.key != "tokenizer.ggml.eos_token_id") w.add_value(kv.key, kv.value);
  }
  w.add<uint32_t>("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(eos.value_or(2)));
  for (const GgufTensorInfo& t : in.tensors()) {
    w.add_tensor(t.name, t.dtype, t.shape(), std::span(in.tensor_data(t), t.n_bytes));
  }
  const fs::path out = test::temp_dir("run_cli_eos") / "stories-eos.gguf";
  w.write_file(out.string());
  return out;
}

TEST(RunCli, StopsAtAnEndOfGenerationToken) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path model = stories_with_eos(data, "\xE2\x96\x81Lily");  // "▁Lily", the 10th greedy token
  const auto r = run_model(model, {"--temp", "0", "-p", kStoriesPrompt, "-n", "40"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Once upon a time, there was a little girl named\n");
  EXPECT_EQ(stats_value(r.err, "stopped"), "end-of-generation token");
  EXPECT_EQ(stats_row(r.err, "total").at(1), "9");  // ",", " there", ..., " g", "ir", "l", " named"
  EXPECT_EQ(stats_row(r.err, "sampling").at(1), "10");
}

TEST(RunCli, PromptFromAFileOrStandardInput) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path file = test::temp_dir("run_cli_prompt") / "prompt.txt";
  std::ofstream(file) << kStoriesPrompt << "\n";  // the editor's final newline is dropped
  const auto r = run_model(data / kStories, {"--temp", "0", "-f", file.string(), "-n", "40"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(kGreedyText, 0), 0u) << r.out;
  const auto in = test::ember_with_stdin(
      {"run", "-m", (data / kStories).string(), "--temp", "0", "-f", "-", "-n", "40"}, kStoriesPrompt);
  ASSERT_EQ(in.exit_code, 0) << in.err;
  EXPECT_EQ(in.out, r.out);
}

TEST(RunCli, BadInputFailsWithOneLine) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string model = (data / kStories).string();
  const std::string missing = (test::temp_dir("run_cli_bad") / "missing.gguf").string();
  const std::vector<std::pair<std::vector<std::string>, int>> cases = {
      {{"run", "-m", missing, "-p", kStoriesPrompt}, 1},
      {{"run", "-m", model, "-p", kStoriesPrompt, "-n", "abc"}, 2},
      {{"run", "-m", model, "-p", kStoriesPrompt, "-n", "-2"}, 2},
      {{"run", "-m", model, "-p", ""}, 1},
      {{"run", "-m", model}, 2},
      {{"run", "-m", model, "-p", kStoriesPrompt, "-f", missing}, 2},
      {{"run", "-m", model, "-f", missing}, 1},
      {{"run", "-m", model, "-p", kStoriesPrompt, "-c", "5"}, 1},  // 5 prompt tokens fill a 5-token context
      {{"run", "-m", model, "-p", kStoriesPrompt, "--top-p", "0"}, 2},
      {{"run", "-m", model, "-p", kStoriesPrompt, "--top-k", "-1"}, 2},
      {{"run", "-m", model, "-p", kStoriesPrompt, "--temp", "nan"}, 2},
      {{"run", "-m", model, "-p", kStoriesPrompt, "-t", "-3"}, 2},
      {{"run", "-p", kStoriesPrompt}, 2},
  };
  for (const auto& [args, code] : cases) {
    const auto r = ember(args);
    SCOPED_TRACE(r.err);
    EXPECT_EQ(r.exit_code, code);
    EXPECT_EQ(std::ranges::count(r.err, '\n'), 1);
    EXPECT_EQ(r.err.rfind("ember: error: ", 0), 0u);
    EXPECT_EQ(r.out, "");
  }
  EXPECT_NE(ember({"run", "-m", missing, "-p", kStoriesPrompt}).err.find("missing.gguf"), std::string::npos);
  EXPECT_NE(ember({"run", "-m", model, "-p", ""}).err.find("the prompt is empty"), std::string::npos);
}

// `model`'s metadata (with `replace`'s values instead, where given) and tensors written as
// llama.cpp's gguf-split does: the metadata in the first of `n_parts` files, split.* keys in each,
// the tensors in order across the parts. Returns the parts' paths.
std::vector<std::string> write_split(const GgufFile& model, const fs::path& prefix, int n_parts,
                                     const std::function<void(GgufWriter&)>& replace = {},
                                     const std::vector<std::string>& replaced_keys = {}) {
  const auto tensors = model.tensors();
  std::vector<std::string> paths;
  size_t next = 0;
  for (int i = 0; i < n_parts; ++i) {
    GgufWriter w;
    w.add<uint16_t>(kSplitNoKey, static_cast<uint16_t>(i));
    w.add<uint16_t>(kSplitCountKey, static_cast<uint16_t>(n_parts));
    w.add<int32_t>(kSplitTensorsCountKey, static_cast<int32_t>(tensors.size()));
    if (i == 0) {
      for (const GgufKeyValue& kv : model.metadata()) {
        if (std::ranges::find(replaced_keys, kv.key) == replaced_keys.end()) w.add_value(kv.key, kv.value);
      }
      if (replace) replace(w);
    }
    const size_t end = tensors.size() * static_cast<size_t>(i + 1) / static_cast<size_t>(n_parts);
    for (; next < end; ++next) {
      const TensorView t = model.tensor_view(tensors[next]);
      w.add_tensor(tensors[next].name, tensors[next].dtype, tensors[next].shape(),
                   std::span(static_cast<const std::byte*>(t.data()), tensors[next].n_bytes));
    }
    paths.push_back(gguf_split_path(prefix.string(), i, n_parts));
    w.write_file(paths.back());
  }
  return paths;
}

// Any part of a split model names the whole model, for every command that reads one.
TEST(RunCli, SplitModelsRunFromAnyPart) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const GgufFile model = GgufFile::open((data / kStories).string());
  const std::vector<std::string> parts = write_split(model, test::temp_dir("run_cli_split") / "stories", 3);
  const auto whole_tokens = ember({"tokenize", "-m", (data / kStories).string(), kStoriesPrompt});
  ASSERT_EQ(whole_tokens.exit_code, 0) << whole_tokens.err;
  for (const std::string& part : parts) {
    SCOPED_TRACE(part);
    const auto r = run_model(part, {"--temp", "0", "-p", kStoriesPrompt, "-n", "40"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind(kGreedyText, 0), 0u) << r.out;
    const auto tokens = ember({"tokenize", "-m", part, kStoriesPrompt});
    EXPECT_EQ(tokens.exit_code, 0) << tokens.err;
    EXPECT_EQ(tokens.out, whole_tokens.out);
  }
}

// A tokenizer of another size than the model's vocabulary fails at load, naming both sizes (the
// model would otherwise emit ids the tokenizer cannot write).
TEST(RunCli, ATokenizerSmallerThanTheVocabularyIsRefusedAtLoad) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const GgufFile model = GgufFile::open((data / kStories).string());
  const auto cut = [&](GgufWriter& w) {
    const auto tokens = model.get_strings("tokenizer.ggml.tokens");
    w.add_string_array("tokenizer.ggml.tokens", std::vector<std::string>(tokens.begin(), tokens.begin() + 10));
    const std::vector<float> scores = model.get_array<float>("tokenizer.ggml.scores").to_vector();
    const std::vector<int32_t> types = model.get_array<int32_t>("tokenizer.ggml.token_type").to_vector();
    w.add_array("tokenizer.ggml.scores", std::span<const float>(scores.data(), 10));
    w.add_array("tokenizer.ggml.token_type", std::span<const int32_t>(types.data(), 10));
  };
  const std::vector<std::string> parts =
      write_split(model, test::temp_dir("run_cli_vocab") / "cut", 1, cut,
                  {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"});
  const auto r = run_model(parts[0], {"--temp", "0", "-p", "Once", "-n", "4"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("the tokenizer has 10 tokens but the model's vocabulary has 512"), std::string::npos) << r.err;
}

// general.name is the file's text: the stats panel and bench's Markdown table show it escaped on
// one line (no escape sequence, NUL or newline reaches the terminal; '|' does not split a cell).
TEST(RunCli, ControlCharactersInTheModelNameAreEscaped) {
  const GgufFile model = GgufFile::open((fs::path(EMBER_SOURCE_DIR) / "models" / "ember-tiny-draft.gguf").string());
  const std::string hostile("\x1b[31mRED|\0\n\r\a", 13);
  const std::vector<std::string> parts =
      write_split(model, test::temp_dir("run_cli_name") / "named", 1,
                  [&](GgufWriter& w) { w.add_string("general.name", hostile); }, {"general.name"});
  const auto r = run_model(parts[0], {"--temp", "0", "-p", "And", "-n", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string model_line = stats_value(r.err, "model");
  EXPECT_EQ(model_line.rfind("\\x1b[31mRED|\\x00\\n\\r\\x07", 0), 0u) << model_line;
  for (const char c : {'\x1b', '\0', '\r', '\a'}) EXPECT_EQ(r.err.find(c), std::string::npos) << int{c};
  const auto bench = ember({"bench", "-m", parts[0], "-p", "4", "-n", "0", "-r", "1", "--no-roofline"});
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  EXPECT_NE(bench.out.find("| \\x1b[31mRED\\|\\x00\\n\\r\\x07 |"), std::string::npos) << bench.out;
  EXPECT_EQ(std::ranges::count(bench.out, '\n'), 3) << bench.out;  // header, rule, one row
}

TEST(RunCli, StopStringsAreNeverPrinted) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  // "girl" is three tokens of the greedy text (" g", "ir", "l"): matched across their boundaries.
  const auto r = run_model(data / kStories,
                           {"--temp", "0", "-p", kStoriesPrompt, "-n", "40", "--stop", "nothing", "--stop", "girl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Once upon a time, there was a little \n");
  EXPECT_EQ(stats_value(r.err, "stopped"), "stop string \"girl\" (--stop)");
  // A stop string that never completes holds nothing back at the end.
  const auto none = run_model(data / kStories, {"--temp", "0", "-p", kStoriesPrompt, "-n", "40", "--stop", "Lily!"});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out.rfind(kGreedyText, 0), 0u) << none.out;
  EXPECT_EQ(stats_value(none.err, "stopped"), "token limit (-n 40)");
}

// --stop takes the command line's escapes: '\n' is a newline (here the token the logit bias makes
// certain: ember-tiny's byte <0x0A>), '\\n' a backslash and an n.
TEST(RunCli, StopStringsTakeEscapes) {
  const fs::path tiny = fs::path(EMBER_SOURCE_DIR) / "models" / "ember-tiny.gguf";
  const std::vector<std::string> args = {"--temp", "0", "-p", "And the LORD", "-n", "5", "-l", "13+100", "--stop"};
  std::vector<std::string> newline = args;
  newline.push_back("\\n");
  const auto r = run_model(tiny, newline);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "And the LORD\n");  // the stop string's newline is not printed: this is run's own
  EXPECT_EQ(stats_value(r.err, "stopped"), "stop string \"\\n\" (--stop)");
  std::vector<std::string> backslash = args;
  backslash.push_back("\\\\n");
  const auto literal = run_model(tiny, backslash);
  ASSERT_EQ(literal.exit_code, 0) << literal.err;
  EXPECT_EQ(stats_value(literal.err, "stopped"), "token limit (-n 5)");
}

// --suffix fills a gap: the model gets [BOS] PRE prompt SUF suffix MID (here ember-tiny with three
// of its tokens named the fill-in-the-middle tokens: the layout is tested, not the answer), and the
// output is the text with the gap filled. Without the tokens it is an error saying so.
TEST(RunCli, SuffixFillsTheMiddle) {
  const fs::path tiny = fs::path(EMBER_SOURCE_DIR) / "models" / "ember-tiny.gguf";
  const std::vector<std::string> parts =
      write_split(GgufFile::open(tiny.string()), test::temp_dir("run_cli_fim") / "tiny-fim", 1, [](GgufWriter& w) {
        w.add<uint32_t>("tokenizer.ggml.fim_pre_token_id", 100);
        w.add<uint32_t>("tokenizer.ggml.fim_suf_token_id", 101);
        w.add<uint32_t>("tokenizer.ggml.fim_mid_token_id", 102);
      });
  const std::string prefix = "In the beginning <s>", suffix = " and the earth.";
  const auto count_tokens = [&](const std::string& text) {
    const auto t = ember({"tokenize", "-m", tiny.string(), "--ids", "--no-bos", text});
    EXPECT_EQ(t.exit_code, 0) << t.err;
    std::istringstream ids(t.out);
    return static_cast<int>(std::distance(std::istream_iterator<int>(ids), std::istream_iterator<int>()));
  };
  const int n_prefix = count_tokens(prefix), n_suffix = count_tokens(suffix);
  ASSERT_GT(n_prefix, 3);
  const auto r = run_model(parts[0], {"--temp", "0", "-p", prefix, "--suffix", suffix, "-n", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(prefix, 0), 0u) << r.out;
  EXPECT_TRUE(r.out.ends_with(suffix + "\n")) << r.out;
  EXPECT_EQ(stats_row(r.err, "prefill").at(1), std::to_string(1 + 1 + n_prefix + 1 + n_suffix + 1));  // BOS, markers
  const auto no_bos = run_model(parts[0], {"--temp", "0", "-p", prefix, "--suffix", suffix, "-n", "4", "--no-bos"});
  ASSERT_EQ(no_bos.exit_code, 0) << no_bos.err;
  EXPECT_EQ(stats_row(no_bos.err, "prefill").at(1), std::to_string(n_prefix + n_suffix + 3));
  // A gap at the start of the text: the prompt may be empty.
  const auto at_start = run_model(parts[0], {"--temp", "0", "-p", "", "--suffix", suffix, "-n", "2"});
  ASSERT_EQ(at_start.exit_code, 0) << at_start.err;
  EXPECT_TRUE(at_start.out.ends_with(suffix + "\n")) << at_start.out;

  const auto plain = run_model(tiny, {"--temp", "0", "-p", prefix, "--suffix", suffix, "-n", "4"});
  EXPECT_EQ(plain.exit_code, 1);
  EXPECT_EQ(plain.out, "");
  EXPECT_NE(plain.err.find("no fill-in-the-middle tokens"), std::string::npos) << plain.err;
}

// A model whose weights hold a NaN (here one value of layer 0's attn_q): generation and perplexity
// fail with one line that says so, not invisible tokens or "PPL = nan" with exit status 0.
TEST(RunCli, NanWeightsAreAnErrorNotGarbage) {
  const fs::path draft = fs::path(EMBER_SOURCE_DIR) / "models" / "ember-tiny-draft.gguf";
  std::string bytes = test::read_file(draft);
  {
    const GgufFile f = GgufFile::open(draft.string());
    const GgufTensorInfo* q = f.find_tensor("blk.0.attn_q.weight");
    ASSERT_NE(q, nullptr);
    ASSERT_EQ(q->dtype, DType::kF16);
    const size_t at = static_cast<size_t>(f.data_offset() + q->offset) + 2 * 70;
    bytes[at] = 0x00;  // f16 0x7E00: NaN
    bytes[at + 1] = 0x7E;
  }
  const fs::path dir = test::temp_dir("run_cli_nan");
  const fs::path model = dir / "nan.gguf";
  std::ofstream(model, std::ios::binary) << bytes;
  for (const std::vector<std::string>& options : std::vector<std::vector<std::string>>{
           {"--temp", "0"}, {"--temp", "0.8", "--seed", "3"}, {"--temp", "0", "--repeat-penalty", "1.1"}}) {
    // (the greedy token, the top-k and the whole-row paths)
    std::vector<std::string> args = {"-p", "And the", "-n", "5"};
    args.insert(args.end(), options.begin(), options.end());
    const auto r = run_model(model, args);
    SCOPED_TRACE(options.back());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "And the\n");  // the prompt, then the error on a line of its own
    EXPECT_NE(r.err.find("ember: error: the model's logits for output token 1 are all NaN or -inf"), std::string::npos)
        << r.err;
  }
  const fs::path text = dir / "text.txt";
  std::ofstream(text) << "In the beginning God created the heaven and the earth. And the earth was without form.\n";
  const auto ppl = ember({"perplexity", "-m", model.string(), "-f", text.string(), "-c", "8"});
  EXPECT_EQ(ppl.exit_code, 1) << ppl.out;
  EXPECT_NE(ppl.err.find("are not finite (NaN or infinity)"), std::string::npos) << ppl.err;
}

TEST(RunCli, MaxTimeStopsTheGeneration) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto r =
      run_model(data / kStories, {"--temp", "0", "-p", kStoriesPrompt, "-n", "40", "--max-time", "0.000001"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(stats_value(r.err, "stopped").rfind("time limit (--max-time ", 0), 0u) << r.err;
}

TEST(RunCli, TheSamplerLineShowsTheActiveSteps) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto r =
      run_model(data / kStories, {"-p", kStoriesPrompt, "-n", "20", "--seed", "3", "--repeat-penalty", "1.1", "--top-k",
                                  "10", "--samplers", "top_k;temperature", "-l", "5+1", "-l", "6-inf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(stats_value(r.err, "sampler"),
            "logit-bias 2, penalties repeat 1.10 (last 64), top-k 10, temp 0.80, seed 3");
  const auto m = run_model(data / kStories, {"-p", kStoriesPrompt, "-n", "20", "--seed", "3", "--mirostat", "2",
                                             "--min-p", "0.1", "--dry-multiplier", "0.8", "--xtc-probability", "0.5"});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  EXPECT_EQ(stats_value(m.err, "sampler"), "temp 0.80, mirostat v2 tau 5.00 eta 0.10, seed 3");
  const std::vector<std::string> every_step = {"-p",
                                               kStoriesPrompt,
                                               "-n",
                                               "20",
                                               "--seed",
                                               "3",
                                               "--dry-multiplier",
                                               "0.8",
                                               "--dry-sequence-breaker",
                                               "\\n",
                                               "--top-nsigma",
                                               "1.5",
                                               "--typical",
                                               "0.9",
                                               "--xtc-probability",
                                               "0.5",
                                               "--dynatemp-range",
                                               "0.2",
                                               "--top-p",
                                               "1"};
  const auto all = run_model(data / kStories, every_step);
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(stats_value(all.err, "sampler"),
            "dry 0.80 base 1.75 allowed 2, top-n-sigma 1.50, top-k 40, typical 0.90, min-p 0.05, xtc 0.50 >= 0.10, "
            "temp 0.80 \xC2\xB1 0.20 exp 1.00, seed 3");
  // The same seed and flags give the same text.
  const auto again = run_model(data / kStories, every_step);
  EXPECT_EQ(again.out, all.out);
}

TEST(RunCli, BadSamplingFlagsAreUsageErrorsNamingTheFlag) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string model = (data / kStories).string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--samplers", "top_k;bogus"}, "--samplers"},
      {{"--samplers", ";"}, "--samplers"},
      {{"--min-p", "2"}, "--min-p"},
      {{"--typical", "0"}, "--typical"},
      {{"--top-nsigma", "nan"}, "--top-nsigma"},
      {{"--xtc-probability", "1.5"}, "--xtc-probability"},
      {{"--repeat-penalty", "0"}, "--repeat-penalty"},
      {{"--repeat-last-n", "-2"}, "--repeat-last-n"},
      {{"--dry-base", "0.5"}, "--dry-base"},
      {{"--dry-allowed-length", "-1"}, "--dry-allowed-length"},
      {{"--dry-sequence-breaker", ""}, "--dry-sequence-breaker"},
      {{"--mirostat", "1"}, "--mirostat"},
      {{"--mirostat-lr", "-1"}, "--mirostat-lr"},
      {{"--dynatemp-range", "-0.5"}, "--dynatemp-range"},
      {{"-l", "5x1"}, "--logit-bias"},
      {{"-l", "+1"}, "--logit-bias"},
      {{"-l", "5+inf"}, "--logit-bias"},
      {{"--stop", ""}, "--stop"},
      {{"--max-time", "-1"}, "--max-time"},
  };
  for (const auto& [flags, name] : cases) {
    std::vector<std::string> args = {"run", "-m", model, "-p", kStoriesPrompt};
    args.insert(args.end(), flags.begin(), flags.end());
    const auto r = ember(args);
    SCOPED_TRACE(flags.front() + " " + flags.back() + ": " + r.err);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(std::ranges::count(r.err, '\n'), 1);
    EXPECT_NE(r.err.find(name), std::string::npos);
    EXPECT_EQ(r.out, "");
  }
  // A bias on a token the model does not have is found once the model is loaded (exit 1).
  const auto r = ember({"run", "-m", model, "-p", kStoriesPrompt, "-l", "99999+1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--logit-bias"), std::string::npos) << r.err;
}

// --kv-type: f32 keeps the text; q8_0 takes 34 bytes per 32 values (17/32 of f16) on a model whose
// heads are a multiple of 32 values, and is refused with one line on one whose heads are not.
TEST(RunCli, KvTypeSetsTheCacheAndIsCheckedAgainstTheModel) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto f32 = run_model(data / kStories, {"--temp", "0", "-p", kStoriesPrompt, "-n", "40", "--kv-type", "f32"});
  ASSERT_EQ(f32.exit_code, 0) << f32.err;
  EXPECT_EQ(f32.out.rfind(kGreedyText, 0), 0u) << f32.out;
  EXPECT_EQ(stats_value(f32.err, "KV cache"), "160.00 KiB (128 tokens, f32)");

  const auto stories_q8 = run_model(data / kStories, {"-p", kStoriesPrompt, "--kv-type", "q8_0"});
  EXPECT_EQ(stories_q8.exit_code, 1);
  EXPECT_EQ(std::ranges::count(stories_q8.err, '\n'), 1) << stories_q8.err;
  EXPECT_NE(stories_q8.err.find("multiple of 32"), std::string::npos) << stories_q8.err;
  EXPECT_EQ(stories_q8.out, "");
  const auto bad = run_model(data / kStories, {"-p", kStoriesPrompt, "--kv-type", "q4_0"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--kv-type"), std::string::npos) << bad.err;

  const fs::path model = test::temp_dir("run_cli_kv_type") / "tiny.gguf";  // heads of 64 values
  ASSERT_EQ(ember({"synth", "--preset", "tiny", "-o", model.string(), "--data-dir", data.string()}).exit_code, 0);
  const std::vector<std::string> args = {"--temp", "0", "-p", kStoriesPrompt, "-n", "20", "-c", "256"};
  std::vector<std::string> q8_args = args;
  q8_args.insert(q8_args.end(), {"--kv-type", "Q8_0"});  // any case
  const auto f16 = run_model(model, args);
  const auto q8 = run_model(model, q8_args);
  ASSERT_EQ(f16.exit_code, 0) << f16.err;
  ASSERT_EQ(q8.exit_code, 0) << q8.err;
  // 2 layers x K and V x 16 blocks x 2 kv heads x 16 tokens x 64 values.
  EXPECT_EQ(stats_value(f16.err, "KV cache"), "256.00 KiB (256 tokens, f16)");
  EXPECT_EQ(stats_value(q8.err, "KV cache"), "136.00 KiB (256 tokens, q8_0)");
  EXPECT_EQ(q8.out.rfind(kStoriesPrompt, 0), 0u) << q8.out;
  EXPECT_GT(q8.out.size(), std::string(kStoriesPrompt).size() + 20) << q8.out;
}

// A random-weight model never says its end-of-sequence token (greedy repeats a token), and a
// context of 32768 gives it minutes of work: only Ctrl-C ends these runs.
std::vector<std::string> endless_run(const fs::path& data, const fs::path& dir) {
  const fs::path model = dir / "tiny.gguf";
  const auto synth = ember({"synth", "--preset", "tiny", "-o", model.string(), "--data-dir", data.string()});
  EXPECT_EQ(synth.exit_code, 0) << synth.err;
  return {"run", "-m", model.string(), "--temp", "0", "-p", kStoriesPrompt, "-n", "-1", "-c", "32768", "-t", "1"};
}

TEST(RunCli, CtrlCStopsAfterTheCurrentTokenAndPrintsTheStats) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("run_cli_sigint");
  test::PipedEmber p(endless_run(data, dir), dir / "err", 1 << 16);
  ASSERT_TRUE(p.started());
  std::string out = p.read_some();  // the prompt is printed once the Ctrl-C handler is in place
  ASSERT_FALSE(out.empty());
  p.signal(SIGINT);
  out += p.read_rest();
  const int status = p.wait_status();
  const std::string err = test::read_file(dir / "err");
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status) << "\n" << err;
  EXPECT_EQ(WEXITSTATUS(status), 0) << err;
  EXPECT_EQ(out.rfind(kStoriesPrompt, 0), 0u);
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(stats_value(err, "stopped"), "interrupted (Ctrl-C)") << err;
  EXPECT_NE(stats_value(err, "decode"), "");
}

TEST(RunCli, ASecondCtrlCEndsTheProcess) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("run_cli_sigint2");
  // A one-page pipe the test stops reading: ember blocks in a write, where no token ends, so the
  // first Ctrl-C cannot finish the run before the second one comes.
  test::PipedEmber p(endless_run(data, dir), dir / "err", 4096);
  ASSERT_TRUE(p.started());
  ASSERT_FALSE(p.read_some().empty());
  int last = -1;
  for (int i = 0, stable = 0; stable < 5 && i < 600; ++i) {  // full: nothing added for 5 x 100 ms
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const int now = p.pending();
    stable = now == last && now > 0 ? stable + 1 : 0;
    last = now;
  }
  p.signal(SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  p.signal(SIGINT);
  p.read_rest();
  const int status = p.wait_status();
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit code " << WEXITSTATUS(status) << "\n" << test::read_file(dir / "err");
  EXPECT_EQ(WTERMSIG(status), SIGINT);
}

// Speculative decoding from the command line on the bundled models: with --deterministic the text
// is plain decoding's, the panel shows the draft model and the drafts; bad combinations are usage
// errors, a draft of another vocabulary a one-line error.
TEST(RunCli, DraftModelKeepsTheTextAndShowsTheDrafts) {
  const fs::path models = fs::path(EMBER_SOURCE_DIR) / "models";
  // --draft-always: the steps taken must not depend on timing (this counts drafts).
  const std::vector<std::string> common = {
      "--temp", "0", "-p", "And the LORD said unto Moses", "-n", "60", "--deterministic", "--draft-always"};
  const auto plain = run_model(models / "ember-tiny.gguf", common);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  std::vector<std::string> args = common;
  args.insert(args.end(), {"--model-draft", (models / "ember-tiny-draft.gguf").string()});
  const auto spec = run_model(models / "ember-tiny.gguf", args);
  ASSERT_EQ(spec.exit_code, 0) << spec.err;
  EXPECT_EQ(spec.out, plain.out);
  EXPECT_NE(stats_value(spec.err, "draft").find("ember-tiny-draft"), std::string::npos) << spec.err;
  const std::vector<std::string> drafts = stats_row(spec.err, "drafts");
  ASSERT_GE(drafts.size(), 3u) << spec.err;
  EXPECT_GT(std::stoi(drafts[1]), 0) << spec.err;  // accepted
  EXPECT_NE(stats_value(spec.err, "kept at").find("1: "), std::string::npos) << spec.err;
  EXPECT_TRUE(stats_row(plain.err, "drafts").empty());

  std::vector<std::string> lookup = common;
  lookup.insert(lookup.end(), {"--draft-max", "4", "--draft-min", "2", "--spec-ngram", "2"});
  const auto by_lookup = run_model(models / "ember-tiny.gguf", lookup);
  ASSERT_EQ(by_lookup.exit_code, 0) << by_lookup.err;
  EXPECT_EQ(by_lookup.out, plain.out);

  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"--draft-max", "2", "--draft-min", "3"},
           {"--model-draft", (models / "ember-tiny-draft.gguf").string(), "--mirostat", "2"},
           {"--draft-max", "65"},
           {"--draft-p-min", "1.5"}}) {
    std::vector<std::string> a = common;
    a.insert(a.end(), bad.begin(), bad.end());
    const auto r = run_model(models / "ember-tiny.gguf", a);
    EXPECT_EQ(r.exit_code, 2) << bad[0] << " " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  std::vector<std::string> missing = common;
  missing.insert(missing.end(), {"--model-draft", "/nonexistent/draft.gguf"});
  const auto r = run_model(models / "ember-tiny.gguf", missing);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/draft.gguf"), std::string::npos) << r.err;

  EMBER_SHARED_DATA_OR_SKIP(data);
  std::vector<std::string> other = common;
  other.insert(other.end(), {"--model-draft", (data / kStories).string()});
  const auto mismatch = run_model(models / "ember-tiny.gguf", other);
  EXPECT_EQ(mismatch.exit_code, 1);
  EXPECT_NE(mismatch.err.find("vocabulary"), std::string::npos) << mismatch.err;
}

}  // namespace
}  // namespace ember
