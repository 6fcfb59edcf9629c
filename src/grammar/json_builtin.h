// The built-in JSON rules, canonical decimal integer ranges and string formats, as grammar IR.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include "grammar/grammar_ir.h"

namespace ember::grammar::json_detail {

constexpr int64_t kNoLower = std::numeric_limits<int64_t>::min();
constexpr int64_t kNoUpper = std::numeric_limits<int64_t>::max();
constexpr uint64_t kOpen = std::numeric_limits<uint64_t>::max();

// The built-in JSON rules, each defined once per grammar and shared (its own mask-cache entries).
class JsonRules {
 public:
  explicit JsonRules(Grammar& g) : g_(g) {}

  ExprId ws();
  ExprId sep();
  ExprId colon();
  ExprId character();
  ExprId digit();

  ExprId string();
  ExprId integer();
  ExprId number();
  ExprId value();
  ExprId object();
  ExprId array();

  ExprId quote();
  // `item` (sep item)*, between max(min, 1) and max items (max >= 1).
  ExprId list(ExprId item, uint32_t min, uint32_t max);
  // open ws items ws close, with "items ws" optional when the container may be empty.
  ExprId bracketed(std::string_view open, ExprId items, bool may_be_empty, std::string_view close);
  ExprId empty_container(std::string_view open, std::string_view close);

 private:
  ExprId minus();
  ExprId integral();
  template <typename Build>
  ExprId builtin(std::string_view name, ExprId& cached, Build build);
  template <typename Build>
  ExprId builtin(std::string_view name, ExprId& cached, bool mark_shared, Build build);

  Grammar& g_;
  ExprId ws_ = -1, sep_ = -1, colon_ = -1, char_ = -1, digit_ = -1;
  ExprId string_ = -1, integer_ = -1, number_ = -1, value_ = -1, object_ = -1, array_ = -1;
};

// Canonical decimal spellings (no leading zeros, no "-0") of integer ranges, digit by digit.
class DecimalRanges {
 public:
  DecimalRanges(Grammar& g, JsonRules& json) : g_(g), json_(json) {}

  // The integers in [lo, hi]; kNoLower / kNoUpper: unbounded on that side (up to 16 digits, or the
  // bound's length). -1 when the range is empty.
  ExprId integers(int64_t lo, int64_t hi);

  // [first, last] with first >= 0 ("0" included when first is 0); last may be kOpen.
  ExprId non_negative(uint64_t first, uint64_t last);

  // "." and digits not all zero: zeros, the first non-zero digit, then any digits (each part
  // bounded, so the whole stays bounded).
  ExprId nonzero_fraction();
  ExprId zero_fraction();

 private:
  ExprId positives(uint64_t first, uint64_t last);
  ExprId between(std::string_view lo, std::string_view hi);

  Grammar& g_;
  JsonRules& json_;
};

// String formats as the content between the quotes (plain ASCII: no character needs escaping).
class Formats {
 public:
  explicit Formats(Grammar& g) : g_(g) {}

  struct Length {
    uint32_t min, max;
  };
  // Length range of the strings a format produces (kUnbounded: no maximum), for minLength/maxLength.
  static std::optional<Length> length(std::string_view name);

  ExprId build(std::string_view name);

 private:
  ExprId lit(std::string_view s);
  ExprId cls(char a, char b);
  ExprId digits(uint32_t n);
  ExprId hex(uint32_t n);
  ExprId two(char a1, char b1, char a2, char b2);

  ExprId date();
  ExprId hour();
  ExprId minute();
  ExprId time();
  ExprId octet();
  ExprId ipv4();
  ExprId ipv6();
  ExprId label();
  ExprId duration();

  Grammar& g_;
};

}  // namespace ember::grammar::json_detail
