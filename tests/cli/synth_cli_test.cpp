// End-to-end tests of `ember synth`: a tiny model with a real or placeholder vocabulary, and bad
// options failing with one line.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>

#include "cli/cli_run.h"
#include "gguf/gguf_reader.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::ember;

TEST(SynthCli, WritesTinyWithTheRealVocabulary) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path out = test::temp_dir("synth_cli") / "tiny.gguf";
  const auto r =
      ember({"synth", "--preset", "tiny", "--type", "q8_0", "-o", out.string(), "--data-dir", data.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("synthetic tiny (1.31M parameters, 2 layers), Q8_0"), std::string::npos) << r.out;
  const GgufFile f = GgufFile::open(out.string());
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->dtype, DType::kQ8_0);
  EXPECT_EQ(f.get_strings("tokenizer.ggml.tokens")[258], "<0xFF>");  // stories260K's byte tokens
  EXPECT_EQ(f.get<uint32_t>("general.file_type"), 7u);
}

TEST(SynthCli, MissingVocabularyWarnsAndWritesAPlaceholder) {
  const fs::path dir = test::temp_dir("synth_cli_novocab");
  const auto r =
      ember({"synth", "--preset", "tiny", "-o", (dir / "t.gguf").string(), "--data-dir", (dir / "nowhere").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::ranges::count(r.err, '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("ember: warning: no vocabulary for tiny"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("vocabulary: placeholder"), std::string::npos) << r.out;
}

TEST(SynthCli, BadOptionsFailWithOneLine) {
  const fs::path dir = test::temp_dir("synth_cli_bad");
  const std::string out = (dir / "x.gguf").string();
  const std::vector<std::pair<std::vector<std::string>, int>> cases = {
      {{"synth", "--preset", "gpt-5", "-o", out}, 2},
      {{"synth", "--preset", "tiny", "--type", "Q7", "-o", out}, 2},
      {{"synth", "--preset", "tiny"}, 2},
      {{"synth", "--preset", "tiny", "-o", out, "--vocab", (dir / "missing.gguf").string()}, 1},
      {{"synth", "--preset", "tiny", "-o", (dir / "no/dir/x.gguf").string(), "--no-vocab"}, 1},
  };
  for (const auto& [args, code] : cases) {
    const auto r = ember(args);
    EXPECT_EQ(r.exit_code, code) << args.back();
    EXPECT_EQ(std::ranges::count(r.err, '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("ember: error: ", 0), 0u) << r.err;
  }
  EXPECT_TRUE(fs::is_empty(dir));
}

// The output may not be a device or FIFO, nor the vocabulary being read.
TEST(SynthCli, RefusesOutputsThatAreNotNewRegularFiles) {
  const fs::path dir = test::temp_dir("synth_cli_outputs");
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  auto r = ember({"synth", "--preset", "tiny", "-o", (dir / "fifo").string(), "--no-vocab"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is not a regular file"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_fifo(dir / "fifo"));

  ASSERT_EQ(ember({"synth", "--preset", "tiny", "-o", (dir / "vocab.gguf").string(), "--no-vocab"}).exit_code, 0);
  const std::string before = test::read_file(dir / "vocab.gguf");
  r = ember(
      {"synth", "--preset", "tiny", "-o", (dir / "vocab.gguf").string(), "--vocab", (dir / "vocab.gguf").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("refusing to overwrite"), std::string::npos) << r.err;
  EXPECT_EQ(test::read_file(dir / "vocab.gguf"), before);
  EXPECT_EQ(test::entries_in(dir), 2u);
}

}  // namespace
}  // namespace ember
