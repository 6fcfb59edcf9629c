// ChatTemplate: a Hugging Face chat template (a GGUF's tokenizer.chat_template) parsed once and
// rendered for any number of conversations, byte-identical to Python Jinja2 with the settings
// transformers uses (docs/chat_template.md lists the supported language and the limits).
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "ember/error.h"

namespace ember {

namespace jinja {
struct Program;
}

enum class TemplateErrorKind {
  kSyntax,  // the template does not parse (Jinja2's TemplateSyntaxError / TemplateAssertionError)
  kRaised,  // the template called raise_exception(message)
  kRender,  // a Python / Jinja2 error while rendering (UndefinedError, TypeError, ...)
  kLimit,   // the render hit one of ChatTemplateLimits
};

// A template failure. message() is the text Python Jinja2 gives (str() of its exception) for the
// errors Jinja2 shares; what() adds the position ("chat template line 3, column 7: ...") except for
// kRaised, whose what() is the template's own message. The code is kFormat (kInvalidArgument for
// kRaised: the conversation is what the template refuses).
class TemplateError : public Error {
 public:
  TemplateError(TemplateErrorKind kind, std::string message, uint32_t line, uint32_t column);
  TemplateErrorKind kind() const noexcept { return kind_; }
  const std::string& message() const noexcept { return message_; }
  uint32_t line() const noexcept { return line_; }      // 1-based; 0 when unknown
  uint32_t column() const noexcept { return column_; }  // 1-based, in characters; 0 when unknown

 private:
  TemplateErrorKind kind_;
  std::string message_;
  uint32_t line_, column_;
};

// Bounds on one render, so that a hostile template fails instead of hanging or exhausting memory.
// The defaults are far above what real templates need (they render in well under 10,000 steps).
struct ChatTemplateLimits {
  size_t max_string_bytes = size_t{16} << 20;  // the output and every string built on the way
  uint64_t max_steps = 20'000'000;             // statements + loop iterations + calls + filters
  int max_call_depth = 100;                    // nested macro calls
};

struct ChatTemplateRenderOptions {
  // The clock behind strftime_now() (tm_year, tm_mon, tm_mday, tm_hour, tm_min, tm_sec are used;
  // the weekday and day of the year are derived). Absent: the current local time.
  std::optional<std::tm> now;
  ChatTemplateLimits limits;
};

class ChatTemplate {
 public:
  // Parses a template (UTF-8). Throws TemplateError(kSyntax) with the line and column.
  static ChatTemplate parse(std::string_view source);

  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();

  // Renders with `context`'s keys as the template's variables (messages, tools,
  // add_generation_prompt, bos_token, eos_token, ...). Globals: raise_exception, strftime_now,
  // range, dict, namespace. Throws TemplateError; Error(kInvalidArgument) when the context is not
  // a JSON object. Const and thread-safe: one template renders on many threads at once.
  std::string render(const nlohmann::ordered_json& context, const ChatTemplateRenderOptions& options = {}) const;

 private:
  explicit ChatTemplate(std::unique_ptr<jinja::Program> program);
  std::unique_ptr<jinja::Program> program_;
};

// "2026-11-29T12:00:00" (or with a space for the 'T', optional seconds) as a broken-down time with
// the weekday and day of the year filled in; nullopt when malformed or out of range.
std::optional<std::tm> parse_template_clock(std::string_view text);

}  // namespace ember
