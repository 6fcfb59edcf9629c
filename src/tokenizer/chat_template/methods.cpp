// Python methods of str, list / tuple and dict that templates call (with the sandbox's refusal of
// the mutating ones), LoopContext's attributes, and the globals Hugging Face renders with: range,
// dict, namespace, raise_exception, strftime_now.
#include <locale.h>
#include <clocale>
#include <ctime>

#include <algorithm>

#include "tokenizer/chat_template/builtins.h"
#include "tokenizer/chat_template/failure.h"
#include "tokenizer/chat_template/interpreter.h"
#include "tokenizer/chat_template/py_text.h"

namespace ember::jinja {
namespace {

enum MethodId {
  // str
  kStrip,
  kLstrip,
  kRstrip,
  kSplit,
  kRsplit,
  kSplitlines,
  kStartswith,
  kEndswith,
  kReplace,
  kUpper,
  kLower,
  kTitle,
  kCapitalize,
  kCasefold,
  kFind,
  kRfind,
  kIndex,
  kRindex,
  kCount,
  kJoin,
  kIsdigit,
  kIsalpha,
  kIsalnum,
  kIsspace,
  kIsupper,
  kIslower,
  kZfill,
  kLjust,
  kRjust,
  kCenter,
  kPartition,
  kRpartition,
  kRemoveprefix,
  kRemovesuffix,
  kFormat,
  // list / tuple / range
  kSeqIndex,
  kSeqCount,
  kListCopy,
  // dict
  kItems,
  kKeys,
  kValues,
  kGet,
  kDictCopy,
  // loop
  kLoopCycle,
  kLoopChanged,
  kUnsafe,
};

struct NamedMethod {
  std::string_view name;
  int id;
};

constexpr NamedMethod kStrMethods[] = {
    {"strip", kStrip},
    {"lstrip", kLstrip},
    {"rstrip", kRstrip},
    {"split", kSplit},
    {"rsplit", kRsplit},
    {"splitlines", kSplitlines},
    {"startswith", kStartswith},
    {"endswith", kEndswith},
    {"replace", kReplace},
    {"upper", kUpper},
    {"lower", kLower},
    {"title", kTitle},
    {"capitalize", kCapitalize},
    {"casefold", kCasefold},
    {"find", kFind},
    {"rfind", kRfind},
    {"index", kIndex},
    {"rindex", kRindex},
    {"count", kCount},
    {"join", kJoin},
    {"isdigit", kIsdigit},
    {"isalpha", kIsalpha},
    {"isalnum", kIsalnum},
    {"isspace", kIsspace},
    {"isupper", kIsupper},
    {"islower", kIslower},
    {"zfill", kZfill},
    {"ljust", kLjust},
    {"rjust", kRjust},
    {"center", kCenter},
    {"partition", kPartition},
    {"rpartition", kRpartition},
    {"removeprefix", kRemoveprefix},
    {"removesuffix", kRemovesuffix},
    {"format", kFormat},
};
constexpr std::string_view kUnsafeListMethods[] = {"append", "clear",  "extend",  "insert",
                                                   "pop",    "remove", "reverse", "sort"};
constexpr std::string_view kUnsafeDictMethods[] = {"clear", "pop", "popitem", "setdefault", "update"};

std::optional<std::string> optional_str(const std::optional<Value>& v, const char* method) {
  if (!v || v->is_none()) return std::nullopt;
  if (!v->is_string()) type_error(std::string(method) + " arg must be None or str");
  return v->str();
}

const std::string& str_param(const std::optional<Value>& v, const std::string& method) {
  if (!v->is_string()) type_error(method + "() argument must be str, not " + type_name(*v));
  return v->str();
}

int64_t int_param(const std::optional<Value>& v, int64_t fallback) {
  if (!v || v->is_none()) return fallback;
  if (!v->is_int_like()) type_error("'" + type_name(*v) + "' object cannot be interpreted as an integer");
  return v->as_int();
}

// startswith / endswith with an optional [start, end) window and a str-or-tuple prefix.
bool affix_match(const std::string& s, const CallArgs& args, bool prefix) {
  const char* name = prefix ? "startswith" : "endswith";
  const auto a = bind_args(args, name, {"prefix", "start", "end"}, 1);
  const int64_t n = py::length(s);
  const py::SliceRange r =
      py::adjust_slice(n, a[1] && !a[1]->is_none() ? std::optional(int_param(a[1], 0)) : std::nullopt,
                       a[2] && !a[2]->is_none() ? std::optional(int_param(a[2], 0)) : std::nullopt, 1);
  if (a[1] && !a[1]->is_none() && int_param(a[1], 0) > n) return false;
  const size_t b = py::byte_offset(s, r.start);
  const size_t e = std::max(b, py::byte_offset(s, std::max(r.start, r.stop)));
  const std::string_view window = std::string_view(s).substr(b, e - b);
  std::vector<Value> candidates;
  if (a[0]->is_string()) {
    candidates.push_back(*a[0]);
  } else if (a[0]->is_list() && a[0]->seq_type() == SeqType::kTuple) {
    candidates = a[0]->items();
  } else {
    type_error(std::string(name) + " first arg must be str or a tuple of str, not " + type_name(*a[0]));
  }
  for (const Value& c : candidates) {
    if (!c.is_string()) type_error("tuple for " + std::string(name) + " must only contain str, not " + type_name(c));
    const std::string& t = c.str();
    if (prefix ? window.substr(0, t.size()) == t
               : (window.size() >= t.size() && window.substr(window.size() - t.size()) == t)) {
      return true;
    }
  }
  return false;
}

Value pad(Interpreter& in, const std::string& s, const CallArgs& args, const char* name, int where) {
  const auto a = bind_args(args, name, {"width", "fillchar"}, 1);
  const int64_t width = int_param(a[0], 0);
  std::string fill = " ";
  if (a[1]) {
    if (!a[1]->is_string() || py::length(a[1]->str()) != 1)
      type_error("The fill character must be exactly one character long");
    fill = a[1]->str();
  }
  const int64_t len = py::length(s);
  if (width <= len) return Value::string(s);
  in.check_string_size(static_cast<size_t>(width) * fill.size());
  const int64_t marg = width - len;
  const int64_t left = where < 0 ? 0 : where > 0 ? marg : marg / 2 + (marg & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < marg - left; ++i) out += fill;
  return Value::string(std::move(out));
}

// str.format with automatic / numbered / named fields, no format specs or conversions.
Value str_format(Interpreter& in, const std::string& f, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    const char c = f[i];
    if (c == '}') {
      if (i + 1 < f.size() && f[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      value_error("Single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < f.size() && f[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    const size_t close = f.find('}', i);
    if (close == std::string::npos) value_error("Single '{' encountered in format string");
    const std::string field = f.substr(i + 1, close - i - 1);
    if (field.find_first_of(":!.[") != std::string::npos) value_error("format specs are not supported in str.format");
    const Value* v = nullptr;
    if (field.empty()) {
      if (auto_index >= args.positional.size())
        raise(FailureKind::kValue,
              "Replacement index " + std::to_string(auto_index) + " out of range for positional args tuple");
      v = &args.positional[auto_index++];
    } else if (auto n = py::parse_int(field, 10)) {
      if (*n < 0 || static_cast<size_t>(*n) >= args.positional.size())
        raise(FailureKind::kValue, "Replacement index " + field + " out of range for positional args tuple");
      v = &args.positional[static_cast<size_t>(*n)];
    } else {
      for (const auto& [k, x] : args.keyword)
        if (k == field) v = &x;
      if (v == nullptr) raise(FailureKind::kValue, py::repr(field));
    }
    append_str(out, *v);
    in.check_string_size(out.size());
    i = close;
  }
  return Value::string(std::move(out));
}

Value call_str_method(Interpreter& in, const Value& self, int id, const CallArgs& args) {
  const std::string& s = self.str();
  const bool m = self.markup();
  switch (static_cast<MethodId>(id)) {
    case kStrip:
    case kLstrip:
    case kRstrip: {
      const char* name = id == kStrip ? "strip" : id == kLstrip ? "lstrip" : "rstrip";
      const auto a = bind_args(args, name, {"chars"}, 0);
      return Value::string(py::strip(s, optional_str(a[0], name), id != kRstrip, id != kLstrip), m);
    }
    case kSplit:
    case kRsplit: {
      const auto a = bind_args(args, id == kSplit ? "split" : "rsplit", {"sep", "maxsplit"}, 0);
      const std::optional<std::string> sep = optional_str(a[0], "must be str or None, not");
      if (sep && sep->empty()) value_error("empty separator");
      const int64_t maxsplit = int_param(a[1], -1);
      std::vector<Value> parts;
      for (std::string& p : id == kSplit ? py::split(s, sep, maxsplit) : py::rsplit(s, sep, maxsplit))
        parts.push_back(Value::string(std::move(p)));
      return Value::list(std::move(parts));
    }
    case kSplitlines: {
      const auto a = bind_args(args, "splitlines", {"keepends"}, 0);
      std::vector<Value> parts;
      for (std::string& p : py::splitlines(s, a[0] && truthy(*a[0]))) parts.push_back(Value::string(std::move(p)));
      return Value::list(std::move(parts));
    }
    case kStartswith: return Value::boolean(affix_match(s, args, true));
    case kEndswith: return Value::boolean(affix_match(s, args, false));
    case kReplace: {
      const auto a = bind_args(args, "replace", {"old", "new", "count"}, 2);
      std::string out = py::replace(s, str_param(a[0], "replace"), str_param(a[1], "replace"), int_param(a[2], -1));
      in.check_string_size(out.size());
      return Value::string(std::move(out), m);
    }
    case kUpper: bind_args(args, "upper", {}, 0); return Value::string(py::upper(s), m);
    case kLower:
    case kCasefold: bind_args(args, "lower", {}, 0); return Value::string(py::lower(s), m);
    case kTitle: bind_args(args, "title", {}, 0); return Value::string(py::title_method(s), m);
    case kCapitalize: bind_args(args, "capitalize", {}, 0); return Value::string(py::capitalize(s), m);
    case kFind:
    case kRfind:
    case kIndex:
    case kRindex:
    case kCount: {
      const auto a = bind_args(args, "find", {"sub", "start", "end"}, 1);
      const std::string& sub = str_param(a[0], "find");
      if (id == kCount) return Value::integer(py::count(s, sub));
      const int64_t start = int_param(a[1], 0);
      const int64_t end = int_param(a[2], INT64_MAX);
      const int64_t at = py::find(s, sub, start, end, id == kRfind || id == kRindex);
      if (at < 0 && (id == kIndex || id == kRindex)) value_error("substring not found");
      return Value::integer(at);
    }
    case kJoin: {
      const auto a = bind_args(args, "join", {"iterable"}, 1);
      std::string out;
      size_t i = 0;
      for (const Value& item : iterate(*a[0])) {
        if (!item.is_string()) {
          type_error("sequence item " + std::to_string(i) + ": expected str instance, " + type_name(item) + " found");
        }
        if (i++ > 0) out += s;
        out += item.str();
        in.check_string_size(out.size());
      }
      return Value::string(std::move(out));
    }
    case kIsdigit: return Value::boolean(py::is_digit(s));
    case kIsalpha: return Value::boolean(py::is_alpha(s));
    case kIsalnum: return Value::boolean(py::is_alnum(s));
    case kIsspace: return Value::boolean(!s.empty() && py::strip(s, std::nullopt, true, false).empty());
    case kIsupper: return Value::boolean(py::is_upper(s));
    case kIslower: return Value::boolean(py::is_lower(s));
    case kZfill: {
      const auto a = bind_args(args, "zfill", {"width"}, 1);
      const int64_t width = int_param(a[0], 0);
      const int64_t len = py::length(s);
      if (width <= len) return Value::string(s);
      in.check_string_size(static_cast<size_t>(width));
      const bool sign = !s.empty() && (s[0] == '+' || s[0] == '-');
      std::string out = sign ? s.substr(0, 1) : "";
      out.append(static_cast<size_t>(width - len), '0');
      out += sign ? s.substr(1) : s;
      return Value::string(std::move(out));
    }
    case kLjust: return pad(in, s, args, "ljust", -1);
    case kRjust: return pad(in, s, args, "rjust", 1);
    case kCenter: return pad(in, s, args, "center", 0);
    case kPartition:
    case kRpartition: {
      const auto a = bind_args(args, "partition", {"sep"}, 1);
      const std::string& sep = str_param(a[0], "partition");
      if (sep.empty()) value_error("empty separator");
      const size_t at = id == kPartition ? s.find(sep) : s.rfind(sep);
      if (at == std::string::npos) {
        return id == kPartition
                   ? Value::list({Value::string(s), Value::string(""), Value::string("")}, SeqType::kTuple)
                   : Value::list({Value::string(""), Value::string(""), Value::string(s)}, SeqType::kTuple);
      }
      return Value::list({Value::string(s.substr(0, at)), Value::string(sep), Value::string(s.substr(at + sep.size()))},
                         SeqType::kTuple);
    }
    case kRemoveprefix:
    case kRemovesuffix: {
      const auto a = bind_args(args, id == kRemoveprefix ? "removeprefix" : "removesuffix", {"affix"}, 1);
      const std::string& t = str_param(a[0], "removeprefix");
      if (id == kRemoveprefix && s.compare(0, t.size(), t) == 0) return Value::string(s.substr(t.size()), m);
      if (id == kRemovesuffix && s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0) {
        return Value::string(s.substr(0, s.size() - t.size()), m);
      }
      return self;
    }
    case kFormat: return str_format(in, s, args);
    default: break;
  }
  raise(FailureKind::kRuntime, "unknown str method");
}

Value call_seq_method(const Value& self, int id, const CallArgs& args) {
  switch (static_cast<MethodId>(id)) {
    case kSeqIndex: {
      const auto a = bind_args(args, "index", {"value", "start", "stop"}, 1);
      const auto& items = self.items();
      const py::SliceRange r =
          py::adjust_slice(static_cast<int64_t>(items.size()), int_param(a[1], 0), int_param(a[2], INT64_MAX), 1);
      for (int64_t i = r.start; i < r.stop; ++i)
        if (equals(items[static_cast<size_t>(i)], *a[0])) return Value::integer(i);
      if (self.seq_type() == SeqType::kTuple) value_error("tuple.index(x): x not in tuple");
      value_error(to_repr(*a[0]) + " is not in " + (self.seq_type() == SeqType::kRange ? "range" : "list"));
    }
    case kSeqCount: {
      const auto a = bind_args(args, "count", {"value"}, 1);
      return Value::integer(
          std::count_if(self.items().begin(), self.items().end(), [&](const Value& v) { return equals(v, *a[0]); }));
    }
    case kListCopy: bind_args(args, "copy", {}, 0); return Value::list(self.items());
    default: break;
  }
  raise(FailureKind::kRuntime, "unknown list method");
}

Value call_dict_method(const Value& self, int id, const CallArgs& args) {
  const DictObject& d = self.dict_object();
  switch (static_cast<MethodId>(id)) {
    case kItems:
    case kKeys:
    case kValues: {
      bind_args(args, id == kItems ? "items" : id == kKeys ? "keys" : "values", {}, 0);
      std::vector<Value> out;
      out.reserve(d.entries.size());
      for (const auto& [k, v] : d.entries) {
        out.push_back(id == kItems ? Value::list({k, v}, SeqType::kTuple) : id == kKeys ? k : v);
      }
      return Value::list(std::move(out), id == kItems  ? SeqType::kDictItems
                                         : id == kKeys ? SeqType::kDictKeys
                                                       : SeqType::kDictValues);
    }
    case kGet: {
      const auto a = bind_args(args, "get", {"key", "default"}, 1);
      const Value& key = *a[0];
      if (key.is_dict() || (key.is_list() && key.seq_type() == SeqType::kList)) {
        type_error("unhashable type: '" + type_name(key) + "'");
      }
      if (const Value* v = d.find(key)) return *v;
      return a[1] ? *a[1] : Value::none();
    }
    case kDictCopy: {
      bind_args(args, "copy", {}, 0);
      auto copy = std::make_shared<DictObject>(d);
      return Value::dict(std::move(copy));
    }
    default: break;
  }
  raise(FailureKind::kRuntime, "unknown dict method");
}

Value bound_loop_method(const Value& loop, int id, const char* name) {
  auto bound = std::make_shared<CallableObject>();
  bound->type = CallableType::kMethod;
  bound->id = id;
  bound->name = name;
  bound->self = loop;
  return Value::object(Kind::kCallable, std::move(bound));
}

}  // namespace

int find_method(const Value& self, std::string_view name, bool* unsafe) {
  *unsafe = false;
  switch (self.kind()) {
    case Kind::kString:
      for (const auto& m : kStrMethods)
        if (m.name == name) return m.id;
      return -1;
    case Kind::kList: {
      const SeqType t = self.seq_type();
      if (t != SeqType::kList && t != SeqType::kTuple && t != SeqType::kRange) return -1;
      if (name == "index") return kSeqIndex;
      if (name == "count") return kSeqCount;
      if (t != SeqType::kList) return -1;
      if (name == "copy") return kListCopy;
      for (std::string_view u : kUnsafeListMethods) {
        if (u == name) {
          *unsafe = true;
          return kUnsafe;
        }
      }
      return -1;
    }
    case Kind::kDict:
      if (name == "items") return kItems;
      if (name == "keys") return kKeys;
      if (name == "values") return kValues;
      if (name == "get") return kGet;
      if (name == "copy") return kDictCopy;
      for (std::string_view u : kUnsafeDictMethods) {
        if (u == name) {
          *unsafe = true;
          return kUnsafe;
        }
      }
      return -1;
    default: return -1;
  }
}

Value call_method(Interpreter& in, const Value& self, int id, const CallArgs& args) {
  for (const Value& a : args.positional) in.charge(a);
  switch (self.kind()) {
    case Kind::kString: return call_str_method(in, self, id, args);
    case Kind::kList: return call_seq_method(self, id, args);
    case Kind::kDict: return call_dict_method(self, id, args);
    case Kind::kLoop: {
      LoopObject& loop = self.loop_object();
      if (id == kLoopCycle) {
        if (args.positional.empty()) type_error("no items for cycling given");
        return args.positional[static_cast<size_t>(loop.index0) % args.positional.size()];
      }
      const Value current = Value::list(args.positional, SeqType::kTuple);
      if (loop.has_changed_value && equals(loop.changed_value, current)) return Value::boolean(false);
      loop.has_changed_value = true;
      loop.changed_value = current;
      return Value::boolean(true);
    }
    default: break;
  }
  raise(FailureKind::kRuntime, "method call on an unsupported object");
}

std::optional<Value> loop_attribute(const Value& loop, std::string_view name) {
  const LoopObject& l = loop.loop_object();
  const auto& items = l.items->items;
  const auto n = static_cast<int64_t>(items.size());
  const int64_t i = l.index0;
  if (name == "index") return Value::integer(i + 1);
  if (name == "index0") return Value::integer(i);
  if (name == "revindex") return Value::integer(n - i);
  if (name == "revindex0") return Value::integer(n - i - 1);
  if (name == "first") return Value::boolean(i == 0);
  if (name == "last") return Value::boolean(i == n - 1);
  if (name == "length") return Value::integer(n);
  if (name == "depth") return Value::integer(l.depth0 + 1);
  if (name == "depth0") return Value::integer(l.depth0);
  if (name == "previtem")
    return i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined_hint("there is no previous item");
  if (name == "nextitem")
    return i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined_hint("there is no next item");
  if (name == "cycle") return bound_loop_method(loop, kLoopCycle, "cycle");
  if (name == "changed") return bound_loop_method(loop, kLoopChanged, "changed");
  return std::nullopt;
}

}  // namespace ember::jinja
