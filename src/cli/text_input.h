// Text a command takes from a file (`-f FILE`, '-' for standard input), as llama.cpp's -f does.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ember::cli {

// The file's bytes with one trailing newline dropped (the one an editor puts at the end); "-" reads
// standard input, with a hint on stderr when it is a terminal. `what` names the text in that hint
// ("the prompt"). Throws Error(kIo) naming the file when it cannot be opened or read, and
// Error(kInvalidArgument) when it holds more than `max_bytes` (/dev/zero must not eat the memory).
inline constexpr size_t kMaxTextInputBytes = size_t{1} << 30;
std::string read_text_input(const std::string& path, std::string_view what, size_t max_bytes = kMaxTextInputBytes);

}  // namespace ember::cli
