// LineReader on libedit (BSD-licensed editline, Debian's libedit-dev) or std::getline.
#include "cli/line_reader.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <editline/readline.h>

namespace ember::cli {
namespace {

constexpr int kHistoryLines = 1000;

}  // namespace

LineReader::LineReader(bool interactive) : interactive_(interactive) {
  if (!interactive_) return;
  using_history();
  stifle_history(kHistoryLines);
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    history_path_ = std::string(home) + "/.ember_history";
    read_history(history_path_.c_str());  // absent on the first run: fine
  }
}

LineReader::~LineReader() {
  if (!interactive_ || history_path_.empty()) return;
  // Best effort; the history holds the conversations: only the user may read it.
  if (write_history(history_path_.c_str()) == 0) ::chmod(history_path_.c_str(), 0600);
}

std::optional<std::string> LineReader::read_one(const std::string& prompt) {
  if (!interactive_) {
    std::string line;
    if (!std::getline(std::cin, line)) return std::nullopt;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  char* raw = readline(prompt.c_str());
  if (raw == nullptr) return std::nullopt;
  std::string line(raw);
  std::free(raw);
  return line;
}

std::optional<std::string> LineReader::read(const std::string& prompt) {
  std::optional<std::string> line = read_one(prompt);
  if (!line) return std::nullopt;
  while (!line->empty() && line->back() == '\\') {
    line->back() = '\n';
    std::optional<std::string> more = read_one("… ");
    if (!more) break;
    *line += *more;
  }
  if (interactive_ && line->find_first_not_of(" \t\n") != std::string::npos) add_history(line->c_str());
  return line;
}

}  // namespace ember::cli
