// The built-in JSON rules, canonical decimal integer ranges and string formats, as grammar IR.
#include "grammar/json_builtin.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "core/check.h"
#include "grammar/regex.h"

namespace ember::grammar::json_detail {
namespace {

constexpr uint32_t kIntegralDigits = 16;
constexpr uint32_t kFractionDigits = 16;
constexpr uint32_t kExponentDigits = 3;

}  // namespace

// ---------------------------------------------------------------------------------------------
// JsonRules

// The reference is cached before the body is built: json-value and json-object refer to each other.
template <typename Build>
ExprId JsonRules::builtin(std::string_view name, ExprId& cached, Build build) {
  return builtin(name, cached, true, build);
}

template <typename Build>
ExprId JsonRules::builtin(std::string_view name, ExprId& cached, bool mark_shared, Build build) {
  if (cached >= 0) return cached;
  const RuleId rule = g_.declare_rule(name);
  cached = g_.ref(rule);
  g_.set_shared(rule, mark_shared);
  g_.define_rule(rule, build());
  return cached;
}

ExprId JsonRules::ws() {
  // Bounded, so a model sampling at random cannot pad forever (llama.cpp's `space`). Not shared:
  // inlined, a token such as ` "` stays inside its caller's frame (as json-char does in strings).
  return builtin("json-ws", ws_, /*mark_shared=*/false, [&] {
    const ExprId newline_indent =
        g_.sequence({g_.repeat(g_.literal("\n"), 1, 2), g_.repeat(g_.char_class({{' ', ' '}, {'\t', '\t'}}), 0, 20)});
    return g_.choice({g_.empty(), g_.literal(" "), newline_indent});
  });
}

ExprId JsonRules::sep() { return sep_ >= 0 ? sep_ : (sep_ = g_.sequence({ws(), g_.literal(","), ws()})); }

ExprId JsonRules::colon() { return colon_ >= 0 ? colon_ : (colon_ = g_.sequence({ws(), g_.literal(":"), ws()})); }

ExprId JsonRules::character() { return char_ >= 0 ? char_ : (char_ = json_string_char(g_)); }

ExprId JsonRules::digit() { return digit_ >= 0 ? digit_ : (digit_ = g_.char_class({{'0', '9'}})); }

ExprId JsonRules::string() {
  return builtin("json-string", string_, [&] { return g_.sequence({quote(), g_.star(character()), quote()}); });
}

ExprId JsonRules::integer() {
  return builtin("json-integer", integer_, [&] { return g_.sequence({minus(), integral()}); });
}

ExprId JsonRules::number() {
  return builtin("json-number", number_, [&] {
    const ExprId fraction = g_.sequence({g_.literal("."), g_.repeat(digit(), 1, kFractionDigits)});
    const ExprId exponent =
        g_.sequence({g_.char_class({{'e', 'e'}, {'E', 'E'}}), g_.optional(g_.char_class({{'-', '-'}, {'+', '+'}})),
                     g_.repeat(digit(), 1, kExponentDigits)});
    return g_.sequence({minus(), integral(), g_.optional(fraction), g_.optional(exponent)});
  });
}

ExprId JsonRules::value() {
  return builtin("json-value", value_, [&] {
    return g_.choice(
        {object(), array(), string(), number(), g_.literal("true"), g_.literal("false"), g_.literal("null")});
  });
}

ExprId JsonRules::object() {
  return builtin("json-object", object_, [&] {
    const ExprId member = g_.sequence({string(), colon(), value()});
    return bracketed("{", list(member, 0, kUnbounded), true, "}");
  });
}

ExprId JsonRules::array() {
  return builtin("json-array", array_, [&] { return bracketed("[", list(value(), 0, kUnbounded), true, "]"); });
}

ExprId JsonRules::quote() { return g_.literal("\""); }

ExprId JsonRules::list(ExprId item, uint32_t min, uint32_t max) {
  const uint32_t more_max = max == kUnbounded ? kUnbounded : max - 1;
  return g_.sequence({item, g_.repeat(g_.sequence({sep(), item}), std::max(min, 1u) - 1, more_max)});
}

ExprId JsonRules::bracketed(std::string_view open, ExprId items, bool may_be_empty, std::string_view close) {
  const ExprId inner = g_.sequence({items, ws()});
  return g_.sequence({g_.literal(open), ws(), may_be_empty ? g_.optional(inner) : inner, g_.literal(close)});
}

ExprId JsonRules::empty_container(std::string_view open, std::string_view close) {
  return g_.sequence({g_.literal(open), ws(), g_.literal(close)});
}

ExprId JsonRules::minus() { return g_.optional(g_.literal("-")); }

ExprId JsonRules::integral() {
  return g_.choice(
      {g_.literal("0"), g_.sequence({g_.char_class({{'1', '9'}}), g_.repeat(digit(), 0, kIntegralDigits - 1)})});
}

// ---------------------------------------------------------------------------------------------
// DecimalRanges

ExprId DecimalRanges::integers(int64_t lo, int64_t hi) {
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

ExprId DecimalRanges::non_negative(uint64_t first, uint64_t last) {
  if (first > 0) return positives(first, last);
  if (last == 0) return g_.literal("0");
  return g_.choice({g_.literal("0"), positives(1, last)});
}

ExprId DecimalRanges::nonzero_fraction() {
  return g_.sequence({g_.literal("."), g_.repeat(g_.literal("0"), 0, kFractionDigits - 1), g_.char_class({{'1', '9'}}),
                      g_.repeat(json_.digit(), 0, kFractionDigits - 1)});
}

ExprId DecimalRanges::zero_fraction() {
  return g_.sequence({g_.literal("."), g_.repeat(g_.literal("0"), 1, kFractionDigits)});
}

// [first, last] with first >= 1; an open end (kOpen) stops at max(16, digits of first) digits.
ExprId DecimalRanges::positives(uint64_t first, uint64_t last) {
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
ExprId DecimalRanges::between(std::string_view lo, std::string_view hi) {
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

// ---------------------------------------------------------------------------------------------
// Formats

std::optional<Formats::Length> Formats::length(std::string_view name) {
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

ExprId Formats::build(std::string_view name) {
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

ExprId Formats::lit(std::string_view s) { return g_.literal(s); }

ExprId Formats::cls(char a, char b) { return g_.char_class({{static_cast<uint32_t>(a), static_cast<uint32_t>(b)}}); }

ExprId Formats::digits(uint32_t n) { return g_.repeat(cls('0', '9'), n, n); }

ExprId Formats::hex(uint32_t n) { return g_.repeat(g_.char_class({{'0', '9'}, {'a', 'f'}, {'A', 'F'}}), n, n); }

ExprId Formats::two(char a1, char b1, char a2, char b2) { return g_.sequence({cls(a1, b1), cls(a2, b2)}); }

// YYYY-MM-DD with the days each month can have (29 February in every year).
ExprId Formats::date() {
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

ExprId Formats::hour() { return g_.choice({two('0', '1', '0', '9'), two('2', '2', '0', '3')}); }

ExprId Formats::minute() { return two('0', '5', '0', '9'); }

// RFC 3339 full-time: HH:MM:SS, optional fraction, Z or an offset (upper case; no leap second).
ExprId Formats::time() {
  const ExprId fraction = g_.optional(g_.sequence({lit("."), g_.repeat(cls('0', '9'), 1, 9)}));
  const ExprId offset =
      g_.choice({lit("Z"), g_.sequence({g_.char_class({{'+', '+'}, {'-', '-'}}), hour(), lit(":"), minute()})});
  return g_.sequence({hour(), lit(":"), minute(), lit(":"), minute(), fraction, offset});
}

ExprId Formats::octet() {  // 0..255 without leading zeros
  return g_.choice({g_.sequence({lit("25"), cls('0', '5')}), g_.sequence({lit("2"), cls('0', '4'), cls('0', '9')}),
                    g_.sequence({lit("1"), digits(2)}), g_.sequence({cls('1', '9'), cls('0', '9')}), cls('0', '9')});
}

ExprId Formats::ipv4() { return g_.sequence({octet(), lit("."), octet(), lit("."), octet(), lit("."), octet()}); }

// RFC 3986's IPv6address: n groups, "::", m groups, the last 32 bits possibly as IPv4.
ExprId Formats::ipv6() {
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

ExprId Formats::label() {
  const ExprId alnum = g_.char_class({{'a', 'z'}, {'A', 'Z'}, {'0', '9'}});
  const ExprId inner = g_.char_class({{'a', 'z'}, {'A', 'Z'}, {'0', '9'}, {'-', '-'}});
  return g_.sequence({alnum, g_.optional(g_.sequence({g_.repeat(inner, 0, 61), alnum}))});
}

// ISO 8601 / RFC 3339 appendix A: P then date parts (Y, M, D) and/or T time parts, or weeks.
ExprId Formats::duration() {
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

}  // namespace ember::grammar::json_detail
