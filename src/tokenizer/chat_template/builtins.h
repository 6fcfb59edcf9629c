// The interpreter's built-in filters, tests, globals and the methods of str / dict / list, with
// Jinja2 3.1's and Python's behaviour (names, defaults, results, error messages).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/chat_template/value.h"

namespace ember::jinja {

class Interpreter;

// Evaluated call arguments.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// Binds `args` to a Python signature: `names` in order, the first `required` of them without a
// default. Returns one slot per name (nullopt when not given). Raises TypeError like Python for
// missing, surplus or unknown arguments; `function` names the callee in the message.
std::vector<std::optional<Value>> bind_args(const CallArgs& args, std::string_view function,
                                            std::initializer_list<std::string_view> names, size_t required);

// A built-in's name and id, as the filter and test tables list them; the id of `name` in `table`
// (-1: not there).
struct NamedId {
  std::string_view name;
  int id;
};
inline int find_named(std::span<const NamedId> table, std::string_view name) {
  for (const NamedId& entry : table)
    if (entry.name == name) return entry.id;
  return -1;
}

// Filter / test ids for the parser (-1: unknown name).
int find_filter(std::string_view name);
int find_test(std::string_view name);

Value apply_filter(Interpreter& in, int id, Value operand, const CallArgs& args);
bool apply_test(Interpreter& in, int id, const Value& operand, const CallArgs& args);

// Globals: range, dict, namespace, raise_exception, strftime_now. -1: not a global.
int find_global(std::string_view name);
Value global_value(int id);  // the callable for {{ name }} / name(...)
Value call_global(Interpreter& in, int id, const CallArgs& args);

// A method of `self` (str, list-like, dict) by name: its id, or -1. `unsafe` is set for the
// mutating methods Jinja2's ImmutableSandboxedEnvironment refuses (list.append, dict.pop, ...).
int find_method(const Value& self, std::string_view name, bool* unsafe);
Value call_method(Interpreter& in, const Value& self, int id, const CallArgs& args);

// printf-style `format % args` (str's % operator and the |format filter) for the conversions templates
// use: %s %r %d %i %f %x %% with flags, width and precision; a tuple supplies positional arguments, a
// dict %(name)s ones, anything else is the single argument.
Value percent_format(Interpreter& in, const Value& format, const Value& args);

// Attributes of `loop` (index, first, cycle, ...); nullopt when `name` is not one.
std::optional<Value> loop_attribute(const Value& loop, std::string_view name);

}  // namespace ember::jinja
