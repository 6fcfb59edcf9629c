// Text a command takes from a file (`-f FILE`, '-' for standard input), as llama.cpp's -f does.
#pragma once

#include <string>
#include <string_view>

namespace ember::cli {

// The file's bytes with one trailing newline dropped (the one an editor puts at the end); "-" reads
// standard input, with a hint on stderr when it is a terminal. `what` names the text in that hint
// ("the prompt"). Throws Error(kIo) naming the file when it cannot be opened or read.
std::string read_text_input(const std::string& path, std::string_view what);

}  // namespace ember::cli
