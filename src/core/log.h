// Logging to stderr with levels; EMBER_LOG_LEVEL=error|warn|info|debug|trace sets the start level.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace ember {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3, kTrace = 4 };

LogLevel log_level() noexcept;
void set_log_level(LogLevel level) noexcept;
// Parses "error", "warn", "info", "debug", "trace" (case-insensitive); false when unknown.
bool parse_log_level(std::string_view text, LogLevel* out) noexcept;
// Writes one line "ember: <level>: <message>\n" to stderr in a single write (lines never interleave).
void log_write(LogLevel level, std::string_view message) noexcept;

namespace detail {
inline bool log_enabled(LogLevel level) noexcept { return static_cast<int>(level) <= static_cast<int>(log_level()); }
}  // namespace detail

}  // namespace ember

// The message is formatted only when the level is enabled.
#define EMBER_LOG(level, ...)                                                                     \
  do {                                                                                            \
    if (::ember::detail::log_enabled(level)) ::ember::log_write(level, fmt::format(__VA_ARGS__)); \
  } while (0)
#define EMBER_LOG_ERROR(...) EMBER_LOG(::ember::LogLevel::kError, __VA_ARGS__)
#define EMBER_LOG_WARN(...) EMBER_LOG(::ember::LogLevel::kWarn, __VA_ARGS__)
#define EMBER_LOG_INFO(...) EMBER_LOG(::ember::LogLevel::kInfo, __VA_ARGS__)
#define EMBER_LOG_DEBUG(...) EMBER_LOG(::ember::LogLevel::kDebug, __VA_ARGS__)
#define EMBER_LOG_TRACE(...) EMBER_LOG(::ember::LogLevel::kTrace, __VA_ARGS__)
