// End-to-end tests of `ember bench`: the pp/tg results in each output format (md, csv, json), the
// roofline columns, and bad options failing with one line.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli_run.h"
#include "gguf/gguf_reader.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::ember;
using test::lines_of;

// Options that take one of a few words name them once in --help ("a|b|c", not CLI11's
// "TEXT:{a,b,c}" after a type name), refuse other words with the list, and take --kv-type in any case.
TEST(BenchCli, WordOptionsNameTheirWordsOnce) {
  for (const char* command : {"run", "bench", "serve"}) {
    const test::RunResult help = ember({command, "--help"});
    ASSERT_EQ(help.exit_code, 0) << command << ": " << help.err;
    EXPECT_EQ(help.out.find(":{"), std::string::npos) << command << ": " << help.out;
    EXPECT_NE(help.out.find("--device cpu|cuda "), std::string::npos) << command << ": " << help.out;
    EXPECT_NE(help.out.find("--kv-type f16|f32|q8_0 "), std::string::npos) << command << ": " << help.out;
  }
  const test::RunResult bench_help = ember({"bench", "--help"});
  EXPECT_NE(bench_help.out.find("-o,--output md|csv|json=md"), std::string::npos) << bench_help.out;
  EXPECT_NE(bench_help.out.find("--decode-output logits|token|top-k=logits"), std::string::npos) << bench_help.out;
  EXPECT_NE(ember({"serve", "--help"}).out.find("--pooling mean|cls|last "), std::string::npos);

  const test::RunResult wrong = ember({"bench", "-m", "absent.gguf", "--device", "gpu"});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.err.find("--device: gpu not in {cpu,cuda}"), std::string::npos) << wrong.err;
  // Q8_0 passes the check (any case): the error is then the missing file, not the option.
  const test::RunResult upper = ember({"bench", "-m", "absent.gguf", "--kv-type", "Q8_0", "--no-roofline"});
  EXPECT_EQ(upper.err.find("--kv-type"), std::string::npos) << upper.err;
  EXPECT_NE(upper.err.find("absent.gguf"), std::string::npos) << upper.err;
}

