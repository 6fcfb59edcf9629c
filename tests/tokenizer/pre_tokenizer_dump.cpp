// pre_tokenizer_dump: the pieces PreTokenizer::split gives, for tests/tokenizer/pre_tokenizer_oracle.py.
//
//   pre_tokenizer_dump --list   the supported names, one a line
//   pre_tokenizer_dump NAME     reads UTF-8 inputs from stdin, each ended by a NUL byte (a last one
//                               without it counts too), and writes for each input its pieces, each
//                               followed by \x01, then a NUL byte.
//
// The inputs must be valid UTF-8 without NUL or \x01 bytes (the oracle's alphabet has neither).
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/pre_tokenizer.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s --list | %s NAME < inputs\n", argv[0], argv[0]);
    return 2;
  }
  const std::string_view arg = argv[1];
  try {
    if (arg == "--list") {
      const std::string list = ember::supported_pre_tokenizers();  // "a, b, c"
      size_t begin = 0;
      while (begin < list.size()) {
        size_t end = list.find(',', begin);
        if (end == std::string::npos) end = list.size();
        std::printf("%s\n", list.substr(begin, end - begin).c_str());
        begin = end + 1;
        while (begin < list.size() && list[begin] == ' ') ++begin;
      }
      return 0;
    }
    const ember::PreTokenizer pre_tokenizer(arg);
    std::string input;
    char buffer[1 << 16];
    for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, stdin)) > 0;) input.append(buffer, n);
    if (std::ferror(stdin)) {
      std::fprintf(stderr, "pre_tokenizer_dump: cannot read the inputs\n");
      return 1;
    }
    std::string out;
    out.reserve(input.size() * 2);
    std::vector<std::string_view> pieces;
    size_t begin = 0;
    while (begin < input.size()) {
      size_t end = input.find('\0', begin);
      if (end == std::string::npos) end = input.size();
      pieces.clear();
      pre_tokenizer.split(std::string_view(input).substr(begin, end - begin), pieces);
      for (std::string_view piece : pieces) {
        out += piece;
        out += '\x01';
      }
      out += '\0';
      begin = end + 1;
    }
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
      std::fprintf(stderr, "pre_tokenizer_dump: cannot write the pieces\n");
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pre_tokenizer_dump: %s\n", e.what());
    return 2;
  }
  return 0;
}
