// Expression evaluation with Python's operator semantics (int / float / str / list arithmetic and
// their TypeErrors, chained comparisons, `in`), Jinja2's sandboxed attribute and item lookup (which
// turns misses into Undefined), slicing, calls, filters and tests.
#include <cmath>
#include <limits>

#include "tokenizer/chat_template/failure.h"
#include "tokenizer/chat_template/interpreter.h"
#include "tokenizer/chat_template/py_text.h"

namespace ember::jinja {
namespace {

using namespace ast;

[[noreturn]] void overflow() { value_error("integer overflow (ember's template integers are 64-bit)"); }

[[noreturn]] void unsupported(const char* op, const Value& a, const Value& b) {
  type_error(std::string("unsupported operand type(s) for ") + op + ": '" + type_name(a) + "' and '" + type_name(b) +
             "'");
}

bool is_sequence(const Value& v) {
  return v.is_list() && (v.seq_type() == SeqType::kList || v.seq_type() == SeqType::kTuple);
}

bool hashable(const Value& v) {
  if (v.is_dict()) return false;
  if (!v.is_list()) return true;
  if (v.seq_type() == SeqType::kTuple) {
    for (const Value& item : v.items())
      if (!hashable(item)) return false;
    return true;
  }
  return v.seq_type() == SeqType::kGenerator || v.seq_type() == SeqType::kRange;
}

// Python's float divmod (floatobject.c float_divmod): the floor quotient and the modulo.
std::pair<double, double> float_divmod(double vx, double wx) {
  double mod = std::fmod(vx, wx);
  double div = (vx - mod) / wx;
  if (mod != 0.0) {
    if ((wx < 0) != (mod < 0)) {
      mod += wx;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, wx);
  }
  double floordiv;
  if (div != 0.0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, vx / wx);
  }
  return {floordiv, mod};
}

int64_t int_pow(int64_t base, int64_t exp) {
  int64_t result = 1;
  while (exp > 0) {
    if ((exp & 1) != 0 && __builtin_mul_overflow(result, base, &result)) overflow();
    exp >>= 1;
    if (exp > 0 && __builtin_mul_overflow(base, base, &base)) overflow();
  }
  return result;
}

// `text * n` / `list * n` (n <= 0: empty).
Value repeat(Interpreter& in, const Value& seq, int64_t n) {
  if (seq.is_string()) {
    if (n <= 0 || seq.str().empty()) return Value::string("", seq.markup());
    if (static_cast<uint64_t>(n) > in.settings().max_string_bytes / seq.str().size() + 1) {
      in.check_string_size(in.settings().max_string_bytes + 1);
    }
    in.check_string_size(seq.str().size() * static_cast<size_t>(n));
    std::string out;
    out.reserve(seq.str().size() * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value::string(std::move(out), seq.markup());
  }
  std::vector<Value> items;
  const auto& src = seq.items();
  if (n > 0 && !src.empty()) {
    if (static_cast<uint64_t>(n) * src.size() > in.settings().max_string_bytes) {
      raise(FailureKind::kLimit, "a list repetition exceeds the render limits");
    }
    for (int64_t i = 0; i < n; ++i) items.insert(items.end(), src.begin(), src.end());
  }
  return Value::list(std::move(items), seq.seq_type());
}

}  // namespace

Value percent_format(Interpreter& in, const Value& format, const Value& args) {
  const std::string& f = format.str();
  std::vector<Value> positional;
  const bool mapping = args.is_dict();
  if (is_sequence(args) && args.seq_type() == SeqType::kTuple) {
    positional = args.items();
  } else if (!mapping) {
    positional.push_back(args);
  }
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') {
      out += f[i];
      continue;
    }
    if (++i >= f.size()) value_error("incomplete format");
    const Value* arg = nullptr;
    if (f[i] == '(') {
      const size_t close = f.find(')', i);
      if (close == std::string::npos) value_error("incomplete format key");
      if (!mapping) type_error("format requires a mapping");
      arg = args.dict_object().find(std::string_view(f).substr(i + 1, close - i - 1));
      if (arg == nullptr) raise(FailureKind::kValue, py::repr(f.substr(i + 1, close - i - 1)));
      i = close + 1;
    }
    std::string flags;
    while (i < f.size() && std::string_view("-+ #0").find(f[i]) != std::string_view::npos) flags += f[i++];
    int width = 0, precision = -1;
    while (i < f.size() && f[i] >= '0' && f[i] <= '9' && width < 10000) width = width * 10 + (f[i++] - '0');
    if (i < f.size() && f[i] == '.') {
      precision = 0;
      ++i;
      while (i < f.size() && f[i] >= '0' && f[i] <= '9' && precision < 10000)
        precision = precision * 10 + (f[i++] - '0');
    }
    if (i >= f.size()) value_error("incomplete format");
    const char conv = f[i];
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (arg == nullptr) {
      if (mapping) type_error("format requires a mapping");
      if (next >= positional.size()) type_error("not enough arguments for format string");
      arg = &positional[next++];
    }
    std::string piece;
    switch (conv) {
      case 's': piece = to_str(*arg); break;
      case 'r': piece = to_repr(*arg); break;
      case 'd':
      case 'i':
      case 'x':
      case 'f': {
        if (!arg->is_number()) {
          type_error(std::string("%") + conv + " format: a " + (conv == 'f' ? "real number" : "number") +
                     " is required, not " + type_name(*arg));
        }
        char buf[512];
        // The C library pads numbers itself (flags such as '0' need the width); the result is ASCII.
        std::string spec = "%" + flags + (width > 0 ? std::to_string(std::min(width, 400)) : "");
        if (conv == 'f') {
          spec += "." + std::to_string(precision < 0 ? 6 : std::min(precision, 100)) + "f";
          std::snprintf(buf, sizeof buf, spec.c_str(), arg->as_float());
        } else {
          const int64_t v = arg->kind() == Kind::kFloat ? static_cast<int64_t>(arg->as_float()) : arg->as_int();
          spec += conv == 'x' ? "llx" : "lld";
          std::snprintf(buf, sizeof buf, spec.c_str(), static_cast<long long>(v));
        }
        piece = buf;
        break;
      }
      default: value_error(std::string("unsupported format character '") + conv + "'");
    }
    if (precision >= 0 && (conv == 's' || conv == 'r')) piece = piece.substr(0, py::byte_offset(piece, precision));
    const int64_t len = py::length(piece);
    if (width > len) {
      const std::string pad(static_cast<size_t>(width - len), ' ');
      piece = flags.find('-') != std::string::npos ? piece + pad : pad + piece;
    }
    out += piece;
    in.check_string_size(out.size());
  }
  if (!mapping && next < positional.size()) type_error("not all arguments converted during string formatting");
  return Value::string(std::move(out), format.markup());
}

