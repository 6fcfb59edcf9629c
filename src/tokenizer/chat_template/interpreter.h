// jinja::Interpreter: renders a Program for one context. Scopes follow Jinja2's frames: each for-loop
// iteration, macro call, set / filter block and with block sees the enclosing variables and keeps
// its own assignments; namespaces are the shared mutable state. Limits bound output, steps and
// call depth so a hostile template fails instead of hanging or exhausting memory.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template/ast.h"
#include "tokenizer/chat_template/builtins.h"
#include "tokenizer/chat_template/program.h"

namespace ember::jinja {

// Every frame the interpreter opens (statement, expression, call) counts one level; deeper recursion
// fails instead of overflowing the native stack (CPython stops near 1000 frames too).
inline constexpr int kMaxRecursion = 1500;

struct RecursionGuard {
  explicit RecursionGuard(int& depth);
  ~RecursionGuard() { --depth_; }
  RecursionGuard(const RecursionGuard&) = delete;
  RecursionGuard& operator=(const RecursionGuard&) = delete;
  int& depth_;
};

struct RenderSettings {
  std::tm now{};                // strftime_now's clock (broken-down local time)
  size_t max_string_bytes = 0;  // the output and every string built on the way
  uint64_t max_steps = 0;       // statements + loop iterations + calls
  int max_call_depth = 0;       // nested macro calls
};

// Variables of one frame, by name id. A handful per frame: a flat vector beats a hash map.
struct Scope {
  explicit Scope(std::shared_ptr<Scope> p) : parent(std::move(p)) {}
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<uint32_t, Value>> vars;

  const Value* find(uint32_t id) const;
  void set(uint32_t id, Value value);
};

class Interpreter {
 public:
  Interpreter(const Program& program, const RenderSettings& settings);
  ~Interpreter();

  std::string render(const nlohmann::ordered_json& context);

  // For the built-ins.
  const RenderSettings& settings() const noexcept { return settings_; }
  Value call(const Value& callee, const CallArgs& args);
  // Fails with Failure(kLimit) when a string would exceed the limit.
  void check_string_size(size_t bytes) const;
  // Counts one step against max_steps.
  void step();
  // Counts the work of an operation over `v` (a step per 256 bytes of a str, per 16 items of a list
  // or dict) against max_steps, so that big values cannot make a bounded number of steps take
  // unbounded time.
  void charge(const Value& v);
  // Python getattr / getitem as Jinja2's sandboxed environment does them.
  Value get_attribute(const Value& object, std::string_view name);
  Value get_item(const Value& object, const Value& key);
  // Keeps a namespace alive until the render ends (its attributes are cleared then: a namespace
  // can hold itself, and shared_ptr cycles would leak).
  void track_namespace(const std::shared_ptr<NamespaceObject>& ns);

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec_body(const ast::Body& body, const std::shared_ptr<Scope>& scope);
  Flow exec(const ast::Stmt& stmt, const std::shared_ptr<Scope>& scope);
  Flow exec_for(const ast::For& node, const std::shared_ptr<Scope>& scope);
  void exec_macro_def(const ast::Macro& node, const std::shared_ptr<Scope>& scope);
  std::string capture(const ast::Body& body, const std::shared_ptr<Scope>& scope);
  void assign(const ast::Expr& target, Value value, Scope& scope);
  Value call_macro(const CallableObject& macro, const CallArgs& args);
  void emit(std::string_view text);

  Value eval(const ast::Expr& e, Scope& scope);
  Value eval_name(const ast::Name& e, Scope& scope);
  Value eval_binary(const ast::Binary& e, Scope& scope);
  Value eval_compare(const ast::Compare& e, Scope& scope);
  Value eval_call(const ast::Call& e, Scope& scope);
  // A filter (chain). block_text: the body of a filter / set block, which the innermost filter of
  // the chain (the one without operand) filters.
  Value eval_filter(const ast::FilterTest& e, Scope& scope, const Value* block_text);
  bool eval_test(const ast::FilterTest& e, Scope& scope);
  CallArgs eval_args(const ast::Args& args, Scope& scope);
  Value slice(const Value& object, const ast::Slice& s, Scope& scope);

  const Program& program_;
  const RenderSettings& settings_;
  std::string* out_ = nullptr;
  uint64_t steps_ = 0;
  int recursion_ = 0;    // statements, expressions and calls being evaluated (see kMaxRecursion)
  int macro_depth_ = 0;  // macro calls being evaluated
  std::vector<std::shared_ptr<NamespaceObject>> namespaces_;
  std::vector<std::shared_ptr<Scope>> captured_scopes_;  // scopes macros closed over
};

}  // namespace ember::jinja
