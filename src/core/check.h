// EMBER_CHECK for broken invariants (on in every build type) and ember::fail() to throw ember::Error.
#pragma once

#include <fmt/format.h>

#include "ember/error.h"

namespace ember {
namespace detail {
[[noreturn]] void check_failed(const char* condition, const char* file, int line, const char* message) noexcept;
}  // namespace detail

// Throws ember::Error with a formatted message. Only for errors caused by input; never on hot paths.
template <typename... Args>
[[noreturn]] void fail(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(code, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace ember

// A broken invariant is a bug in ember, not bad input: print file:line and abort. Stays on in
// release builds (it does not depend on NDEBUG); keep it out of the innermost loops.
#define EMBER_CHECK(cond)                                           \
  do {                                                              \
    if (!(cond)) [[unlikely]]                                       \
      ::ember::detail::check_failed(#cond, __FILE__, __LINE__, ""); \
  } while (0)

#define EMBER_CHECK_MSG(cond, msg)                                   \
  do {                                                               \
    if (!(cond)) [[unlikely]]                                        \
      ::ember::detail::check_failed(#cond, __FILE__, __LINE__, msg); \
  } while (0)
