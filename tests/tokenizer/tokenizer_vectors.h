// The tokenizer test vectors of ../shared/data/vocab: X.gguf.inp holds inputs separated by
// "\n__ggml_vocab_test__\n" (one after each input), X.gguf.out one line of expected ids per input;
// and the checks the SPM / BPE tests run on them.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_data.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace ember::tokenizer_test {

struct Vector {
  std::string input;
  std::vector<TokenId> expected;
};

inline std::vector<Vector> read_vectors(const std::filesystem::path& gguf) {
  const std::string inputs = test::read_file(gguf.string() + ".inp");
  const std::string outputs = test::read_file(gguf.string() + ".out");
  static const std::string kSeparator = "\n__ggml_vocab_test__\n";
  std::vector<Vector> vectors;
  size_t at = 0;
  for (size_t end; (end = inputs.find(kSeparator, at)) != std::string::npos; at = end + kSeparator.size()) {
    vectors.push_back({inputs.substr(at, end - at), {}});
  }
  std::istringstream lines(outputs);
  std::string line;
  for (Vector& v : vectors) {
    if (!std::getline(lines, line)) break;
    std::istringstream ids(line);
    for (TokenId id; ids >> id;) v.expected.push_back(id);
  }
  return vectors;
}

// Ids as " 1 2 3", so that a mismatch prints both sequences readably.
inline std::string describe(const std::vector<TokenId>& ids) {
  std::ostringstream s;
  for (TokenId id : ids) s << ' ' << id;
  return s.str();
}
inline std::string describe(std::initializer_list<TokenId> ids) { return describe(std::vector<TokenId>(ids)); }

// Every vector of ../shared/data/vocab/ggml-vocab-NAME.gguf encodes exactly as llama.cpp's test
// runs it (no BOS, special tokens not parsed, added words still matched) and, with
// `round_trip`, decodes back to its input.
inline void expect_vectors(const std::filesystem::path& data, const std::string& name, bool round_trip) {
  SCOPED_TRACE(name);
  const std::filesystem::path path = data / "vocab" / ("ggml-vocab-" + name + ".gguf");
  const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile::open(path.string()));
  const std::vector<Vector> vectors = read_vectors(path);
  ASSERT_GT(vectors.size(), 20u);
  const EncodeOptions options{.add_special = false, .parse_special = false};
  for (const Vector& v : vectors) {
    EXPECT_EQ(describe(tokenizer.encode(v.input, options)), describe(v.expected)) << "input: \"" << v.input << "\"";
    if (round_trip) {
      EXPECT_EQ(tokenizer.decode(v.expected), v.input) << "round trip of \"" << v.input << "\"";
    }
  }
}

}  // namespace ember::tokenizer_test
