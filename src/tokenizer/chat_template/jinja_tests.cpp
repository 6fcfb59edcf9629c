// Jinja2 3.1's tests (`x is defined`, `x is string`, `n is divisibleby 3`, ...; jinja2/tests.py)
// with Python's notion of each type: bool is a number, a dict and Undefined are sequences, ...
#include <cmath>

#include "tokenizer/chat_template/builtins.h"
#include "tokenizer/chat_template/failure.h"
#include "tokenizer/chat_template/interpreter.h"
#include "tokenizer/chat_template/py_text.h"

namespace ember::jinja {
namespace {

enum TestId {
  kTBoolean,
  kTCallable,
  kTDefined,
  kTDivisibleby,
  kTEq,
  kTEscaped,
  kTEven,
  kTFalse,
  kTFilter,
  kTFloat,
  kTGe,
  kTGt,
  kTIn,
  kTInteger,
  kTIterable,
  kTLe,
  kTLower,
  kTLt,
  kTMapping,
  kTNe,
  kTNone,
  kTNumber,
  kTOdd,
  kTSameas,
  kTSequence,
  kTString,
  kTTest,
  kTTrue,
  kTUndefined,
  kTUpper,
};

constexpr NamedId kTests[] = {
    {"!=", kTNe},
    {"<", kTLt},
    {"<=", kTLe},
    {"==", kTEq},
    {">", kTGt},
    {">=", kTGe},
    {"boolean", kTBoolean},
    {"callable", kTCallable},
    {"defined", kTDefined},
    {"divisibleby", kTDivisibleby},
    {"eq", kTEq},
    {"equalto", kTEq},
    {"escaped", kTEscaped},
    {"even", kTEven},
    {"false", kTFalse},
    {"filter", kTFilter},
    {"float", kTFloat},
    {"ge", kTGe},
    {"greaterthan", kTGt},
    {"gt", kTGt},
    {"in", kTIn},
    {"integer", kTInteger},
    {"iterable", kTIterable},
    {"le", kTLe},
    {"lessthan", kTLt},
    {"lower", kTLower},
    {"lt", kTLt},
    {"mapping", kTMapping},
    {"ne", kTNe},
    {"none", kTNone},
    {"number", kTNumber},
    {"odd", kTOdd},
    {"sameas", kTSameas},
    {"sequence", kTSequence},
    {"string", kTString},
    {"test", kTTest},
    {"true", kTTrue},
    {"undefined", kTUndefined},
    {"upper", kTUpper},
};

}  // namespace

int find_test(std::string_view name) { return find_named(kTests, name); }

bool apply_test(Interpreter& in, int id, const Value& v, const CallArgs& args) {
  in.step();
  in.charge(v);
  for (const Value& a : args.positional) in.charge(a);
  auto other = [&](const char* function) { return *bind_args(args, function, {"other"}, 1)[0]; };
  switch (static_cast<TestId>(id)) {
    case kTBoolean: return v.kind() == Kind::kBool;
    case kTCallable: return v.kind() == Kind::kCallable || v.is_undefined();
    case kTDefined: return !v.is_undefined();
    case kTUndefined: return v.is_undefined();
    case kTDivisibleby: {
      const Value n = *bind_args(args, "test_divisibleby", {"num"}, 1)[0];
      if (v.is_undefined()) raise_undefined(v);
      if (!v.is_number() || !n.is_number()) {
        type_error("unsupported operand type(s) for %: '" + type_name(v) + "' and '" + type_name(n) + "'");
      }
      if (v.is_int_like() && n.is_int_like()) {
        if (n.as_int() == 0) raise(FailureKind::kValue, "integer modulo by zero");
        return n.as_int() == -1 || v.as_int() % n.as_int() == 0;
      }
      if (n.as_float() == 0.0) raise(FailureKind::kValue, "float modulo");
      return std::fmod(v.as_float(), n.as_float()) == 0.0;
    }
    case kTEq: return equals(v, other("eq"));
    case kTNe: return !equals(v, other("ne"));
    case kTLt: return less_than(v, other("lt"), "<");
    case kTLe: {
      const Value o = other("le");
      return less_than(v, o, "<=") || equals(v, o);
    }
    case kTGt: {
      const Value o = other("gt");
      return !less_than(v, o, ">") && !equals(v, o);
    }
    case kTGe: return !less_than(v, other("ge"), ">=");
    case kTEscaped: return v.markup();
    case kTEven:
    case kTOdd: {
      if (v.is_undefined()) raise_undefined(v);
      if (!v.is_number()) type_error("unsupported operand type(s) for %: '" + type_name(v) + "' and 'int'");
      const bool odd = v.is_int_like() ? (v.as_int() % 2 != 0) : std::fmod(std::fabs(v.as_float()), 2.0) == 1.0;
      return id == kTOdd ? odd : (v.is_int_like() ? !odd : std::fmod(v.as_float(), 2.0) == 0.0);
    }
    case kTFalse: return v.kind() == Kind::kBool && !v.as_bool();
    case kTTrue: return v.kind() == Kind::kBool && v.as_bool();
    case kTFilter: bind_args(args, "test_filter", {}, 0); return v.is_string() && find_filter(v.str()) >= 0;
    case kTTest: bind_args(args, "test_test", {}, 0); return v.is_string() && find_test(v.str()) >= 0;
    case kTFloat: return v.kind() == Kind::kFloat;
    case kTInteger: return v.kind() == Kind::kInt;
    case kTIn: {
      const Value seq = *bind_args(args, "test_in", {"seq"}, 1)[0];
      if (seq.is_undefined()) return false;
      if (seq.is_string()) {
        if (!v.is_string()) type_error("'in <string>' requires string as left operand, not " + type_name(v));
        return seq.str().find(v.str()) != std::string::npos;
      }
      if (seq.is_list() || seq.is_dict()) {
        for (const Value& item : iterate(seq))
          if (equals(item, v)) return true;
        return false;
      }
      type_error("argument of type '" + type_name(seq) + "' is not iterable");
    }
    case kTIterable: return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
    case kTLower: return py::is_lower(to_str(v));
    case kTUpper: return py::is_upper(to_str(v));
    case kTMapping: return v.is_dict();
    case kTNone: return v.is_none();
    case kTNumber: return v.is_number();
    case kTSameas: {
      const Value o = *bind_args(args, "test_sameas", {"other"}, 1)[0];
      if (v.kind() != o.kind()) return false;
      if (v.object_ptr() || o.object_ptr()) return v.object_ptr() == o.object_ptr();
      return equals(v, o);
    }
    case kTSequence:
      return v.is_undefined() || v.is_string() || v.is_dict() ||
             (v.is_list() && v.seq_type() != SeqType::kGenerator && v.seq_type() != SeqType::kDictKeys &&
              v.seq_type() != SeqType::kDictValues && v.seq_type() != SeqType::kDictItems);
    case kTString: return v.is_string();
  }
  raise(FailureKind::kRuntime, "unknown test");
}

}  // namespace ember::jinja