TEST(BenchCli, JsonHasEveryTestWithItsSamples) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string model = (data / "models/stories260K/stories260K-Q8_0.gguf").string();
  const test::RunResult r =
      ember({"bench", "-m", model, "-p", "16,32", "-n", "8", "-r", "3", "-t", "1", "-o", "json", "--no-roofline"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["results"].size(), 3u);
  const std::vector<std::string> tests = {"pp16", "pp32", "tg8"};
  for (size_t i = 0; i < 3; ++i) {
    const auto& res = j["results"][i];
    SCOPED_TRACE(tests[i]);
    EXPECT_EQ(res["test"], tests[i]);
    EXPECT_EQ(res["threads"], 1);
    EXPECT_EQ(res["model_path"], model);
    EXPECT_GT(res["params"].get<uint64_t>(), 200'000u);
    EXPECT_EQ(res["type"], "Q8_0");   // general.file_type 7 (llama.cpp: MOSTLY_Q8_0)
    EXPECT_EQ(res["type_k"], "f16");  // the default KV cache
    EXPECT_EQ(res["type_v"], "f16");
    const auto samples = res["samples_ts"].get<std::vector<double>>();
    ASSERT_EQ(samples.size(), 3u);
    for (double s : samples) EXPECT_GT(s, 0.0);
    const double mean = res["avg_ts"].get<double>(), median = res["median_ts"].get<double>();
    EXPECT_GE(median, *std::min_element(samples.begin(), samples.end()));
    EXPECT_LE(median, *std::max_element(samples.begin(), samples.end()));
    EXPECT_NEAR(mean, (samples[0] + samples[1] + samples[2]) / 3, 1e-6 * mean);
    EXPECT_EQ(res["rate_unit"], i < 2 ? "GFLOP/s" : "GB/s");
    EXPECT_GT(res["rate"].get<double>(), 0.0);
    EXPECT_EQ(res["roofline"].get<double>(), 0.0);  // --no-roofline
  }
  EXPECT_TRUE(j["rooflines"].empty());

  // --kv-type: the bundled model's heads hold 64 values, so its cache can be Q8_0.
  const std::string tiny = (fs::path(EMBER_SOURCE_DIR) / "models" / "ember-tiny.gguf").string();
  const test::RunResult q8 = ember({"bench", "-m", tiny, "-p", "16", "-n", "4", "-r", "1", "-t", "1", "-o", "json",
                                    "--no-roofline", "--kv-type", "q8_0"});
  ASSERT_EQ(q8.exit_code, 0) << q8.err;
  const auto q8_json = nlohmann::json::parse(q8.out);
  ASSERT_FALSE(q8_json["results"].empty());
  for (const auto& res : q8_json["results"]) {
    EXPECT_EQ(res["type_k"], "q8_0");
    EXPECT_EQ(res["type_v"], "q8_0");
  }
}

// The prefill rate's FLOPs per token, from the file itself: 2 per weight of every layer matrix,
// and 4 · head_dim per head and visible position (stories260K has no window).
TEST(BenchCli, PrefillRateCountsTheModelsFlops) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string model = (data / "models/stories260K/stories260K-Q8_0.gguf").string();
  const GgufFile f = GgufFile::open(model);
  double weights = 0;
  for (const GgufTensorInfo& t : f.tensors()) {
    if (t.name.starts_with("blk.") && !t.name.ends_with("norm.weight")) weights += static_cast<double>(t.n_elements);
  }
  const auto n_layer = static_cast<double>(f.get<uint32_t>("llama.block_count"));
  const auto n_head = static_cast<double>(f.get<uint32_t>("llama.attention.head_count"));
  const double head_dim = static_cast<double>(f.get<uint32_t>("llama.embedding_length")) / n_head;
  const test::RunResult r =
      ember({"bench", "-m", model, "-p", "16", "-n", "0", "-r", "1", "-t", "1", "-o", "json", "--no-roofline"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto& res = j["results"][0];
  const double flop_per_token = res["rate"].get<double>() * 1e9 / res["median_ts"].get<double>();
  const double want = 2 * weights + n_layer * n_head * 4 * head_dim * (16 + 1) / 2.0;
  EXPECT_NEAR(flop_per_token, want, 1e-9 * want);
}

// -d: each test again after a context already in the cache, named as llama-bench names it; a depth
// listed twice runs once. At depth 32 each token attends to 32 more positions: the prefill rate
// counts 4 · head_dim FLOPs per head for each, the decode rate each one's K and V rows (F16).
TEST(BenchCli, DepthRunsEachTestAfterAContext) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string model = (data / "models/stories260K/stories260K-Q8_0.gguf").string();
  const GgufFile f = GgufFile::open(model);
  const auto n_layer = static_cast<double>(f.get<uint32_t>("llama.block_count"));
  const auto n_head = static_cast<double>(f.get<uint32_t>("llama.attention.head_count"));
  const auto n_head_kv = static_cast<double>(f.get<uint32_t>("llama.attention.head_count_kv"));
  const double head_dim = static_cast<double>(f.get<uint32_t>("llama.embedding_length")) / n_head;
  const test::RunResult r = ember({"bench", "-m", model, "-p", "8", "-n", "4", "-d", "0,32,32", "-r", "2", "-t", "1",
                                   "-o", "json", "--no-roofline"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["results"].size(), 4u) << r.out;
  const std::vector<std::string> tests = {"pp8", "tg4", "pp8 @ d32", "tg4 @ d32"};
  std::vector<double> per_token;  // FLOPs (pp) or bytes (tg) per token, from the rate
  for (size_t i = 0; i < tests.size(); ++i) {
    const auto& res = j["results"][i];
    EXPECT_EQ(res["test"], tests[i]);
    EXPECT_EQ(res["n_depth"], i < 2 ? 0 : 32);
    per_token.push_back(res["rate"].get<double>() * 1e9 / res["median_ts"].get<double>());
  }
  const double flop_more = n_layer * n_head * 4 * head_dim * 32;
  EXPECT_NEAR(per_token[2] - per_token[0], flop_more, 1e-6 * per_token[2]);
  const double bytes_more = n_layer * n_head_kv * head_dim * 2 /* K, V */ * 2 /* f16 */ * 32;
  EXPECT_NEAR(per_token[3] - per_token[1], bytes_more, 1e-6 * per_token[3]);

  // The table and the CSV name the depth too.
  const test::RunResult csv =
      ember({"bench", "-m", model, "-p", "8", "-n", "0", "-d", "16", "-r", "1", "-o", "csv", "--no-roofline"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  const auto csv_lines = lines_of(csv.out);
  ASSERT_EQ(csv_lines.size(), 2u) << csv.out;
  EXPECT_NE(csv_lines[0].find(",test,n_tokens,n_depth,"), std::string::npos) << csv_lines[0];
  EXPECT_NE(csv_lines[1].find(",pp8 @ d16,8,16,"), std::string::npos) << csv_lines[1];
  const test::RunResult md =
      ember({"bench", "-m", model, "-p", "0", "-n", "2", "-d", "16", "-r", "1", "--no-roofline"});
  ASSERT_EQ(md.exit_code, 0) << md.err;
  EXPECT_NE(md.out.find("| tg2 @ d16 |"), std::string::npos) << md.out;
  EXPECT_EQ(md.err.find("warning"), std::string::npos) << md.err;

  // Past the training context (128 positions): measured, with a warning naming the numbers.
  const test::RunResult past =
      ember({"bench", "-m", model, "-p", "0", "-n", "2", "-d", "127", "-r", "1", "--no-roofline"});
  ASSERT_EQ(past.exit_code, 0) << past.err;
  EXPECT_NE(past.out.find("| tg2 @ d127 |"), std::string::npos) << past.out;
  EXPECT_NE(past.err.find("depth 127 + 2 tokens passes the model's training context of 128"), std::string::npos)
      << past.err;
}

TEST(BenchCli, MarkdownAndCsvTables) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string model = (data / "models/stories260K/stories260K.gguf").string();
  const test::RunResult md = ember({"bench", "-m", model, "-p", "8", "-n", "4", "-r", "1", "--no-roofline"});
  ASSERT_EQ(md.exit_code, 0) << md.err;
  const auto md_lines = lines_of(md.out);
  ASSERT_EQ(md_lines.size(), 4u) << md.out;  // header, rule, pp8, tg4
  EXPECT_NE(md_lines[0].find("| model"), std::string::npos);
  EXPECT_NE(md_lines[0].find("t/s"), std::string::npos);
  EXPECT_EQ(md_lines[1].find("|-"), 0u);
  EXPECT_NE(md_lines[2].find("pp8"), std::string::npos);
  EXPECT_NE(md_lines[3].find("tg4"), std::string::npos);
  EXPECT_NE(md_lines[3].find("GB/s"), std::string::npos);

  const test::RunResult csv =
      ember({"bench", "-m", model, "-p", "8", "-n", "4", "-r", "2", "-o", "csv", "--no-roofline"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  const auto csv_lines = lines_of(csv.out);
  ASSERT_EQ(csv_lines.size(), 3u) << csv.out;
  EXPECT_EQ(csv_lines[0].rfind("model_path,model,type,", 0), 0u);
  EXPECT_NE(csv_lines[1].find(",pp8,8,"), std::string::npos) << csv_lines[1];
  EXPECT_NE(csv_lines[2].find(",tg4,4,"), std::string::npos) << csv_lines[2];
}

// With the roofline measured, each rate comes with the machine's limit in the same unit.
TEST(BenchCli, RooflineColumns) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string model = (data / "models/stories260K/stories260K-Q8_0.gguf").string();
  const test::RunResult r = ember({"bench", "-m", model, "-p", "8", "-n", "4", "-r", "1", "-t", "1", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["rooflines"].size(), 1u);
  const auto& roofline = j["rooflines"][0];
  EXPECT_EQ(roofline["threads"], 1);
  EXPECT_GT(roofline["read_gbs_all"].get<double>(), 0.1);
  EXPECT_EQ(j["results"][1]["roofline"].get<double>(), roofline["read_gbs_all"].get<double>());
  EXPECT_GT(j["results"][0]["roofline"].get<double>(), 1.0);  // GFLOP/s peak
}

// A length of 0 drops that kind of test, as in llama-bench: -n 0 measures prefill only.
TEST(BenchCli, ZeroLengthSkipsThatTest) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string model = (data / "models/stories260K/stories260K.gguf").string();
  const test::RunResult r =
      ember({"bench", "-m", model, "-p", "0,8", "-n", "0", "-r", "1", "-t", "1", "-o", "csv", "--no-roofline"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> csv = lines_of(r.out);
  ASSERT_EQ(csv.size(), 2u) << r.out;
  EXPECT_NE(csv[1].find(",pp8,8,"), std::string::npos) << csv[1];
}

// -m takes comma-separated lists (llama-bench) and repeats, and still a path with a comma in it.
TEST(BenchCli, ModelListsAndPathsWithCommas) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::filesystem::path original = data / "models/stories260K/stories260K.gguf";
  const std::filesystem::path comma = test::temp_dir("bench_comma") / "stories,copy.gguf";
  std::filesystem::copy_file(original, comma);
  const auto models_in = [](const test::RunResult& r) {
    std::vector<std::string> models;
    const auto j = nlohmann::json::parse(r.out);
    for (const auto& res : j["results"]) models.push_back(res["model_path"]);
    return models;
  };
  const std::vector<std::string> common = {"-p", "0", "-n", "2", "-r", "1", "-t", "1", "-o", "json", "--no-roofline"};
  const auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "bench");
    args.insert(args.end(), common.begin(), common.end());
    return ember(args);
  };
  test::RunResult r = run({"-m", comma.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(models_in(r), std::vector<std::string>{comma.string()});
  r = run({"-m", original.string() + "," + original.string()});  // a list
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(models_in(r), (std::vector<std::string>{original.string(), original.string()}));
  r = run({"-m", original.string(), "-m", comma.string()});  // repeated
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(models_in(r), (std::vector<std::string>{original.string(), comma.string()}));
}

// --decode-output: the greedy token or the best 40 logits per decode step instead of the row; the
// test names say which.
TEST(BenchCli, DecodeOutputsNameTheirTests) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string model = (data / "models/stories260K/stories260K-Q8_0.gguf").string();
  for (const std::string kind : {"token", "top-k", "logits"}) {
    SCOPED_TRACE(kind);
    const test::RunResult r = ember({"bench", "-m", model, "-p", "0", "-n", "6", "-r", "2", "-t", "1", "-o", "json",
                                     "--no-roofline", "--decode-output", kind});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["results"].size(), 1u);
    EXPECT_EQ(j["results"][0]["test"], kind == "logits" ? "tg6" : "tg6-" + kind);
    EXPECT_GT(j["results"][0]["median_ts"].get<double>(), 0.0);
  }
}

TEST(BenchCli, BadInputFailsWithOneLine) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string model = (data / "models/stories260K/stories260K.gguf").string();
  const auto expect_failure = [](const std::vector<std::string>& args, int code, const std::string& text) {
    const test::RunResult r = ember(args);
    EXPECT_EQ(r.exit_code, code) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(text), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  };
  expect_failure({"bench", "-m", "/nonexistent/model.gguf", "--no-roofline"}, 1, "/nonexistent/model.gguf");
  expect_failure({"bench", "-m", model, "-o", "xml"}, 2, "xml");
  expect_failure({"bench", "-m", model, "-p", "0", "-n", "0"}, 2, "nothing to measure");
  expect_failure({"bench", "-m", model, "-p", "-1"}, 2, "-p");
  expect_failure({"bench", "-m", model + ",", "--no-roofline"}, 2, "an empty path");
  expect_failure({"bench", "-m", model + ",/nonexistent/b.gguf", "--no-roofline"}, 2,
                 "'/nonexistent/b.gguf' is missing");
  // A missing model fails before the ones before it are measured: nothing on stdout.
  expect_failure({"bench", "-m", model, "-m", "/nonexistent/c.gguf", "--no-roofline"}, 1, "/nonexistent/c.gguf");
  expect_failure({"bench", "-m", model, "-n", "abc"}, 2, "abc");
  expect_failure({"bench", "-m", model, "-r", "0"}, 2, "-r");
  expect_failure({"bench"}, 2, "--model");
  expect_failure({"bench", "-m", model, "--decode-output", "probs"}, 2, "probs");
}

}  // namespace
}  // namespace ember
