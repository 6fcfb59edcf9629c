// Console helpers: stdout/stderr writes, size formatting, the progress bar.
#include "cli/console.h"

#include <unistd.h>

#include <array>
#include <cstdio>

#include <fmt/format.h>

#include "cli/value_format.h"
#include "core/check.h"

namespace ember::cli {
namespace {

std::string scaled(double value, std::string_view suffix) { return fmt::format("{:.2f}{}", value, suffix); }

}  // namespace

void write_stderr(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

void write_stdout(std::string_view text) {
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
    fail(ErrorCode::kIo, "cannot write to standard output");
  }
}

void end_stdout_line() noexcept {
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void print_warning(std::string_view message) { write_stderr("ember: warning: " + one_line_text(message) + "\n"); }

std::string human_count(uint64_t n) {
  constexpr std::array<std::string_view, 5> kSuffixes = {"K", "M", "B", "T", "Q"};
  if (n < 1000) return fmt::format("{}", n);
  double value = static_cast<double>(n) / 1000.0;
  size_t i = 0;
  while (value >= 999.995 && i + 1 < kSuffixes.size()) {  // 999.995 would print as "1000.00"
    value /= 1000.0;
    ++i;
  }
  return scaled(value, kSuffixes[i]);
}

std::string human_bytes(uint64_t n) {
  constexpr std::array<std::string_view, 5> kSuffixes = {" KiB", " MiB", " GiB", " TiB", " PiB"};
  if (n < 1024) return fmt::format("{} B", n);
  double value = static_cast<double>(n) / 1024.0;
  size_t i = 0;
  while (value >= 1023.995 && i + 1 < kSuffixes.size()) {
    value /= 1024.0;
    ++i;
  }
  return scaled(value, kSuffixes[i]);
}

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(uint64_t done, uint64_t total, std::string_view detail) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && done < total && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  drawn_ = true;
  constexpr int kWidth = 30;
  const double fraction = total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
  const int filled = static_cast<int>(fraction * kWidth);
  const double seconds = std::chrono::duration<double>(now - start_).count();
  // \r and "erase to end of line": the bar is redrawn in place.
  write_stderr(fmt::format("\r{} [{}{}] {:3.0f}% {:6.1f} s  {}\x1b[K", label_, std::string(filled, '#'),
                           std::string(kWidth - filled, '.'), fraction * 100.0, seconds, escape_text(detail)));
}

void ProgressBar::finish() {
  if (!drawn_) return;
  write_stderr("\n");
  drawn_ = false;
  enabled_ = false;
}

}  // namespace ember::cli
