// ember::Error: the one exception type for errors caused by input (files, requests, options).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "ember/export.h"

namespace ember {

// What went wrong, coarsely; the message says exactly what (file, key, field, value).
enum class ErrorCode {
  kInvalidArgument,  // a caller passed an impossible option or value
  kIo,               // open/read/write/mmap failed
  kFormat,           // a file is malformed (bad magic, truncated, out-of-range offset, ...)
  kUnsupported,      // well-formed but not supported (version, tensor type, architecture)
  kNotFound,         // a requested key, tensor or file does not exist
  kTypeMismatch,     // a value exists but has another type than asked for
  kOutOfMemory,      // an allocation failed
};

// Stable lower-case name of a code, e.g. "format"; used in CLI and API error output.
EMBER_API std::string_view error_code_name(ErrorCode code) noexcept;

// Exported so a catch in a program sees the library's type (its typeinfo is shared).
class EMBER_API Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace ember