namespace {

Value add(Interpreter& in, const Value& a, const Value& b) {
  if (a.is_int_like() && b.is_int_like()) {
    int64_t r;
    if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) overflow();
    return Value::integer(r);
  }
  if (a.is_number() && b.is_number()) return Value::floating(a.as_float() + b.as_float());
  if (a.is_string() && b.is_string()) {
    in.check_string_size(a.str().size() + b.str().size());
    // markupsafe.Markup escapes the plain str it is added to.
    if (a.markup() && !b.markup()) return Value::string(a.str() + py::html_escape(b.str()), true);
    if (b.markup() && !a.markup()) return Value::string(py::html_escape(a.str()) + b.str(), true);
    return Value::string(a.str() + b.str(), a.markup());
  }
  if (a.is_list() && b.is_list() && is_sequence(a) && a.seq_type() == b.seq_type()) {
    std::vector<Value> items = a.items();
    items.insert(items.end(), b.items().begin(), b.items().end());
    return Value::list(std::move(items), a.seq_type());
  }
  if (a.is_string()) type_error("can only concatenate str (not \"" + type_name(b) + "\") to str");
  if (is_sequence(a)) {
    const std::string t = type_name(a);
    type_error("can only concatenate " + t + " (not \"" + type_name(b) + "\") to " + t);
  }
  unsupported("+", a, b);
}

