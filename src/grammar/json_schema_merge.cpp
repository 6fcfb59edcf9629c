// JSON Schema allOf merging (one schema for a conjunction) and the oneOf disjointness checks.
#include "grammar/json_schema_internal.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ember::grammar::json_detail {
namespace {

constexpr int kMaxRefHops = 32;

size_t node_count(const Json& v) {
  size_t n = 1;
  if (v.is_structured()) {
    for (const Json& c : v) n += node_count(c);
  }
  return n;
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
  } else if (key == "pattern" || key == "format" || key == "multipleOf" || key == "contentEncoding") {
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

}  // namespace

// ---------------------------------------------------------------------------------------------
// Converter: allOf merging and oneOf disjointness.

// The conjunction of allOf (or of $ref / anyOf / oneOf and their sibling keywords) as one schema
// without allOf or $ref. A union among the parts is distributed: anyOf of merged branches.
Json Converter::merge(const Json& s, const std::string& ptr, int depth) {
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
void Converter::collect_parts(const Json& s, const std::string& ptr, std::vector<Part>& parts, int depth, int hops) {
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
void Converter::check_disjoint(const Json& branches, const std::string& p) {
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

bool Converter::disjoint(uint8_t ta, uint8_t tb, const std::optional<std::vector<Json>>& va,
                         const std::optional<std::vector<Json>>& vb) {
  return (ta & tb) == 0 || (va && vb && values_disjoint(*va, *vb));
}

// Objects only, both requiring a property whose fixed values differ.
bool Converter::discriminated(const Json& x, const Json& y, uint8_t common_types, const std::string& p) {
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

const Json& Converter::follow_refs(const Json& s, const std::string& p) {
  const Json* at = &s;
  for (int hops = 0; at->is_object() && at->contains("$ref") && hops < kMaxRefHops; ++hops) {
    at = &resolve(ref_target(at->at("$ref"), p), p);
  }
  return *at;
}

// The JSON types a schema's instances can have (validation semantics, not what we generate).
uint8_t Converter::semantic_types(const Json& s, const std::string& p, int hops) {
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

}  // namespace ember::grammar::json_detail
