// Jinja2 3.1's built-in filters and tests (jinja2/filters.py, jinja2/tests.py) plus Hugging Face's
// tojson, as the interpreter's built-ins. Generators (map, select, items, ...) are computed eagerly
// but keep Python's generator type: they print, serialize and measure like one, and iterate once.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tokenizer/chat_template/builtins.h"
#include "tokenizer/chat_template/failure.h"
#include "tokenizer/chat_template/interpreter.h"
#include "tokenizer/chat_template/json_value.h"
#include "tokenizer/chat_template/py_text.h"

namespace ember::jinja {
namespace {

enum FilterId {
  kAbs,
  kAttr,
  kCapitalize,
  kCenter,
  kDefault,
  kDictsort,
  kEscape,
  kFirst,
  kFloat,
  kForceescape,
  kFormat,
  kIndent,
  kInt,
  kItems,
  kJoin,
  kLast,
  kLength,
  kList,
  kLower,
  kMap,
  kMax,
  kMin,
  kReject,
  kRejectattr,
  kReplace,
  kReverse,
  kRound,
  kSafe,
  kSelect,
  kSelectattr,
  kSort,
  kString,
  kSum,
  kTitle,
  kTojson,
  kTrim,
  kUnique,
  kUpper,
};

constexpr NamedId kFilters[] = {
    {"abs", kAbs},
    {"attr", kAttr},
    {"capitalize", kCapitalize},
    {"center", kCenter},
    {"count", kLength},
    {"d", kDefault},
    {"default", kDefault},
    {"dictsort", kDictsort},
    {"e", kEscape},
    {"escape", kEscape},
    {"first", kFirst},
    {"float", kFloat},
    {"forceescape", kForceescape},
    {"format", kFormat},
    {"indent", kIndent},
    {"int", kInt},
    {"items", kItems},
    {"join", kJoin},
    {"last", kLast},
    {"length", kLength},
    {"list", kList},
    {"lower", kLower},
    {"map", kMap},
    {"max", kMax},
    {"min", kMin},
    {"reject", kReject},
    {"rejectattr", kRejectattr},
    {"replace", kReplace},
    {"reverse", kReverse},
    {"round", kRound},
    {"safe", kSafe},
    {"select", kSelect},
    {"selectattr", kSelectattr},
    {"sort", kSort},
    {"string", kString},
    {"sum", kSum},
    {"title", kTitle},
    {"tojson", kTojson},
    {"trim", kTrim},
    {"unique", kUnique},
    {"upper", kUpper},
};

// soft_str(): str() that keeps Markup.
Value soft_str(const Value& v) {
  if (v.is_string()) return v;
  return Value::string(to_str(v));
}

Value lower_if_str(const Value& v) { return v.is_string() ? Value::string(py::lower(v.str())) : v; }

std::string str_arg(const std::optional<Value>& v, std::string_view fallback) {
  return v ? to_str(*v) : std::string(fallback);
}
bool bool_arg(const std::optional<Value>& v, bool fallback) { return v ? truthy(*v) : fallback; }
int64_t int_arg(const std::optional<Value>& v, int64_t fallback, std::string_view what) {
  if (!v || v->is_none()) return fallback;
  if (!v->is_int_like())
    type_error("'" + type_name(*v) + "' object cannot be interpreted as an integer (" + std::string(what) + ")");
  return v->as_int();
}

// jinja2.filters.make_attrgetter: "a.b.0" looked up with getitem part by part.
Value get_path(Interpreter& in, Value item, const Value& attribute, const std::optional<Value>& fallback = {}) {
  std::vector<Value> parts;
  if (attribute.is_string()) {
    for (std::string& p : py::split(attribute.str(), std::string("."), -1)) {
      const bool digits = !p.empty() && std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
      const auto n = digits ? py::parse_int(p, 10) : std::nullopt;
      parts.push_back(n ? Value::integer(*n) : Value::string(std::move(p)));
    }
  } else if (!attribute.is_none()) {
    parts.push_back(attribute);
  }
  for (const Value& part : parts) {
    item = in.get_item(item, part);
    if (fallback && !fallback->is_none() && item.is_undefined()) item = *fallback;
  }
  return item;
}

CallArgs tail_args(const CallArgs& args, size_t from) {
  CallArgs rest;
  for (size_t i = from; i < args.positional.size(); ++i) rest.positional.push_back(args.positional[i]);
  rest.keyword = args.keyword;
  return rest;
}

Value do_map(Interpreter& in, const Value& value, const CallArgs& args) {
  std::vector<Value> out;
  if (!truthy(value)) return Value::generator({});
  std::vector<Value> items = iterate(value);
  if (args.positional.empty()) {
    std::optional<Value> attribute, fallback;
    for (const auto& [k, v] : args.keyword) {
      if (k == "attribute") {
        attribute = v;
      } else if (k == "default") {
        fallback = v;
      } else {
        raise(FailureKind::kRuntime, "Unexpected keyword argument " + py::repr(k));
      }
    }
    if (!attribute) raise(FailureKind::kRuntime, "map requires a filter argument");
    for (Value& item : items) out.push_back(get_path(in, std::move(item), *attribute, fallback));
  } else {
    const std::string name = to_str(args.positional[0]);
    const int id = find_filter(name);
    if (id < 0) raise(FailureKind::kRuntime, "No filter named " + py::repr(name) + ".");
    const CallArgs rest = tail_args(args, 1);
    for (Value& item : items) out.push_back(apply_filter(in, id, std::move(item), rest));
  }
  return Value::generator(std::move(out));
}

Value select_or_reject(Interpreter& in, const Value& value, const CallArgs& args, bool select, bool attr) {
  std::vector<Value> out;
  if (!truthy(value)) return Value::generator({}, "generator");
  std::vector<Value> items = iterate(value);
  if (attr && args.positional.empty()) raise(FailureKind::kRuntime, "Missing parameter for attribute name");
  const size_t off = attr ? 1 : 0;
  int test = -1;
  CallArgs rest;
  if (args.positional.size() > off) {
    const std::string name = to_str(args.positional[off]);
    test = find_test(name);
    if (test < 0) raise(FailureKind::kRuntime, "No test named " + py::repr(name) + ".");
    rest = tail_args(args, off + 1);
  }
  for (Value& item : items) {
    const Value probe = attr ? get_path(in, item, args.positional[0]) : item;
    const bool passed = test < 0 ? truthy(probe) : apply_test(in, test, probe, rest);
    if (passed == select) out.push_back(std::move(item));
  }
  return Value::generator(std::move(out));
}

// sorted() with a key function (stable; reverse keeps equal items in order, as Python's does).
std::vector<Value> sorted_by(std::vector<Value> items, const std::vector<Value>& keys, bool reverse) {
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return reverse ? less_than(keys[b], keys[a], "<") : less_than(keys[a], keys[b], "<");
  });
  std::vector<Value> out;
  out.reserve(items.size());
  for (size_t i : order) out.push_back(std::move(items[i]));
  return out;
}

