// End-to-end tests of `ember quantize`: output, dry run, fallbacks, refusing to overwrite the input,
// malformed input and bad options (one line, non-zero exit), and Ctrl-C leaving no file behind.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <random>
#include <thread>

#include "cli/cli_run.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "support/sha256.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::count_lines;
using test::ember;
using test::entries_in;
using test::read_file;

std::string file_sha(const fs::path& p) {
  const std::string bytes = read_file(p);
  return test::sha256_hex(std::as_bytes(std::span(bytes)));
}

TEST(QuantizeCli, WritesTheMixAndReportsSizes) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("quantize_cli_ok");
  const fs::path out = dir / "q4km.gguf";
  const auto r = ember({"quantize", (data / "quant/tiny-llama-f32.gguf").string(), out.string(), "q4_k_m", "-t", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // no fallbacks, no progress bar when stderr is not a terminal
  EXPECT_NE(r.out.find("Q4_K_M"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("7.00 MiB -> 1.08 MiB"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("on 2 threads"), std::string::npos) << r.out;
  const GgufFile f = GgufFile::open(out.string());
  EXPECT_EQ(f.find_tensor("output.weight")->dtype, DType::kQ6_K);
  EXPECT_EQ(f.find_tensor("blk.1.ffn_down.weight")->dtype, DType::kQ6_K);
  EXPECT_EQ(f.find_tensor("blk.0.ffn_down.weight")->dtype, DType::kQ4_K);
  EXPECT_EQ(f.find_tensor("blk.0.attn_norm.weight")->dtype, DType::kF32);
  EXPECT_EQ(entries_in(dir), 1u);  // no temporary left beside it
}

TEST(QuantizeCli, DryRunPrintsThePlanAndWritesNothing) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("quantize_cli_dry");
  const auto r = ember({"quantize", (data / "models/stories260K/stories260K.gguf").string(), (dir / "x.gguf").string(),
                        "Q4_0", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(entries_in(dir), 0u);
  EXPECT_NE(r.out.find("blk.0.ffn_down.weight"), std::string::npos);
  EXPECT_NE(r.out.find("rows of 172 do not fit q4_0 blocks of 32: f32 instead"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("f32 -> q8_0"), std::string::npos) << r.out;  // output: Q6_K does not fit 64
  EXPECT_NE(r.out.find("6 fallbacks"), std::string::npos) << r.out;
}

TEST(QuantizeCli, FallbacksAreWarnedOnePerLine) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path out = test::temp_dir("quantize_cli_fallback") / "q.gguf";
  const auto r = ember({"quantize", (data / "models/stories260K/stories260K.gguf").string(), out.string(), "Q8_0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err,
            "ember: warning: 5 tensors ('blk.0.ffn_down.weight' and 4 more): rows of 172 do not fit q8_0 blocks of "
            "32: f32 instead\n");
}

TEST(QuantizeCli, RefusesToOverwriteItsInput) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("quantize_cli_self");
  const fs::path in = dir / "in.gguf";
  fs::copy_file(data / "models/stories260K/stories260K.gguf", in);
  const std::string before = file_sha(in);
  fs::create_symlink(in, dir / "link.gguf");
  fs::create_hard_link(in, dir / "hard.gguf");
  for (const fs::path& out : {in, dir / "link.gguf", dir / "hard.gguf", dir / "." / "in.gguf"}) {
    const auto r = ember({"quantize", in.string(), out.string(), "Q8_0"});
    EXPECT_EQ(r.exit_code, 1) << out;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find("refusing to overwrite"), std::string::npos) << r.err;
  }
  const auto r = ember({"quantize", in.string(), dir.string(), "Q8_0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is a directory"), std::string::npos) << r.err;
  // A device or FIFO (think /dev/null) would be replaced by the rename: refused.
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  const auto fifo = ember({"quantize", in.string(), (dir / "fifo").string(), "Q8_0"});
  EXPECT_EQ(fifo.exit_code, 1);
  EXPECT_NE(fifo.err.find("is not a regular file"), std::string::npos) << fifo.err;
  EXPECT_TRUE(fs::is_fifo(dir / "fifo"));
  EXPECT_EQ(file_sha(in), before);
  EXPECT_EQ(entries_in(dir), 4u);
}

TEST(QuantizeCli, BadInputAndOptionsFailWithOneLine) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("quantize_cli_bad");
  const std::string good = (data / "models/stories260K/stories260K.gguf").string();
  const std::string full = read_file(good);
  const fs::path truncated = dir / "truncated.gguf";
  {
    std::ofstream f(truncated, std::ios::binary);
    f.write(full.data(), static_cast<std::streamsize>(full.size() / 2));
  }
  const std::string out = (dir / "out.gguf").string();
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"quantize", truncated.string(), out, "Q4_0"}, 1, "truncated.gguf"},
      {{"quantize", (dir / "missing.gguf").string(), out, "Q4_0"}, 1, "missing.gguf"},
      {{"quantize", good, out, "Q9_K"}, 2, "unknown quantization type 'Q9_K' (types: F16, BF16, Q8_0"},
      {{"quantize", good, out, "Q4_0", "--output-type", "q13"}, 2, "unknown tensor type 'q13'"},
      {{"quantize", good, out, "Q4_0", "--output-type", "q8_K"}, 1, "q8_K is not a weight type"},
      {{"quantize", good, out, "Q4_0", "-t", "0"}, 2, "--threads"},
      {{"quantize", good, out}, 2, "TYPE is required"},
      {{"quantize", (data / "vocab/ggml-vocab-gpt-2.gguf").string(), out, "Q4_0"}, 1, "has no tensors"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(fmt::format("{}", fmt::join(c.args, " ")));
    const auto r = ember(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code);
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("ember: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
  EXPECT_EQ(entries_in(dir), 1u);  // only the truncated input: no output, no temporaries
}

// Ctrl-C in the middle of a long quantization: the process dies by SIGINT, and neither OUT nor a
// temporary file is left.
TEST(QuantizeCli, InterruptLeavesNoFile) {
  const fs::path dir = test::temp_dir("quantize_cli_interrupt");
  const fs::path in = dir / "big.gguf";
  {
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::vector<float> values(4096 * 1024);
    for (float& v : values) v = normal(rng);
    const int64_t shape[] = {4096, 1024};
    for (int i = 0; i < 12; ++i) {  // 192 MiB of F32: seconds of Q2_K on one thread
      w.add_tensor(fmt::format("blk.{}.ffn_up.weight", i), DType::kF32, shape, std::as_bytes(std::span(values)));
    }
    w.write_file(in.string());
  }
  const fs::path out = dir / "out.gguf";
  test::RunningProcess p({EMBER_CLI_PATH, "quantize", in.string(), out.string(), "Q2_K", "-t", "1"});
  ASSERT_GT(p.pid(), 0);
  // Wait until the temporary output exists, then interrupt.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (entries_in(dir) < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(entries_in(dir), 2u) << "no temporary output appeared";
  ::kill(p.pid(), SIGINT);
  const auto r = p.finish();
  EXPECT_EQ(r.exit_code, 128 + SIGINT) << r.out << r.err;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(entries_in(dir), 1u);  // the input only
}

}  // namespace
}  // namespace ember
