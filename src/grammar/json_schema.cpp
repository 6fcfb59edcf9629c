// JSON Schema to the grammar IR: the shared JSON rules, the converter (a JSON pointer kept for every
// node, a refusal for every keyword it cannot enforce, OpenAI strict-mode checks) and JSON mode.
#include "grammar/json_schema.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/utf8.h"
#include "grammar/regex.h"

namespace ember::grammar {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kMaxNesting = 64;         // schemas converted inside one another
constexpr int kMaxDocumentDepth = 512;  // JSON nesting of the schema text (our recursion bound)
constexpr size_t kMaxDocumentNodes = 1000000;
constexpr int32_t kMaxExpressions = 200000;
constexpr int64_t kMaxWork = 2000000;  // conversion steps + JSON nodes copied by allOf merges
constexpr int kMaxRefHops = 32;
constexpr uint32_t kIntegralDigits = 16;
constexpr uint32_t kFractionDigits = 16;
constexpr uint32_t kExponentDigits = 3;
constexpr long double kMaxBound = 1e18L;  // |bound| limit: integers stay exact and in int64
constexpr int64_t kNoLower = std::numeric_limits<int64_t>::min();
constexpr int64_t kNoUpper = std::numeric_limits<int64_t>::max();
constexpr uint64_t kOpen = std::numeric_limits<uint64_t>::max();

// Keywords that constrain nothing (or are only read through a $ref) and are skipped.
const std::set<std::string_view> kIgnored = {
    "title", "description", "default",       "examples",        "example",         "$schema",
    "$id",   "$comment",    "deprecated",    "readOnly",        "writeOnly",       "$anchor",
    "$defs", "definitions", "discriminator", "contentEncoding", "contentMediaType"};
const std::vector<std::string_view> kObjectKeywords = {"properties", "required", "additionalProperties",
                                                       "minProperties", "maxProperties"};
const std::vector<std::string_view> kArrayKeywords = {"items", "prefixItems", "additionalItems", "minItems",
                                                      "maxItems"};
const std::vector<std::string_view> kStringKeywords = {"minLength", "maxLength", "pattern", "format"};
const std::vector<std::string_view> kNumberKeywords = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                                       "multipleOf"};
const std::set<std::string_view> kCombinators = {"type",  "enum", "const",    "anyOf",      "oneOf",
                                                 "allOf", "$ref", "nullable", "uniqueItems"};

// JSON value kinds as bits; "number" is integer | fraction.
enum TypeBit : uint8_t {
  kNull = 1,
  kBoolean = 2,
  kObject = 4,
  kArray = 8,
  kString = 16,
  kInteger = 32,
  kFraction = 64,
};
constexpr uint8_t kNumber = kInteger | kFraction;
constexpr uint8_t kAnyType = 127;

template <typename... Args>
[[noreturn]] void refuse(const std::string& pointer, fmt::format_string<Args...> format, Args&&... args) {
  fail(ErrorCode::kInvalidArgument, "schema{}: {}", pointer, fmt::format(format, std::forward<Args>(args)...));
}

std::string child(const std::string& pointer, std::string_view key) {
  std::string out = pointer + "/";
  for (const char c : key) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  return out;
}
std::string child(const std::string& pointer, size_t index) { return fmt::format("{}/{}", pointer, index); }

bool has_any(const Json& s, const std::vector<std::string_view>& keys) {
  return std::any_of(keys.begin(), keys.end(), [&](std::string_view k) { return s.contains(k); });
}

size_t node_count(const Json& v) {
  size_t n = 1;
  if (v.is_structured()) {
    for (const Json& c : v) n += node_count(c);
  }
  return n;
}

// Iterative, so that a hostile document cannot exhaust the stack before the limits are known.
void check_document(const Json& doc) {
  std::vector<std::pair<const Json*, int>> stack = {{&doc, 0}};
  size_t nodes = 0;
  while (!stack.empty()) {
    const auto [v, depth] = stack.back();
    stack.pop_back();
    if (depth > kMaxDocumentDepth) refuse("", "the schema nests deeper than {} levels", kMaxDocumentDepth);
    if (++nodes > kMaxDocumentNodes) refuse("", "the schema has more than {} JSON values", kMaxDocumentNodes);
    if (v->is_structured()) {
      for (const Json& c : *v) stack.emplace_back(&c, depth + 1);
    }
  }
}

uint8_t value_type(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return kNull;
    case Json::value_t::boolean: return kBoolean;
    case Json::value_t::object: return kObject;
    case Json::value_t::array: return kArray;
    case Json::value_t::string: return kString;
    case Json::value_t::number_float: {
      const double d = v.get<double>();
      return std::isfinite(d) && std::floor(d) == d ? kInteger : kFraction;
    }
    default: return kInteger;
  }
}

uint8_t type_bits(const Json& type, const std::string& pointer) {
  static const std::map<std::string, uint8_t, std::less<>> kNames = {
      {"null", kNull},     {"boolean", kBoolean}, {"object", kObject}, {"array", kArray},
      {"string", kString}, {"integer", kInteger}, {"number", kNumber}};
  const Json names = type.is_array() ? type : Json::array({type});
  if (names.empty()) refuse(pointer, "type must not be an empty array");
  uint8_t bits = 0;
  for (const Json& name : names) {
    const auto it = name.is_string() ? kNames.find(name.get<std::string>()) : kNames.end();
    if (it == kNames.end()) refuse(pointer, "unknown type {}", name.dump());
    bits |= it->second;
  }
  return bits;
}

Json type_json(uint8_t bits) {
  Json out = Json::array();
  for (const auto& [bit, name] : std::vector<std::pair<uint8_t, const char*>>{
           {kNull, "null"}, {kBoolean, "boolean"}, {kObject, "object"}, {kArray, "array"}, {kString, "string"}}) {
    if (bits & bit) out.push_back(name);
  }
  if ((bits & kNumber) == kNumber) out.push_back("number");
  if ((bits & kNumber) == kInteger) out.push_back("integer");
  return out;
}

// Non-negative count keywords (minLength, maxItems, ...). A maximum above kMaxRepeat is lowered to
// it: generating fewer is still sound.
uint32_t count_value(const Json& s, std::string_view key, uint32_t absent, const std::string& pointer) {
  const auto it = s.find(key);
  if (it == s.end()) return absent;
  const bool integral =
      it->is_number_unsigned() || (it->is_number() && value_type(*it) == kInteger && it->get<double>() >= 0);
  if (!integral) refuse(child(pointer, key), "{} must be a non-negative integer", key);
  const double v = it->get<double>();
  if (v <= kMaxRepeat) return static_cast<uint32_t>(v);
  if (key.starts_with("max")) return kMaxRepeat;
  refuse(child(pointer, key), "{} above {} is not supported", key, kMaxRepeat);
}

std::string canonical_dump(const Json& v, const std::string& pointer) {
  try {
    return v.dump(-1, ' ', false, Json::error_handler_t::strict);
  } catch (const nlohmann::json::exception&) {
    refuse(pointer, "a value is not valid UTF-8");
  }
}

// ---------------------------------------------------------------------------------------------
// The built-in JSON rules, each defined once per grammar and shared (its own mask-cache entries).
class JsonRules {
 public:
  explicit JsonRules(Grammar& g) : g_(g) {}

  ExprId ws() {
    // Bounded, so a model sampling at random cannot pad forever (llama.cpp's `space`). Not shared:
    // inlined, a token such as ` "` stays inside its caller's frame (as json-char does in strings).
    return builtin("json-ws", ws_, /*mark_shared=*/false, [&] {
      const ExprId newline_indent =
          g_.sequence({g_.repeat(g_.literal("\n"), 1, 2), g_.repeat(g_.char_class({{' ', ' '}, {'\t', '\t'}}), 0, 20)});
      return g_.choice({g_.empty(), g_.literal(" "), newline_indent});
    });
  }
  ExprId sep() { return sep_ >= 0 ? sep_ : (sep_ = g_.sequence({ws(), g_.literal(","), ws()})); }
  ExprId colon() { return colon_ >= 0 ? colon_ : (colon_ = g_.sequence({ws(), g_.literal(":"), ws()})); }
  ExprId character() { return char_ >= 0 ? char_ : (char_ = json_string_char(g_)); }
  ExprId digit() { return digit_ >= 0 ? digit_ : (digit_ = g_.char_class({{'0', '9'}})); }

  ExprId string() {
    return builtin("json-string", string_, [&] { return g_.sequence({quote(), g_.star(character()), quote()}); });
  }
  ExprId integer() {
    return builtin("json-integer", integer_, [&] { return g_.sequence({minus(), integral()}); });
  }
  ExprId number() {
    return builtin("json-number", number_, [&] {
      const ExprId fraction = g_.sequence({g_.literal("."), g_.repeat(digit(), 1, kFractionDigits)});
      const ExprId exponent =
          g_.sequence({g_.char_class({{'e', 'e'}, {'E', 'E'}}), g_.optional(g_.char_class({{'-', '-'}, {'+', '+'}})),
                       g_.repeat(digit(), 1, kExponentDigits)});
      return g_.sequence({minus(), integral(), g_.optional(fraction), g_.optional(exponent)});
    });
  }
  ExprId value() {
    return builtin("json-value", value_, [&] {
      return g_.choice(
          {object(), array(), string(), number(), g_.literal("true"), g_.literal("false"), g_.literal("null")});
    });
  }
  ExprId object() {
    return builtin("json-object", object_, [&] {
      const ExprId member = g_.sequence({string(), colon(), value()});
      return bracketed("{", list(member, 0, kUnbounded), true, "}");
    });
  }
  ExprId array() {
    return builtin("json-array", array_, [&] { return bracketed("[", list(value(), 0, kUnbounded), true, "]"); });
  }

