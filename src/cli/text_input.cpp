// Reading a command's -f text (see text_input.h).
#include "cli/text_input.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "cli/console.h"
#include "core/check.h"

namespace ember::cli {

std::string read_text_input(const std::string& path, std::string_view what, size_t max_bytes) {
  const bool from_stdin = path == "-";
  if (from_stdin && ::isatty(STDIN_FILENO) == 1) {
    write_stderr(fmt::format("ember: reading {} from standard input (end it with Ctrl-D)\n", what));
  }
  std::FILE* f = from_stdin ? stdin : std::fopen(path.c_str(), "rb");
  if (f == nullptr) fail(ErrorCode::kIo, "cannot open '{}': {}", path, std::strerror(errno));
  const auto close = [from_stdin](std::FILE* file) {
    if (!from_stdin) std::fclose(file);
  };
  const std::unique_ptr<std::FILE, decltype(close)> closer(f, close);
  std::string text;
  char buffer[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) {
    if (n > max_bytes - text.size()) {
      fail(ErrorCode::kInvalidArgument, "'{}' holds more than {}: too much for {}",
           from_stdin ? "standard input" : path, human_bytes(max_bytes), what);
    }
    text.append(buffer, n);
  }
  if (std::ferror(f)) {
    fail(ErrorCode::kIo, "cannot read '{}': {}", from_stdin ? "standard input" : path, std::strerror(errno));
  }
  // Like llama.cpp's -f: the newline an editor puts at the end is not part of the text.
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace ember::cli
