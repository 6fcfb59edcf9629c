// End-to-end tests of `ember tokenize`: ids, pieces and the default table against the Tokenizer
// library on llama.cpp's vocab files, text from TEXT / stdin / -f, special-token parsing, and bad
// input or options failing with one line.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "cli/cli_run.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "support/test_data.h"
#include "tokenizer/tokenizer.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::count_lines;
using test::ember;
using test::ember_with_stdin;
using test::lines_of;
using test::write_text;

// What `--ids` prints for `ids`: one line, single spaces.
std::string ids_line(const std::vector<TokenId>& ids) { return fmt::format("{}\n", fmt::join(ids, " ")); }

std::vector<TokenId> encode(const fs::path& vocab, const std::string& text, bool add_special, bool parse_special) {
  const GgufFile file = GgufFile::open(vocab.string());
  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  return tokenizer.encode(text, EncodeOptions{add_special, parse_special});
}

TEST(TokenizeCli, IdsAreBosThenTheTokenizersIds) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path spm = data / "vocab/ggml-vocab-llama-spm.gguf";
  const auto r = ember({"tokenize", "-m", spm.string(), "--ids", "Hello world"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // machine-readable output: no summary
  const std::vector<TokenId> expected = encode(spm, "Hello world", true, false);
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(expected.front(), 1);
  EXPECT_EQ(r.out, ids_line(expected));
  EXPECT_EQ(r.out, "1 15043 3186\n");  // llama.cpp's ids for this text

  const auto no_bos = ember({"tokenize", "-m", spm.string(), "--no-bos", "--ids", "Hello world"});
  ASSERT_EQ(no_bos.exit_code, 0) << no_bos.err;
  EXPECT_EQ(no_bos.out, ids_line(encode(spm, "Hello world", false, false)));
  EXPECT_EQ(no_bos.out, "15043 3186\n");

  // An empty text is BOS alone, or an empty line.
  EXPECT_EQ(ember({"tokenize", "-m", spm.string(), "--ids", ""}).out, "1\n");
  EXPECT_EQ(ember({"tokenize", "-m", spm.string(), "--ids", "--no-bos", ""}).out, "\n");
}

TEST(TokenizeCli, DefaultOutputIsOneLinePerTokenWithIdAndPiece) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path spm = data / "vocab/ggml-vocab-llama-spm.gguf";
  const auto r = ember({"tokenize", "-m", spm.string(), "Hello world"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1\t\"<s>\"\n15043\t\" Hello\"\n3186\t\" world\"\n");
  EXPECT_EQ(r.err, "3 tokens (11 bytes of text)\n");

  // A longer text: the id column is exactly what --ids prints, one line per token.
  const std::string text = "The quick brown fox\tjumps over\nthe lazy dog: 3.14, \"quoted\", C:\\path, 你好 🦙!";
  const auto table = ember({"tokenize", "-m", spm.string(), text});
  const auto ids = ember({"tokenize", "-m", spm.string(), "--ids", text});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  const std::vector<TokenId> expected = encode(spm, text, true, false);
  EXPECT_EQ(ids.out, ids_line(expected));
  const std::vector<std::string> lines = lines_of(table.out);
  ASSERT_EQ(lines.size(), expected.size());
  EXPECT_EQ(count_lines(table.out), expected.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    const size_t tab = lines[i].find('\t');
    ASSERT_NE(tab, std::string::npos);
    EXPECT_EQ(lines[i].substr(0, tab), std::to_string(expected[i]));
    const std::string piece = lines[i].substr(tab + 1);
    ASSERT_GE(piece.size(), 2u);
    EXPECT_EQ(piece.front(), '"');
    EXPECT_EQ(piece.back(), '"');
    EXPECT_TRUE(std::ranges::none_of(piece, [](char c) { return static_cast<unsigned char>(c) < 0x20; }));
  }
  EXPECT_EQ(table.err, fmt::format("{} tokens ({} bytes of text)\n", expected.size(), text.size()));
}

TEST(TokenizeCli, PiecesAreQuotedAndEscaped) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path spm = data / "vocab/ggml-vocab-llama-spm.gguf";
  // A tab, a newline, a quote, a backslash, and an emoji SPM spells as four byte tokens.
  const auto r = ember({"tokenize", "-m", spm.string(), "--pieces", "--no-bos", "a\tb\n\"\\ \xF0\x9F\xA6\x99"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const std::vector<std::string> lines = lines_of(r.out);
  EXPECT_EQ(lines.size(), encode(spm, "a\tb\n\"\\ \xF0\x9F\xA6\x99", false, false).size());
  for (const std::string expected :
       {R"(" a")", R"("\t")", R"("\n")", R"("\xf0")", R"("\x9f")", R"("\xa6")", R"("\x99")"}) {
    EXPECT_NE(std::ranges::find(lines, expected), lines.end()) << expected << " in\n" << r.out;
  }
  EXPECT_NE(r.out.find(R"(\")"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"(\\)"), std::string::npos) << r.out;
}

TEST(TokenizeCli, ReadsStandardInputAndFiles) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path spm = data / "vocab/ggml-vocab-llama-spm.gguf";
  const std::string model = spm.string();
  // Byte for byte: the final newline is part of the text.
  const std::string text = "Hello world\nsecond line\n";
  const std::string expected = ids_line(encode(spm, text, true, false));

  for (const std::vector<std::string>& args : {std::vector<std::string>{"tokenize", "-m", model, "--ids"},
                                               std::vector<std::string>{"tokenize", "-m", model, "--ids", "-"},
                                               std::vector<std::string>{"tokenize", "-m", model, "--ids", "-f", "-"}}) {
    SCOPED_TRACE(fmt::format("{}", fmt::join(args, " ")));
    const auto r = ember_with_stdin(args, text);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, expected);
  }

  const fs::path file = test::temp_dir("tokenize_cli_file") / "text.txt";
  write_text(file, text);
  const auto r = ember({"tokenize", "-m", model, "--ids", "-f", file.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, expected);
  const auto table = ember({"tokenize", "-m", model, "--file", file.string()});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(count_lines(table.out), encode(spm, text, true, false).size());
}

TEST(TokenizeCli, ParseSpecialTurnsControlTokenTextIntoTheToken) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path bpe = data / "vocab/ggml-vocab-llama-bpe.gguf";
  const std::string text = "<|begin_of_text|>hi";
  constexpr TokenId kBeginOfText = 128000;

  const auto parsed = ember({"tokenize", "-m", bpe.string(), "--no-bos", "--parse-special", "--ids", text});
  ASSERT_EQ(parsed.exit_code, 0) << parsed.err;
  const std::vector<TokenId> parsed_ids = encode(bpe, text, false, true);
  EXPECT_EQ(parsed.out, ids_line(parsed_ids));
  EXPECT_EQ(std::ranges::count(parsed_ids, kBeginOfText), 1);
  EXPECT_EQ(parsed_ids.front(), kBeginOfText);
  const auto table = ember({"tokenize", "-m", bpe.string(), "--no-bos", "--parse-special", text});
  EXPECT_EQ(lines_of(table.out).front(), "128000\t\"<|begin_of_text|>\"");

  const auto plain = ember({"tokenize", "-m", bpe.string(), "--no-bos", "--ids", text});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const std::vector<TokenId> plain_ids = encode(bpe, text, false, false);
  EXPECT_EQ(plain.out, ids_line(plain_ids));
  EXPECT_EQ(std::ranges::count(plain_ids, kBeginOfText), 0);
  EXPECT_GT(plain_ids.size(), parsed_ids.size());  // split into ordinary pieces
  // Without --no-bos the vocabulary's BOS (the same token) comes first.
  const auto with_bos = ember({"tokenize", "-m", bpe.string(), "--ids", text});
  EXPECT_EQ(with_bos.out, ids_line(encode(bpe, text, true, false)));
  EXPECT_EQ(with_bos.out.rfind("128000 ", 0), 0u) << with_bos.out;
}