  ExprId quote() { return g_.literal("\""); }
  // `item` (sep item)*, between max(min, 1) and max items (max >= 1).
  ExprId list(ExprId item, uint32_t min, uint32_t max) {
    const uint32_t more_max = max == kUnbounded ? kUnbounded : max - 1;
    return g_.sequence({item, g_.repeat(g_.sequence({sep(), item}), std::max(min, 1u) - 1, more_max)});
  }
  // open ws items ws close, with "items ws" optional when the container may be empty.
  ExprId bracketed(std::string_view open, ExprId items, bool may_be_empty, std::string_view close) {
    const ExprId inner = g_.sequence({items, ws()});
    return g_.sequence({g_.literal(open), ws(), may_be_empty ? g_.optional(inner) : inner, g_.literal(close)});
  }
  ExprId empty_container(std::string_view open, std::string_view close) {
    return g_.sequence({g_.literal(open), ws(), g_.literal(close)});
  }

 private:
  ExprId minus() { return g_.optional(g_.literal("-")); }
  ExprId integral() {
    return g_.choice(
        {g_.literal("0"), g_.sequence({g_.char_class({{'1', '9'}}), g_.repeat(digit(), 0, kIntegralDigits - 1)})});
  }
  // The reference is cached before the body is built: json-value and json-object refer to each other.
  template <typename Build>
  ExprId builtin(std::string_view name, ExprId& cached, Build build) {
    return builtin(name, cached, true, build);
  }
  template <typename Build>
  ExprId builtin(std::string_view name, ExprId& cached, bool mark_shared, Build build) {
    if (cached >= 0) return cached;
    const RuleId rule = g_.declare_rule(name);
    cached = g_.ref(rule);
    g_.set_shared(rule, mark_shared);
    g_.define_rule(rule, build());
    return cached;
  }

  Grammar& g_;
  ExprId ws_ = -1, sep_ = -1, colon_ = -1, char_ = -1, digit_ = -1;
  ExprId string_ = -1, integer_ = -1, number_ = -1, value_ = -1, object_ = -1, array_ = -1;
};

// ---------------------------------------------------------------------------------------------
// Canonical decimal spellings (no leading zeros, no "-0") of integer ranges, digit by digit.
class DecimalRanges {
 public:
  DecimalRanges(Grammar& g, JsonRules& json) : g_(g), json_(json) {}

  // The integers in [lo, hi]; kNoLower / kNoUpper: unbounded on that side (up to 16 digits, or the
  // bound's length). -1 when the range is empty.
  ExprId integers(int64_t lo, int64_t hi) {
    std::vector<ExprId> alts;
    if (lo < 0) {  // negatives: "-" then the magnitudes [max(1, -hi), -lo]
      const uint64_t first = hi < 0 ? static_cast<uint64_t>(-hi) : 1;
      const uint64_t last = lo == kNoLower ? kOpen : static_cast<uint64_t>(-lo);
      if (last >= first) alts.push_back(g_.sequence({g_.literal("-"), positives(first, last)}));
    }
    if (lo <= 0 && hi >= 0) alts.push_back(g_.literal("0"));
    const uint64_t first = lo > 1 ? static_cast<uint64_t>(lo) : 1;
    const uint64_t last = hi == kNoUpper ? kOpen : hi < 1 ? 0 : static_cast<uint64_t>(hi);
    if (last >= first) alts.push_back(positives(first, last));
    return alts.empty() ? -1 : g_.choice(alts);
  }

  // [first, last] with first >= 0 ("0" included when first is 0); last may be kOpen.
  ExprId non_negative(uint64_t first, uint64_t last) {
    if (first > 0) return positives(first, last);
    if (last == 0) return g_.literal("0");
    return g_.choice({g_.literal("0"), positives(1, last)});
  }

  // "." and digits not all zero: zeros, the first non-zero digit, then any digits (each part
  // bounded, so the whole stays bounded).
  ExprId nonzero_fraction() {
    return g_.sequence({g_.literal("."), g_.repeat(g_.literal("0"), 0, kFractionDigits - 1),
                        g_.char_class({{'1', '9'}}), g_.repeat(json_.digit(), 0, kFractionDigits - 1)});
  }
  ExprId zero_fraction() { return g_.sequence({g_.literal("."), g_.repeat(g_.literal("0"), 1, kFractionDigits)}); }

 private:
  // [first, last] with first >= 1; an open end (kOpen) stops at max(16, digits of first) digits.
  ExprId positives(uint64_t first, uint64_t last) {
    const std::string lo = std::to_string(first);
    const std::string hi =
        last != kOpen ? std::to_string(last) : std::string(std::max<size_t>(kIntegralDigits, lo.size()), '9');
    std::vector<ExprId> alts;
    size_t run_first = 0, run_last = 0;  // lengths whose every number is in range: one [1-9][0-9]{a,b}
    auto flush_run = [&] {
      if (run_first == 0) return;
      alts.push_back(
          g_.sequence({g_.char_class({{'1', '9'}}), g_.repeat(json_.digit(), static_cast<uint32_t>(run_first - 1),
                                                              static_cast<uint32_t>(run_last - 1))}));
      run_first = 0;
    };
    for (size_t n = lo.size(); n <= hi.size(); ++n) {
      std::string lowest(n, '0');
      lowest[0] = '1';
      const std::string lo_n = n == lo.size() ? lo : lowest;
      const std::string hi_n = n == hi.size() ? hi : std::string(n, '9');
      if (lo_n == lowest && hi_n == std::string(n, '9')) {
        if (run_first == 0) run_first = n;
        run_last = n;
      } else {
        flush_run();
        alts.push_back(between(lo_n, hi_n));
      }
    }
    flush_run();
    return g_.choice(alts);
  }

  // Digit strings of lo's length from lo to hi (leading zeros allowed: these are suffixes).
  ExprId between(std::string_view lo, std::string_view hi) {
    size_t common = 0;
    while (common < lo.size() && lo[common] == hi[common]) ++common;
    if (common == lo.size()) return g_.literal(lo);
    const char a = lo[common], b = hi[common];
    const std::string_view lo_rest = lo.substr(common + 1), hi_rest = hi.substr(common + 1);
    const auto rest = static_cast<uint32_t>(lo_rest.size());
    const bool lo_rest_lowest = lo_rest.find_first_not_of('0') == std::string_view::npos;
    const bool hi_rest_highest = hi_rest.find_first_not_of('9') == std::string_view::npos;
    std::vector<ExprId> alts;
    char first = a, last = b;
    if (!lo_rest_lowest) {
      alts.push_back(g_.sequence({g_.codepoint(static_cast<uint32_t>(a)), between(lo_rest, std::string(rest, '9'))}));
      ++first;
    }
    if (!hi_rest_highest) --last;
    if (first <= last) {
      alts.push_back(g_.sequence({g_.char_class({{static_cast<uint32_t>(first), static_cast<uint32_t>(last)}}),
                                  g_.repeat(json_.digit(), rest, rest)}));
    }
    if (!hi_rest_highest) {
      alts.push_back(g_.sequence({g_.codepoint(static_cast<uint32_t>(b)), between(std::string(rest, '0'), hi_rest)}));
    }
    return g_.sequence({g_.literal(lo.substr(0, common)), g_.choice(alts)});
  }

  Grammar& g_;
  JsonRules& json_;
};

// ---------------------------------------------------------------------------------------------
// String formats as the content between the quotes (plain ASCII: no character needs escaping).
class Formats {
 public:
  explicit Formats(Grammar& g) : g_(g) {}

  struct Length {
    uint32_t min, max;
  };
  // Length range of the strings a format produces (kUnbounded: no maximum), for minLength/maxLength.
  static std::optional<Length> length(std::string_view name) {
    static const std::map<std::string_view, Length> kLengths = {{"date", {10, 10}},
                                                                {"time", {9, 24}},
                                                                {"date-time", {20, 35}},
                                                                {"uuid", {36, 36}},
                                                                {"ipv4", {7, 15}},
                                                                {"ipv6", {2, 45}},
                                                                {"email", {5, kUnbounded}},
                                                                {"hostname", {1, kUnbounded}},
                                                                {"duration", {3, kUnbounded}}};
    const auto it = kLengths.find(name);
    return it == kLengths.end() ? std::nullopt : std::optional<Length>(it->second);
  }

