// JSON Schema to the grammar IR: the converter core (pointers, refusals, strict mode) and JSON mode.
#include "grammar/json_schema.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/utf8.h"
#include "grammar/json_builtin.h"
#include "grammar/json_schema_internal.h"
#include "grammar/regex.h"

namespace ember::grammar::json_detail {

std::string child(const std::string& pointer, std::string_view key) {
  std::string out = pointer + "/";
  for (const char c : key) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  return out;
}
std::string child(const std::string& pointer, size_t index) { return fmt::format("{}/{}", pointer, index); }

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

bool is_true(const Json& s, std::string_view key) {
  const auto it = s.find(key);
  return it != s.end() && *it == true;
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

namespace {

constexpr int kMaxNesting = 64;         // schemas converted inside one another
constexpr int kMaxDocumentDepth = 512;  // JSON nesting of the schema text (our recursion bound)
constexpr size_t kMaxDocumentNodes = 1000000;
constexpr int32_t kMaxExpressions = 200000;
constexpr int64_t kMaxWork = 2000000;     // conversion steps + JSON nodes copied by allOf merges
constexpr long double kMaxBound = 1e18L;  // |bound| limit: integers stay exact and in int64

const std::vector<std::string_view> kObjectKeywords = {"properties", "required", "additionalProperties",
                                                       "minProperties", "maxProperties"};
const std::vector<std::string_view> kArrayKeywords = {"items", "prefixItems", "additionalItems", "minItems",
                                                      "maxItems"};
const std::vector<std::string_view> kStringKeywords = {"minLength", "maxLength", "pattern", "format",
                                                       "contentEncoding"};
// RFC 4648 base64 with padding: what contentEncoding "base64" holds.
constexpr std::string_view kBase64 = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$";
const std::vector<std::string_view> kNumberKeywords = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                                       "multipleOf"};
const std::set<std::string_view> kCombinators = {"type",  "enum", "const",    "anyOf",      "oneOf",
                                                 "allOf", "$ref", "nullable", "uniqueItems"};

bool has_any(const Json& s, const std::vector<std::string_view>& keys) {
  return std::any_of(keys.begin(), keys.end(), [&](std::string_view k) { return s.contains(k); });
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

bool is_known_keyword(std::string_view key) {
  for (const auto* family : {&kObjectKeywords, &kArrayKeywords, &kStringKeywords, &kNumberKeywords}) {
    if (std::find(family->begin(), family->end(), key) != family->end()) return true;
  }
  return kCombinators.contains(key);
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

// application/json, text/json and any "+json" type, in any case, parameters or not.
bool is_json_media_type(const Json& value) {
  std::string type = value.get<std::string>();
  std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  return type == "application/json" || type == "text/json" || type.ends_with("+json");
}

// Whether a schema's declared type (if any) lets it be a string.
bool may_be_string(const Json& s) {
  const auto type = s.find("type");
  if (type == s.end()) return true;
  if (type->is_string()) return *type == "string";
  return type->is_array() && std::find(type->begin(), type->end(), "string") != type->end();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Converter: the conversion, its limits and the termination checks.

void Converter::run() {
  check_document(doc_);
  if (strict_) check_strict_root();
  const RuleId root = g_.declare_rule("root");
  ref_rules_.emplace("", root);
  rule_pointers_.emplace(root, "");
  g_.define_rule(root, convert(doc_, "", 0));
  g_.set_root(root);
  check_termination();
}

void Converter::account(const std::string& ptr, int depth, int64_t units) {
  if (depth > kMaxNesting) refuse(ptr, "schemas nested more than {} deep are not supported", kMaxNesting);
  work_ += units;
  if (work_ > kMaxWork) refuse(ptr, "the schema is too complex to convert (allOf, $ref or oneOf expansion)");
  if (g_.expr_count() > kMaxExpressions) {
    refuse(ptr, "the schema is too large: its grammar exceeds {} expressions", kMaxExpressions);
  }
}

void Converter::check_keywords(const Json& s, const std::string& ptr) const {
  for (const auto& [key, value] : s.items()) {
    if (key == "contentMediaType" && value.is_string() && may_be_string(s) && is_json_media_type(value)) {
      // A validator may check that the content parses as JSON; we cannot constrain it to that.
      refuse(child(ptr, key),
             "contentMediaType '{}' is not supported (the string's content cannot be constrained to JSON)",
             value.get<std::string>());
    }
    if (kIgnored.contains(key)) continue;
    if (!is_known_keyword(key)) refuse(child(ptr, key), "keyword '{}' is not supported", key);
    if (key == "uniqueItems" && value != false) refuse(child(ptr, key), "'uniqueItems' is not supported");
    if (strict_ && (key == "allOf" || key == "oneOf")) refuse(child(ptr, key), "strict mode does not allow '{}'", key);
  }
}

void Converter::check_strict_root() const {
  const auto type = doc_.is_object() ? doc_.find("type") : doc_.end();
  if (!doc_.is_object() || type == doc_.end() || *type != "object") {
    refuse("", "strict mode requires the root schema to be \"type\": \"object\"");
  }
  if (doc_.contains("anyOf")) refuse("/anyOf", "strict mode does not allow anyOf at the root");
}

ExprId Converter::convert(const Json& s, const std::string& ptr, int depth) {
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

bool Converter::is_combinator(std::string_view key) {
  return key == "$ref" || key == "anyOf" || key == "oneOf" || key == "allOf";
}

// Whether keywords besides the combinators constrain (annotations, nullable and uniqueItems:
// false do not, nullable being meaningless without type).
bool Converter::constrains(const Json& s) {
  return std::any_of(s.items().begin(), s.items().end(), [](const auto& item) {
    const std::string& key = item.key();
    return !kIgnored.contains(key) && key != "nullable" && key != "uniqueItems" && !is_combinator(key);
  });
}

// allOf, or $ref / anyOf / oneOf next to other combinators or constraining keywords: converted as
// one merged schema.
bool Converter::needs_merge(const Json& s) {
  const auto combinators =
      std::count_if(s.items().begin(), s.items().end(), [](const auto& item) { return is_combinator(item.key()); });
  return s.contains("allOf") || combinators > 1 || (combinators == 1 && constrains(s));
}

// One rule per $ref target, so recursive schemas become recursive rules.
ExprId Converter::ref_expr(const Json& ref, const std::string& ptr, int depth) {
  const std::string target = ref_target(ref, ptr);
  if (const auto it = ref_rules_.find(target); it != ref_rules_.end()) return g_.ref(it->second);
  const Json& schema = resolve(target, ptr);
  const RuleId rule = g_.declare_rule(g_.fresh_name(rule_name(target)));
  ref_rules_.emplace(target, rule);
  rule_pointers_.emplace(rule, target);
  g_.define_rule(rule, convert(schema, target, depth + 1));
  return g_.ref(rule);
}

const Json& Converter::resolve(const std::string& target, const std::string& ptr) const {
  try {
    return doc_.at(Json::json_pointer(target));
  } catch (const nlohmann::json::exception&) {
    refuse(ptr, "$ref target '#{}' does not exist", target);
  }
}

ExprId Converter::union_expr(const Json& s, const std::string& ptr, int depth) {
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

ExprId Converter::typed_expr(const Json& s, const std::string& ptr, int depth) {
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
ExprId Converter::enum_expr(const Json& s, uint8_t types, const std::string& ptr) {
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

ExprId Converter::object_expr(const Json& s, const std::string& ptr, int depth) {
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

ExprId Converter::key_value(const std::string& name, ExprId value, const std::string& ptr) {
  return g_.sequence({g_.literal(canonical_dump(Json(name), ptr)), json_.colon(), value});
}

std::vector<std::string> Converter::required_names(const Json& s, const std::string& ptr) {
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

void Converter::check_strict_object(const Json& props, const std::vector<std::string>& required, bool closed,
                                    const std::string& ptr) {
  if (!closed) refuse(ptr, "strict mode requires \"additionalProperties\": false on every object");
  for (const auto& [name, sub] : props.items()) {
    if (std::find(required.begin(), required.end(), name) == required.end()) {
      refuse(child(ptr, "required"), "strict mode requires every property to be required; '{}' is not", name);
    }
  }
}

void Converter::check_property_counts(const Json& s, const std::string& ptr, size_t at_least,
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
std::pair<ExprId, bool> Converter::member_list(const std::vector<Member>& m) {
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
ExprId Converter::key_excluding(const std::vector<std::string>& names, const std::string& ptr) {
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
    const bool raw =
        std::none_of(cps.begin(), cps.end(), [](uint32_t c) { return c < 0x20 || c == '"' || c == '\\' || c == 0x7F; });
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

ExprId Converter::array_expr(const Json& s, const std::string& ptr, int depth) {
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
  if (rest_item < 0 && min > k) refuse(child(ptr, "minItems"), "minItems {} but at most {} items are allowed", min, k);
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

ExprId Converter::string_expr(const Json& s, const std::string& ptr) {
  const uint32_t min = count_value(s, "minLength", 0, ptr), max = count_value(s, "maxLength", kUnbounded, ptr);
  if (min > max) refuse(child(ptr, "minLength"), "minLength is larger than maxLength");
  const bool has_length = min > 0 || max != kUnbounded;
  const auto pattern = s.find("pattern"), format = s.find("format"), encoding = s.find("contentEncoding");
  ExprId content = -1;
  if (encoding != s.end()) {
    const std::string p = child(ptr, "contentEncoding");
    std::string name = encoding->is_string() ? encoding->get<std::string>() : encoding->dump();
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    if (name != "base64") refuse(p, "contentEncoding {} is not supported (only \"base64\")", encoding->dump());
    if (pattern != s.end() || format != s.end() || has_length) {
      refuse(p, "contentEncoding together with pattern, format, minLength or maxLength is not supported");
    }
    content = regex_to_expr(g_, kBase64, RegexMode::kJsonStringContent);
  } else if (pattern != s.end()) {
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

ExprId Converter::integer_expr(const Json& s, const std::string& ptr) {
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
ExprId Converter::number_expr(const Json& s, const std::string& ptr) {
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

// Refuses rules that can never finish (required recursion) and left recursion ($ref cycles that
// consume nothing), naming the $ref target.
void Converter::check_termination() const {
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
void Converter::find_left_recursion(const std::vector<char>& nullable) const {
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

[[noreturn]] void Converter::report_left_recursion(const std::vector<std::pair<size_t, std::vector<size_t>>>& stack,
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

}  // namespace ember::grammar::json_detail

namespace ember::grammar {

using json_detail::Converter;
using json_detail::JsonRules;

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
