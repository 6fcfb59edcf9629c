// GBNF text to the grammar IR: a hand-written recursive-descent parser with line:column errors.
#include "grammar/gbnf_parser.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/utf8.h"

namespace ember::grammar {
namespace {

// Limits that keep hostile input (the fuzzer, an HTTP request) to an error instead of a crash,
// a stack overflow or a quadratic crawl.
constexpr int kMaxGroupDepth = 100;
constexpr int32_t kMaxExpressions = 200000;
// Stacked postfix operators (`x?????...`) nest without groups; the printer and the compiler
// recurse over expressions, so their depth is bounded too (groups alone stay far below it).
constexpr int kMaxExpressionDepth = 500;
// Grammar::declare_rule looks names up linearly; this keeps many distinct names from going quadratic.
constexpr int32_t kMaxRules = 10000;

constexpr size_t kNone = std::string_view::npos;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Grammar parse(std::string_view root_name) {
    if (text_.size() > kMaxGbnfBytes) error_at(0, "grammar is larger than 1 MiB");
    if (const size_t bad = utf8::error_offset(text_); bad != text_.size()) error_at(bad, "invalid UTF-8");
    skip_space(true);
    while (!at_end()) parse_rule();
    check_all_defined();
    const auto root = rule_ids_.find(root_name);
    if (root == rule_ids_.end()) error_at(0, fmt::format("grammar has no rule named '{}'", root_name));
    grammar_.set_root(root->second);
    grammar_.check_complete();
    return std::move(grammar_);
  }

 private:
  // --- positions and errors -------------------------------------------------------------------
  struct LineColumn {
    size_t line;
    size_t column;
  };

  LineColumn line_column(size_t offset) const {
    LineColumn lc{1, 1};
    for (size_t i = 0; i < offset && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++lc.line;
        lc.column = 1;
      } else {
        ++lc.column;
      }
    }
    return lc;
  }

  [[noreturn]] void error_at(size_t offset, std::string_view message) const {
    const LineColumn lc = line_column(offset);
    fail(ErrorCode::kInvalidArgument, "grammar:{}:{}: {}", lc.line, lc.column, message);
  }

  // The character at `offset` for a message: 'c' when printable ASCII or non-ASCII, else U+XXXX.
  std::string describe_char(size_t offset) const {
    const utf8::Decoded d = utf8::decode(text_, offset);
    if (d.code_point < 0x20 || d.code_point == 0x7F)
      return fmt::format("U+{:04X}", static_cast<uint32_t>(d.code_point));
    return fmt::format("'{}'", text_.substr(offset, d.length));
  }

  // --- lexing -----------------------------------------------------------------------------------
  bool at_end() const { return pos_ >= text_.size(); }
  char peek(size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  bool looking_at(std::string_view s) const { return text_.substr(pos_).starts_with(s); }

  // Spaces, tabs and `#` comments; line breaks too where a rule cannot end (`newline_ok`).
  void skip_space(bool newline_ok) {
    while (!at_end()) {
      const char c = peek();
      if (c == ' ' || c == '\t' || (newline_ok && (c == '\n' || c == '\r'))) {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && peek() != '\n' && peek() != '\r') ++pos_;
      } else {
        break;
      }
    }
  }

