// Regular expressions (an ECMAScript subset) to the grammar IR: a recursive-descent parser that
// builds IR as it goes, for whole-text matching or for a JSON string's escaped content.
//
// Semantics. Code points, not UTF-16 units (ECMAScript with the `u` flag): `.` is one code point
// but \n \r U+2028 U+2029, [^] any code point, \d \w ASCII, \s the ECMAScript white space set.
// Where the `u` flag and Annex B (web-compatibility syntax) disagree we take whichever keeps
// real-world patterns working without changing a language: a `{` that starts no quantifier and a
// lone `]` or `}` are literals, a `-` next to a class escape in a class is literal ([\w-.]), any
// character but an ASCII letter or digit escapes to itself, \u{...} and \cX work everywhere, and
// \uD83D\uDE00 is one code point. Whatever could mean something else elsewhere is refused, never
// approximated: backreferences, lookaround, \b \B, \p{..}, octal escapes, inline flags, lone
// surrogate escapes, unknown letter escapes, `{,n}`, a half-written `{n,m`. Anchors: ^ only first
// and $ only last in a top-level alternative (so "^a|b$" keeps its ECMAScript meaning: starts
// with a, or ends with b).
//
// JSON string content (kJsonStringContent). The pattern constrains the decoded string; we build
// the language of its escaped spellings. Escaping is per code point, so a concatenation escapes
// piecewise and only code point sets (a character, a class, `.`) need work. For a set S:
//   raw        S minus { " \ U+0000..U+001F }                       one class
//   \X         \ plus the letters of S's short escapes (" \ / b f n r t)   one class
//   \uXXXX     S within the BMP, as a digit trie over the 4 hex digits (either case)
//   \uD8xx\uDCxx  S above the BMP as UTF-16 surrogate pairs: (high, low) pieces grouped by equal
//              low-unit sets, each side again a hex-digit trie
// The hex-digit trie splits the set by leading digit; digits whose remaining sets are equal share
// one digit class and one subtree, and a full subtree is just [0-9a-fA-F]{k}. So a range costs a
// few nodes per digit level, and the big sets stay small: `.` is under 50 expressions, [^"] under
// 40, a plain character 3 ("a" | "\u0061"). Each distinct set and hex subtree is built once per
// pattern and shared (the IR is a DAG). Unanchored ends (ECMAScript search semantics) add
// json-char*: any escaped content, lone surrogate escapes included, since JSON itself allows them.
#include "grammar/regex.h"

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/utf8.h"