// A sort / min / max key: the (comma-separated) attributes of an item, lower-cased unless
// case_sensitive.
Value sort_key(Interpreter& in, const Value& item, const std::optional<Value>& attribute, bool case_sensitive) {
  if (!attribute || attribute->is_none()) return case_sensitive ? item : lower_if_str(item);
  if (attribute->is_string() && attribute->str().find(',') != std::string::npos) {
    std::vector<Value> parts;
    for (const std::string& a : py::split(attribute->str(), std::string(","), -1)) {
      const Value v = get_path(in, item, Value::string(a));
      parts.push_back(case_sensitive ? v : lower_if_str(v));
    }
    return Value::list(std::move(parts));
  }
  const Value v = get_path(in, item, *attribute);
  return case_sensitive ? v : lower_if_str(v);
}

Value do_indent(Interpreter& in, const Value& s, const CallArgs& args) {
  const auto a = bind_args(args, "do_indent", {"width", "first", "blank"}, 0);
  std::string indention;
  if (a[0] && a[0]->is_string()) {
    indention = a[0]->str();
  } else {
    const int64_t width = int_arg(a[0], 4, "width");
    if (width > 0) {
      in.check_string_size(static_cast<size_t>(width));
      indention.assign(static_cast<size_t>(width), ' ');
    }
  }
  if (s.is_undefined()) raise_undefined(s);
  if (!s.is_string()) type_error("unsupported operand type(s) for +=: '" + type_name(s) + "' and 'str'");
  const std::vector<std::string> lines = py::splitlines(s.str() + "\n", false);
  std::string rv;
  if (bool_arg(a[2], false)) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) rv += "\n" + indention;
      rv += lines[i];
      in.check_string_size(rv.size());
    }
  } else {
    rv = lines.empty() ? std::string() : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      rv += "\n";
      if (!lines[i].empty()) rv += indention;
      rv += lines[i];
      in.check_string_size(rv.size());
    }
  }
  if (bool_arg(a[1], false)) rv = indention + rv;
  return Value::string(std::move(rv), s.markup());
}

