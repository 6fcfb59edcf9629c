// jinja::Value: the dynamic values of the chat-template interpreter, modelled on the Python objects
// Jinja2 hands around (None, bool, int, float, str, list / tuple / generator, dict, Namespace,
// macros, LoopContext, Undefined), with Python's str(), repr(), ==, ordering and truthiness.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ember::jinja {

enum class Kind : uint8_t {
  kUndefined,
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,
  kDict,
  kNamespace,
  kCallable,
  kLoop
};

// Which Python type a list-like value is: they iterate alike but print, compare and fail differently.
enum class SeqType : uint8_t { kList, kTuple, kGenerator, kRange, kDictKeys, kDictValues, kDictItems };

// How an Undefined describes itself in its error message (jinja2.Undefined._undefined_message).
enum class UndefinedForm : uint8_t { kName, kAttribute, kElement, kHint };

// Lists and dicts nest at most this deep (deeper values would make repr, tojson and destruction
// recurse without bound); making a deeper one is an error.
inline constexpr uint32_t kMaxValueDepth = 400;

struct Object {
  virtual ~Object() = default;
};
struct ListObject;
struct DictObject;
struct NamespaceObject;
struct CallableObject;
struct LoopObject;

class Value {
 public:
  Value() noexcept : i_(0) {}  // an Undefined without a name (an argument not given)

  static Value none() noexcept { return Value(Kind::kNone); }
  static Value boolean(bool b) noexcept {
    Value v(Kind::kBool);
    v.b_ = b;
    return v;
  }
  static Value integer(int64_t i) noexcept {
    Value v(Kind::kInt);
    v.i_ = i;
    return v;
  }
  static Value floating(double d) noexcept {
    Value v(Kind::kFloat);
    v.d_ = d;
    return v;
  }
  // A str; `markup` marks markupsafe.Markup (|safe), which escapes what is added to it.
  static Value string(std::string s, bool markup = false) {
    Value v(Kind::kString);
    v.s_ = std::move(s);
    v.markup_ = markup;
    return v;
  }
  static Value list(std::vector<Value> items, SeqType type = SeqType::kList);
  static Value generator(std::vector<Value> items, const char* type_name = "generator");
  static Value range(int64_t start, int64_t stop, int64_t step);
  static Value dict(std::shared_ptr<DictObject> d);
  static Value object(Kind kind, std::shared_ptr<Object> o) {
    Value v(kind);
    v.o_ = std::move(o);
    return v;
  }
  // Undefined values (jinja2.Undefined): a missing name, a missing attribute / element of `owner`
  // (owner_repr: object_type_repr of the owner, e.g. "dict object"), or a custom hint.
  static Value undefined_name(std::string name);
  static Value undefined_attribute(const char* owner_repr, std::string attribute);
  static Value undefined_element(const char* owner_repr, std::string key_repr);
  static Value undefined_hint(std::string hint, bool security = false);

  Kind kind() const noexcept { return kind_; }
  bool is_undefined() const noexcept { return kind_ == Kind::kUndefined; }
  bool is_none() const noexcept { return kind_ == Kind::kNone; }
  bool is_string() const noexcept { return kind_ == Kind::kString; }
  bool is_int_like() const noexcept { return kind_ == Kind::kInt || kind_ == Kind::kBool; }  // Python's bool is an int
  bool is_number() const noexcept { return is_int_like() || kind_ == Kind::kFloat; }
  bool is_list() const noexcept { return kind_ == Kind::kList; }
  bool is_dict() const noexcept { return kind_ == Kind::kDict; }
  bool markup() const noexcept { return markup_; }

  bool as_bool() const noexcept { return b_; }
  int64_t as_int() const noexcept { return kind_ == Kind::kBool ? static_cast<int64_t>(b_) : i_; }
  double as_float() const noexcept { return kind_ == Kind::kFloat ? d_ : static_cast<double>(as_int()); }
  const std::string& str() const noexcept { return s_; }
  std::string&& take_str() noexcept { return std::move(s_); }

  ListObject& list_object() const noexcept;
  const std::vector<Value>& items() const noexcept;  // of a list-like value
  SeqType seq_type() const noexcept;
  DictObject& dict_object() const noexcept;
  NamespaceObject& namespace_object() const noexcept;
  CallableObject& callable_object() const noexcept;
  LoopObject& loop_object() const noexcept;
  const std::shared_ptr<Object>& object_ptr() const noexcept { return o_; }

