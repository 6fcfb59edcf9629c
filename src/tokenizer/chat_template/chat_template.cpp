// ChatTemplate: parse once (UTF-8 check, lexer, parser), render many (interpreter), every internal
// failure turned into a TemplateError with its position.
#include "tokenizer/chat_template/chat_template.h"

#include <charconv>

#include "core/utf8.h"
#include "tokenizer/chat_template/failure.h"
#include "tokenizer/chat_template/interpreter.h"
#include "tokenizer/chat_template/lexer.h"
#include "tokenizer/chat_template/program.h"

namespace ember {
namespace {

std::string describe(TemplateErrorKind kind, const std::string& message, uint32_t line, uint32_t column) {
  if (kind == TemplateErrorKind::kRaised) return message;
  std::string where = "chat template";
  if (line > 0) where += " line " + std::to_string(line);
  if (column > 0) where += ", column " + std::to_string(column);
  return where + ": " + message;
}

TemplateErrorKind kind_of(jinja::FailureKind kind) {
  switch (kind) {
    case jinja::FailureKind::kSyntax: return TemplateErrorKind::kSyntax;
    case jinja::FailureKind::kRaised: return TemplateErrorKind::kRaised;
    case jinja::FailureKind::kLimit: return TemplateErrorKind::kLimit;
    default: return TemplateErrorKind::kRender;
  }
}

TemplateError to_template_error(const jinja::Failure& f, const jinja::Program* program) {
  uint32_t line = 0, column = 0;
  if (program != nullptr && f.pos() != jinja::Failure::kNoPos) {
    line = program->line_of(f.pos());
    column = program->column_of(f.pos());
  }
  return TemplateError(kind_of(f.kind()), f.message(), line, column);
}

std::tm current_local_time() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  return tm;
}

// Fills tm_wday and tm_yday from the date (timegm normalizes a copy without touching the time zone).
std::optional<std::tm> complete(std::tm tm) {
  std::tm copy = tm;
  copy.tm_isdst = 0;
  if (timegm(&copy) == static_cast<std::time_t>(-1) && copy.tm_year != 69) return std::nullopt;
  if (copy.tm_mday != tm.tm_mday || copy.tm_mon != tm.tm_mon || copy.tm_hour != tm.tm_hour) return std::nullopt;
  tm.tm_wday = copy.tm_wday;
  tm.tm_yday = copy.tm_yday;
  tm.tm_isdst = -1;
  return tm;
}

}  // namespace

TemplateError::TemplateError(TemplateErrorKind kind, std::string message, uint32_t line, uint32_t column)
    : Error(kind == TemplateErrorKind::kRaised ? ErrorCode::kInvalidArgument : ErrorCode::kFormat,
            describe(kind, message, line, column)),
      kind_(kind),
      message_(std::move(message)),
      line_(line),
      column_(column) {}

ChatTemplate::ChatTemplate(std::unique_ptr<jinja::Program> program) : program_(std::move(program)) {}
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;

ChatTemplate ChatTemplate::parse(std::string_view source) {
  const size_t bad = utf8::error_offset(source);
  if (bad != source.size()) {
    // Python could not even decode such a template; report where the bad byte is.
    uint32_t line = 1, column = 1;
    for (size_t i = 0; i < bad; ++i) {
      if (source[i] == '\n') {
        ++line;
        column = 1;
      } else if ((static_cast<unsigned char>(source[i]) & 0xC0) != 0x80) {
        ++column;
      }
    }
    throw TemplateError(TemplateErrorKind::kSyntax, "invalid UTF-8 at byte " + std::to_string(bad), line, column);
  }
  std::unique_ptr<jinja::Program> program;
  try {
    program = jinja::parse_program(source);
  } catch (const jinja::Failure& f) {
    // The position refers to the normalized source, which has the same lines and columns.
    jinja::Program lines;
    lines.source = jinja::normalize_source(source);
    lines.line_starts.push_back(0);
    for (size_t i = 0; i < lines.source.size(); ++i) {
      if (lines.source[i] == '\n') lines.line_starts.push_back(static_cast<uint32_t>(i + 1));
    }
    throw to_template_error(f, &lines);
  }
  return ChatTemplate(std::move(program));
}

std::string ChatTemplate::render(const nlohmann::ordered_json& context,
                                 const ChatTemplateRenderOptions& options) const {
  if (!context.is_object()) throw Error(ErrorCode::kInvalidArgument, "the chat template context must be a JSON object");
  jinja::RenderSettings settings;
  settings.now = options.now ? complete(*options.now).value_or(*options.now) : current_local_time();
  settings.max_string_bytes = options.limits.max_string_bytes;
  settings.max_steps = options.limits.max_steps;
  settings.max_call_depth = options.limits.max_call_depth;
  try {
    jinja::Interpreter interpreter(*program_, settings);
    return interpreter.render(context);
  } catch (const jinja::Failure& f) {
    throw to_template_error(f, program_.get());
  }
}

std::optional<std::tm> parse_template_clock(std::string_view text) {
  // YYYY-MM-DD[T ]HH:MM[:SS]
  auto number = [&](size_t pos, size_t len, int& out) {
    if (pos + len > text.size()) return false;
    const auto r = std::from_chars(text.data() + pos, text.data() + pos + len, out);
    return r.ec == std::errc() && r.ptr == text.data() + pos + len;
  };
  std::tm tm{};
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() != 16 && text.size() != 19) return std::nullopt;
  if (!number(0, 4, year) || text[4] != '-' || !number(5, 2, month) || text[7] != '-' || !number(8, 2, day) ||
      (text[10] != 'T' && text[10] != ' ') || !number(11, 2, hour) || text[13] != ':' || !number(14, 2, minute)) {
    return std::nullopt;
  }
  if (text.size() == 19 && (text[16] != ':' || !number(17, 2, second))) return std::nullopt;
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    return std::nullopt;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return complete(tm);
}

}  // namespace ember