TEST(TokenizeCli, BadInputAndOptionsFailWithOneLine) {
  const fs::path dir = test::temp_dir("tokenize_cli_bad");
  // A valid GGUF without tokenizer metadata.
  const fs::path no_tokenizer = dir / "no_tokenizer.gguf";
  {
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.write_file(no_tokenizer.string());
  }
  const fs::path text_file = dir / "text.txt";
  write_text(text_file, "plain text, long enough to be read as a GGUF header");
  const std::string missing = (dir / "missing.gguf").string();
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"tokenize", "-m", missing, "hi"}, 1, "cannot open '" + missing + "'"},
      {{"tokenize", "-m", no_tokenizer.string(), "hi"}, 1, "has no tokenizer"},
      {{"tokenize", "-m", text_file.string(), "hi"}, 1, "text.txt': not a GGUF file"},
      {{"tokenize", "hi"}, 2, "--model is required"},
      {{"tokenize", "-m", missing, "--ids", "--pieces", "hi"}, 2, "--ids and --pieces cannot be combined"},
      {{"tokenize", "-m", missing, "-f", text_file.string(), "hi"}, 2, "TEXT or with -f FILE, not both"},
      {{"tokenize", "-m", missing, "Hello", "world"}, 2, "unexpected argument: world ("},
      // Extras named in the order typed (CLI11's own message lists them last first).
      {{"tokenize", "-m", missing, "hi", "--frob", "--nicate"}, 2, "unexpected arguments: --frob --nicate ("},
      {{"tokenize", "-m", missing, "--idz", "hi"}, 2, "--idz"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(fmt::format("{}", fmt::join(c.args, " ")));
    const auto r = ember(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("ember: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
}

TEST(TokenizeCli, UnreadableTextFileFailsWithOneLine) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string spm = (data / "vocab/ggml-vocab-llama-spm.gguf").string();
  const fs::path dir = test::temp_dir("tokenize_cli_unreadable");
  for (const auto& [path, message] :
       {std::pair{dir / "missing.txt", std::string("cannot open")}, std::pair{dir, std::string("cannot read")}}) {
    const auto r = ember({"tokenize", "-m", spm, "-f", path.string()});
    EXPECT_EQ(r.exit_code, 1) << path;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, fmt::format("ember: error: {} the text file '{}': {}\n", message, path.string(),
                                 path == dir ? "Is a directory" : "No such file or directory"));
  }
}

}  // namespace
}  // namespace ember
