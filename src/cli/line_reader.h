// LineReader: the input lines of an interactive command — libedit's line editing and history on a
// terminal (kept in ~/.ember_history between runs), plain lines from a pipe or file otherwise.
#pragma once

#include <optional>
#include <string>

namespace ember::cli {

class LineReader {
 public:
  // `interactive`: standard input is a terminal (editing, history, a prompt).
  explicit LineReader(bool interactive);
  ~LineReader();  // saves the history
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  bool interactive() const noexcept { return interactive_; }
  // The next line without its newline; nullopt at the end of input (Ctrl-D). A line ending in
  // '\' continues on the next one (joined with a newline).
  std::optional<std::string> read(const std::string& prompt);

 private:
  std::optional<std::string> read_one(const std::string& prompt);

  bool interactive_;
  std::string history_path_;
};

}  // namespace ember::cli
