// Console output shared by the `ember` commands: stdout writes that report failure, one-line
// warnings, human-readable sizes and a progress bar for long operations.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace ember::cli {

// Writes all of `text` to stdout; a failed write (full disk, closed pipe) throws Error(kIo).
void write_stdout(std::string_view text);
// Ends the line of text on stdout (best effort, never throws): called before an error that cuts a
// generation short, so that its message starts a line of its own.
void end_stdout_line() noexcept;
// Writes `text` to stderr as is (notes and summaries; best effort, like every stderr write).
void write_stderr(std::string_view text);
// "ember: warning: <message>" on one line on stderr.
void print_warning(std::string_view message);

// "1.84M", "289.5K", "7.24B": a count with a decimal suffix.
std::string human_count(uint64_t n);
// "1.13 MiB": bytes with a binary suffix.
std::string human_bytes(uint64_t n);

// A status line on stderr while something slow runs ("ember: loading ..."), erased when it is
// done (or fails); nothing when not `shown` (stderr not a terminal).
class StatusLine {
 public:
  StatusLine(bool shown, std::string_view text) : shown_(shown) {
    if (shown_) write_stderr(text);
  }
  ~StatusLine() { clear(); }
  StatusLine(const StatusLine&) = delete;
  StatusLine& operator=(const StatusLine&) = delete;

  void clear() {
    if (shown_) write_stderr("\r\x1b[K");
    shown_ = false;
  }

 private:
  bool shown_;
};

// A one-line progress bar on stderr, redrawn in place at most ~10 times a second; silent when
// stderr is not a terminal (logs and pipes get the final summary only).
class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();  // finishes the line if it was drawn

  // done/total in any unit; `detail` (e.g. the current tensor) is shown after the percentage.
  void update(uint64_t done, uint64_t total, std::string_view detail);
  void finish();

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace ember::cli
