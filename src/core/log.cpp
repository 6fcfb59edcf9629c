// Log level state (initialised from EMBER_LOG_LEVEL) and the stderr sink.
#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <string>

namespace ember {
namespace {

LogLevel initial_level() noexcept {
  LogLevel level = LogLevel::kWarn;
  const char* env = std::getenv("EMBER_LOG_LEVEL");
  if (env != nullptr && !parse_log_level(env, &level)) {
    // A typo should not silently leave the default in force.
    log_write(LogLevel::kWarn,
              "EMBER_LOG_LEVEL=" + std::string(env) + " is not one of error, warn, info, debug, trace; using warn");
  }
  return level;
}

std::atomic<int>& level_storage() noexcept {
  static std::atomic<int> level{static_cast<int>(initial_level())};
  return level;
}

constexpr std::string_view kNames[] = {"error", "warn", "info", "debug", "trace"};

}  // namespace

LogLevel log_level() noexcept { return static_cast<LogLevel>(level_storage().load(std::memory_order_relaxed)); }

void set_log_level(LogLevel level) noexcept {
  level_storage().store(static_cast<int>(level), std::memory_order_relaxed);
}

bool parse_log_level(std::string_view text, LogLevel* out) noexcept {
  for (size_t i = 0; i < std::size(kNames); ++i) {
    const std::string_view name = kNames[i];
    if (name.size() != text.size()) continue;
    bool same = true;
    for (size_t j = 0; j < name.size() && same; ++j) {
      same = std::tolower(static_cast<unsigned char>(text[j])) == name[j];
    }
    if (same) {
      *out = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

void log_write(LogLevel level, std::string_view message) noexcept {
  try {
    std::string line = "ember: ";
    line += kNames[static_cast<int>(level)];
    line += ": ";
    line += message;
    line += '\n';
    // One write(2) per line: concurrent loggers never interleave within a line.
    size_t done = 0;
    while (done < line.size()) {
      const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
  } catch (...) {
    // Logging must never throw (out of memory while formatting): drop the line.
  }
}

}  // namespace ember