Value do_tojson(Interpreter& in, const Value& value, const CallArgs& args) {
  const auto a = bind_args(args, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"}, 0);
  JsonDumpOptions o;
  o.ensure_ascii = bool_arg(a[0], false);
  if (a[1] && !a[1]->is_none()) {
    if (a[1]->is_string()) {
      o.indent = a[1]->str();
    } else if (a[1]->is_int_like()) {
      const int64_t n = a[1]->as_int();
      in.check_string_size(static_cast<size_t>(std::max<int64_t>(n, 0)));
      o.indent = std::string(static_cast<size_t>(std::max<int64_t>(n, 0)), ' ');
    } else {
      type_error("can't multiply sequence by non-int of type '" + type_name(*a[1]) + "'");
    }
  }
  if (a[2] && !a[2]->is_none()) {
    const std::vector<Value> seps = iterate(*a[2]);
    if (seps.size() != 2) value_error("too many values to unpack (expected 2)");
    o.item_separator = to_str(seps[0]);
    o.key_separator = to_str(seps[1]);
  }
  o.sort_keys = bool_arg(a[3], false);
  std::string out;
  dump_json(out, value, o);
  in.check_string_size(out.size());
  return Value::string(std::move(out));
}

Value do_round(const Value& value, const CallArgs& args) {
  const auto a = bind_args(args, "do_round", {"precision", "method"}, 0);
  const int64_t precision = int_arg(a[0], 0, "precision");
  const std::string method = str_arg(a[1], "common");
  if (method != "common" && method != "ceil" && method != "floor") {
    raise(FailureKind::kRuntime, "method must be common, ceil or floor");
  }
  if (!value.is_number()) type_error("type " + type_name(value) + " doesn't define __round__ method");
  if (method == "common") {
    // Python's round(value, precision): an int stays an int, a float is rounded exactly (half to even
    // on the binary value, which "%.*f" does too).
    if (value.is_int_like() && precision >= 0) return Value::integer(value.as_int());
    const double x = value.as_float();
    if (precision >= 0 && precision <= 300 && std::isfinite(x)) {
      char buf[400];
      std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(precision), x);
      return Value::floating(std::strtod(buf, nullptr));
    }
    const double p = std::pow(10.0, static_cast<double>(precision));
    return Value::floating(std::nearbyint(x * p) / p);
  }
  const double p = std::pow(10.0, static_cast<double>(precision));
  const double x = value.as_float() * p;
  return Value::floating((method == "ceil" ? std::ceil(x) : std::floor(x)) / p);
}

Value do_int(const Value& value, const CallArgs& args) {
  const auto a = bind_args(args, "do_int", {"default", "base"}, 0);
  if (value.is_undefined()) raise_undefined(value);  // Undefined.__int__ raises in Jinja2
  const Value fallback = a[0] ? *a[0] : Value::integer(0);
  const int64_t base = int_arg(a[1], 10, "base");
  if (value.is_string()) {
    if (base == 0 || (base >= 2 && base <= 36)) {
      if (auto v = py::parse_int(value.str(), static_cast<int>(base))) return Value::integer(*v);
    }
    if (auto f = py::parse_float(value.str())) {
      if (std::isnan(*f)) return fallback;
      if (std::isinf(*f)) value_error("cannot convert float infinity to integer");
      if (std::fabs(*f) >= 9.2e18) value_error("integer overflow (ember's template integers are 64-bit)");
      return Value::integer(static_cast<int64_t>(*f));
    }
    return fallback;
  }
  if (value.is_int_like()) return Value::integer(value.as_int());
  if (value.kind() == Kind::kFloat) {
    const double f = value.as_float();
    if (std::isnan(f)) return fallback;
    if (std::isinf(f)) value_error("cannot convert float infinity to integer");
    if (std::fabs(f) >= 9.2e18) value_error("integer overflow (ember's template integers are 64-bit)");
    return Value::integer(static_cast<int64_t>(f));
  }
  return fallback;
}