Value multiply(Interpreter& in, const Value& a, const Value& b) {
  if (a.is_int_like() && b.is_int_like()) {
    int64_t r;
    if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) overflow();
    return Value::integer(r);
  }
  if (a.is_number() && b.is_number()) return Value::floating(a.as_float() * b.as_float());
  const bool a_seq = a.is_string() || is_sequence(a);
  const bool b_seq = b.is_string() || is_sequence(b);
  if (a_seq && b.is_int_like()) return repeat(in, a, b.as_int());
  if (b_seq && a.is_int_like()) return repeat(in, b, a.as_int());
  if (a_seq) type_error("can't multiply sequence by non-int of type '" + type_name(b) + "'");
  if (b_seq) type_error("can't multiply sequence by non-int of type '" + type_name(a) + "'");
  unsupported("*", a, b);
}

Value arithmetic(Interpreter& in, BinaryOp op, const Value& a, const Value& b) {
  if (op == BinaryOp::kMod && a.is_string()) return percent_format(in, a, b);
  if (a.is_undefined()) raise_undefined(a);
  if (b.is_undefined()) raise_undefined(b);
  switch (op) {
    case BinaryOp::kAdd: return add(in, a, b);
    case BinaryOp::kMul: return multiply(in, a, b);
    default: break;
  }
  static constexpr const char* kSymbols[] = {"+", "-", "*", "/", "//", "%", "** or pow()"};
  if (!a.is_number() || !b.is_number()) unsupported(kSymbols[static_cast<int>(op)], a, b);
  const bool ints = a.is_int_like() && b.is_int_like();
  const int64_t x = a.as_int(), y = b.as_int();
  const double fx = a.as_float(), fy = b.as_float();
  switch (op) {
    case BinaryOp::kSub: {
      if (!ints) return Value::floating(fx - fy);
      int64_t r;
      if (__builtin_sub_overflow(x, y, &r)) overflow();
      return Value::integer(r);
    }
    case BinaryOp::kDiv:
      if (fy == 0.0) raise(FailureKind::kValue, ints ? "division by zero" : "float division by zero");
      return Value::floating(fx / fy);
    case BinaryOp::kFloorDiv:
    case BinaryOp::kMod:
      if (ints) {
        if (y == 0) {
          raise(FailureKind::kValue,
                op == BinaryOp::kMod ? "integer modulo by zero" : "integer division or modulo by zero");
        }
        if (x == std::numeric_limits<int64_t>::min() && y == -1) {
          if (op == BinaryOp::kMod) return Value::integer(0);
          overflow();
        }
        int64_t q = x / y, r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) {
          q -= 1;
          r += y;
        }
        return Value::integer(op == BinaryOp::kMod ? r : q);
      } else {
        if (fy == 0.0)
          raise(FailureKind::kValue, op == BinaryOp::kMod ? "float modulo" : "float floor division by zero");
        const auto [q, r] = float_divmod(fx, fy);
        return Value::floating(op == BinaryOp::kMod ? r : q);
      }
    case BinaryOp::kPow:
      if (ints && y >= 0) return Value::integer(int_pow(x, y));
      if (fx == 0.0 && fy < 0) raise(FailureKind::kValue, "0.0 cannot be raised to a negative power");
      return Value::floating(std::pow(fx, fy));
    default: break;
  }
  unsupported("?", a, b);
}

// Python's `item in container`.
bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::kUndefined: return false;
    case Kind::kString:
      if (!item.is_string()) {
        type_error("'in <string>' requires string as left operand, not " + type_name(item));
      }
      return container.str().find(item.str()) != std::string::npos;
    case Kind::kList:
      for (const Value& v : iterate(container))
        if (equals(v, item)) return true;
      return false;
    case Kind::kDict:
      if (!hashable(item)) type_error("unhashable type: '" + type_name(item) + "'");
      return container.dict_object().find(item) != nullptr;
    default: type_error("argument of type '" + type_name(container) + "' is not iterable");
  }
}

std::optional<int64_t> slice_bound(const Value& v) {
  if (v.is_none()) return std::nullopt;
  if (!v.is_int_like()) type_error("slice indices must be integers or None or have an __index__ method");
  return v.as_int();
}

}  // namespace