  ExprId build(std::string_view name) {
    if (name == "date") return date();
    if (name == "time") return time();
    if (name == "date-time") return g_.sequence({date(), lit("T"), time()});
    if (name == "uuid") {
      return g_.sequence({hex(8), lit("-"), hex(4), lit("-"), hex(4), lit("-"), hex(4), lit("-"), hex(12)});
    }
    if (name == "ipv4") return ipv4();
    if (name == "ipv6") return ipv6();
    if (name == "hostname") return g_.sequence({label(), g_.star(g_.sequence({lit("."), label()}))});
    if (name == "email") {
      // local@domain: a dot-atom local part and a domain of two or more labels (no quoted local
      // parts, no IP literals).
      const ExprId atext = g_.char_class({{'a', 'z'},
                                          {'A', 'Z'},
                                          {'0', '9'},
                                          {'!', '!'},
                                          {'#', '\''},
                                          {'*', '+'},
                                          {'-', '-'},
                                          {'/', '/'},
                                          {'=', '='},
                                          {'?', '?'},
                                          {'^', '`'},
                                          {'{', '~'}});
      const ExprId atom = g_.repeat(atext, 1, 64);
      return g_.sequence(
          {atom, g_.star(g_.sequence({lit("."), atom})), lit("@"), label(), g_.plus(g_.sequence({lit("."), label()}))});
    }
    EMBER_CHECK(name == "duration");
    return duration();
  }

 private:
  ExprId lit(std::string_view s) { return g_.literal(s); }
  ExprId cls(char a, char b) { return g_.char_class({{static_cast<uint32_t>(a), static_cast<uint32_t>(b)}}); }
  ExprId digits(uint32_t n) { return g_.repeat(cls('0', '9'), n, n); }
  ExprId hex(uint32_t n) { return g_.repeat(g_.char_class({{'0', '9'}, {'a', 'f'}, {'A', 'F'}}), n, n); }
  ExprId two(char a1, char b1, char a2, char b2) { return g_.sequence({cls(a1, b1), cls(a2, b2)}); }

  // YYYY-MM-DD with the days each month can have (29 February in every year).
  ExprId date() {
    const ExprId day_1_29 = g_.choice({two('0', '0', '1', '9'), two('1', '2', '0', '9')});
    const ExprId long_months = g_.choice({two('0', '0', '1', '1'), two('0', '0', '3', '3'), two('0', '0', '5', '5'),
                                          two('0', '0', '7', '8'), two('1', '1', '0', '0'), two('1', '1', '2', '2')});
    const ExprId short_months =
        g_.choice({two('0', '0', '4', '4'), two('0', '0', '6', '6'), two('0', '0', '9', '9'), lit("11")});
    const ExprId month_day = g_.choice({
        g_.sequence({long_months, lit("-"), g_.choice({day_1_29, lit("30"), lit("31")})}),
        g_.sequence({short_months, lit("-"), g_.choice({day_1_29, lit("30")})}),
        g_.sequence({lit("02-"), day_1_29}),
    });
    return g_.sequence({digits(4), lit("-"), month_day});
  }
  ExprId hour() { return g_.choice({two('0', '1', '0', '9'), two('2', '2', '0', '3')}); }
  ExprId minute() { return two('0', '5', '0', '9'); }
  // RFC 3339 full-time: HH:MM:SS, optional fraction, Z or an offset (upper case; no leap second).
  ExprId time() {
    const ExprId fraction = g_.optional(g_.sequence({lit("."), g_.repeat(cls('0', '9'), 1, 9)}));
    const ExprId offset =
        g_.choice({lit("Z"), g_.sequence({g_.char_class({{'+', '+'}, {'-', '-'}}), hour(), lit(":"), minute()})});
    return g_.sequence({hour(), lit(":"), minute(), lit(":"), minute(), fraction, offset});
  }
  ExprId octet() {  // 0..255 without leading zeros
    return g_.choice({g_.sequence({lit("25"), cls('0', '5')}), g_.sequence({lit("2"), cls('0', '4'), cls('0', '9')}),
                      g_.sequence({lit("1"), digits(2)}), g_.sequence({cls('1', '9'), cls('0', '9')}), cls('0', '9')});
  }
  ExprId ipv4() { return g_.sequence({octet(), lit("."), octet(), lit("."), octet(), lit("."), octet()}); }
  // RFC 3986's IPv6address: n groups, "::", m groups, the last 32 bits possibly as IPv4.
  ExprId ipv6() {
    const ExprId h16 = g_.repeat(g_.char_class({{'0', '9'}, {'a', 'f'}, {'A', 'F'}}), 1, 4);
    const ExprId h16_colon = g_.sequence({h16, lit(":")});
    const ExprId ls32 = g_.choice({g_.sequence({h16, lit(":"), h16}), ipv4()});
    std::vector<ExprId> alts = {g_.sequence({g_.repeat(h16_colon, 6, 6), ls32})};
    for (uint32_t after = 0; after <= 7; ++after) {  // 16-bit groups after "::" (ls32 is two)
      const ExprId tail = after == 0   ? g_.empty()
                          : after == 1 ? h16
                                       : g_.sequence({g_.repeat(h16_colon, after - 2, after - 2), ls32});
      const uint32_t before_max = 7 - after;
      const ExprId before =
          before_max == 0 ? g_.empty() : g_.optional(g_.sequence({g_.repeat(h16_colon, 0, before_max - 1), h16}));
      alts.push_back(g_.sequence({before, lit("::"), tail}));
    }
    return g_.choice(alts);
  }
  ExprId label() {
    const ExprId alnum = g_.char_class({{'a', 'z'}, {'A', 'Z'}, {'0', '9'}});
    const ExprId inner = g_.char_class({{'a', 'z'}, {'A', 'Z'}, {'0', '9'}, {'-', '-'}});
    return g_.sequence({alnum, g_.optional(g_.sequence({g_.repeat(inner, 0, 61), alnum}))});
  }
  // ISO 8601 / RFC 3339 appendix A: P then date parts (Y, M, D) and/or T time parts, or weeks.
  ExprId duration() {
    const ExprId n = g_.repeat(cls('0', '9'), 1, 9);
    auto unit = [&](const char* u) { return g_.sequence({n, lit(u)}); };
    const ExprId second = unit("S");
    const ExprId minute_part = g_.sequence({unit("M"), g_.optional(second)});
    const ExprId hour_part = g_.sequence({unit("H"), g_.optional(minute_part)});
    const ExprId time_part = g_.sequence({lit("T"), g_.choice({hour_part, minute_part, second})});
    const ExprId day = unit("D");
    const ExprId month = g_.sequence({unit("M"), g_.optional(day)});
    const ExprId year = g_.sequence({unit("Y"), g_.optional(month)});
    const ExprId date_part = g_.sequence({g_.choice({day, month, year}), g_.optional(time_part)});
    return g_.sequence({lit("P"), g_.choice({date_part, time_part, unit("W")})});
  }

  Grammar& g_;
};

// ---------------------------------------------------------------------------------------------
bool is_true(const Json& s, std::string_view key) {
  const auto it = s.find(key);
  return it != s.end() && *it == true;
}

bool is_known_keyword(std::string_view key) {
  for (const auto* family : {&kObjectKeywords, &kArrayKeywords, &kStringKeywords, &kNumberKeywords}) {
    if (std::find(family->begin(), family->end(), key) != family->end()) return true;
  }
  return kCombinators.contains(key);
}

// "#/$defs/a" -> "/$defs/a", "#" -> "": local JSON-pointer references only.
std::string ref_target(const Json& ref, const std::string& pointer) {
  if (!ref.is_string()) refuse(pointer, "$ref must be a string");
  const std::string text = ref.get<std::string>();
  if (!text.starts_with("#")) refuse(pointer, "remote $ref '{}' is not supported (only '#/...' in this schema)", text);
  std::string target;  // a URI fragment: percent-decoded
  for (size_t i = 1; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      target += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      target += text[i];
    }
  }
  if (!target.empty() && target[0] != '/')
    refuse(pointer, "$ref '{}': anchors are not supported, use a JSON pointer", text);
  return target;
}

// A rule name from a $ref target's last segment ([A-Za-z0-9-], never a builtin's "json-" name).
std::string rule_name(const std::string& target) {
  std::string name;
  for (const char c : target.substr(target.rfind('/') + 1))
    name += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  if (name.empty() || name.starts_with("json-") || name.starts_with("rest-") || name == "root") name = "def-" + name;
  return name;
}

struct Bound {
  long double value;
  bool exclusive;
  std::string key;
};