  std::string_view parse_name() {
    const size_t start = pos_;
    while (!at_end() && is_name_char(peek())) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  // --- rules ------------------------------------------------------------------------------------
  // The rule called `name`, declared on first sight so that rules may be used before they are defined.
  RuleId rule_named(std::string_view name, size_t offset) {
    const auto [it, inserted] = rule_ids_.try_emplace(name, -1);
    if (inserted) {
      if (grammar_.rule_count() >= kMaxRules) error_at(offset, fmt::format("more than {} rules", kMaxRules));
      it->second = grammar_.declare_rule(name);
      first_use_.push_back(kNone);
      definition_.push_back(kNone);
    }
    return it->second;
  }

  void parse_rule() {
    const size_t name_offset = pos_;
    const std::string_view name = parse_name();
    if (name.empty()) {
      if (peek() == '|')
        error_at(pos_, "expecting a rule name (a line may not start with '|'; end the previous line with it)");
      error_at(pos_, "expecting a rule name");
    }
    const RuleId rule = rule_named(name, name_offset);
    if (const size_t earlier = definition_[static_cast<size_t>(rule)]; earlier != kNone) {
      error_at(name_offset, fmt::format("rule '{}' is defined twice (lines {} and {})", name, line_column(earlier).line,
                                        line_column(name_offset).line));
    }
    definition_[static_cast<size_t>(rule)] = name_offset;
    skip_space(false);
    if (!looking_at("::=")) error_at(pos_, fmt::format("expecting '::=' after the rule name '{}'", name));
    pos_ += 3;
    skip_space(true);
    grammar_.define_rule(rule, parse_alternatives(0));
    expect_rule_end();
    skip_space(true);
  }

  void expect_rule_end() {
    if (at_end()) return;
    if (peek() == '\n') {
      ++pos_;
    } else if (peek() == '\r') {
      pos_ += peek(1) == '\n' ? 2 : 1;
    } else if (peek() == ')') {
      error_at(pos_, "unexpected ')' without a matching '('");
    } else if (looking_at("::=")) {
      error_at(pos_, "unexpected '::=' (does the rule before end with '|' or leave a '(' open?)");
    } else {
      error_at(pos_, fmt::format("unexpected {}", describe_char(pos_)));
    }
  }

  void check_all_defined() const {
    // Rules are declared in the order they are first seen, so the first undefined one is the
    // earliest use in the text.
    for (RuleId r = 0; r < grammar_.rule_count(); ++r) {
      if (definition_[static_cast<size_t>(r)] == kNone) {
        error_at(first_use_[static_cast<size_t>(r)], fmt::format("undefined rule '{}'", grammar_.rule(r).name));
      }
    }
  }

  // --- expressions ------------------------------------------------------------------------------
  // `depth` counts the enclosing groups; inside one (depth > 0) line breaks are plain spaces.
  ExprId parse_alternatives(int depth) {
    std::vector<ExprId> alternatives{parse_sequence(depth)};
    while (peek() == '|') {
      ++pos_;
      skip_space(true);  // a line break right after '|' continues the rule
      alternatives.push_back(parse_sequence(depth));
    }
    return track(grammar_.choice(std::move(alternatives)), pos_);
  }

  ExprId parse_sequence(int depth) {
    std::vector<ExprId> items;
    while (!at_end()) {
      const char c = peek();
      if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (items.empty()) error_at(pos_, fmt::format("expecting an item before '{}'", c));
        items.back() = parse_postfix(items.back(), depth);
      } else if (c == '<' || (c == '!' && peek(1) == '<')) {
        error_at(pos_, "token terminals (<...>) are not supported");
      } else if (c == '"' || c == '[' || c == '(' || c == '.' || is_name_char(c)) {
        items.push_back(parse_primary(depth));
      } else {
        break;
      }
    }
    return track(grammar_.sequence(std::move(items)), pos_);
  }

  ExprId parse_primary(int depth) {
    const size_t start = pos_;
    if (grammar_.expr_count() >= kMaxExpressions) {
      error_at(start, fmt::format("grammar has more than {} expressions", kMaxExpressions));
    }
    ExprId item = -1;
    switch (peek()) {
      case '"': item = parse_literal(); break;
      case '[': item = parse_class(); break;
      case '(': item = parse_group(depth); break;
      case '.':
        ++pos_;
        item = grammar_.any_codepoint();
        break;
      default: {
        const std::string_view name = parse_name();
        const RuleId rule = rule_named(name, start);
        if (first_use_[static_cast<size_t>(rule)] == kNone) first_use_[static_cast<size_t>(rule)] = start;
        item = grammar_.ref(rule);
        break;
      }
    }
    skip_space(depth > 0);
    return track(item, start);
  }