Value Interpreter::eval(const Expr& e, Scope& scope) {
  const RecursionGuard depth(recursion_);
  try {
    switch (e.kind) {
      case ExprKind::kConst: return static_cast<const Const&>(e).value;
      case ExprKind::kName: return eval_name(static_cast<const Name&>(e), scope);
      case ExprKind::kList:
      case ExprKind::kTuple: {
        const auto& items = static_cast<const Sequence&>(e).items;
        std::vector<Value> values;
        values.reserve(items.size());
        for (const ExprPtr& item : items) values.push_back(eval(*item, scope));
        return Value::list(std::move(values), e.kind == ExprKind::kList ? SeqType::kList : SeqType::kTuple);
      }
      case ExprKind::kDict: {
        auto d = std::make_shared<DictObject>();
        for (const auto& [k, v] : static_cast<const DictLiteral&>(e).items) {
          Value key = eval(*k, scope);
          if (!hashable(key)) type_error("unhashable type: '" + type_name(key) + "'");
          d->set(std::move(key), eval(*v, scope));
        }
        return Value::dict(std::move(d));
      }
      case ExprKind::kGetattr: {
        const auto& node = static_cast<const Getattr&>(e);
        return get_attribute(eval(*node.object, scope), node.attr);
      }
      case ExprKind::kGetitem: {
        const auto& node = static_cast<const Getitem&>(e);
        const Value object = eval(*node.object, scope);
        if (object.is_string()) charge(object);  // indexing a str walks its characters
        if (node.arg->kind == ExprKind::kSlice) return slice(object, static_cast<const Slice&>(*node.arg), scope);
        return get_item(object, eval(*node.arg, scope));
      }
      case ExprKind::kNeg:
      case ExprKind::kPos: {
        const Value v = eval(*static_cast<const Unary&>(e).operand, scope);
        if (v.is_undefined()) raise_undefined(v);
        const bool neg = e.kind == ExprKind::kNeg;
        if (v.is_int_like()) {
          if (neg && v.as_int() == std::numeric_limits<int64_t>::min()) overflow();
          return Value::integer(neg ? -v.as_int() : v.as_int());
        }
        if (v.kind() == Kind::kFloat) return Value::floating(neg ? -v.as_float() : v.as_float());
        type_error(std::string("bad operand type for unary ") + (neg ? "-" : "+") + ": '" + type_name(v) + "'");
      }
      case ExprKind::kNot: return Value::boolean(!truthy(eval(*static_cast<const Unary&>(e).operand, scope)));
      case ExprKind::kAnd:
      case ExprKind::kOr: {
        const auto& node = static_cast<const Binary&>(e);
        Value left = eval(*node.left, scope);
        if (truthy(left) == (e.kind == ExprKind::kOr)) return left;
        return eval(*node.right, scope);
      }
      case ExprKind::kBinary: return eval_binary(static_cast<const Binary&>(e), scope);
      case ExprKind::kConcat: {
        std::string out;
        for (const ExprPtr& item : static_cast<const Concat&>(e).items) {
          append_str(out, eval(*item, scope));
          check_string_size(out.size());
        }
        return Value::string(std::move(out));
      }
      case ExprKind::kCompare: return eval_compare(static_cast<const Compare&>(e), scope);
      case ExprKind::kCondExpr: {
        const auto& node = static_cast<const CondExpr&>(e);
        if (truthy(eval(*node.test, scope))) return eval(*node.then, scope);
        if (node.otherwise) return eval(*node.otherwise, scope);
        return Value::undefined_hint("the inline if-expression on line " + std::to_string(node.line) +
                                     " evaluated to false and no else section was defined.");
      }
      case ExprKind::kCall: return eval_call(static_cast<const Call&>(e), scope);
      case ExprKind::kFilter: return eval_filter(static_cast<const FilterTest&>(e), scope, nullptr);
      case ExprKind::kTest: return Value::boolean(eval_test(static_cast<const FilterTest&>(e), scope));
      case ExprKind::kSlice:
      case ExprKind::kNsRef: break;
    }
    raise(FailureKind::kSyntax, "unexpected expression");
  } catch (Failure& f) {
    f.set_pos_if_unknown(e.pos);
    throw;
  }
}

Value Interpreter::eval_name(const Name& e, Scope& scope) {
  for (const Scope* s = &scope; s != nullptr; s = s->parent.get()) {
    if (const Value* v = s->find(e.id)) return *v;
  }
  const int global = program_.global_ids[e.id];
  if (global >= 0) return global_value(global);
  return Value::undefined_name(program_.names[e.id]);
}