// The strictest of minimum / exclusiveMinimum (or the maximum side), draft 4's boolean
// exclusiveMinimum included.
std::optional<Bound> bound(const Json& s, const std::string& pointer, bool lower) {
  const char* inclusive_key = lower ? "minimum" : "maximum";
  const char* exclusive_key = lower ? "exclusiveMinimum" : "exclusiveMaximum";
  std::optional<Bound> best;
  auto consider = [&](const char* key, bool exclusive) {
    const auto it = s.find(key);
    if (it == s.end()) return;
    if (!it->is_number()) refuse(child(pointer, key), "{} must be a number", key);
    const long double v = it->is_number_unsigned()  ? static_cast<long double>(it->get<uint64_t>())
                          : it->is_number_integer() ? static_cast<long double>(it->get<int64_t>())
                                                    : static_cast<long double>(it->get<double>());
    if (!(std::fabs(v) <= kMaxBound)) refuse(child(pointer, key), "bounds beyond ±10^18 are not supported");
    if (!best || (lower ? v > best->value : v < best->value) || (v == best->value && exclusive)) {
      best = Bound{.value = v, .exclusive = exclusive, .key = key};
    }
  };
  const auto ex = s.find(exclusive_key);
  if (ex != s.end() && ex->is_boolean()) {
    consider(inclusive_key, ex->get<bool>());
  } else {
    consider(inclusive_key, false);
    consider(exclusive_key, true);
  }
  return best;
}

std::optional<std::vector<Json>> fixed_scalar_values(const Json& s) {
  if (!s.is_object()) return std::nullopt;
  std::vector<Json> values;
  if (const auto c = s.find("const"); c != s.end()) {
    values = {*c};
  } else if (const auto e = s.find("enum"); e != s.end() && e->is_array()) {
    values.assign(e->begin(), e->end());
  } else {
    return std::nullopt;
  }
  // Objects compare by key order in ordered_json: only scalars are compared.
  if (std::any_of(values.begin(), values.end(), [](const Json& v) { return v.is_structured(); })) return std::nullopt;
  return values;
}

bool values_disjoint(const std::vector<Json>& a, const std::vector<Json>& b) {
  for (const Json& x : a) {
    if (std::find(b.begin(), b.end(), x) != b.end()) return false;
  }
  return true;
}

bool is_required(const Json& s, const std::string& name) {
  const auto r = s.find("required");
  return r != s.end() && r->is_array() && std::find(r->begin(), r->end(), name) != r->end();
}

struct Part {
  const Json* schema;
  std::string pointer;
};

// `target` becomes the conjunction of itself and `more`: one flat allOf however many parts add to it.
void add_all_of(Json& target, const Json& more) {
  if (target.is_object() && target.size() == 1 && target.contains("allOf") && target["allOf"].is_array()) {
    target["allOf"].push_back(more);
  } else {
    target = Json{{"allOf", Json::array({std::move(target), more})}};
  }
}

// allOf: one keyword of a part into the merged schema `out` (the conjunction).
void merge_keyword(Json& out, const std::string& key, const Json& value, const Json& part, const std::string& p) {
  if (key == "type") {
    uint8_t bits = type_bits(value, p) | (is_true(part, "nullable") ? kNull : 0);
    if (out.contains("type")) bits &= type_bits(out["type"], p);
    if (bits == 0) refuse(p, "allOf: no type satisfies every branch");
    out["type"] = type_json(bits);
  } else if (key == "enum" || key == "const") {
    Json values = key == "const" ? Json::array({value}) : value;
    if (!values.is_array() || values.empty()) refuse(p, "enum must be a non-empty array");
    if (out.contains("enum")) {
      Json common = Json::array();
      for (const Json& v : values) {
        if (std::find(out["enum"].begin(), out["enum"].end(), v) != out["enum"].end()) common.push_back(v);
      }
      values = std::move(common);
    }
    if (values.empty()) refuse(p, "allOf: no enum/const value satisfies every branch");
    out["enum"] = std::move(values);
  } else if (key == "properties") {
    if (!value.is_object()) refuse(p, "properties must be an object");
    if (!out.contains(key)) out[key] = Json::object();
    Json& props = out[key];
    for (const auto& [name, sub] : value.items()) {
      if (props.contains(name)) {
        add_all_of(props[name], sub);
      } else {
        props[name] = sub;
      }
    }
  } else if (key == "required") {
    if (!value.is_array()) refuse(p, "required must be an array of strings");
    if (!out.contains(key)) out[key] = Json::array();
    for (const Json& name : value) {
      if (std::find(out[key].begin(), out[key].end(), name) == out[key].end()) out[key].push_back(name);
    }
  } else if (key == "prefixItems" || (key == "items" && value.is_array())) {
    if (out.contains("prefixItems") || out.contains("items"))
      refuse(p, "allOf: a tuple cannot be combined with other items");
    out[key] = value;
  } else if (key == "items" || key == "additionalItems") {
    if (out.contains("prefixItems") || (out.contains(key) && out[key].is_array())) {
      refuse(p, "allOf: a tuple cannot be combined with other items");
    }
    if (out.contains(key)) {
      add_all_of(out[key], value);
    } else {
      out[key] = value;
    }
  } else if (key == "minLength" || key == "minItems" || key == "minProperties" || key == "maxLength" ||
             key == "maxItems" || key == "maxProperties" || key.find("imum") != std::string::npos) {
    if (value.is_boolean() && key.starts_with("exclusive")) return;  // draft 4: read with minimum/maximum
    if (!value.is_number()) refuse(p, "{} must be a number", key);
    std::string target = key;
    if (key == "minimum" && is_true(part, "exclusiveMinimum")) target = "exclusiveMinimum";
    if (key == "maximum" && is_true(part, "exclusiveMaximum")) target = "exclusiveMaximum";
    const bool take_larger = target.starts_with("min") || target == "exclusiveMinimum";
    if (!out.contains(target) || (take_larger ? out[target] < value : value < out[target])) out[target] = value;
  } else if (key == "pattern" || key == "format" || key == "multipleOf") {
    if (out.contains(key) && out[key] != value) refuse(p, "allOf: different '{}' values cannot be combined", key);
    out[key] = value;
  }
}

// allOf and additionalProperties: a part's false / schema applies to the properties the other
// parts declare (removed / constrained); the merged object keeps the strictest rule for extra keys.
void merge_additional_properties(Json& out, const std::vector<Part>& parts) {
  bool closed = false, open = false;
  Json schemas = Json::array();
  for (const Part& part : parts) {
    const auto ap = part.schema->find("additionalProperties");
    if (ap == part.schema->end()) continue;
    if (*ap == true) {
      open = true;
      continue;
    }
    const auto own = part.schema->find("properties");
    auto declared = [&](const std::string& name) {
      return own != part.schema->end() && own->is_object() && own->contains(name);
    };
    const std::string p = child(part.pointer, "additionalProperties");
    if (out.contains("properties")) {
      Json& props = out["properties"];
      std::vector<std::string> names;
      for (const auto& [name, sub] : props.items()) names.push_back(name);
      for (const std::string& name : names) {
        if (declared(name)) continue;
        if (*ap != false) {
          add_all_of(props[name], *ap);
        } else if (!is_required(out, name)) {
          props.erase(name);
        }
      }
    }
    if (*ap == false) {
      for (const Json& name : out.value("required", Json::array())) {
        if (name.is_string() && !declared(name.get<std::string>())) {
          refuse(p, "allOf: required property '{}' is not allowed by additionalProperties: false",
                 name.get<std::string>());
        }
      }
      closed = true;
    } else {
      schemas.push_back(*ap);
    }
  }
  if (closed) {
    out["additionalProperties"] = false;
  } else if (!schemas.empty()) {
    out["additionalProperties"] = schemas.size() == 1 ? schemas[0] : Json{{"allOf", schemas}};
  } else if (open) {
    out["additionalProperties"] = true;
  }
}

// ---------------------------------------------------------------------------------------------
class Converter {
 public:
  Converter(const Json& document, const JsonSchemaOptions& options, Grammar& g)
      : doc_(document), strict_(options.strict), g_(g), json_(g), ranges_(g, json_), formats_(g) {}

  void run() {
    check_document(doc_);
    if (strict_) check_strict_root();
    const RuleId root = g_.declare_rule("root");
    ref_rules_.emplace("", root);
    rule_pointers_.emplace(root, "");
    g_.define_rule(root, convert(doc_, "", 0));
    g_.set_root(root);
    check_termination();
  }

 private:
  void account(const std::string& ptr, int depth, int64_t units) {
    if (depth > kMaxNesting) refuse(ptr, "schemas nested more than {} deep are not supported", kMaxNesting);
    work_ += units;
    if (work_ > kMaxWork) refuse(ptr, "the schema is too complex to convert (allOf, $ref or oneOf expansion)");
    if (g_.expr_count() > kMaxExpressions) {
      refuse(ptr, "the schema is too large: its grammar exceeds {} expressions", kMaxExpressions);
    }
  }

  void check_keywords(const Json& s, const std::string& ptr) const {
    for (const auto& [key, value] : s.items()) {
      if (kIgnored.contains(key)) continue;
      if (!is_known_keyword(key)) refuse(child(ptr, key), "keyword '{}' is not supported", key);
      if (key == "uniqueItems" && value != false) refuse(child(ptr, key), "'uniqueItems' is not supported");
      if (strict_ && (key == "allOf" || key == "oneOf"))
        refuse(child(ptr, key), "strict mode does not allow '{}'", key);
    }
  }

  void check_strict_root() const {
    const auto type = doc_.is_object() ? doc_.find("type") : doc_.end();
    if (!doc_.is_object() || type == doc_.end() || *type != "object") {
      refuse("", "strict mode requires the root schema to be \"type\": \"object\"");
    }
    if (doc_.contains("anyOf")) refuse("/anyOf", "strict mode does not allow anyOf at the root");
  }

