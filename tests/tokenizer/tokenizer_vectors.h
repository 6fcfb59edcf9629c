// The tokenizer test vectors of ../shared/data/vocab: X.gguf.inp holds inputs separated by
// "\n__ggml_vocab_test__\n" (one after each input), X.gguf.out one line of expected ids per input.
#pragma once

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_data.h"
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

}  // namespace ember::tokenizer_test
