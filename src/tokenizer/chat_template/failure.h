// jinja::Failure: the interpreter's internal exception (a Python exception's class and message);
// ChatTemplate turns it into an ember::TemplateError with the template position.
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <utility>

namespace ember::jinja {

enum class FailureKind : uint8_t {
  kSyntax,     // TemplateSyntaxError / TemplateAssertionError (parse time)
  kRaised,     // raise_exception(message)
  kUndefined,  // UndefinedError
  kSecurity,   // SecurityError (the sandbox refused an unsafe attribute)
  kType,       // TypeError
  kValue,      // ValueError, ZeroDivisionError, OverflowError, ...
  kRuntime,    // TemplateRuntimeError (unknown filter / test reached at run time)
  kLimit,      // one of ember's render limits (no Python counterpart)
};

class Failure : public std::exception {
 public:
  Failure(FailureKind kind, std::string message, uint32_t pos = kNoPos)
      : kind_(kind), message_(std::move(message)), pos_(pos) {}
  const char* what() const noexcept override { return message_.c_str(); }
  FailureKind kind() const noexcept { return kind_; }
  const std::string& message() const noexcept { return message_; }
  uint32_t pos() const noexcept { return pos_; }
  void set_pos_if_unknown(uint32_t pos) noexcept {
    if (pos_ == kNoPos) pos_ = pos;
  }

  static constexpr uint32_t kNoPos = 0xFFFFFFFF;

 private:
  FailureKind kind_;
  std::string message_;
  uint32_t pos_;  // byte offset in the (normalized) template source
};

[[noreturn]] inline void raise(FailureKind kind, std::string message) { throw Failure(kind, std::move(message)); }
[[noreturn]] inline void type_error(std::string message) { throw Failure(FailureKind::kType, std::move(message)); }
[[noreturn]] inline void value_error(std::string message) { throw Failure(FailureKind::kValue, std::move(message)); }

}  // namespace ember::jinja