  ExprId convert(const Json& s, const std::string& ptr, int depth) {
    account(ptr, depth, 1);
    if (s.is_boolean()) {
      if (s.get<bool>()) return json_.value();
      refuse(ptr, "the schema false accepts nothing");
    }
    if (!s.is_object()) refuse(ptr, "a schema must be an object or a boolean, not {}", s.type_name());
    check_keywords(s, ptr);
    if (const auto all = s.find("allOf"); all != s.end() && all->is_array() && all->size() == 1 && !constrains(s)) {
      // {"allOf": [{"$ref": ...}], "description": ...} (pydantic): the one schema, a recursive $ref still a rule.
      return convert(all->front(), child(child(ptr, "allOf"), 0), depth + 1);
    }
    if (needs_merge(s)) {
      const Json merged = merge(s, ptr, depth);
      return convert(merged, ptr, depth + 1);
    }
    if (const auto ref = s.find("$ref"); ref != s.end()) return ref_expr(*ref, child(ptr, "$ref"), depth);
    if (s.contains("anyOf") || s.contains("oneOf")) return union_expr(s, ptr, depth);
    return typed_expr(s, ptr, depth);
  }

  static bool is_combinator(std::string_view key) {
    return key == "$ref" || key == "anyOf" || key == "oneOf" || key == "allOf";
  }
  // Whether keywords besides the combinators constrain (annotations, nullable and uniqueItems:
  // false do not, nullable being meaningless without type).
  static bool constrains(const Json& s) {
    return std::any_of(s.items().begin(), s.items().end(), [](const auto& item) {
      const std::string& key = item.key();
      return !kIgnored.contains(key) && key != "nullable" && key != "uniqueItems" && !is_combinator(key);
    });
  }
  // allOf, or $ref / anyOf / oneOf next to other combinators or constraining keywords: converted as
  // one merged schema.
  static bool needs_merge(const Json& s) {
    const auto combinators =
        std::count_if(s.items().begin(), s.items().end(), [](const auto& item) { return is_combinator(item.key()); });
    return s.contains("allOf") || combinators > 1 || (combinators == 1 && constrains(s));
  }

  // One rule per $ref target, so recursive schemas become recursive rules.
  ExprId ref_expr(const Json& ref, const std::string& ptr, int depth) {
    const std::string target = ref_target(ref, ptr);
    if (const auto it = ref_rules_.find(target); it != ref_rules_.end()) return g_.ref(it->second);
    const Json& schema = resolve(target, ptr);
    const RuleId rule = g_.declare_rule(g_.fresh_name(rule_name(target)));
    ref_rules_.emplace(target, rule);
    rule_pointers_.emplace(rule, target);
    g_.define_rule(rule, convert(schema, target, depth + 1));
    return g_.ref(rule);
  }

  const Json& resolve(const std::string& target, const std::string& ptr) const {
    try {
      return doc_.at(Json::json_pointer(target));
    } catch (const nlohmann::json::exception&) {
      refuse(ptr, "$ref target '#{}' does not exist", target);
    }
  }

  ExprId union_expr(const Json& s, const std::string& ptr, int depth) {
    const std::string key = s.contains("oneOf") ? "oneOf" : "anyOf";
    const Json& branches = s.at(key);
    const std::string p = child(ptr, key);
    if (!branches.is_array() || branches.empty()) refuse(p, "{} must be a non-empty array", key);
    if (key == "oneOf") check_disjoint(branches, p);
    std::vector<ExprId> alts;
    for (size_t i = 0; i < branches.size(); ++i) {
      if (branches[i] != false) alts.push_back(convert(branches[i], child(p, i), depth + 1));
    }
    if (alts.empty()) refuse(p, "no branch accepts anything");
    return g_.choice(alts);
  }

  ExprId typed_expr(const Json& s, const std::string& ptr, int depth) {
    uint8_t types = kAnyType;
    if (const auto t = s.find("type"); t != s.end()) {
      types = type_bits(*t, child(ptr, "type")) | (is_true(s, "nullable") ? kNull : 0);
    }
    if (s.contains("enum") || s.contains("const")) return enum_expr(s, types, ptr);
    if (!s.contains("type")) {  // the types the keywords constrain (a subset of "any": sound)
      types = (has_any(s, kObjectKeywords) ? kObject : 0) | (has_any(s, kArrayKeywords) ? kArray : 0) |
              (has_any(s, kStringKeywords) ? kString : 0) | (has_any(s, kNumberKeywords) ? kNumber : 0);
      if (types == 0) return json_.value();
    }
    std::vector<ExprId> alts;
    if (types & kObject) alts.push_back(object_expr(s, ptr, depth));
    if (types & kArray) alts.push_back(array_expr(s, ptr, depth));
    if (types & kString) alts.push_back(string_expr(s, ptr));
    if ((types & kNumber) == kNumber) {
      alts.push_back(number_expr(s, ptr));
    } else if (types & kInteger) {
      alts.push_back(integer_expr(s, ptr));
    }
    if (types & kBoolean) alts.push_back(g_.choice({g_.literal("true"), g_.literal("false")}));
    if (types & kNull) alts.push_back(g_.literal("null"));
    return g_.choice(alts);
  }

  // enum / const: the canonical spellings (nlohmann dump(): compact, UTF-8 unescaped).
  ExprId enum_expr(const Json& s, uint8_t types, const std::string& ptr) {
    for (const auto* family : {&kObjectKeywords, &kArrayKeywords, &kStringKeywords, &kNumberKeywords}) {
      for (const std::string_view key : *family) {
        if (s.contains(key)) refuse(child(ptr, key), "'{}' next to enum/const is not supported", key);
      }
    }
    std::vector<const Json*> values;
    std::string where = child(ptr, "enum");
    if (const auto c = s.find("const"); c != s.end()) {
      const auto e = s.find("enum");
      if (e != s.end() && !(e->is_array() && std::find(e->begin(), e->end(), *c) != e->end())) {
        refuse(where, "const is not one of the enum values");
      }
      values = {&*c};
      where = child(ptr, "const");
    } else {
      const Json& e = s.at("enum");
      if (!e.is_array() || e.empty()) refuse(where, "enum must be a non-empty array");
      for (const Json& v : e) values.push_back(&v);
    }
    std::set<std::string> seen;
    std::vector<ExprId> alts;
    for (const Json* v : values) {
      account(where, 0, 1);
      if (!(value_type(*v) & types)) continue;
      std::string text = canonical_dump(*v, where);
      if (seen.insert(text).second) alts.push_back(g_.literal(text));
    }
    if (alts.empty()) refuse(where, "no value has an allowed type");
    return g_.choice(alts);
  }

  struct Member {
    ExprId key_value;
    bool required;
  };

  ExprId object_expr(const Json& s, const std::string& ptr, int depth) {
    static const Json kNoProperties = Json::object();
    const auto props_it = s.find("properties");
    const Json& props = props_it == s.end() ? kNoProperties : *props_it;
    if (!props.is_object()) refuse(child(ptr, "properties"), "properties must be an object");
    const std::vector<std::string> required = required_names(s, ptr);
    const auto ap = s.find("additionalProperties");
    if (strict_) check_strict_object(props, required, ap != s.end() && *ap == false, ptr);
    const bool no_counts = !s.contains("minProperties") && !s.contains("maxProperties");
    if (props.empty() && required.empty() && no_counts && (ap == s.end() || *ap == true)) {
      return json_.object();  // nothing declared: any object (additionalProperties absent reads as true here)
    }
    const bool extras = ap != s.end() && *ap != false;
    // Extra keys' values; also the values of required keys that `properties` does not declare.
    const ExprId extra_value = !extras       ? -1
                               : *ap == true ? json_.value()
                                             : convert(*ap, child(ptr, "additionalProperties"), depth + 1);
    std::vector<Member> members;
    std::vector<std::string> names;
    for (const auto& [name, sub] : props.items()) {
      names.push_back(name);  // excluded from the extra keys even when it can never appear
      const bool is_required = std::find(required.begin(), required.end(), name) != required.end();
      if (sub == false && !is_required) continue;  // the property must be absent
      members.push_back(
          {key_value(name, convert(sub, child(child(ptr, "properties"), name), depth + 1), ptr), is_required});
    }
    for (const std::string& name : required) {
      if (props.contains(name)) continue;
      if (ap != s.end() && *ap == false) {
        refuse(child(ptr, "required"), "required property '{}' is not in properties and additionalProperties is false",
               name);
      }
      members.push_back({key_value(name, extras ? extra_value : json_.value(), ptr), true});
      names.push_back(name);
    }
    check_property_counts(s, ptr, required.size(), extras ? std::nullopt : std::optional<size_t>(members.size()));
    const auto [declared, may_be_empty] = member_list(members);
    if (!extras) {
      return declared < 0 ? json_.empty_container("{", "}") : json_.bracketed("{", declared, may_be_empty, "}");
    }
    const ExprId key = names.empty() ? json_.string() : key_excluding(names, ptr);
    const ExprId extra = g_.sequence({key, json_.colon(), extra_value});
    // The declared members (or, when they may all be absent, an extra one first), then extras.
    std::vector<ExprId> first;
    if (declared >= 0) first.push_back(declared);
    if (may_be_empty) first.push_back(extra);
    const ExprId more = g_.star(g_.sequence({json_.sep(), extra}));
    return json_.bracketed("{", g_.sequence({g_.choice(first), more}), may_be_empty, "}");
  }

