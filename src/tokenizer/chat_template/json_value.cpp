// JSON ⇄ Value: contexts in, Python's json.dumps out (separators, indent, sort_keys, ensure_ascii,
// NaN / Infinity, the TypeError for values JSON cannot hold).
#include "tokenizer/chat_template/json_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/utf8.h"
#include "tokenizer/chat_template/failure.h"
#include "tokenizer/chat_template/py_text.h"

namespace ember::jinja {
namespace {

Value convert(const nlohmann::ordered_json& j, uint32_t depth) {
  if (depth > kMaxValueDepth) {
    raise(FailureKind::kLimit, "the context nests deeper than " + std::to_string(kMaxValueDepth) + " levels");
  }
  using T = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case T::null: return Value::none();
    case T::boolean: return Value::boolean(j.get<bool>());
    case T::number_integer: return Value::integer(j.get<int64_t>());
    case T::number_unsigned: {
      const auto u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return Value::integer(static_cast<int64_t>(u));
      return Value::floating(static_cast<double>(u));
    }
    case T::number_float: return Value::floating(j.get<double>());
    case T::string: {
      const auto& s = j.get_ref<const std::string&>();
      if (!utf8::is_valid(s)) value_error("a string of the context is not valid UTF-8");
      return Value::string(s);
    }
    case T::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(convert(item, depth + 1));
      return Value::list(std::move(items));
    }
    case T::object: {
      auto d = std::make_shared<DictObject>();
      d->entries.reserve(j.size());
      for (const auto& [key, item] : j.items()) {
        if (!utf8::is_valid(key)) value_error("a key of the context is not valid UTF-8");
        // A JSON object's keys are already unique: appended without DictObject::set's search,
        // which would make a large object quadratic.
        d->entries.emplace_back(Value::string(key), convert(item, depth + 1));
      }
      return Value::dict(std::move(d));
    }
    default: value_error("the context holds a JSON value of an unsupported type (binary)");
  }
}

void dump_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  char buf[16];
  for (size_t i = 0; i < s.size();) {
    const auto d = utf8::decode(s, i);
    const char32_t c = d.code_point;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c > 0x7E)) {
          if (c > 0xFFFF) {
            const char32_t v = c - 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 | (v >> 10)),
                          static_cast<unsigned>(0xDC00 | (v & 0x3FF)));
          } else {
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          }
          out += buf;
        } else {
          out.append(s.substr(i, d.length));
        }
    }
    i += d.length;
  }
  out += '"';
}

void dump_float(std::string& out, double d) {
  if (std::isnan(d)) {
    out += "NaN";
  } else if (std::isinf(d)) {
    out += d < 0 ? "-Infinity" : "Infinity";
  } else {
    py::append_float_repr(out, d);
  }
}

class Dumper {
 public:
  Dumper(std::string& out, const JsonDumpOptions& o)
      : out_(out),
        o_(o),
        item_sep_(o.item_separator ? *o.item_separator : (o.indent ? "," : ", ")),
        key_sep_(o.key_separator ? *o.key_separator : ": ") {}

  void dump(const Value& v, int level) {
    switch (v.kind()) {
      case Kind::kNone: out_ += "null"; return;
      case Kind::kBool: out_ += v.as_bool() ? "true" : "false"; return;
      case Kind::kInt: out_ += std::to_string(v.as_int()); return;
      case Kind::kFloat: dump_float(out_, v.as_float()); return;
      case Kind::kString: dump_string(out_, v.str(), o_.ensure_ascii); return;
      case Kind::kList:
        if (v.seq_type() == SeqType::kList || v.seq_type() == SeqType::kTuple) {
          dump_array(v.items(), level);
          return;
        }
        break;
      case Kind::kDict: dump_object(v.dict_object(), level); return;
      default: break;
    }
    type_error("Object of type " + type_name(v) + " is not JSON serializable");
  }

 private:
  void newline(int level) {
    if (!o_.indent) return;
    out_ += '\n';
    for (int i = 0; i < level; ++i) out_ += *o_.indent;
  }

  void dump_array(const std::vector<Value>& items, int level) {
    if (items.empty()) {
      out_ += "[]";
      return;
    }
    out_ += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out_ += item_sep_;
      newline(level + 1);
      dump(items[i], level + 1);
    }
    newline(level);
    out_ += ']';
  }

  // A key as json.dumps writes it: str as is, float / bool / None / int converted, else TypeError.
  std::string key_text(const Value& key) {
    switch (key.kind()) {
      case Kind::kString: return key.str();
      case Kind::kFloat: {
        std::string s;
        dump_float(s, key.as_float());
        return s;
      }
      case Kind::kBool: return key.as_bool() ? "true" : "false";
      case Kind::kNone: return "null";
      case Kind::kInt: return std::to_string(key.as_int());
      default: type_error("keys must be str, int, float, bool or None, not " + type_name(key));
    }
  }

  void dump_object(const DictObject& d, int level) {
    if (d.entries.empty()) {
      out_ += "{}";
      return;
    }
    std::vector<const std::pair<Value, Value>*> entries;
    for (const auto& e : d.entries) entries.push_back(&e);
    if (o_.sort_keys) {
      std::stable_sort(entries.begin(), entries.end(),
                       [](const auto* a, const auto* b) { return less_than(a->first, b->first, "<"); });
    }
    out_ += '{';
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i > 0) out_ += item_sep_;
      newline(level + 1);
      dump_string(out_, key_text(entries[i]->first), o_.ensure_ascii);
      out_ += key_sep_;
      dump(entries[i]->second, level + 1);
    }
    newline(level);
    out_ += '}';
  }

  std::string& out_;
  const JsonDumpOptions& o_;
  std::string item_sep_, key_sep_;
};

}  // namespace

Value from_json(const nlohmann::ordered_json& json) { return convert(json, 0); }

void dump_json(std::string& out, const Value& value, const JsonDumpOptions& options) {
  Dumper(out, options).dump(value, 0);
}

}  // namespace ember::jinja
