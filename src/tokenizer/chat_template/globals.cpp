// The globals Hugging Face renders with — raise_exception, strftime_now — and Jinja2's range (with
// the sandbox's MAX_RANGE), dict and namespace.
#include <locale.h>
#include <clocale>
#include <ctime>

#include <fmt/format.h>

#include "tokenizer/chat_template/builtins.h"
#include "tokenizer/chat_template/failure.h"
#include "tokenizer/chat_template/interpreter.h"

namespace ember::jinja {
namespace {

enum GlobalId { kRange, kDict, kNamespace, kRaiseException, kStrftimeNow, kGlobalCount };
constexpr std::string_view kGlobalNames[] = {"range", "dict", "namespace", "raise_exception", "strftime_now"};

// datetime.strftime for a naive datetime: %f is the microseconds (0), %z and %Z are empty, the
// rest is the C library's strftime in the "C" locale (Python never sets LC_TIME).
std::string py_strftime(const std::string& format, const std::tm& now) {
  std::string f;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] == '%' && i + 1 < format.size()) {
      const char c = format[++i];
      if (c == 'f') {
        f += "000000";
      } else if (c != 'z' && c != 'Z') {
        f += '%';
        f += c;
      }
      continue;
    }
    f += format[i];
  }
  if (f.find('\0') != std::string::npos) value_error("embedded null character");
  static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", nullptr);
  std::string buffer;
  for (size_t size = 256; size <= 256 * (f.size() + 1) && size <= (size_t{1} << 20); size *= 4) {
    buffer.resize(size);
    const size_t n = strftime_l(buffer.data(), size, f.c_str(), &now, c_locale);
    if (n > 0) {
      buffer.resize(n);
      return buffer;
    }
  }
  return "";
}

}  // namespace

int find_global(std::string_view name) {
  for (int i = 0; i < kGlobalCount; ++i)
    if (kGlobalNames[i] == name) return i;
  return -1;
}

Value global_value(int id) {
  static const std::vector<Value> values = [] {
    std::vector<Value> v;
    for (int i = 0; i < kGlobalCount; ++i) {
      auto c = std::make_shared<CallableObject>();
      c->type = CallableType::kGlobal;
      c->id = i;
      c->name = std::string(kGlobalNames[i]);
      v.push_back(Value::object(Kind::kCallable, std::move(c)));
    }
    return v;
  }();
  return values[static_cast<size_t>(id)];
}

Value call_global(Interpreter& in, int id, const CallArgs& args) {
  switch (static_cast<GlobalId>(id)) {
    case kRange: {
      if (!args.keyword.empty()) type_error("range() takes no keyword arguments");
      if (args.positional.empty() || args.positional.size() > 3) {
        type_error("range expected at most 3 arguments, got " + std::to_string(args.positional.size()));
      }
      for (const Value& v : args.positional) {
        // fmt, not "'" + s + "'": GCC 12 misreports -Wrestrict on that concatenation here.
        if (!v.is_int_like()) type_error(fmt::format("'{}' object cannot be interpreted as an integer", type_name(v)));
      }
      const auto& p = args.positional;
      const int64_t start = p.size() == 1 ? 0 : p[0].as_int();
      const int64_t stop = p.size() == 1 ? p[0].as_int() : p[1].as_int();
      const int64_t step = p.size() == 3 ? p[2].as_int() : 1;
      if (step == 0) value_error("range() arg 3 must not be zero");
      // Sandbox: at most MAX_RANGE items. Computed in long double to stay clear of overflow.
      const long double span = static_cast<long double>(stop) - static_cast<long double>(start);
      const long double count =
          step > 0 ? (span > 0 ? (span + step - 1) / step : 0) : (span < 0 ? (span + step + 1) / step : 0);
      if (count > 100000) {
        raise(FailureKind::kValue, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
      }
      return Value::range(start, stop, step);
    }
    case kDict: {
      auto d = std::make_shared<DictObject>();
      if (args.positional.size() > 1)
        type_error("dict expected at most 1 argument, got " + std::to_string(args.positional.size()));
      if (!args.positional.empty()) {
        const Value& src = args.positional[0];
        if (src.is_dict()) {
          *d = src.dict_object();
        } else {
          for (const Value& pair : iterate(src)) {
            const std::vector<Value> kv = iterate(pair);
            if (kv.size() != 2)
              value_error("dictionary update sequence element has length " + std::to_string(kv.size()) +
                          "; 2 is required");
            d->set(kv[0], kv[1]);
          }
        }
      }
      for (const auto& [k, v] : args.keyword) d->set(Value::string(k), v);
      return Value::dict(std::move(d));
    }
    case kNamespace: {
      auto ns = std::make_shared<NamespaceObject>();
      if (args.positional.size() > 1)
        type_error("dict expected at most 1 argument, got " + std::to_string(args.positional.size()));
      if (!args.positional.empty()) {
        const Value& src = args.positional[0];
        if (!src.is_dict()) type_error("cannot convert dictionary update sequence element #0 to a sequence");
        ns->attrs = src.dict_object();
      }
      for (const auto& [k, v] : args.keyword) ns->attrs.set(Value::string(k), v);
      in.track_namespace(ns);
      return Value::object(Kind::kNamespace, std::move(ns));
    }
    case kRaiseException: {
      const auto a = bind_args(args, "raise_exception", {"message"}, 1);
      raise(FailureKind::kRaised, to_str(*a[0]));
    }
    case kStrftimeNow: {
      const auto a = bind_args(args, "strftime_now", {"format"}, 1);
      if (!a[0]->is_string()) type_error("strftime() argument 1 must be str, not " + type_name(*a[0]));
      std::string out = py_strftime(a[0]->str(), in.settings().now);
      in.check_string_size(out.size());
      return Value::string(std::move(out));
    }
    case kGlobalCount: break;
  }
  raise(FailureKind::kRuntime, "unknown global");
}

}  // namespace ember::jinja