  ExprId key_value(const std::string& name, ExprId value, const std::string& ptr) {
    return g_.sequence({g_.literal(canonical_dump(Json(name), ptr)), json_.colon(), value});
  }

  static std::vector<std::string> required_names(const Json& s, const std::string& ptr) {
    std::vector<std::string> names;
    const auto r = s.find("required");
    if (r == s.end()) return names;
    if (!r->is_array()) refuse(child(ptr, "required"), "required must be an array of strings");
    for (const Json& name : *r) {
      if (!name.is_string()) refuse(child(ptr, "required"), "required must be an array of strings");
      if (std::find(names.begin(), names.end(), name.get<std::string>()) == names.end()) names.push_back(name);
    }
    return names;
  }

  static void check_strict_object(const Json& props, const std::vector<std::string>& required, bool closed,
                                  const std::string& ptr) {
    if (!closed) refuse(ptr, "strict mode requires \"additionalProperties\": false on every object");
    for (const auto& [name, sub] : props.items()) {
      if (std::find(required.begin(), required.end(), name) == required.end()) {
        refuse(child(ptr, "required"), "strict mode requires every property to be required; '{}' is not", name);
      }
    }
  }

  static void check_property_counts(const Json& s, const std::string& ptr, size_t at_least,
                                    std::optional<size_t> at_most) {
    if (s.contains("minProperties")) {
      const uint32_t min = count_value(s, "minProperties", 0, ptr);
      if (min > at_least) {
        refuse(child(ptr, "minProperties"),
               "minProperties {} is not implied by the {} required properties; not supported", min, at_least);
      }
    }
    if (s.contains("maxProperties")) {
      const uint32_t max = count_value(s, "maxProperties", 0, ptr);
      if (!at_most || max < *at_most) {
        refuse(child(ptr, "maxProperties"), "maxProperties {} is not implied by the declared properties; not supported",
               max);
      }
    }
  }

  // Members in schema order: required ones always, optional ones in any subset. "rest" rules share
  // the tails (llama.cpp's idea). Returns the non-empty lists (-1: no members) and whether the
  // list may be empty.
  std::pair<ExprId, bool> member_list(const std::vector<Member>& m) {
    const size_t n = m.size();
    if (n == 0) return {-1, true};
    size_t first_required = 0;
    while (first_required < n && !m[first_required].required) ++first_required;
    auto item = [&](size_t j) {
      const ExprId e = g_.sequence({json_.sep(), m[j].key_value});
      return m[j].required ? e : g_.optional(e);
    };
    // A list starts with member j for j up to the first required one; `rest` is what may follow j.
    const size_t starts = std::min(first_required + 1, n);
    std::vector<ExprId> tail;
    for (size_t j = starts; j < n; ++j) tail.push_back(item(j));
    ExprId rest = g_.sequence(tail);
    std::vector<ExprId> alts;
    for (size_t j = starts; j-- > 0;) {
      if (j > 0 && g_.expr(rest).kind != ExprKind::kEmpty) {  // used twice: by this start and the next rest
        rest = g_.ref(g_.add_rule(g_.fresh_name(fmt::format("rest-{}", ++rest_rules_)), rest));
      }
      alts.push_back(g_.sequence({m[j].key_value, rest}));
      if (j > 0) rest = g_.sequence({item(j), rest});
    }
    return {g_.choice(alts), first_required == n};
  }