Value do_float(const Value& value, const CallArgs& args) {
  const auto a = bind_args(args, "do_float", {"default"}, 0);
  if (value.is_undefined()) raise_undefined(value);  // Undefined.__float__ raises in Jinja2
  const Value fallback = a[0] ? *a[0] : Value::floating(0.0);
  if (value.is_number()) return Value::floating(value.as_float());
  if (value.is_string()) {
    if (auto f = py::parse_float(value.str())) return Value::floating(*f);
  }
  return fallback;
}

Value do_dictsort(const Value& value, const CallArgs& args) {
  const auto a = bind_args(args, "do_dictsort", {"case_sensitive", "by", "reverse"}, 0);
  const bool case_sensitive = bool_arg(a[0], false);
  const std::string by = str_arg(a[1], "key");
  if (by != "key" && by != "value") raise(FailureKind::kRuntime, "You can only sort by either \"key\" or \"value\"");
  if (!value.is_dict()) type_error("'" + type_name(value) + "' object has no attribute 'items'");
  std::vector<Value> items, keys;
  for (const auto& [k, v] : value.dict_object().entries) {
    items.push_back(Value::list({k, v}, SeqType::kTuple));
    const Value& key = by == "key" ? k : v;
    keys.push_back(case_sensitive ? key : lower_if_str(key));
  }
  return Value::list(sorted_by(std::move(items), keys, bool_arg(a[2], false)));
}

Value do_join(Interpreter& in, const Value& value, const CallArgs& args) {
  const auto a = bind_args(args, "do_join", {"d", "attribute"}, 0);
  const std::string separator = str_arg(a[0], "");
  std::string out;
  bool first = true;
  for (const Value& item : iterate(value)) {
    if (!first) out += separator;
    first = false;
    append_str(out, a[1] && !a[1]->is_none() ? get_path(in, item, *a[1]) : item);
    in.check_string_size(out.size());
  }
  return Value::string(std::move(out));
}

Value min_max(Interpreter& in, const Value& value, const CallArgs& args, bool max) {
  const auto a = bind_args(args, max ? "do_max" : "do_min", {"case_sensitive", "attribute"}, 0);
  const std::vector<Value> items = iterate(value);
  if (items.empty()) return Value::undefined_hint("No aggregated item, sequence was empty.");
  const bool case_sensitive = bool_arg(a[0], false);
  size_t best = 0;
  Value best_key = sort_key(in, items[0], a[1], case_sensitive);
  for (size_t i = 1; i < items.size(); ++i) {
    Value key = sort_key(in, items[i], a[1], case_sensitive);
    if (max ? less_than(best_key, key, "<") : less_than(key, best_key, "<")) {
      best = i;
      best_key = std::move(key);
    }
  }
  return items[best];
}

}  // namespace

std::vector<std::optional<Value>> bind_args(const CallArgs& args, std::string_view function,
                                            std::initializer_list<std::string_view> names, size_t required) {
  std::vector<std::optional<Value>> out(names.size());
  const std::vector<std::string_view> list(names);
  if (args.positional.size() > list.size()) {
    type_error(std::string(function) + "() takes at most " + std::to_string(list.size() + 1) + " arguments (" +
               std::to_string(args.positional.size() + 1) + " given)");
  }
  for (size_t i = 0; i < args.positional.size(); ++i) out[i] = args.positional[i];
  for (const auto& [key, value] : args.keyword) {
    const auto it = std::find(list.begin(), list.end(), key);
    if (it == list.end()) type_error(std::string(function) + "() got an unexpected keyword argument " + py::repr(key));
    const auto i = static_cast<size_t>(it - list.begin());
    if (out[i]) type_error(std::string(function) + "() got multiple values for argument " + py::repr(key));
    out[i] = value;
  }
  for (size_t i = 0; i < required; ++i) {
    if (!out[i]) {
      type_error(std::string(function) +
                 "() missing 1 required positional argument: " + py::repr(std::string(list[i])));
    }
  }
  return out;
}

int find_filter(std::string_view name) { return find_named(kFilters, name); }

