// Names of ember::ErrorCode values and the EMBER_CHECK failure handler.
#include "core/check.h"

#include <cstdio>
#include <cstdlib>

#include "ember/error.h"

namespace ember {

std::string_view error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kIo: return "io";
    case ErrorCode::kFormat: return "format";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kTypeMismatch: return "type_mismatch";
    case ErrorCode::kOutOfMemory: return "out_of_memory";
  }
  return "unknown";
}

namespace detail {

[[noreturn]] void check_failed(const char* condition, const char* file, int line, const char* message) noexcept {
  std::fprintf(stderr, "ember: internal check failed: %s at %s:%d%s%s\n", condition, file, line, message[0] ? ": " : "",
               message);
  std::fflush(stderr);
  std::abort();
}

}  // namespace detail
}  // namespace ember