  // A JSON string that is none of `names`. Raw characters only (no escapes), so the text compared
  // is the decoded key: a trie of the names, each node's complement added as alternatives.
  ExprId key_excluding(const std::vector<std::string>& names, const std::string& ptr) {
    const std::vector<CodepointRange> needs_escape = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}, {0x7F, 0x7F}};
    struct Node {
      std::map<uint32_t, size_t> next;
      bool word = false;
    };
    std::vector<Node> trie(1);
    for (const std::string& name : names) {
      if (name.size() > 1024)
        refuse(child(ptr, "properties"), "property names over 1024 bytes are not supported with additionalProperties");
      std::vector<uint32_t> cps;
      for (size_t pos = 0; pos < name.size();) {
        const utf8::Decoded d = utf8::decode(name, pos);
        cps.push_back(d.code_point);
        pos += d.length;
      }
      const bool raw = std::none_of(cps.begin(), cps.end(),
                                    [](uint32_t c) { return c < 0x20 || c == '"' || c == '\\' || c == 0x7F; });
      if (!raw) continue;  // an unescaped key can never spell it
      size_t at = 0;
      for (const uint32_t cp : cps) {
        auto it = trie[at].next.find(cp);
        if (it == trie[at].next.end()) {
          trie.emplace_back();
          it = trie[at].next.emplace(cp, trie.size() - 1).first;
        }
        at = it->second;
      }
      trie[at].word = true;
    }
    const ExprId any_tail = g_.star(g_.char_class(needs_escape, true));
    std::vector<ExprId> exprs(trie.size());
    for (size_t i = trie.size(); i-- > 0;) {  // children come after their parent
      account(ptr, 0, 1);
      std::vector<ExprId> alts;
      std::vector<CodepointRange> taken = needs_escape;
      if (!trie[i].word) alts.push_back(g_.empty());
      for (const auto& [cp, next] : trie[i].next) {
        alts.push_back(g_.sequence({g_.codepoint(cp), exprs[next]}));
        taken.push_back({cp, cp});
      }
      if (const ExprId other = g_.char_class(taken, true); other >= 0) alts.push_back(g_.sequence({other, any_tail}));
      exprs[i] = g_.choice(alts);
    }
    return g_.sequence({json_.quote(), exprs[0], json_.quote()});
  }

  ExprId array_expr(const Json& s, const std::string& ptr, int depth) {
    static const Json kAny = true;
    const uint32_t min = count_value(s, "minItems", 0, ptr), max = count_value(s, "maxItems", kUnbounded, ptr);
    if (min > max) refuse(child(ptr, "minItems"), "minItems is larger than maxItems");
    const auto items = s.find("items"), prefix_items = s.find("prefixItems"), additional = s.find("additionalItems");
    // A tuple (prefixItems, or draft 4's items array) and the schema of the items after it.
    const Json* tuple = nullptr;
    std::string tuple_ptr, rest_ptr;
    const Json* rest = &kAny;
    if (prefix_items != s.end()) {
      if (items != s.end() && items->is_array()) refuse(child(ptr, "items"), "items as an array next to prefixItems");
      tuple = &*prefix_items;
      tuple_ptr = child(ptr, "prefixItems");
      if (items != s.end()) rest = &*items;
      rest_ptr = child(ptr, "items");
    } else if (items != s.end() && items->is_array()) {
      tuple = &*items;
      tuple_ptr = child(ptr, "items");
      if (additional != s.end()) rest = &*additional;
      rest_ptr = child(ptr, "additionalItems");
    } else {
      if (items != s.end()) rest = &*items;
      rest_ptr = child(ptr, "items");
    }
    if (tuple && !tuple->is_array()) refuse(tuple_ptr, "must be an array of schemas");
    size_t k = tuple ? std::min<size_t>(tuple->size(), max) : 0;
    std::vector<ExprId> prefix;
    for (size_t i = 0; i < k; ++i) {
      if ((*tuple)[i] == false) {  // no item here, so none after it either
        k = i;
        rest = &(*tuple)[i];
        break;
      }
      prefix.push_back(convert((*tuple)[i], child(tuple_ptr, i), depth + 1));
    }
    const ExprId rest_item = *rest == false || max <= k ? -1 : convert(*rest, rest_ptr, depth + 1);
    if (rest_item < 0 && min > k)
      refuse(child(ptr, "minItems"), "minItems {} but at most {} items are allowed", min, k);
    if (max == 0 || (k == 0 && rest_item < 0)) return json_.empty_container("[", "]");
    if (k == 0) return json_.bracketed("[", json_.list(rest_item, min, max), min == 0, "]");
    // Tuple: the first items up to minItems always, each later one only after its predecessor.
    ExprId after = rest_item < 0
                       ? g_.empty()
                       : g_.repeat(g_.sequence({json_.sep(), rest_item}), min > k ? min - static_cast<uint32_t>(k) : 0,
                                   max == kUnbounded ? kUnbounded : max - static_cast<uint32_t>(k));
    const size_t always = std::clamp<size_t>(min, 1, k);
    for (size_t i = k; i-- > always;) after = g_.optional(g_.sequence({json_.sep(), prefix[i], after}));
    std::vector<ExprId> seq = {prefix[0]};
    for (size_t i = 1; i < always; ++i) {
      seq.push_back(json_.sep());
      seq.push_back(prefix[i]);
    }
    seq.push_back(after);
    return json_.bracketed("[", g_.sequence(seq), min == 0, "]");
  }

  ExprId string_expr(const Json& s, const std::string& ptr) {
    const uint32_t min = count_value(s, "minLength", 0, ptr), max = count_value(s, "maxLength", kUnbounded, ptr);
    if (min > max) refuse(child(ptr, "minLength"), "minLength is larger than maxLength");
    const bool has_length = min > 0 || max != kUnbounded;
    const auto pattern = s.find("pattern"), format = s.find("format");
    ExprId content = -1;
    if (pattern != s.end()) {
      const std::string p = child(ptr, "pattern");
      if (!pattern->is_string()) refuse(p, "pattern must be a string");
      if (format != s.end()) refuse(child(ptr, "format"), "format together with pattern is not supported");
      if (has_length) refuse(p, "pattern together with minLength/maxLength is not supported");
      try {
        content = regex_to_expr(g_, pattern->get<std::string>(), RegexMode::kJsonStringContent);
      } catch (const Error& e) {
        refuse(p, "{}", e.what());
      }
    } else if (format != s.end()) {
      const std::string p = child(ptr, "format");
      const std::string name = format->is_string() ? format->get<std::string>() : format->dump();
      const auto length = Formats::length(name);
      if (!length) refuse(p, "format '{}' is not supported", name);
      if (has_length && (length->min < min || length->max > max)) {
        refuse(p, "format '{}' together with minLength/maxLength is not supported", name);
      }
      content = formats_.build(name);
    } else if (has_length) {
      content = g_.repeat(json_.character(), min, max);
    } else {
      return json_.string();
    }
    return g_.sequence({json_.quote(), content, json_.quote()});
  }

  ExprId integer_expr(const Json& s, const std::string& ptr) {
    if (const auto m = s.find("multipleOf"); m != s.end() && !(m->is_number() && *m == 1)) {
      refuse(child(ptr, "multipleOf"), "multipleOf is only supported as 1 on integers");
    }
    const auto lo = bound(s, ptr, true), hi = bound(s, ptr, false);
    if (!lo && !hi) return json_.integer();
    const int64_t first =
        lo ? static_cast<int64_t>(lo->exclusive ? std::floor(lo->value) + 1 : std::ceil(lo->value)) : kNoLower;
    const int64_t last =
        hi ? static_cast<int64_t>(hi->exclusive ? std::ceil(hi->value) - 1 : std::floor(hi->value)) : kNoUpper;
    const ExprId e = ranges_.integers(first, last);
    if (e < 0) refuse(ptr, "no integer satisfies the bounds");
    return e;
  }

  // Bounded numbers: integral bounds only, no exponent. ±I.F with a non-zero fraction lies strictly
  // between I and I+1, so the range of I decides exactly; integers may carry a ".000" fraction.
  ExprId number_expr(const Json& s, const std::string& ptr) {
    if (s.contains("multipleOf")) refuse(child(ptr, "multipleOf"), "multipleOf is only supported as 1 on integers");
    const auto lo = bound(s, ptr, true), hi = bound(s, ptr, false);
    if (!lo && !hi) return json_.number();
    for (const auto& b : {lo, hi}) {
      if (b && std::floor(b->value) != b->value) {
        refuse(child(ptr, b->key), "non-integer bounds are only supported for type integer");
      }
    }
    const bool has_lo = lo.has_value(), has_hi = hi.has_value();
    const int64_t l = has_lo ? static_cast<int64_t>(lo->value) : 0, h = has_hi ? static_cast<int64_t>(hi->value) : 0;
    std::vector<ExprId> alts;
    const ExprId ints = ranges_.integers(has_lo ? l + (lo->exclusive ? 1 : 0) : kNoLower,
                                         has_hi ? h - (hi->exclusive ? 1 : 0) : kNoUpper);
    if (ints >= 0) alts.push_back(g_.sequence({ints, g_.optional(ranges_.zero_fraction())}));
    const int64_t positive_first = has_lo ? std::max<int64_t>(l, 0) : 0;  // I in [max(lo, 0), hi - 1]
    if (!has_hi || h - 1 >= positive_first) {
      const uint64_t last = has_hi ? static_cast<uint64_t>(h - 1) : kOpen;
      alts.push_back(
          g_.sequence({ranges_.non_negative(static_cast<uint64_t>(positive_first), last), ranges_.nonzero_fraction()}));
    }
    const int64_t negative_first = has_hi ? std::max<int64_t>(-h, 0) : 0;  // -I.F, I in [max(-hi, 0), -lo - 1]
    if (!has_lo || -l - 1 >= negative_first) {
      const uint64_t last = has_lo ? static_cast<uint64_t>(-l - 1) : kOpen;
      alts.push_back(g_.sequence({g_.literal("-"), ranges_.non_negative(static_cast<uint64_t>(negative_first), last),
                                  ranges_.nonzero_fraction()}));
    }
    if (alts.empty()) refuse(ptr, "no number satisfies the bounds");
    return g_.choice(alts);
  }

  // The conjunction of allOf (or of $ref / anyOf / oneOf and their sibling keywords) as one schema
  // without allOf or $ref. A union among the parts is distributed: anyOf of merged branches.
  Json merge(const Json& s, const std::string& ptr, int depth) {
    account(ptr, depth, 1);
    std::vector<Part> parts;
    collect_parts(s, ptr, parts, depth, 0);
    Json out = Json::object();
    std::vector<Part> unions;
    for (const Part& part : parts) {
      for (const auto& [key, value] : part.schema->items()) {
        if (kIgnored.contains(key) || key == "allOf" || key == "$ref" || key == "nullable" || key == "uniqueItems" ||
            key == "additionalProperties") {
          continue;
        }
        const std::string p = child(part.pointer, key);
        if (key == "anyOf" || key == "oneOf") {
          if (!value.is_array() || value.empty()) refuse(p, "{} must be a non-empty array", key);
          if (key == "oneOf") check_disjoint(value, p);
          unions.push_back({&value, p});
        } else {
          merge_keyword(out, key, value, *part.schema, p);
        }
      }
    }
    merge_additional_properties(out, parts);
    if (unions.empty()) return out;
    Json rest = std::move(out);
    for (size_t i = 1; i < unions.size(); ++i) rest["allOf"].push_back(Json{{"anyOf", *unions[i].schema}});
    Json branches = Json::array();
    for (size_t i = 0; i < unions[0].schema->size(); ++i) {
      const Json& branch = (*unions[0].schema)[i];
      if (branch == false) continue;
      account(ptr, depth, static_cast<int64_t>(node_count(rest) + node_count(branch)));
      const Json both = {{"allOf", Json::array({rest, branch})}};
      branches.push_back(merge(both, child(unions[0].pointer, i), depth + 1));
    }
    if (branches.empty()) refuse(unions[0].pointer, "no branch accepts anything");
    return Json{{"anyOf", std::move(branches)}};
  }

  // The schemas allOf combines, nested allOf flattened and $ref targets inlined: a $ref target
  // first (it is the base the siblings extend), then the allOf items, then the schema's own keywords
  // (the order properties will be written in).
  void collect_parts(const Json& s, const std::string& ptr, std::vector<Part>& parts, int depth, int hops) {
    account(ptr, depth, 1);
    if (s.is_boolean()) {
      if (s.get<bool>()) return;
      refuse(ptr, "allOf contains the schema false, which accepts nothing");
    }
    if (!s.is_object()) refuse(ptr, "a schema must be an object or a boolean, not {}", s.type_name());
    check_keywords(s, ptr);
    if (const auto ref = s.find("$ref"); ref != s.end()) {
      const std::string p = child(ptr, "$ref");
      if (hops >= kMaxRefHops) refuse(p, "$ref nested more than {} deep inside allOf (a cycle?)", kMaxRefHops);
      const std::string target = ref_target(*ref, p);
      const Json& schema = resolve(target, p);
      account(p, depth, static_cast<int64_t>(node_count(schema)));
      collect_parts(schema, target, parts, depth, hops + 1);
    }
    if (const auto all = s.find("allOf"); all != s.end()) {
      const std::string p = child(ptr, "allOf");
      if (!all->is_array() || all->empty()) refuse(p, "allOf must be a non-empty array");
      for (size_t i = 0; i < all->size(); ++i) collect_parts((*all)[i], child(p, i), parts, depth + 1, hops);
    }
    parts.push_back({&s, ptr});
  }

  // oneOf is a union only when no instance can match two branches: different types, or fixed
  // values (const/enum) of the schemas or of a property both require.
  void check_disjoint(const Json& branches, const std::string& p) {
    constexpr size_t kMaxOneOf = 1024;  // pairs are compared: keep it quadratic in a small number
    if (branches.size() > kMaxOneOf) refuse(p, "oneOf with more than {} branches is not supported", kMaxOneOf);
    struct Branch {
      uint8_t types;
      const Json* schema;  // $ref followed
      std::optional<std::vector<Json>> values;
    };
    std::vector<Branch> info;
    for (const Json& branch : branches) {
      const Json& schema = follow_refs(branch, p);
      info.push_back({semantic_types(branch, p, 0), &schema, fixed_scalar_values(schema)});
    }
    for (size_t i = 0; i < info.size(); ++i) {
      for (size_t j = i + 1; j < info.size(); ++j) {
        if (!disjoint(info[i].types, info[j].types, info[i].values, info[j].values) &&
            !discriminated(*info[i].schema, *info[j].schema, info[i].types & info[j].types, p)) {
          refuse(p, "oneOf branches {} and {} may both match one instance; use anyOf or a const discriminator", i, j);
        }
      }
    }
  }

  static bool disjoint(uint8_t ta, uint8_t tb, const std::optional<std::vector<Json>>& va,
                       const std::optional<std::vector<Json>>& vb) {
    return (ta & tb) == 0 || (va && vb && values_disjoint(*va, *vb));
  }

  // Objects only, both requiring a property whose fixed values differ.
  bool discriminated(const Json& x, const Json& y, uint8_t common_types, const std::string& p) {
    if ((common_types & ~kObject) != 0 || !x.is_object() || !y.is_object()) return false;
    const auto px = x.find("properties"), py = y.find("properties");
    if (px == x.end() || py == y.end() || !px->is_object() || !py->is_object()) return false;
    for (const auto& [name, sub] : px->items()) {
      if (!py->contains(name) || !is_required(x, name) || !is_required(y, name)) continue;
      const auto sa = fixed_scalar_values(follow_refs(sub, p)), sb = fixed_scalar_values(follow_refs(py->at(name), p));
      if (sa && sb && values_disjoint(*sa, *sb)) return true;
    }
    return false;
  }

  const Json& follow_refs(const Json& s, const std::string& p) {
    const Json* at = &s;
    for (int hops = 0; at->is_object() && at->contains("$ref") && hops < kMaxRefHops; ++hops) {
      at = &resolve(ref_target(at->at("$ref"), p), p);
    }
    return *at;
  }

  // The JSON types a schema's instances can have (validation semantics, not what we generate).
  uint8_t semantic_types(const Json& s, const std::string& p, int hops) {
    account(p, 0, 1);
    if (s.is_boolean()) return s.get<bool>() ? kAnyType : 0;
    if (!s.is_object()) return kAnyType;
    uint8_t bits = kAnyType;
    if (const auto t = s.find("type"); t != s.end()) bits &= type_bits(*t, p) | (is_true(s, "nullable") ? kNull : 0);
    if (const auto values = fixed_scalar_values(s)) {
      uint8_t v = 0;
      for (const Json& x : *values) v |= value_type(x);
      bits &= v;
    }
    if (const auto r = s.find("$ref"); r != s.end() && hops < kMaxRefHops) {
      bits &= semantic_types(resolve(ref_target(*r, p), p), p, hops + 1);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (const auto u = s.find(key); u != s.end() && u->is_array()) {
        uint8_t any = 0;
        for (const Json& branch : *u) any |= semantic_types(branch, p, hops + 1);
        bits &= any;
      }
    }
    if (const auto all = s.find("allOf"); all != s.end() && all->is_array()) {
      for (const Json& branch : *all) bits &= semantic_types(branch, p, hops + 1);
    }
    return bits;
  }

  // Refuses rules that can never finish (required recursion) and left recursion ($ref cycles that
  // consume nothing), naming the $ref target.
  void check_termination() const {
    const auto n_exprs = static_cast<size_t>(g_.expr_count());
    const auto n_rules = static_cast<size_t>(g_.rule_count());
    std::vector<char> nullable(n_exprs), productive(n_exprs), rule_nullable(n_rules), rule_productive(n_rules);
    // A rule takes its body's values as soon as the body is computed, so that a chain of rules (the
    // "rest" rules of a long object) settles in a few passes instead of one pass per rule.
    std::vector<std::pair<ExprId, size_t>> bodies;
    for (size_t r = 0; r < n_rules; ++r) bodies.emplace_back(g_.rule(static_cast<RuleId>(r)).body, r);
    std::sort(bodies.begin(), bodies.end());
    for (bool changed = true; changed;) {  // least fixpoint: values only turn true
      changed = false;
      auto body = bodies.begin();
      while (body != bodies.end() && body->first < 0) ++body;
      for (size_t i = 0; i < n_exprs; ++i) {
        const Expr& e = g_.expr(static_cast<ExprId>(i));
        bool n = false, p = false;
        switch (e.kind) {
          case ExprKind::kEmpty: n = p = true; break;
          case ExprKind::kLiteral:
          case ExprKind::kClass: p = true; break;
          case ExprKind::kRef: n = rule_nullable[e.rule], p = rule_productive[e.rule]; break;
          case ExprKind::kSequence:
            n = p = true;
            for (const ExprId c : e.children) n = n && nullable[c], p = p && productive[c];
            break;
          case ExprKind::kChoice:
            for (const ExprId c : e.children) n = n || nullable[c], p = p || productive[c];
            break;
          case ExprKind::kRepeat:
            n = e.min == 0 || nullable[e.children[0]];
            p = e.min == 0 || productive[e.children[0]];
            break;
        }
        if (n != nullable[i] || p != productive[i]) nullable[i] = n, productive[i] = p, changed = true;
        for (; body != bodies.end() && static_cast<size_t>(body->first) == i; ++body) {
          rule_nullable[body->second] = n, rule_productive[body->second] = p;
        }
      }
    }
    find_left_recursion(nullable);
    for (const auto& [rule, pointer] : rule_pointers_) {
      if (!rule_productive[rule]) refuse(pointer, "the schema accepts no finite JSON text (its recursion never ends)");
    }
  }

  // Depth-first search over "can start with" edges (expressions and rules as nodes); a cycle is
  // left recursion.
  void find_left_recursion(const std::vector<char>& nullable) const {
    const size_t n_exprs = nullable.size();
    const size_t n_nodes = n_exprs + static_cast<size_t>(g_.rule_count());
    auto edges = [&](size_t node) {
      std::vector<size_t> out;
      if (node >= n_exprs) {
        const ExprId body = g_.rule(static_cast<RuleId>(node - n_exprs)).body;
        if (body >= 0) out.push_back(static_cast<size_t>(body));
        return out;
      }
      const Expr& e = g_.expr(static_cast<ExprId>(node));
      if (e.kind == ExprKind::kRef) out.push_back(n_exprs + static_cast<size_t>(e.rule));
      for (const ExprId c : e.children) {
        out.push_back(static_cast<size_t>(c));
        if (e.kind == ExprKind::kSequence && !nullable[c]) break;
      }
      return out;
    };
    std::vector<char> state(n_nodes, 0);  // 0 new, 1 on the stack, 2 done
    for (size_t start = n_exprs; start < n_nodes; ++start) {
      if (state[start] != 0) continue;
      std::vector<std::pair<size_t, std::vector<size_t>>> stack;
      stack.emplace_back(start, edges(start));
      state[start] = 1;
      while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next.empty()) {
          state[node] = 2;
          stack.pop_back();
          continue;
        }
        const size_t to = next.back();
        next.pop_back();
        if (state[to] == 1) report_left_recursion(stack, to, n_exprs);
        if (state[to] == 0) {
          state[to] = 1;
          stack.emplace_back(to, edges(to));
        }
      }
    }
  }

  [[noreturn]] void report_left_recursion(const std::vector<std::pair<size_t, std::vector<size_t>>>& stack,
                                          size_t cycle_start, size_t n_exprs) const {
    std::string pointer, name;
    bool in_cycle = false;
    for (const auto& [node, next] : stack) {
      in_cycle = in_cycle || node == cycle_start;
      if (!in_cycle || node < n_exprs) continue;
      const auto rule = static_cast<RuleId>(node - n_exprs);
      if (const auto it = rule_pointers_.find(rule); it != rule_pointers_.end() && name.empty()) {
        pointer = it->second;
        name = g_.rule(rule).name;
      }
    }
    refuse(pointer, "$ref cycle that consumes no input (left recursion through rule '{}')", name);
  }

  const Json& doc_;
  bool strict_;
  Grammar& g_;
  JsonRules json_;
  DecimalRanges ranges_;
  Formats formats_;
  std::map<std::string, RuleId> ref_rules_;      // $ref target pointer -> its rule
  std::map<RuleId, std::string> rule_pointers_;  // and back, for error messages
  int64_t work_ = 0;
  int rest_rules_ = 0;
};

}  // namespace

Grammar json_schema_grammar(const nlohmann::ordered_json& schema, const JsonSchemaOptions& options) {
  Grammar g;
  try {
    Converter(schema, options, g).run();
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::kInvalidArgument, "schema: {}", e.what());
  }
  return g;
}

Grammar json_schema_grammar(std::string_view schema_text, const JsonSchemaOptions& options) {
  nlohmann::ordered_json schema;
  try {
    schema = nlohmann::ordered_json::parse(schema_text);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::kInvalidArgument, "schema: invalid JSON: {}", e.what());
  }
  return json_schema_grammar(schema, options);
}

Grammar json_object_grammar() {
  Grammar g;
  JsonRules json(g);
  g.set_root(g.add_rule("root", json.object()));
  return g;
}

}  // namespace ember::grammar