Value Interpreter::eval_binary(const Binary& e, Scope& scope) {
  const Value a = eval(*e.left, scope);
  const Value b = eval(*e.right, scope);
  Value result = arithmetic(*this, e.op, a, b);
  charge(result);
  return result;
}

Value Interpreter::eval_compare(const Compare& e, Scope& scope) {
  Value left = eval(*e.first, scope);
  charge(left);
  for (const auto& [op, expr] : e.rest) {
    Value right = eval(*expr, scope);
    charge(right);
    bool result = false;
    switch (op) {
      case CompareOp::kEq: result = equals(left, right); break;
      case CompareOp::kNe: result = !equals(left, right); break;
      case CompareOp::kLt: result = less_than(left, right, "<"); break;
      case CompareOp::kLe: result = less_than(left, right, "<=") || equals(left, right); break;
      case CompareOp::kGt: result = !less_than(left, right, ">") && !equals(left, right); break;
      case CompareOp::kGe: result = !less_than(left, right, ">="); break;
      case CompareOp::kIn: result = contains(right, left); break;
      case CompareOp::kNotIn: result = !contains(right, left); break;
    }
    if (!result) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

CallArgs Interpreter::eval_args(const Args& args, Scope& scope) {
  CallArgs out;
  out.positional.reserve(args.positional.size());
  for (const ExprPtr& a : args.positional) out.positional.push_back(eval(*a, scope));
  for (const auto& [name, a] : args.keyword) out.keyword.emplace_back(name, eval(*a, scope));
  if (args.star) {
    for (Value& v : iterate(eval(*args.star, scope))) out.positional.push_back(std::move(v));
  }
  if (args.star_star) {
    const Value d = eval(*args.star_star, scope);
    if (!d.is_dict()) type_error("argument after ** must be a mapping, not " + type_name(d));
    for (const auto& [k, v] : d.dict_object().entries) {
      if (!k.is_string()) type_error("keywords must be strings");
      out.keyword.emplace_back(k.str(), v);
    }
  }
  return out;
}

Value Interpreter::eval_call(const Call& e, Scope& scope) {
  if (e.callee->kind == ExprKind::kGetattr) {
    // obj.method(...) without materializing a bound method.
    const auto& attr = static_cast<const Getattr&>(*e.callee);
    const Value object = eval(*attr.object, scope);
    bool unsafe = false;
    const int method = object.is_undefined() ? -1 : find_method(object, attr.attr, &unsafe);
    if (method >= 0 && !unsafe) {
      charge(object);
      return call_method(*this, object, method, eval_args(e.args, scope));
    }
    const Value callee = get_attribute(object, attr.attr);
    return call(callee, eval_args(e.args, scope));
  }
  const Value callee = eval(*e.callee, scope);
  return call(callee, eval_args(e.args, scope));
}

Value Interpreter::eval_filter(const FilterTest& e, Scope& scope, const Value* block_text) {
  Value operand;
  if (!e.operand) {
    operand = *block_text;
  } else if (block_text != nullptr && e.operand->kind == ExprKind::kFilter) {
    operand = eval_filter(static_cast<const FilterTest&>(*e.operand), scope, block_text);
  } else {
    operand = eval(*e.operand, scope);
  }
  if (e.id < 0) raise(FailureKind::kRuntime, "No filter named " + py::repr(e.name) + " found.");
  return apply_filter(*this, e.id, std::move(operand), eval_args(e.args, scope));
}

bool Interpreter::eval_test(const FilterTest& e, Scope& scope) {
  const Value operand = eval(*e.operand, scope);
  if (e.id < 0) raise(FailureKind::kRuntime, "No test named " + py::repr(e.name) + " found.");
  return apply_test(*this, e.id, operand, eval_args(e.args, scope));
}

Value Interpreter::get_attribute(const Value& object, std::string_view name) {
  // Jinja2's SandboxedEnvironment.getattr: the Python attribute first (methods), then obj[name].
  if (object.is_undefined()) raise_undefined(object);
  bool unsafe = false;
  const int method = find_method(object, name, &unsafe);
  if (method >= 0) {
    if (unsafe) {
      return Value::undefined_hint("access to attribute " + py::repr(std::string(name)) + " of " +
                                       py::repr(type_name(object)) + " object is unsafe.",
                                   true);
    }
    auto bound = std::make_shared<CallableObject>();
    bound->type = CallableType::kMethod;
    bound->id = method;
    bound->name = std::string(name);
    bound->self = object;
    return Value::object(Kind::kCallable, std::move(bound));
  }
  switch (object.kind()) {
    case Kind::kDict:
      if (const Value* v = object.dict_object().find(name)) return *v;
      break;
    case Kind::kNamespace:
      if (const Value* v = object.namespace_object().attrs.find(name)) return *v;
      break;
    case Kind::kLoop:
      if (auto v = loop_attribute(object, name)) return *v;
      break;
    default: break;
  }
  return Value::undefined_attribute(object_type_repr(object), std::string(name));
}

Value Interpreter::get_item(const Value& object, const Value& key) {
  // Jinja2's SandboxedEnvironment.getitem: obj[key]; on TypeError / LookupError a str key is tried
  // as an attribute; anything else is Undefined.
  if (object.is_undefined()) raise_undefined(object);
  switch (object.kind()) {
    case Kind::kList:
      if (key.is_int_like() && is_sequence(object)) {
        const auto& items = object.items();
        if (auto i = py::wrap_index(key.as_int(), static_cast<int64_t>(items.size()))) return items[*i];
      } else if (key.is_int_like() && object.seq_type() == SeqType::kRange) {
        const auto& items = object.items();
        if (auto i = py::wrap_index(key.as_int(), static_cast<int64_t>(items.size()))) return items[*i];
      }
      break;
    case Kind::kString:
      if (key.is_int_like()) {
        const std::string& s = object.str();
        if (auto i = py::wrap_index(key.as_int(), py::length(s))) {
          const size_t b = py::byte_offset(s, *i);
          return Value::string(std::string(s.substr(b, py::byte_offset(std::string_view(s).substr(b), 1))));
        }
      }
      break;
    case Kind::kDict:
      if (hashable(key)) {
        if (const Value* v = object.dict_object().find(key)) return *v;
      }
      break;
    default: break;
  }
  if (key.is_string()) return get_attribute(object, key.str());
  return Value::undefined_element(object_type_repr(object), to_repr(key));
}

Value Interpreter::slice(const Value& object, const Slice& s, Scope& scope) {
  const std::optional<int64_t> start = s.start ? slice_bound(eval(*s.start, scope)) : std::nullopt;
  const std::optional<int64_t> stop = s.stop ? slice_bound(eval(*s.stop, scope)) : std::nullopt;
  // (Not `cond ? optional : nullopt` as above: for the step, GCC 12 then warns of a maybe-uninitialized
  // read, a false positive, when this file shares a unity batch.)
  std::optional<int64_t> step;
  if (s.step) step = slice_bound(eval(*s.step, scope));
  if (object.is_undefined()) raise_undefined(object);
  const bool sliceable =
      object.is_string() || is_sequence(object) || (object.is_list() && object.seq_type() == SeqType::kRange);
  if (!sliceable) {
    auto bound = [](const std::optional<int64_t>& v) { return v ? std::to_string(*v) : std::string("None"); };
    return Value::undefined_element(object_type_repr(object),
                                    "slice(" + bound(start) + ", " + bound(stop) + ", " + bound(step) + ")");
  }
  const int64_t st = step.value_or(1);
  if (st == 0) value_error("slice step cannot be zero");
  if (object.is_string()) {
    const std::vector<char32_t> cps = py::code_points(object.str());
    const py::SliceRange r = py::adjust_slice(static_cast<int64_t>(cps.size()), start, stop, st);
    std::vector<char32_t> picked;
    for (int64_t i = 0, at = r.start; i < r.count; ++i, at += st) picked.push_back(cps[static_cast<size_t>(at)]);
    return Value::string(py::from_code_points(picked, 0, picked.size()));
  }
  const auto& items = object.items();
  const py::SliceRange r = py::adjust_slice(static_cast<int64_t>(items.size()), start, stop, st);
  std::vector<Value> picked;
  picked.reserve(static_cast<size_t>(r.count));
  for (int64_t i = 0, at = r.start; i < r.count; ++i, at += st) picked.push_back(items[static_cast<size_t>(at)]);
  return Value::list(std::move(picked), object.seq_type() == SeqType::kTuple ? SeqType::kTuple : SeqType::kList);
}

}  // namespace ember::jinja