  ExprId parse_literal() {
    const size_t open = pos_++;
    std::string text;
    while (true) {
      if (at_end()) error_at(open, "unterminated string literal");
      if (peek() == '"') break;
      utf8::append(text, static_cast<char32_t>(parse_char(false)));
    }
    ++pos_;
    return grammar_.literal(text);
  }

  ExprId parse_class() {
    const size_t open = pos_++;
    const bool negate = peek() == '^';
    if (negate) ++pos_;
    std::vector<CodepointRange> ranges;
    while (true) {
      if (at_end()) error_at(open, "unterminated character class");
      if (peek() == ']') break;
      const size_t item_start = pos_;
      const uint32_t first = parse_char(true);
      uint32_t last = first;
      // A '-' right before ']' is a plain '-' ([a-]).
      if (peek() == '-' && pos_ + 1 < text_.size() && peek(1) != ']') {
        ++pos_;
        last = parse_char(true);
        if (first > last) {
          error_at(item_start, fmt::format("character range U+{:04X}-U+{:04X} is reversed", first, last));
        }
      }
      ranges.push_back({first, last});
    }
    ++pos_;
    // `[^]` would be "anything" to the builder; llama.cpp reads both `[]` and `[^]` as matching
    // nothing consumed (the empty string), which is never what was meant.
    const ExprId id = ranges.empty() ? -1 : grammar_.char_class(std::move(ranges), negate);
    if (id < 0) error_at(open, "empty character class");
    return id;
  }

  // Groups need no synthesized rules: the IR nests choices and sequences directly.
  ExprId parse_group(int depth) {
    const size_t open = pos_++;
    if (depth + 1 > kMaxGroupDepth) error_at(open, fmt::format("groups nested more than {} deep", kMaxGroupDepth));
    skip_space(true);
    const ExprId body = parse_alternatives(depth + 1);
    if (at_end()) error_at(open, "unclosed '('");
    if (peek() != ')') {
      const LineColumn lc = line_column(open);
      error_at(pos_, fmt::format("expecting ')' to close the '(' at {}:{}", lc.line, lc.column));
    }
    ++pos_;
    return body;
  }

  // `item` followed by one of `? * + {m} {m,} {m,n}`; stacked operators repeat the repeat.
  ExprId parse_postfix(ExprId item, int depth) {
    const size_t op = pos_;
    uint32_t min = 0;
    uint32_t max = kUnbounded;
    switch (text_[pos_++]) {
      case '?': max = 1; break;
      case '+': min = 1; break;
      case '*': break;
      default: parse_braces(op, depth > 0, min, max); break;
    }
    skip_space(depth > 0);
    return track(grammar_.repeat(item, min, max), op);
  }

  // The inside of `{m}`, `{m,}` or `{m,n}` (the '{' at `open` is consumed); spaces allowed.
  void parse_braces(size_t open, bool newline_ok, uint32_t& min, uint32_t& max) {
    skip_space(newline_ok);
    min = parse_count();
    skip_space(newline_ok);
    if (peek() == '}') {
      max = min;
    } else if (peek() == ',') {
      ++pos_;
      skip_space(newline_ok);
      max = is_digit(peek()) ? parse_count() : kUnbounded;
      skip_space(newline_ok);
      if (peek() != '}') error_at(pos_, "expecting '}'");
    } else {
      error_at(pos_, "expecting ',' or '}'");
    }
    ++pos_;
    if (min > max) error_at(open, fmt::format("repetition {{{},{}}} has its minimum above its maximum", min, max));
  }