  UndefinedForm undefined_form() const noexcept { return uform_; }
  bool undefined_is_security() const noexcept { return b_; }
  // The message jinja2 raises when this Undefined is used for anything but printing or testing.
  std::string undefined_message() const;

  // Nesting depth of lists / dicts (0 for scalars).
  uint32_t depth() const noexcept;

 private:
  explicit Value(Kind kind) noexcept : kind_(kind), i_(0) {}

  Kind kind_ = Kind::kUndefined;
  UndefinedForm uform_ = UndefinedForm::kHint;
  bool markup_ = false;
  union {
    bool b_;
    int64_t i_;
    double d_;
    const char* owner_;  // undefined attribute / element: the owner's type repr (a string literal)
  };
  std::string s_;              // str; undefined: name, attribute, element repr or hint
  std::shared_ptr<Object> o_;  // list, dict, namespace, callable, loop
};

struct ListObject final : Object {
  std::vector<Value> items;
  SeqType type = SeqType::kList;
  const char* type_name = "list";  // Python type name, e.g. "generator", "list_reverseiterator"
  int64_t range_start = 0, range_stop = 0, range_step = 1;  // repr of range()
  mutable bool consumed = false;                            // generators iterate once
  uint32_t depth = 1;
};

// A Python dict: insertion-ordered, keys compared with Python's == (1 == 1.0 == True).
struct DictObject final : Object {
  std::vector<std::pair<Value, Value>> entries;
  uint32_t depth = 1;

  const Value* find(std::string_view key) const noexcept;
  const Value* find(const Value& key) const;
  // Inserts or replaces (a replaced key keeps its position, as in Python).
  void set(Value key, Value value);
};

// jinja2.utils.Namespace: the one mutable object (`{% set ns.attr = value %}`).
struct NamespaceObject final : Object {
  DictObject attrs;
};

enum class CallableType : uint8_t { kMacro, kGlobal, kMethod };

struct CallableObject final : Object {
  CallableType type = CallableType::kGlobal;
  int id = 0;                     // global function or method id (interpreter.h)
  std::string name;               // for messages and repr
  Value self;                     // a method's object
  const void* macro = nullptr;    // the ast::Macro of a macro
  std::shared_ptr<void> closure;  // the scope a macro was defined in
  std::shared_ptr<void> caller;   // the `caller` a call block passes (unused by plain macros)
};

// jinja2.runtime.LoopContext: `loop` inside a for loop.
struct LoopObject final : Object {
  std::shared_ptr<const ListObject> items;
  int64_t index0 = 0;
  int64_t depth0 = 0;
  bool has_changed_value = false;
  Value changed_value;  // last argument of loop.changed()
};

// Python's bool(value).
bool truthy(const Value& v) noexcept;
// Python's type name: "NoneType", "int", "str", "list", "dict", "generator", "Namespace", ...
std::string type_name(const Value& v);
// jinja2.utils.object_type_repr: "None", "dict object", "jinja2.utils.Namespace object", ...
const char* object_type_repr(const Value& v) noexcept;

// Python's str() (what {{ value }} prints; Undefined prints nothing) and repr().
void append_str(std::string& out, const Value& v);
std::string to_str(const Value& v);
void append_repr(std::string& out, const Value& v);
std::string to_repr(const Value& v);

// Python's ==. Undefined equals only Undefined.
bool equals(const Value& a, const Value& b);
// Python's <: throws TypeError for types that do not order; Undefined raises its own error.
bool less_than(const Value& a, const Value& b, std::string_view op);

// A list-like value's elements for iteration (generators are consumed), str as its characters,
// dict as its keys, Undefined as nothing; other values raise "'int' object is not iterable".
std::vector<Value> iterate(const Value& v);
// Python's len(); raises "object of type 'int' has no len()".
int64_t length_of(const Value& v);

// Raises what using the Undefined `u` in an operation raises: UndefinedError with its message, or
// SecurityError when it stands for an attribute the sandbox refused.
[[noreturn]] void raise_undefined(const Value& u);

}  // namespace ember::jinja
