// What the JSON Schema converter's files share: the converter class, schema helpers and value kinds.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "grammar/grammar_ir.h"
#include "grammar/json_builtin.h"
#include "grammar/json_schema.h"

namespace ember::grammar::json_detail {

using Json = nlohmann::ordered_json;

// Keywords that constrain nothing (or are only read through a $ref) and are skipped.
// contentMediaType is an annotation, except for JSON media types (refused: Converter::check_keywords).
inline const std::set<std::string_view> kIgnored = {"title",      "description", "default",       "examples",
                                                    "example",    "$schema",     "$id",           "$comment",
                                                    "deprecated", "readOnly",    "writeOnly",     "$anchor",
                                                    "$defs",      "definitions", "discriminator", "contentMediaType"};

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

std::string child(const std::string& pointer, std::string_view key);
std::string child(const std::string& pointer, size_t index);
uint8_t value_type(const Json& v);
uint8_t type_bits(const Json& type, const std::string& pointer);
bool is_true(const Json& s, std::string_view key);
// "#/$defs/a" -> "/$defs/a", "#" -> "": local JSON-pointer references only.
std::string ref_target(const Json& ref, const std::string& pointer);

struct Part {
  const Json* schema;
  std::string pointer;
};

// JSON Schema to grammar IR: a JSON pointer kept for every node, a refusal for every keyword it
// cannot enforce, OpenAI strict-mode checks.
class Converter {
 public:
  Converter(const Json& document, const JsonSchemaOptions& options, Grammar& g)
      : doc_(document), strict_(options.strict), g_(g), json_(g), ranges_(g, json_), formats_(g) {}

  void run();

 private:
  struct Member {
    ExprId key_value;
    bool required;
  };

  // json_schema.cpp: the conversion.
  void account(const std::string& ptr, int depth, int64_t units);
  void check_keywords(const Json& s, const std::string& ptr) const;
  void check_strict_root() const;
  ExprId convert(const Json& s, const std::string& ptr, int depth);
  static bool is_combinator(std::string_view key);
  static bool constrains(const Json& s);
  static bool needs_merge(const Json& s);
  ExprId ref_expr(const Json& ref, const std::string& ptr, int depth);
  const Json& resolve(const std::string& target, const std::string& ptr) const;
  ExprId union_expr(const Json& s, const std::string& ptr, int depth);
  ExprId typed_expr(const Json& s, const std::string& ptr, int depth);
  ExprId enum_expr(const Json& s, uint8_t types, const std::string& ptr);
  ExprId object_expr(const Json& s, const std::string& ptr, int depth);
  ExprId key_value(const std::string& name, ExprId value, const std::string& ptr);
  static std::vector<std::string> required_names(const Json& s, const std::string& ptr);
  static void check_strict_object(const Json& props, const std::vector<std::string>& required, bool closed,
                                  const std::string& ptr);
  static void check_property_counts(const Json& s, const std::string& ptr, size_t at_least,
                                    std::optional<size_t> at_most);
  std::pair<ExprId, bool> member_list(const std::vector<Member>& m);
  ExprId key_excluding(const std::vector<std::string>& names, const std::string& ptr);
  ExprId array_expr(const Json& s, const std::string& ptr, int depth);
  ExprId string_expr(const Json& s, const std::string& ptr);
  ExprId integer_expr(const Json& s, const std::string& ptr);
  ExprId number_expr(const Json& s, const std::string& ptr);
  void check_termination() const;
  void find_left_recursion(const std::vector<char>& nullable) const;
  [[noreturn]] void report_left_recursion(const std::vector<std::pair<size_t, std::vector<size_t>>>& stack,
                                          size_t cycle_start, size_t n_exprs) const;

  // json_schema_merge.cpp: allOf merging and the oneOf disjointness checks.
  Json merge(const Json& s, const std::string& ptr, int depth);
  void collect_parts(const Json& s, const std::string& ptr, std::vector<Part>& parts, int depth, int hops);
  void check_disjoint(const Json& branches, const std::string& p);
  static bool disjoint(uint8_t ta, uint8_t tb, const std::optional<std::vector<Json>>& va,
                       const std::optional<std::vector<Json>>& vb);
  bool discriminated(const Json& x, const Json& y, uint8_t common_types, const std::string& p);
  const Json& follow_refs(const Json& s, const std::string& p);
  uint8_t semantic_types(const Json& s, const std::string& p, int hops);

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

}  // namespace ember::grammar::json_detail