namespace ember::grammar {
namespace {

constexpr size_t kMaxPatternBytes = 64 * 1024;
constexpr int kMaxGroupDepth = 100;
constexpr uint32_t kMaxBmp = 0xFFFF;
constexpr uint32_t kHighSurrogateFirst = 0xD800;
constexpr uint32_t kHighSurrogateLast = 0xDBFF;
constexpr uint32_t kLowSurrogateFirst = 0xDC00;
constexpr uint32_t kLowSurrogateLast = 0xDFFF;
constexpr std::string_view kAnchorMessage = "anchors are only supported at the start and end";

[[noreturn]] void regex_error(size_t offset, std::string_view message) {
  fail(ErrorCode::kInvalidArgument, "regex: {} at offset {}", message, offset);
}

// ---- code point sets: sorted, disjoint ranges ------------------------------------------------

using Set = std::vector<CodepointRange>;

// Sorted, overlapping and adjacent ranges merged; nothing removed (the hex-digit sets below hold
// surrogate values on purpose).
Set merged(Set s) {
  std::sort(s.begin(), s.end(), [](CodepointRange a, CodepointRange b) { return a.first < b.first; });
  Set out;
  for (const CodepointRange r : s) {
    if (!out.empty() && r.first <= out.back().last + 1) {
      out.back().last = std::max(out.back().last, r.last);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

Set intersect(const Set& a, const Set& b) {
  Set out;
  for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
    const uint32_t lo = std::max(a[i].first, b[j].first);
    const uint32_t hi = std::min(a[i].last, b[j].last);
    if (lo <= hi) out.push_back({lo, hi});
    if (a[i].last < b[j].last) {
      ++i;
    } else {
      ++j;
    }
  }
  return out;
}

Set scalar_values() { return {{0, kHighSurrogateFirst - 1}, {kLowSurrogateLast + 1, kMaxCodepoint}}; }

// A set of matchable code points: merged, surrogates removed.
Set code_points(Set s) { return intersect(merged(std::move(s)), scalar_values()); }

// Every code point (surrogates excluded) outside `s`.
Set negated(const Set& s) {
  Set gaps;
  uint32_t next = 0;
  for (const CodepointRange r : merged(s)) {
    if (r.first > next) gaps.push_back({next, r.first - 1});
    next = r.last + 1;
  }
  if (next <= kMaxCodepoint) gaps.push_back({next, kMaxCodepoint});
  return intersect(gaps, scalar_values());
}

bool contains(const Set& s, uint32_t cp) {
  return std::any_of(s.begin(), s.end(), [cp](CodepointRange r) { return cp >= r.first && cp <= r.last; });
}

Set single(uint32_t cp) { return {{cp, cp}}; }

Set digit_set() { return {{'0', '9'}}; }
Set word_set() { return {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}; }
Set space_set() {
  return {{'\t', '\r'},     {' ', ' '},       {0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
          {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
}
Set dot_set() { return negated({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}); }

// \d \D \w \W \s \S, or nothing for another letter.
std::optional<Set> class_escape(char letter) {
  switch (letter) {
    case 'd': return digit_set();
    case 'D': return negated(digit_set());
    case 'w': return word_set();
    case 'W': return negated(word_set());
    case 's': return code_points(space_set());
    case 'S': return negated(space_set());
    default: return std::nullopt;
  }
}

using SetKey = std::vector<uint64_t>;
SetKey key_of(const Set& s) {
  SetKey key;
  key.reserve(s.size());
  for (const CodepointRange r : s) key.push_back((uint64_t{r.first} << 32) | r.last);
  return key;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// ---- JSON-escaped spellings of a code point set -----------------------------------------------

class JsonEscaper {
 public:
  explicit JsonEscaper(Grammar& g) : g_(g) {}

  // Every JSON spelling of every code point in `s` (non-empty, surrogate-free).
  ExprId escaped(const Set& s) {
    SetKey key = key_of(s);
    if (const auto it = memo_.find(key); it != memo_.end()) return it->second;
    std::vector<ExprId> alternatives;
    const Set raw = intersect(s, negated({{0, 0x1F}, {'"', '"'}, {'\\', '\\'}}));
    if (!raw.empty()) alternatives.push_back(set_expr(raw));
    alternatives.push_back(concat({g_.codepoint('\\'), after_backslash(s)}));
    const ExprId result = g_.choice(alternatives);
    memo_.emplace(std::move(key), result);
    return result;
  }

 private:
  ExprId set_expr(const Set& s) {
    if (s.size() == 1 && s[0].first == s[0].last) return g_.codepoint(s[0].first);
    return g_.char_class(s);
  }

  // What may follow the backslash for a code point of `s`: a short escape letter or a \u form
  // (every code point has one, so this is never empty).
  ExprId after_backslash(const Set& s) {
    static constexpr std::array<std::pair<uint32_t, char>, 8> kShortEscapes = {
        {{'"', '"'}, {'\\', '\\'}, {'/', '/'}, {'\b', 'b'}, {'\f', 'f'}, {'\n', 'n'}, {'\r', 'r'}, {'\t', 't'}}};
    std::vector<ExprId> alternatives;
    Set letters;
    for (const auto& [cp, letter] : kShortEscapes) {
      if (contains(s, cp)) letters.push_back({static_cast<uint32_t>(letter), static_cast<uint32_t>(letter)});
    }
    if (!letters.empty()) alternatives.push_back(set_expr(merged(letters)));
    std::vector<ExprId> unicode;
    if (const Set bmp = intersect(s, {{0, kMaxBmp}}); !bmp.empty()) unicode.push_back(hex_digits(bmp, 4));
    if (const Set astral = intersect(s, {{kMaxBmp + 1, kMaxCodepoint}}); !astral.empty()) {
      for (const auto& [high, low] : surrogate_pieces(astral)) {
        unicode.push_back(concat({hex_digits(high, 4), g_.literal("\\u"), hex_digits(low, 4)}));
      }
    }
    alternatives.push_back(concat({g_.codepoint('u'), g_.choice(unicode)}));
    return g_.choice(alternatives);
  }

  // Code points above the BMP as (high units, low units) pairs of sets: each range is a partial
  // first high unit, full middle ones and a partial last one; pieces with equal low sets merge.
  static std::vector<std::pair<Set, Set>> surrogate_pieces(const Set& astral) {
    std::map<SetKey, std::pair<Set, Set>> by_low;
    auto add = [&](uint32_t high_first, uint32_t high_last, uint32_t low_first, uint32_t low_last) {
      const Set low = {{kLowSurrogateFirst + low_first, kLowSurrogateFirst + low_last}};
      auto& piece = by_low[key_of(low)];
      piece.first.push_back({kHighSurrogateFirst + high_first, kHighSurrogateFirst + high_last});
      piece.second = low;
    };
    for (const CodepointRange r : astral) {
      const uint32_t a = r.first - (kMaxBmp + 1);
      const uint32_t b = r.last - (kMaxBmp + 1);
      const uint32_t high_a = a >> 10, low_a = a & 0x3FF, high_b = b >> 10, low_b = b & 0x3FF;
      if (high_a == high_b) {
        add(high_a, high_a, low_a, low_b);
        continue;
      }
      add(high_a, high_a, low_a, 0x3FF);
      if (high_b > high_a + 1) add(high_a + 1, high_b - 1, 0, 0x3FF);
      add(high_b, high_b, 0, low_b);
    }
    std::vector<std::pair<Set, Set>> out;
    for (auto& [key, piece] : by_low) out.emplace_back(merged(std::move(piece.first)), std::move(piece.second));
    return out;
  }

  // `digits` hex digits (either case) whose value lies in `values` (non-empty, sorted, disjoint,
  // below 16^digits): a trie on the leading digit, digits with equal remainders sharing a branch.
  ExprId hex_digits(const Set& values, int digits) {
    if (digits == 0) return g_.empty();
    SetKey key = key_of(values);
    key.push_back(static_cast<uint64_t>(digits));
    if (const auto it = hex_memo_.find(key); it != hex_memo_.end()) return it->second;
    const ExprId result = build_hex_digits(values, digits);
    hex_memo_.emplace(std::move(key), result);
    return result;
  }

  ExprId build_hex_digits(const Set& values, int digits) {
    const uint32_t block = 1u << (4 * (digits - 1));
    if (values.size() == 1 && values[0].first == 0 && values[0].last == block * 16 - 1) {
      return g_.repeat(any_hex_digit(), static_cast<uint32_t>(digits), static_cast<uint32_t>(digits));
    }
    std::array<Set, 16> remainders;
    for (const CodepointRange r : values) {
      for (uint32_t d = r.first / block; d <= r.last / block; ++d) {
        const uint32_t base = d * block;
        remainders[d].push_back({std::max(r.first, base) - base, std::min(r.last, base + block - 1) - base});
      }
    }
    std::vector<std::pair<std::vector<uint32_t>, const Set*>> branches;  // leading digits, remainder
    for (uint32_t d = 0; d < 16; ++d) {
      if (remainders[d].empty()) continue;
      auto same =
          std::find_if(branches.begin(), branches.end(), [&](const auto& b) { return *b.second == remainders[d]; });
      if (same != branches.end()) {
        same->first.push_back(d);
      } else {
        branches.push_back({{d}, &remainders[d]});
      }
    }
    std::vector<ExprId> alternatives;
    for (const auto& [leading, rest] : branches) {
      alternatives.push_back(concat({hex_digit_class(leading), hex_digits(*rest, digits - 1)}));
    }
    return g_.choice(alternatives);
  }

  // A sequence with adjacent literals joined: "\\" "u" "0" "0" "6" "1" becomes "\\u0061".
  ExprId concat(const std::vector<ExprId>& items) {
    std::vector<ExprId> flat;
    for (const ExprId id : items) {
      const Expr& e = g_.expr(id);
      if (e.kind == ExprKind::kSequence) {
        flat.insert(flat.end(), e.children.begin(), e.children.end());
      } else {
        flat.push_back(id);
      }
    }
    std::vector<ExprId> joined;
    std::string text;
    for (const ExprId id : flat) {
      if (g_.expr(id).kind == ExprKind::kLiteral) {
        text += g_.expr(id).literal;
        continue;
      }
      if (!text.empty()) joined.push_back(g_.literal(text));
      text.clear();
      joined.push_back(id);
    }
    if (!text.empty()) joined.push_back(g_.literal(text));
    return g_.sequence(joined);
  }

  ExprId hex_digit_class(const std::vector<uint32_t>& values) {
    Set chars;
    for (const uint32_t v : values) {
      if (v < 10) {
        chars.push_back({'0' + v, '0' + v});
      } else {
        chars.push_back({'a' + v - 10, 'a' + v - 10});
        chars.push_back({'A' + v - 10, 'A' + v - 10});
      }
    }
    return set_expr(merged(chars));
  }

  ExprId any_hex_digit() {
    if (any_hex_digit_ < 0) any_hex_digit_ = g_.char_class({{'0', '9'}, {'a', 'f'}, {'A', 'F'}});
    return any_hex_digit_;
  }

  Grammar& g_;
  std::map<SetKey, ExprId> memo_;      // escaped()
  std::map<SetKey, ExprId> hex_memo_;  // hex_digits(): the set's key, then the digit count
  ExprId any_hex_digit_ = -1;
};

// ---- the parser --------------------------------------------------------------------------------

// A term before it becomes an expression: a code point set stays a set so that JSON mode can spell
// it escaped and whole-text mode can merge runs of plain characters into one literal.
struct Atom {
  Set set = {};
  ExprId expr = -1;  // a group's expression (the set is unused then)
  bool is_single_code_point() const { return expr < 0 && set.size() == 1 && set[0].first == set[0].last; }
};

struct Quantifier {
  uint32_t min = 0;
  uint32_t max = 0;
};

// One class member: a code point (which may start or end a range) or a class escape's set.
struct ClassAtom {
  uint32_t cp = 0;
  std::optional<Set> set = std::nullopt;
};

class RegexParser {
 public:
  RegexParser(Grammar& g, std::string_view pattern, RegexMode mode) : g_(g), p_(pattern), mode_(mode), escaper_(g) {}

  ExprId parse() {
    const ExprId e = parse_disjunction(0);
    if (!at_end()) regex_error(pos_, "unmatched ')'");  // only a ')' stops the top level early
    return e;
  }

 private:
  bool at_end() const { return pos_ >= p_.size(); }
  bool next_is(char c, size_t ahead = 0) const { return pos_ + ahead < p_.size() && p_[pos_ + ahead] == c; }

  uint32_t next_code_point() {
    const utf8::Decoded d = utf8::decode(p_, pos_);  // the pattern was validated as UTF-8
    pos_ += d.length;
    return static_cast<uint32_t>(d.code_point);
  }

  // `depth` counts the enclosing groups; 0 is the top level, where anchors may stand.
  ExprId parse_disjunction(int depth) {
    std::vector<ExprId> alternatives = {parse_alternative(depth)};
    while (next_is('|')) {
      ++pos_;
      alternatives.push_back(parse_alternative(depth));
    }
    return g_.choice(alternatives);
  }

  ExprId parse_alternative(int depth) {
    const bool top = depth == 0;
    bool anchored_start = false;
    bool anchored_end = false;
    if (top && next_is('^')) {
      anchored_start = true;
      ++pos_;
    }
    std::vector<ExprId> items;
    std::string pending;  // plain characters not yet emitted, as one literal (whole-text mode)
    auto flush = [&] {
      if (!pending.empty()) items.push_back(g_.literal(pending));
      pending.clear();
    };
    while (!at_end() && !next_is('|') && !next_is(')')) {
      if (next_is('^')) regex_error(pos_, kAnchorMessage);
      if (next_is('$')) {
        if (!top || !(pos_ + 1 == p_.size() || next_is('|', 1))) regex_error(pos_, kAnchorMessage);
        anchored_end = true;
        ++pos_;
        break;
      }
      const Atom atom = parse_atom(depth);
      const std::optional<Quantifier> q = parse_quantifier();
      if (!q && mode_ == RegexMode::kWholeText && atom.is_single_code_point()) {
        utf8::append(pending, static_cast<char32_t>(atom.set[0].first));
        continue;
      }
      flush();
      const ExprId e = atom.expr >= 0 ? atom.expr : set_expr(atom.set);
      items.push_back(q ? g_.repeat(e, q->min, q->max) : e);
    }
    flush();
    const ExprId body = g_.sequence(items);
    if (!top || mode_ == RegexMode::kWholeText) return body;
    // ECMAScript search semantics: an end without its anchor may have anything beside it.
    return g_.sequence({anchored_start ? g_.empty() : any_content(), body, anchored_end ? g_.empty() : any_content()});
  }

  ExprId any_content() {
    if (any_content_ < 0) any_content_ = g_.star(json_string_char(g_));
    return any_content_;
  }

  ExprId set_expr(const Set& s) {
    if (mode_ == RegexMode::kJsonStringContent) return escaper_.escaped(s);
    if (s.size() == 1 && s[0].first == s[0].last) return g_.codepoint(s[0].first);
    return g_.char_class(s);
  }

  Atom parse_atom(int depth) {
    const size_t start = pos_;
    switch (p_[pos_]) {
      case '(': return parse_group(depth);
      case '[': return Atom{.set = parse_class()};
      case '.': ++pos_; return Atom{.set = dot_set()};
      case '\\': return parse_escape();
      case '*':
      case '+':
      case '?': regex_error(start, "nothing to repeat");
      case '{':
        if (parse_quantifier()) regex_error(start, "nothing to repeat");
        break;  // a '{' that starts no quantifier is a literal (ECMAScript Annex B)
      default: break;
    }
    return Atom{.set = single(next_code_point())};
  }

  // * + ? {n} {n,} {n,m}, each optionally lazy (same language); nothing (position kept) when no
  // quantifier starts here.
  std::optional<Quantifier> parse_quantifier() {
    std::optional<Quantifier> q;
    if (next_is('{')) {
      q = parse_braces();
    } else if (next_is('*') || next_is('+') || next_is('?')) {
      const char c = p_[pos_++];
      q = Quantifier{.min = c == '+' ? 1u : 0u, .max = c == '?' ? 1u : kUnbounded};
    }
    if (q && next_is('?')) ++pos_;  // lazy
    return q;
  }

  // {n} {n,} {n,m}; nothing (position kept) when the '{' starts no quantifier.
  std::optional<Quantifier> parse_braces() {
    const size_t start = pos_;
    size_t i = pos_ + 1;
    if (i < p_.size() && p_[i] == ',') regex_error(start, "a {,n} quantifier needs its minimum (write {0,n})");
    if (i >= p_.size() || !is_digit(p_[i])) return std::nullopt;
    Quantifier q;
    q.min = q.max = read_count(i, start);
    if (i < p_.size() && p_[i] == ',') {
      ++i;
      q.max = i < p_.size() && is_digit(p_[i]) ? read_count(i, start) : kUnbounded;
    }
    if (i >= p_.size() || p_[i] != '}') regex_error(start, "incomplete quantifier");
    if (q.max != kUnbounded && q.min > q.max) regex_error(start, "numbers out of order in {} quantifier");
    pos_ = i + 1;
    return q;
  }

  uint32_t read_count(size_t& i, size_t start) const {
    uint32_t value = 0;
    for (; i < p_.size() && is_digit(p_[i]); ++i) {
      value = value * 10 + static_cast<uint32_t>(p_[i] - '0');
      if (value > kMaxRepeat) regex_error(start, fmt::format("repetition count above {}", kMaxRepeat));
    }
    return value;
  }

  Atom parse_group(int depth) {
    const size_t start = pos_;
    if (depth >= kMaxGroupDepth) regex_error(start, fmt::format("groups nested deeper than {}", kMaxGroupDepth));
    ++pos_;
    if (next_is('?')) parse_group_kind(start);
    const ExprId body = parse_disjunction(depth + 1);
    if (at_end()) regex_error(start, "unterminated group");
    ++pos_;  // ')'
    return Atom{.set = {}, .expr = body};
  }

  // After "(?": a non-capturing or named group (both plain groups here); the rest is refused.
  void parse_group_kind(size_t start) {
    if (next_is(':', 1)) {
      pos_ += 2;
      return;
    }
    if (next_is('=', 1) || next_is('!', 1)) regex_error(start, "lookahead assertions are not supported");
    if (!next_is('<', 1)) regex_error(start, "inline flags and other (? groups are not supported");
    if (next_is('=', 2) || next_is('!', 2)) regex_error(start, "lookbehind assertions are not supported");
    pos_ += 2;
    const size_t name_start = pos_;
    while (!at_end() && is_group_name_byte(p_[pos_])) ++pos_;
    if (pos_ == name_start || !next_is('>')) regex_error(start, "invalid group name");
    ++pos_;
  }

  static bool is_group_name_byte(char c) {
    return is_ascii_letter(c) || is_digit(c) || c == '_' || c == '$' || static_cast<unsigned char>(c) >= 0x80;
  }

  // A backslash outside a class.
  Atom parse_escape() {
    const size_t start = pos_;
    if (pos_ + 1 >= p_.size()) regex_error(start, "pattern ends with a lone backslash");
    const char c = p_[pos_ + 1];
    if (std::optional<Set> s = class_escape(c)) {
      pos_ += 2;
      return Atom{.set = std::move(*s)};
    }
    if (c == 'b' || c == 'B') regex_error(start, "word boundary assertions (\\b, \\B) are not supported");
    if (c == 'k' || (c >= '1' && c <= '9')) regex_error(start, "backreferences are not supported");
    return Atom{.set = single(parse_char_escape(false))};
  }

  // A backslash escape for one code point, in a class or outside (where \b was refused already).
  uint32_t parse_char_escape(bool in_class) {
    const size_t start = pos_;
    const char c = p_[pos_ + 1];
    pos_ += 2;
    switch (c) {
      case 't': return '\t';
      case 'n': return '\n';
      case 'r': return '\r';
      case 'f': return '\f';
      case 'v': return '\v';
      case 'b': return '\b';  // backspace inside a class
      case '0':
        if (!at_end() && is_digit(p_[pos_])) regex_error(start, "octal escapes are not supported");
        return 0;
      case 'x': return read_hex(2, start, "invalid \\x escape (two hex digits expected)");
      case 'u': return parse_unicode_escape(start);
      case 'c':
        if (at_end() || !is_ascii_letter(p_[pos_])) regex_error(start, "invalid \\c escape");
        return static_cast<uint32_t>(p_[pos_++]) % 32;
      case 'p':
      case 'P': regex_error(start, "Unicode property escapes (\\p{...}) are not supported");
      default: break;
    }
    if (c >= '1' && c <= '9') {
      regex_error(start, in_class ? "octal escapes are not supported" : "backreferences are not supported");
    }
    if (is_ascii_letter(c) || is_digit(c)) regex_error(start, fmt::format("unknown escape \\{}", c));
    pos_ = start + 1;  // an identity escape (\. \/ \- ...): the character itself
    return next_code_point();
  }

  std::optional<uint32_t> hex_at(size_t at, size_t count) const {
    if (at + count > p_.size()) return std::nullopt;
    uint32_t value = 0;
    for (size_t i = 0; i < count; ++i) {
      const int v = hex_value(p_[at + i]);
      if (v < 0) return std::nullopt;
      value = value * 16 + static_cast<uint32_t>(v);
    }
    return value;
  }

  uint32_t read_hex(size_t count, size_t start, std::string_view message) {
    const std::optional<uint32_t> value = hex_at(pos_, count);
    if (!value) regex_error(start, message);
    pos_ += count;
    return *value;
  }

  // After "\u": HHHH (a surrogate pair written as two escapes is one code point) or {H...}.
  uint32_t parse_unicode_escape(size_t start) {
    uint32_t value = 0;
    if (next_is('{')) {
      ++pos_;
      const size_t digits_start = pos_;
      for (; !at_end() && hex_value(p_[pos_]) >= 0; ++pos_) {
        value = value * 16 + static_cast<uint32_t>(hex_value(p_[pos_]));
        if (value > kMaxCodepoint) regex_error(start, "\\u{...} escape above U+10FFFF");
      }
      if (pos_ == digits_start || !next_is('}')) regex_error(start, "invalid \\u{...} escape");
      ++pos_;
    } else {
      value = read_hex(4, start, "invalid \\u escape (four hex digits expected)");
      const std::optional<uint32_t> low = next_is('\\') && next_is('u', 1) ? hex_at(pos_ + 2, 4) : std::nullopt;
      if (value >= kHighSurrogateFirst && value <= kHighSurrogateLast && low && *low >= kLowSurrogateFirst &&
          *low <= kLowSurrogateLast) {
        pos_ += 6;
        return 0x10000 + ((value - kHighSurrogateFirst) << 10) + (*low - kLowSurrogateFirst);
      }
    }
    if (value >= kHighSurrogateFirst && value <= kLowSurrogateLast) {
      regex_error(start, "lone surrogate escapes are not supported");
    }
    return value;
  }

  Set parse_class() {
    const size_t start = pos_;
    ++pos_;
    const bool negate = next_is('^');
    if (negate) ++pos_;
    Set members;
    auto add = [&members](const ClassAtom& a) {
      if (a.set) {
        members.insert(members.end(), a.set->begin(), a.set->end());
      } else {
        members.push_back({a.cp, a.cp});
      }
    };
    for (;;) {
      if (at_end()) regex_error(start, "unterminated character class");
      if (next_is(']')) break;
      const size_t first_start = pos_;
      const ClassAtom first = parse_class_atom();
      if (!next_is('-') || pos_ + 1 >= p_.size() || next_is(']', 1)) {
        add(first);
        continue;
      }
      ++pos_;  // '-'
      const ClassAtom last = parse_class_atom();
      if (first.set || last.set) {  // Annex B: next to a class escape the '-' is a literal
        add(first);
        add(ClassAtom{.cp = '-'});
        add(last);
        continue;
      }
      if (first.cp > last.cp) regex_error(first_start, "range out of order in character class");
      members.push_back({first.cp, last.cp});
    }
    ++pos_;  // ']'
    if (members.empty() && !negate) regex_error(start, "empty character class [] matches nothing");
    Set set = negate ? negated(members) : code_points(std::move(members));
    if (set.empty()) regex_error(start, "character class matches nothing");
    return set;
  }

  ClassAtom parse_class_atom() {
    if (!next_is('\\')) return ClassAtom{.cp = next_code_point()};
    if (pos_ + 1 >= p_.size()) regex_error(pos_, "pattern ends with a lone backslash");
    if (std::optional<Set> s = class_escape(p_[pos_ + 1])) {
      pos_ += 2;
      return ClassAtom{.cp = 0, .set = std::move(s)};
    }
    return ClassAtom{.cp = parse_char_escape(true)};
  }

  Grammar& g_;
  std::string_view p_;
  RegexMode mode_;
  JsonEscaper escaper_;
  size_t pos_ = 0;
  ExprId any_content_ = -1;
};

ExprId json_char_body(Grammar& g) {
  const ExprId raw = g.char_class({{0, 0x1F}, {'"', '"'}, {'\\', '\\'}}, /*negate=*/true);
  const ExprId short_escape =
      g.char_class({{'"', '"'}, {'\\', '\\'}, {'/', '/'}, {'b', 'b'}, {'f', 'f'}, {'n', 'n'}, {'r', 'r'}, {'t', 't'}});
  const ExprId hex = g.char_class({{'0', '9'}, {'a', 'f'}, {'A', 'F'}});
  const ExprId unicode_escape = g.sequence({g.codepoint('u'), g.repeat(hex, 4, 4)});
  return g.choice({raw, g.sequence({g.codepoint('\\'), g.choice({short_escape, unicode_escape})})});
}

}  // namespace

ExprId json_string_char(Grammar& grammar) {
  constexpr std::string_view kName = "json-char";
  RuleId rule = grammar.find_rule(kName);
  if (rule < 0 || grammar.rule(rule).body < 0) {
    rule = grammar.declare_rule(kName);
    // Not shared: a rule of one character kept as a frame would end after every character, so
    // every token would need the slow check. Inlined, it lives inside the string's own frame.
    grammar.define_rule(rule, json_char_body(grammar));
  }
  return grammar.ref(rule);
}

ExprId regex_to_expr(Grammar& grammar, std::string_view pattern, RegexMode mode) {
  if (pattern.size() > kMaxPatternBytes) {
    regex_error(kMaxPatternBytes, fmt::format("pattern longer than {} bytes", kMaxPatternBytes));
  }
  if (const size_t bad = utf8::error_offset(pattern); bad < pattern.size()) regex_error(bad, "invalid UTF-8");
  return RegexParser(grammar, pattern, mode).parse();
}

Grammar regex_grammar(std::string_view pattern) {
  Grammar g;
  const ExprId body = regex_to_expr(g, pattern, RegexMode::kWholeText);
  g.set_root(g.add_rule("root", body));
  return g;
}

}  // namespace ember::grammar
