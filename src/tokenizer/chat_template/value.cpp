// Value construction and the Python object protocol the interpreter relies on: truthiness, type
// names, str() / repr(), ==, <, iteration and len().
#include "tokenizer/chat_template/value.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "tokenizer/chat_template/failure.h"
#include "tokenizer/chat_template/py_text.h"

namespace ember::jinja {
namespace {

uint32_t max_depth(const std::vector<Value>& items) {
  uint32_t d = 0;
  for (const Value& v : items) d = std::max(d, v.depth());
  return d;
}

void check_depth(uint32_t depth) {
  if (depth > kMaxValueDepth) {
    raise(FailureKind::kLimit, "values nest deeper than " + std::to_string(kMaxValueDepth) + " lists / dicts");
  }
}

// repr / str of containers recurse; a namespace can contain itself, so the recursion is bounded.
struct ReprGuard {
  explicit ReprGuard(int& depth) : depth_(depth) {
    if (++depth_ > static_cast<int>(kMaxValueDepth) + 8) {
      --depth_;
      raise(FailureKind::kLimit, "maximum recursion depth exceeded while getting the repr of an object");
    }
  }
  ~ReprGuard() { --depth_; }
  int& depth_;
};
thread_local int repr_depth = 0;

void append_items(std::string& out, const std::vector<Value>& items, const char* open, const char* close) {
  out += open;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    append_repr(out, items[i]);
  }
  out += close;
}

void append_dict(std::string& out, const DictObject& d) {
  out += '{';
  for (size_t i = 0; i < d.entries.size(); ++i) {
    if (i > 0) out += ", ";
    append_repr(out, d.entries[i].first);
    out += ": ";
    append_repr(out, d.entries[i].second);
  }
  out += '}';
}

void append_sequence_repr(std::string& out, const ListObject& l) {
  switch (l.type) {
    case SeqType::kList: append_items(out, l.items, "[", "]"); break;
    case SeqType::kTuple: append_items(out, l.items, "(", l.items.size() == 1 ? ",)" : ")"); break;
    case SeqType::kDictKeys: append_items(out, l.items, "dict_keys([", "])"); break;
    case SeqType::kDictValues: append_items(out, l.items, "dict_values([", "])"); break;
    case SeqType::kDictItems: append_items(out, l.items, "dict_items([", "])"); break;
    case SeqType::kRange:
      out += "range(" + std::to_string(l.range_start) + ", " + std::to_string(l.range_stop);
      if (l.range_step != 1) out += ", " + std::to_string(l.range_step);
      out += ')';
      break;
    case SeqType::kGenerator:
      // CPython prints an address; ember has none to print.
      out += "<";
      out += l.type_name;
      out += " object>";
      break;
  }
}

bool sequences_equal(const std::vector<Value>& a, const std::vector<Value>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!equals(a[i], b[i])) return false;
  return true;
}

bool dicts_equal(const DictObject& a, const DictObject& b) {
  if (a.entries.size() != b.entries.size()) return false;
  for (const auto& [key, value] : a.entries) {
    const Value* other = b.find(key);
    if (other == nullptr || !equals(value, *other)) return false;
  }
  return true;
}

[[noreturn]] void not_orderable(const Value& a, const Value& b, std::string_view op) {
  type_error("'" + std::string(op) + "' not supported between instances of '" + type_name(a) + "' and '" +
             type_name(b) + "'");
}

}  // namespace

Value Value::list(std::vector<Value> items, SeqType type) {
  auto obj = std::make_shared<ListObject>();
  obj->depth = max_depth(items) + 1;
  check_depth(obj->depth);
  obj->items = std::move(items);
  obj->type = type;
  static constexpr const char* kNames[] = {"list",      "tuple",       "generator", "range",
                                           "dict_keys", "dict_values", "dict_items"};
  obj->type_name = kNames[static_cast<int>(type)];
  return object(Kind::kList, std::move(obj));
}

Value Value::generator(std::vector<Value> items, const char* type_name) {
  Value v = list(std::move(items), SeqType::kGenerator);
  v.list_object().type_name = type_name;
  return v;
}

Value Value::range(int64_t start, int64_t stop, int64_t step) {
  std::vector<Value> items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) items.push_back(integer(i));
  Value v = list(std::move(items), SeqType::kRange);
  ListObject& l = v.list_object();
  l.range_start = start;
  l.range_stop = stop;
  l.range_step = step;
  return v;
}

Value Value::dict(std::shared_ptr<DictObject> d) {
  uint32_t depth = 0;
  for (const auto& [key, value] : d->entries) depth = std::max({depth, key.depth(), value.depth()});
  d->depth = depth + 1;
  check_depth(d->depth);
  return object(Kind::kDict, std::move(d));
}