Value apply_filter(Interpreter& in, int id, Value v, const CallArgs& args) {
  in.step();
  in.charge(v);
  for (const Value& a : args.positional) in.charge(a);
  switch (static_cast<FilterId>(id)) {
    case kAbs:
      bind_args(args, "abs", {}, 0);
      if (v.is_int_like()) {
        if (v.as_int() == INT64_MIN) value_error("integer overflow (ember's template integers are 64-bit)");
        return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
      }
      if (v.kind() == Kind::kFloat) return Value::floating(std::fabs(v.as_float()));
      if (v.is_undefined()) raise_undefined(v);
      type_error("bad operand type for abs(): '" + type_name(v) + "'");
    case kAttr: {
      const auto a = bind_args(args, "do_attr", {"name"}, 1);
      return in.get_attribute(v, to_str(*a[0]));
    }
    case kCapitalize:
      bind_args(args, "do_capitalize", {}, 0);
      return Value::string(py::capitalize(soft_str(v).str()), v.markup());
    case kCenter: {
      const auto a = bind_args(args, "do_center", {"width"}, 0);
      const std::string s = soft_str(v).str();
      const int64_t width = int_arg(a[0], 80, "width");
      if (width > 0) in.check_string_size(static_cast<size_t>(width));  // fails as Python cannot
      const int64_t len = py::length(s);
      if (width <= len) return Value::string(s);
      const int64_t marg = width - len;
      const int64_t left = marg / 2 + (marg & width & 1);
      return Value::string(std::string(static_cast<size_t>(left), ' ') + s +
                           std::string(static_cast<size_t>(marg - left), ' '));
    }
    case kDefault: {
      const auto a = bind_args(args, "do_default", {"default_value", "boolean"}, 0);
      if (v.is_undefined() || (bool_arg(a[1], false) && !truthy(v))) return a[0] ? *a[0] : Value::string("");
      return v;
    }
    case kDictsort: return do_dictsort(v, args);
    case kEscape:
    case kForceescape:
      if (v.markup() && id == kEscape) return v;
      return Value::string(py::html_escape(to_str(v)), true);
    case kFirst: {
      bind_args(args, "do_first", {}, 0);
      const std::vector<Value> items = iterate(v);
      if (items.empty()) return Value::undefined_hint("No first item, sequence was empty.");
      return items.front();
    }
    case kFloat: return do_float(v, args);
    case kFormat: {
      if (!args.keyword.empty() && !args.positional.empty()) {
        raise(FailureKind::kRuntime, "can't handle positional and keyword arguments at the same time");
      }
      Value format_args;
      if (!args.keyword.empty()) {
        auto d = std::make_shared<DictObject>();
        for (const auto& [k, x] : args.keyword) d->set(Value::string(k), x);
        format_args = Value::dict(std::move(d));
      } else {
        format_args = Value::list(args.positional, SeqType::kTuple);
      }
      return percent_format(in, soft_str(v), format_args);
    }
    case kIndent: return do_indent(in, v, args);
    case kInt: return do_int(v, args);
    case kItems: {
      bind_args(args, "do_items", {}, 0);
      if (v.is_undefined()) return Value::generator({});
      if (!v.is_dict()) type_error("Can only get item pairs from a mapping.");
      std::vector<Value> pairs;
      for (const auto& [k, x] : v.dict_object().entries) pairs.push_back(Value::list({k, x}, SeqType::kTuple));
      return Value::generator(std::move(pairs));
    }
    case kJoin: return do_join(in, v, args);
    case kLast: {
      bind_args(args, "do_last", {}, 0);
      const bool reversible =
          v.is_undefined() || v.is_string() || v.is_dict() || (v.is_list() && v.seq_type() != SeqType::kGenerator);
      if (!reversible) type_error("'" + type_name(v) + "' object is not reversible");
      const std::vector<Value> items = iterate(v);
      if (items.empty()) return Value::undefined_hint("No last item, sequence was empty.");
      return items.back();
    }
    case kLength: bind_args(args, "do_length", {}, 0); return Value::integer(length_of(v));
    case kList: bind_args(args, "do_list", {}, 0); return Value::list(iterate(v));
    case kLower: bind_args(args, "do_lower", {}, 0); return Value::string(py::lower(soft_str(v).str()), v.markup());
    case kMap: return do_map(in, v, args);
    case kMax: return min_max(in, v, args, true);
    case kMin: return min_max(in, v, args, false);
    case kReject: return select_or_reject(in, v, args, false, false);
    case kRejectattr: return select_or_reject(in, v, args, false, true);
    case kReplace: {
      const auto a = bind_args(args, "do_replace", {"old", "new", "count"}, 2);
      std::string out = py::replace(to_str(v), to_str(*a[0]), to_str(*a[1]), int_arg(a[2], -1, "count"));
      in.check_string_size(out.size());
      return Value::string(std::move(out));
    }
    case kReverse: {
      bind_args(args, "do_reverse", {}, 0);
      if (v.is_string()) {
        std::vector<char32_t> cps = py::code_points(v.str());
        std::reverse(cps.begin(), cps.end());
        return Value::string(py::from_code_points(cps, 0, cps.size()));
      }
      std::vector<Value> items = iterate(v);
      std::reverse(items.begin(), items.end());
      if (v.is_list() && v.seq_type() == SeqType::kGenerator) return Value::list(std::move(items));
      return Value::generator(std::move(items), v.is_dict() ? "dict_reversekeyiterator" : "list_reverseiterator");
    }
    case kRound: return do_round(v, args);
    case kSafe: bind_args(args, "do_mark_safe", {}, 0); return Value::string(to_str(v), true);
    case kSelect: return select_or_reject(in, v, args, true, false);
    case kSelectattr: return select_or_reject(in, v, args, true, true);
    case kSort: {
      const auto a = bind_args(args, "do_sort", {"reverse", "case_sensitive", "attribute"}, 0);
      std::vector<Value> items = iterate(v);
      std::vector<Value> keys;
      for (const Value& item : items) keys.push_back(sort_key(in, item, a[2], bool_arg(a[1], false)));
      return Value::list(sorted_by(std::move(items), keys, bool_arg(a[0], false)));
    }
    case kString: bind_args(args, "do_string", {}, 0); return soft_str(v);
    case kSum: {
      const auto a = bind_args(args, "do_sum", {"attribute", "start"}, 0);
      Value total = a[1] ? *a[1] : Value::integer(0);
      for (const Value& item : iterate(v)) {
        const Value x = a[0] && !a[0]->is_none() ? get_path(in, item, *a[0]) : item;
        if (total.is_string()) type_error("sum() can't sum strings [use ''.join(seq) instead]");
        if (total.is_int_like() && x.is_int_like()) {
          int64_t r;
          if (__builtin_add_overflow(total.as_int(), x.as_int(), &r))
            value_error("integer overflow (ember's template integers are 64-bit)");
          total = Value::integer(r);
        } else if (total.is_number() && x.is_number()) {
          total = Value::floating(total.as_float() + x.as_float());
        } else {
          type_error("unsupported operand type(s) for +: '" + type_name(total) + "' and '" + type_name(x) + "'");
        }
      }
      return total;
    }
    case kTitle:
      bind_args(args, "do_title", {}, 0);
      return Value::string(py::title_filter(soft_str(v).str()), v.markup());
    case kTojson: return do_tojson(in, v, args);
    case kTrim: {
      const auto a = bind_args(args, "do_trim", {"chars"}, 0);
      std::optional<std::string> chars;
      if (a[0] && !a[0]->is_none()) chars = to_str(*a[0]);
      return Value::string(py::strip(soft_str(v).str(), chars, true, true), v.markup());
    }
    case kUnique: {
      const auto a = bind_args(args, "do_unique", {"case_sensitive", "attribute"}, 0);
      std::vector<Value> out, seen;
      for (Value& item : iterate(v)) {
        Value key = sort_key(in, item, a[1], bool_arg(a[0], false));
        // A linear search per item: n^2 / 2 comparisons, charged as steps (one per 16) so a long
        // list fails on the step limit instead of running for minutes.
        for (size_t i = 0; i < seen.size(); i += 16) in.step();
        if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) {
          seen.push_back(std::move(key));
          out.push_back(std::move(item));
        }
      }
      return Value::generator(std::move(out));
    }
    case kUpper: bind_args(args, "do_upper", {}, 0); return Value::string(py::upper(soft_str(v).str()), v.markup());
  }
  raise(FailureKind::kRuntime, "unknown filter");
}

}  // namespace ember::jinja
