// Jinja2's lexer (jinja2/lexer.py) re-implemented by hand: the same token rules in the same order
// (block end before the tag rules, float before integer before name), the OptionalLStrip logic of
// '{%-', '{%+' and lstrip_blocks, trim_blocks' newline after '%}' and '#}', and the brace balance that
// keeps '}}' inside a dict literal from ending a print statement.
#include "tokenizer/chat_template/lexer.h"

#include <charconv>
#include <cstdio>
#include <cstring>

#include "core/utf8.h"
#include "tokenizer/chat_template/failure.h"
#include "tokenizer/chat_template/py_text.h"

namespace ember::jinja {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

struct OperatorSpelling {
  const char* text;
  Op op;
};
// Longest first, as Jinja2 sorts its operator regex.
constexpr OperatorSpelling kOperators[] = {
    {"//", Op::kFloorDiv}, {"**", Op::kPow},   {"==", Op::kEq},      {"!=", Op::kNe},      {">=", Op::kGe},
    {"<=", Op::kLe},       {"+", Op::kAdd},    {"-", Op::kSub},      {"/", Op::kDiv},      {"*", Op::kMul},
    {"%", Op::kMod},       {"~", Op::kTilde},  {"[", Op::kLBracket}, {"]", Op::kRBracket}, {"(", Op::kLParen},
    {")", Op::kRParen},    {"{", Op::kLBrace}, {"}", Op::kRBrace},   {">", Op::kGt},       {"<", Op::kLt},
    {"=", Op::kAssign},    {".", Op::kDot},    {":", Op::kColon},    {"|", Op::kPipe},     {",", Op::kComma},
    {";", Op::kSemicolon},
};

const char* operator_text(Op op) {
  for (const auto& o : kOperators)
    if (o.op == op) return o.text;
  return "?";
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  std::vector<Token> run() {
    size_t pos = 0;
    while (pos < src_.size()) pos = lex_root(pos);
    Token eof;
    eof.type = Tok::kEof;
    eof.pos = static_cast<uint32_t>(src_.size());
    out_.push_back(std::move(eof));
    return std::move(out_);
  }

 private:
  [[noreturn]] void fail(size_t pos, std::string message) {
    throw Failure(FailureKind::kSyntax, std::move(message), static_cast<uint32_t>(pos));
  }

  bool starts(size_t pos, std::string_view s) const { return src_.substr(pos, s.size()) == s; }

  // Skips Python whitespace (\s) from pos; returns the end and whether the last one was '\n'.
  size_t skip_space(size_t pos, bool* ended_with_newline) const {
    *ended_with_newline = false;
    while (pos < src_.size()) {
      const auto d = utf8::decode(src_, pos);
      if (!py::is_space(d.code_point)) break;
      *ended_with_newline = d.code_point == '\n';
      pos += d.length;
    }
    return pos;
  }

  void emit(Tok type, size_t pos, std::string text = {}) {
    Token t;
    t.type = type;
    t.pos = static_cast<uint32_t>(pos);
    t.text = std::move(text);
    out_.push_back(std::move(t));
  }

  // Data before a tag, after '-' (strip all whitespace before the tag) or lstrip_blocks (strip the
  // spaces and tabs between the line start and a block or comment tag; not for '+' or '{{').
  void emit_data_before_tag(size_t pos, size_t end, char sign, bool lstrip_allowed) {
    std::string_view text = src_.substr(pos, end - pos);
    if (sign == '-') {
      text = std::string_view(text.data(), py::strip(text, std::nullopt, false, true).size());
    } else if (sign != '+' && lstrip_allowed) {
      const size_t nl = text.rfind('\n');
      const size_t line_start = nl == std::string_view::npos ? 0 : nl + 1;
      if ((line_start > 0 || line_starting_) && line_start < text.size() &&
          py::strip(text.substr(line_start), std::nullopt, true, false).empty()) {
        text = text.substr(0, line_start);
      }
    }
    if (!text.empty()) emit(Tok::kData, pos, std::string(text));
  }

  // The position of the next "{{", "{%" or "{#" at or after pos, or npos.
  size_t find_tag(size_t pos) const {
    while (true) {
      const size_t b = src_.find('{', pos);
      if (b == std::string_view::npos || b + 1 >= src_.size()) return std::string_view::npos;
      const char c = src_[b + 1];
      if (c == '{' || c == '%' || c == '#') return b;
      pos = b + 1;
    }
  }

  // "{%" [-+] \s* "raw" \s* ("-%}" \s* | "%}") at tag; returns the end or npos.
  size_t match_raw_begin(size_t tag) const {
    size_t p = tag + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    bool nl;
    p = skip_space(p, &nl);
    if (!starts(p, "raw")) return std::string_view::npos;
    p = skip_space(p + 3, &nl);
    if (starts(p, "-%}")) return skip_space(p + 3, &nl);
    if (starts(p, "%}")) return p + 2;
    return std::string_view::npos;
  }

  size_t lex_root(size_t pos) {
    const size_t tag = find_tag(pos);
    if (tag == std::string_view::npos) {
      emit(Tok::kData, pos, std::string(src_.substr(pos)));
      return src_.size();
    }
    const char kind = src_[tag + 1];
    size_t after = tag + 2;
    char sign = 0;
    if (after < src_.size() && (src_[after] == '-' || src_[after] == '+')) sign = src_[after++];
    if (kind == '%') {
      const size_t raw_end = match_raw_begin(tag);
      if (raw_end != std::string_view::npos) {
        emit_data_before_tag(pos, tag, sign, true);
        line_starting_ = src_[raw_end - 1] == '\n';
        return lex_raw(raw_end);
      }
    }
    emit_data_before_tag(pos, tag, sign, kind != '{');
    line_starting_ = false;
    if (kind == '#') return lex_comment(tag, after);
    emit(kind == '%' ? Tok::kBlockBegin : Tok::kVariableBegin, tag);
    return lex_tag(after, kind == '%');
  }

  size_t lex_comment(size_t tag, size_t content) {
    const size_t end = src_.find("#}", content);
    if (end == std::string_view::npos) fail(tag, "Missing end of comment tag");
    const char sign = end > content && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
    return after_end_tag(end + 2, sign);
  }

  // After '%}' or '#}': '-' eats all whitespace, '+' nothing, otherwise trim_blocks eats one '\n'.
  size_t after_end_tag(size_t pos, char sign) {
    if (sign == '-') {
      bool nl;
      const size_t end = skip_space(pos, &nl);
      line_starting_ = nl;
      return end;
    }
    if (sign != '+' && pos < src_.size() && src_[pos] == '\n') {
      line_starting_ = true;
      return pos + 1;
    }
    line_starting_ = false;
    return pos;
  }

  size_t lex_raw(size_t pos) {
    // Up to "{%" [-+] \s* "endraw" \s* ("+%}" | "-%}" \s* | "%}" "\n"?).
    for (size_t search = pos;;) {
      const size_t b = src_.find("{%", search);
      if (b == std::string_view::npos) fail(pos, "Missing end of raw directive");
      size_t p = b + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      bool nl;
      p = skip_space(p, &nl);
      if (starts(p, "endraw")) {
        p = skip_space(p + 6, &nl);
        char end_sign = 0;
        size_t end = std::string_view::npos;
        if (starts(p, "+%}") || starts(p, "-%}")) {
          end_sign = src_[p];
          end = p + 3;
        } else if (starts(p, "%}")) {
          end = p + 2;
        }
        if (end != std::string_view::npos) {
          emit_data_before_tag(pos, b, sign, true);
          return after_end_tag(end, end_sign);
        }
      }
      search = b + 2;
    }
  }

  size_t lex_tag(size_t pos, bool block) {
    std::vector<char> balance;
    while (true) {
      if (pos >= src_.size()) {
        fail(pos, std::string("unexpected end of template, expected ") +
                      (block ? "'end of statement block'" : "'end of print statement'"));
      }
      if (balance.empty()) {
        if (block && (starts(pos, "+%}") || starts(pos, "-%}") || starts(pos, "%}"))) {
          emit(Tok::kBlockEnd, pos);
          const char sign = src_[pos] == '%' ? 0 : src_[pos];
          return after_end_tag(pos + (sign ? 3 : 2), sign);
        }
        if (!block && (starts(pos, "-}}") || starts(pos, "}}"))) {
          emit(Tok::kVariableEnd, pos);
          return after_end_tag(pos + (src_[pos] == '-' ? 3 : 2), src_[pos] == '-' ? '-' : '+');
        }
      }
      const char c = src_[pos];
      const auto d = utf8::decode(src_, pos);
      if (py::is_space(d.code_point)) {
        bool nl;
        pos = skip_space(pos, &nl);
      } else if (is_digit(c)) {
        pos = lex_number(pos);
      } else if (is_name_start(c)) {
        size_t end = pos;
        while (end < src_.size() && is_name_char(src_[end])) ++end;
        emit(Tok::kName, pos, std::string(src_.substr(pos, end - pos)));
        pos = end;
      } else if (c == '\'' || c == '"') {
        pos = lex_string(pos);
      } else {
        pos = lex_operator(pos, balance);
      }
    }
  }

  // (\d+_)*\d+ from pos (a digit); returns its end.
  size_t digits(size_t p) const {
    while (p < src_.size() && is_digit(src_[p])) ++p;
    while (p + 1 < src_.size() && src_[p] == '_' && is_digit(src_[p + 1])) {
      ++p;
      while (p < src_.size() && is_digit(src_[p])) ++p;
    }
    return p;
  }

  // e[+-]?(\d+_)*\d+ at p, case-insensitive; returns the end or npos.
  size_t exponent(size_t p) const {
    if (p >= src_.size() || (src_[p] != 'e' && src_[p] != 'E')) return std::string_view::npos;
    ++p;
    if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
    if (p >= src_.size() || !is_digit(src_[p])) return std::string_view::npos;
    return digits(p);
  }

  bool fraction_at(size_t p) const { return p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1]); }

  size_t lex_number(size_t pos) {
    const size_t int_end = digits(pos);
    size_t float_end = std::string_view::npos;
    if (pos == 0 || src_[pos - 1] != '.') {
      if (fraction_at(int_end)) float_end = exponent(digits(int_end + 1));
      if (float_end == std::string_view::npos) float_end = exponent(int_end);
      if (float_end == std::string_view::npos && fraction_at(int_end)) float_end = digits(int_end + 1);
    }
    if (float_end != std::string_view::npos) {
      std::string text;
      for (char ch : src_.substr(pos, float_end - pos))
        if (ch != '_') text += ch;
      Token t;
      t.type = Tok::kFloat;
      t.pos = static_cast<uint32_t>(pos);
      t.floating = std::strtod(text.c_str(), nullptr);
      out_.push_back(std::move(t));
      return float_end;
    }
    return lex_integer(pos);
  }

  size_t lex_integer(size_t pos) {
    // 0b / 0o / 0x with digits (each optionally after '_'), [1-9](_?\d)*, or 0(_?0)*.
    size_t end = pos + 1;
    int base = 10;
    if (src_[pos] == '0' && pos + 1 < src_.size()) {
      const char p = static_cast<char>(src_[pos + 1] | 0x20);
      base = p == 'b' ? 2 : p == 'o' ? 8 : p == 'x' ? 16 : 10;
      if (base != 10) {
        size_t q = pos + 2;
        while (true) {
          const size_t digit_at = q < src_.size() && src_[q] == '_' ? q + 1 : q;
          const int v = digit_at < src_.size() ? hex_value(src_[digit_at]) : -1;
          if (v < 0 || v >= base) break;
          q = digit_at + 1;
        }
        if (q == pos + 2) base = 10;  // no digit: the integer is just "0"
        end = q;
      }
    }
    if (base == 10) {
      const char digit = src_[pos] == '0' ? '0' : 0;  // after a leading 0 only zeros may follow
      while (true) {
        const size_t at = end < src_.size() && src_[end] == '_' ? end + 1 : end;
        if (at >= src_.size() || !is_digit(src_[at]) || (digit != 0 && src_[at] != digit)) break;
        end = at + 1;
      }
    }
    const std::string_view text = src_.substr(pos, end - pos);
    const auto value = py::parse_int(text, 0);
    if (!value) fail(pos, "integer literal " + std::string(text) + " is outside the supported range (64-bit)");
    Token t;
    t.type = Tok::kInteger;
    t.pos = static_cast<uint32_t>(pos);
    t.integer = *value;
    out_.push_back(std::move(t));
    return end;
  }

  size_t lex_string(size_t pos) {
    const char quote = src_[pos];
    size_t p = pos + 1;
    while (true) {
      if (p >= src_.size())
        fail(pos, std::string("unexpected char ") + py::repr(std::string(1, quote)) + " at " + std::to_string(pos));
      if (src_[p] == '\\' && p + 1 < src_.size()) {
        p += 1 + utf8::decode(src_, p + 1).length;
      } else if (src_[p] == quote) {
        break;
      } else {
        ++p;
      }
    }
    emit(Tok::kString, pos, unescape(src_.substr(pos + 1, p - pos - 1), pos));
    return p + 1;
  }

  // Python's unicode-escape codec applied to the literal's text after encode('ascii',
  // 'backslashreplace'), as Jinja2 decodes string literals.
  std::string unescape(std::string_view s, size_t pos) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      if (s[i] != '\\' || i + 1 >= s.size()) {
        out += s[i++];
        continue;
      }
      const char c = s[i + 1];
      i += 2;
      switch (c) {
        case '\n': break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
          char32_t cp = 0;
          for (size_t k = 0; k < n; ++k) {
            const int h = i + k < s.size() ? hex_value(s[i + k]) : -1;
            if (h < 0)
              fail(pos, c == 'x'   ? "truncated \\xXX escape"
                        : c == 'u' ? "truncated \\uXXXX escape"
                                   : "truncated \\UXXXXXXXX escape");
            cp = cp * 16 + static_cast<char32_t>(h);
          }
          if (cp > 0x10FFFF) fail(pos, "illegal Unicode character");
          if (cp >= 0xD800 && cp <= 0xDFFF) fail(pos, "surrogate code points are not supported in string literals");
          utf8::append(out, cp);
          i += n;
          break;
        }
        default:
          if (c >= '0' && c <= '7') {
            char32_t cp = static_cast<char32_t>(c - '0');
            for (int k = 0; k < 2 && i < s.size() && s[i] >= '0' && s[i] <= '7'; ++k)
              cp = cp * 8 + static_cast<char32_t>(s[i++] - '0');
            utf8::append(out, cp);
          } else if (static_cast<unsigned char>(c) >= 0x80) {
            // backslashreplace turned the character into \xNN / \uNNNN / \UNNNNNNNN text, which the
            // backslash before it escapes: the result is that text, literally.
            const auto d = utf8::decode(s, i - 1);
            char buf[16];
            const unsigned v = static_cast<unsigned>(d.code_point);
            std::snprintf(buf, sizeof buf, v <= 0xFF ? "\\x%02x" : v <= 0xFFFF ? "\\u%04x" : "\\U%08x", v);
            out += buf;
            i += d.length - 1;
          } else {
            out += '\\';
            out += c;
          }
      }
    }
    return out;
  }

  size_t lex_operator(size_t pos, std::vector<char>& balance) {
    for (const auto& o : kOperators) {
      if (!starts(pos, o.text)) continue;
      const char c = o.text[0];
      if (o.text[1] == 0) {
        if (c == '(' || c == '[' || c == '{') {
          balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
        } else if (c == ')' || c == ']' || c == '}') {
          if (balance.empty()) fail(pos, std::string("unexpected '") + c + "'");
          if (balance.back() != c) fail(pos, std::string("unexpected '") + c + "', expected '" + balance.back() + "'");
          balance.pop_back();
        }
      }
      Token t;
      t.type = Tok::kOperator;
      t.op = o.op;
      t.pos = static_cast<uint32_t>(pos);
      out_.push_back(std::move(t));
      return pos + std::strlen(o.text);
    }
    const auto d = utf8::decode(src_, pos);
    fail(pos, "unexpected char " + py::repr(std::string(src_.substr(pos, d.length))) + " at " + std::to_string(pos));
  }

  std::string_view src_;
  std::vector<Token> out_;
  bool line_starting_ = true;
};

}  // namespace

std::string normalize_source(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

std::string describe_token(const Token& token) {
  switch (token.type) {
    case Tok::kData: return "template data / text";
    case Tok::kVariableBegin: return "begin of print statement";
    case Tok::kVariableEnd: return "end of print statement";
    case Tok::kBlockBegin: return "begin of statement block";
    case Tok::kBlockEnd: return "end of statement block";
    case Tok::kName: return token.text;
    case Tok::kString: return "string";
    case Tok::kInteger: return "integer";
    case Tok::kFloat: return "float";
    case Tok::kOperator: return operator_text(token.op);
    case Tok::kEof: return "end of template";
  }
  return "token";
}

}  // namespace ember::jinja