Value Value::undefined_name(std::string name) {
  Value v;
  v.uform_ = UndefinedForm::kName;
  v.s_ = std::move(name);
  return v;
}

Value Value::undefined_attribute(const char* owner_repr, std::string attribute) {
  Value v;
  v.uform_ = UndefinedForm::kAttribute;
  v.owner_ = owner_repr;
  v.s_ = std::move(attribute);
  return v;
}

Value Value::undefined_element(const char* owner_repr, std::string key_repr) {
  Value v;
  v.uform_ = UndefinedForm::kElement;
  v.owner_ = owner_repr;
  v.s_ = std::move(key_repr);
  return v;
}

Value Value::undefined_hint(std::string hint, bool security) {
  Value v;
  v.uform_ = UndefinedForm::kHint;
  v.b_ = security;
  v.s_ = std::move(hint);
  return v;
}

std::string Value::undefined_message() const {
  switch (uform_) {
    case UndefinedForm::kName: return py::repr(s_) + " is undefined";
    case UndefinedForm::kAttribute: return py::repr(owner_) + " has no attribute " + py::repr(s_);
    case UndefinedForm::kElement: return std::string(owner_) + " has no element " + s_;
    case UndefinedForm::kHint: return s_.empty() ? "'None' is undefined" : s_;
  }
  return s_;
}

ListObject& Value::list_object() const noexcept { return static_cast<ListObject&>(*o_); }
const std::vector<Value>& Value::items() const noexcept { return list_object().items; }
SeqType Value::seq_type() const noexcept { return list_object().type; }
DictObject& Value::dict_object() const noexcept { return static_cast<DictObject&>(*o_); }
NamespaceObject& Value::namespace_object() const noexcept { return static_cast<NamespaceObject&>(*o_); }
CallableObject& Value::callable_object() const noexcept { return static_cast<CallableObject&>(*o_); }
LoopObject& Value::loop_object() const noexcept { return static_cast<LoopObject&>(*o_); }

uint32_t Value::depth() const noexcept {
  if (kind_ == Kind::kList) return list_object().depth;
  if (kind_ == Kind::kDict) return dict_object().depth;
  return 0;
}

const Value* DictObject::find(std::string_view key) const noexcept {
  for (const auto& [k, v] : entries)
    if (k.is_string() && k.str() == key) return &v;
  return nullptr;
}

const Value* DictObject::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.str()));
  for (const auto& [k, v] : entries)
    if (equals(k, key)) return &v;
  return nullptr;
}

void DictObject::set(Value key, Value value) {
  for (auto& [k, v] : entries) {
    if (equals(k, key)) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

bool truthy(const Value& v) noexcept {
  switch (v.kind()) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return v.as_bool();
    case Kind::kInt: return v.as_int() != 0;
    case Kind::kFloat: return v.as_float() != 0.0;
    case Kind::kString: return !v.str().empty();
    case Kind::kList: return v.seq_type() == SeqType::kGenerator || !v.items().empty();
    case Kind::kDict: return !v.dict_object().entries.empty();
    default: return true;
  }
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return v.markup() ? "Markup" : "str";
    case Kind::kList: return v.list_object().type_name;
    case Kind::kDict: return "dict";
    case Kind::kNamespace: return "Namespace";
    case Kind::kCallable: return v.callable_object().type == CallableType::kMacro ? "Macro" : "function";
    case Kind::kLoop: return "LoopContext";
  }
  return "object";
}

const char* object_type_repr(const Value& v) noexcept {
  switch (v.kind()) {
    case Kind::kUndefined: return "jinja2.runtime.Undefined object";
    case Kind::kNone: return "None";
    case Kind::kBool: return "bool object";
    case Kind::kInt: return "int object";
    case Kind::kFloat: return "float object";
    case Kind::kString: return v.markup() ? "markupsafe.Markup object" : "str object";
    case Kind::kList:
      switch (v.seq_type()) {
        case SeqType::kList: return "list object";
        case SeqType::kTuple: return "tuple object";
        case SeqType::kRange: return "range object";
        case SeqType::kDictKeys: return "dict_keys object";
        case SeqType::kDictValues: return "dict_values object";
        case SeqType::kDictItems: return "dict_items object";
        case SeqType::kGenerator: return "generator object";
      }
      return "list object";
    case Kind::kDict: return "dict object";
    case Kind::kNamespace: return "jinja2.utils.Namespace object";
    case Kind::kCallable:
      return v.callable_object().type == CallableType::kMacro ? "jinja2.runtime.Macro object" : "function object";
    case Kind::kLoop: return "jinja2.runtime.LoopContext object";
  }
  return "object";
}

void append_str(std::string& out, const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: return;
    case Kind::kString: out += v.str(); return;
    case Kind::kInt: out += std::to_string(v.as_int()); return;
    default: append_repr(out, v);
  }
}