  uint32_t parse_count() {
    const size_t start = pos_;
    if (!is_digit(peek())) error_at(pos_, "expecting a number");
    uint64_t value = 0;
    for (; is_digit(peek()); ++pos_) {
      value = std::min<uint64_t>(value * 10 + static_cast<uint64_t>(peek() - '0'), uint64_t{kMaxRepeat} + 1);
    }
    if (value > kMaxRepeat) error_at(start, fmt::format("repetition count above the limit of {}", kMaxRepeat));
    return static_cast<uint32_t>(value);
  }

  // One character of a literal or class, escapes resolved, as a code point.
  uint32_t parse_char(bool in_class) {
    const size_t start = pos_;
    if (peek() != '\\') {
      const utf8::Decoded d = utf8::decode(text_, pos_);  // the text was validated up front
      pos_ += d.length;
      return static_cast<uint32_t>(d.code_point);
    }
    if (pos_ + 1 >= text_.size()) error_at(start, "incomplete escape at the end of the input");
    const char e = peek(1);
    pos_ += 2;
    switch (e) {
      case 'x': return parse_hex(start, 2);
      case 'u': return parse_hex(start, 4);
      case 'U': return parse_hex(start, 8);
      case 't': return '\t';
      case 'r': return '\r';
      case 'n': return '\n';
      case '\\':
      case '"':
      case '[':
      case ']':
      case '-': return static_cast<uint8_t>(e);
      case '^':
        if (in_class) return '^';
        break;
      default: break;
    }
    const std::string escaped = describe_char(start + 1);
    if (escaped.front() == '\'') error_at(start, fmt::format("unknown escape '\\{}", escaped.substr(1)));
    error_at(start, fmt::format("unknown escape: '\\' followed by {}", escaped));
  }

  // `digits` hex digits after `\x`, `\u` or `\U` (at `start`): a code point, not a byte.
  uint32_t parse_hex(size_t start, int digits) {
    uint32_t value = 0;
    for (int i = 0; i < digits; ++i) {
      const int v = hex_value(peek());
      if (v < 0) error_at(start, fmt::format("expecting {} hex digits after '\\{}'", digits, text_[start + 1]));
      value = value * 16 + static_cast<uint32_t>(v);
      ++pos_;
    }
    if (value > kMaxCodepoint) error_at(start, fmt::format("code point U+{:04X} is above U+10FFFF", value));
    if (value >= 0xD800 && value <= 0xDFFF) error_at(start, fmt::format("code point U+{:04X} is a surrogate", value));
    return value;
  }

  // Records the nesting depth of every expression built since the last call and enforces the
  // size limits; returns `id`.
  ExprId track(ExprId id, size_t offset) {
    while (static_cast<int32_t>(expr_depth_.size()) < grammar_.expr_count()) {
      int depth = 1;
      for (const ExprId child : grammar_.expr(static_cast<ExprId>(expr_depth_.size())).children) {
        depth = std::max(depth, expr_depth_[static_cast<size_t>(child)] + 1);
      }
      expr_depth_.push_back(depth);
    }
    if (grammar_.expr_count() > kMaxExpressions) {
      error_at(offset, fmt::format("grammar has more than {} expressions", kMaxExpressions));
    }
    if (expr_depth_[static_cast<size_t>(id)] > kMaxExpressionDepth) {
      error_at(offset, fmt::format("expression nested more than {} levels deep", kMaxExpressionDepth));
    }
    return id;
  }

  std::string_view text_;
  size_t pos_ = 0;
  Grammar grammar_;
  std::unordered_map<std::string_view, RuleId> rule_ids_;  // keys point into text_
  std::vector<size_t> first_use_;                          // per rule: offset of its first reference, or kNone
  std::vector<size_t> definition_;                         // per rule: offset of its definition's name, or kNone
  std::vector<int> expr_depth_;                            // per expression: 1 + the depth of its deepest child
};

}  // namespace

Grammar parse_gbnf(std::string_view text, std::string_view root) { return Parser(text).parse(root); }

}  // namespace ember::grammar