std::string to_str(const Value& v) {
  if (v.is_string()) return v.str();
  std::string out;
  append_str(out, v);
  return out;
}

void append_repr(std::string& out, const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: out += "Undefined"; return;
    case Kind::kNone: out += "None"; return;
    case Kind::kBool: out += v.as_bool() ? "True" : "False"; return;
    case Kind::kInt: out += std::to_string(v.as_int()); return;
    case Kind::kFloat: py::append_float_repr(out, v.as_float()); return;
    case Kind::kString:
      if (v.markup()) out += "Markup(";
      py::append_repr(out, v.str());
      if (v.markup()) out += ")";
      return;
    default: break;
  }
  ReprGuard guard(repr_depth);
  switch (v.kind()) {
    case Kind::kList: append_sequence_repr(out, v.list_object()); return;
    case Kind::kDict: append_dict(out, v.dict_object()); return;
    case Kind::kNamespace:
      out += "<Namespace ";
      append_dict(out, v.namespace_object().attrs);
      out += ">";
      return;
    case Kind::kCallable: {
      const CallableObject& c = v.callable_object();
      if (c.type == CallableType::kMacro) {
        out += "<Macro " + py::repr(c.name) + ">";
      } else {
        out += "<built-in method " + c.name + ">";
      }
      return;
    }
    case Kind::kLoop: {
      const LoopObject& l = v.loop_object();
      out += "<LoopContext " + std::to_string(l.index0 + 1) + "/" + std::to_string(l.items->items.size()) + ">";
      return;
    }
    default: return;
  }
}

std::string to_repr(const Value& v) {
  std::string out;
  append_repr(out, v);
  return out;
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Kind::kFloat || b.kind() == Kind::kFloat) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::kUndefined:
    case Kind::kNone: return true;
    case Kind::kString: return a.str() == b.str();
    case Kind::kList: {
      const SeqType ta = a.seq_type(), tb = b.seq_type();
      if (ta == SeqType::kGenerator || tb == SeqType::kGenerator || ta == SeqType::kDictValues) {
        return a.object_ptr() == b.object_ptr();  // identity, as in Python
      }
      // range == range compares the sequences; list, tuple and the dict views only equal their own type.
      if (ta != tb) return false;
      ReprGuard guard(repr_depth);
      return sequences_equal(a.items(), b.items());
    }
    case Kind::kDict: {
      ReprGuard guard(repr_depth);
      return dicts_equal(a.dict_object(), b.dict_object());
    }
    default: return a.object_ptr() == b.object_ptr();
  }
}

bool less_than(const Value& a, const Value& b, std::string_view op) {
  if (a.is_undefined()) raise(FailureKind::kUndefined, a.undefined_message());
  if (b.is_undefined()) raise(FailureKind::kUndefined, b.undefined_message());
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Kind::kFloat || b.kind() == Kind::kFloat) return a.as_float() < b.as_float();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 byte order is code point order
  if (a.is_list() && b.is_list() && a.seq_type() == b.seq_type() &&
      (a.seq_type() == SeqType::kList || a.seq_type() == SeqType::kTuple)) {
    ReprGuard guard(repr_depth);
    const auto &x = a.items(), &y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equals(x[i], y[i])) return less_than(x[i], y[i], op);
    }
    return x.size() < y.size();
  }
  not_orderable(a, b, op);
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: return {};
    case Kind::kString: {
      std::vector<Value> out;
      for (std::string& c : py::characters(v.str())) out.push_back(Value::string(std::move(c)));
      return out;
    }
    case Kind::kList: {
      const ListObject& l = v.list_object();
      if (l.type == SeqType::kGenerator) {
        if (l.consumed) return {};
        l.consumed = true;
      }
      return l.items;
    }
    case Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(v.dict_object().entries.size());
      for (const auto& [key, value] : v.dict_object().entries) keys.push_back(key);
      return keys;
    }
    default: type_error("'" + type_name(v) + "' object is not iterable");
  }
}

int64_t length_of(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: return 0;
    case Kind::kString: return py::length(v.str());
    case Kind::kList:
      if (v.seq_type() != SeqType::kGenerator) return static_cast<int64_t>(v.items().size());
      break;
    case Kind::kDict: return static_cast<int64_t>(v.dict_object().entries.size());
    default: break;
  }
  type_error("object of type '" + type_name(v) + "' has no len()");
}

[[noreturn]] void raise_undefined(const Value& u) {
  raise(u.undefined_form() == UndefinedForm::kHint && u.undefined_is_security() ? FailureKind::kSecurity
                                                                                : FailureKind::kUndefined,
        u.undefined_message());
}

}  // namespace ember::jinja
