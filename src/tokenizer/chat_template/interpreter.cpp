// Statement execution: output, for loops (loop.*, filters, else, break / continue), if, set and set
// blocks, macros and their calls, filter / with / generation blocks, and the limits.
#include "tokenizer/chat_template/interpreter.h"

#include <algorithm>

#include "tokenizer/chat_template/failure.h"
#include "tokenizer/chat_template/json_value.h"
#include "tokenizer/chat_template/py_text.h"

namespace ember::jinja {
namespace {

using namespace ast;

}  // namespace

RecursionGuard::RecursionGuard(int& depth) : depth_(depth) {
  if (++depth_ > kMaxRecursion) {
    --depth_;
    raise(FailureKind::kLimit, "maximum recursion depth exceeded");
  }
}

const Value* Scope::find(uint32_t id) const {
  for (const auto& [k, v] : vars)
    if (k == id) return &v;
  return nullptr;
}

void Scope::set(uint32_t id, Value value) {
  for (auto& [k, v] : vars) {
    if (k == id) {
      v = std::move(value);
      return;
    }
  }
  vars.emplace_back(id, std::move(value));
}

Interpreter::Interpreter(const Program& program, const RenderSettings& settings)
    : program_(program), settings_(settings) {}

Interpreter::~Interpreter() {
  // Break the reference cycles a render can make (a namespace holding itself, a macro stored in the
  // scope it closes over) so that everything is freed.
  for (const auto& ns : namespaces_) ns->attrs.entries.clear();
  for (const auto& scope : captured_scopes_) scope->vars.clear();
}

void Interpreter::check_string_size(size_t bytes) const {
  if (bytes > settings_.max_string_bytes) {
    raise(FailureKind::kLimit, "a string or the output exceeds the render limit of " +
                                   std::to_string(settings_.max_string_bytes) + " bytes");
  }
}

void Interpreter::step() {
  if (++steps_ > settings_.max_steps) {
    raise(FailureKind::kLimit, "the template ran more than " + std::to_string(settings_.max_steps) +
                                   " steps (statements, loop iterations and calls)");
  }
}

void Interpreter::charge(const Value& v) {
  size_t units = 0;
  if (v.is_string()) {
    units = v.str().size() / 256;
  } else if (v.is_list()) {
    units = v.items().size() / 16;
  } else if (v.is_dict()) {
    units = v.dict_object().entries.size() / 16;
  }
  if (units == 0) return;
  steps_ += units;
  step();
}

void Interpreter::track_namespace(const std::shared_ptr<NamespaceObject>& ns) { namespaces_.push_back(ns); }

void Interpreter::emit(std::string_view text) {
  check_string_size(out_->size() + text.size());
  out_->append(text);
}

std::string Interpreter::render(const nlohmann::ordered_json& context) {
  if (!context.is_object()) value_error("the render context must be a JSON object");
  auto root = std::make_shared<Scope>(nullptr);
  root->vars.reserve(context.size());
  for (const auto& [key, value] : context.items()) {
    // A variable the template never names cannot be reached from it: skip converting it.
    const auto it = program_.name_ids.find(key);
    if (it != program_.name_ids.end()) root->set(it->second, from_json(value));
  }
  std::string out;
  out_ = &out;
  exec_body(program_.body, root);
  return out;
}

Interpreter::Flow Interpreter::exec_body(const Body& body, const std::shared_ptr<Scope>& scope) {
  for (const StmtPtr& stmt : body) {
    const Flow flow = exec(*stmt, scope);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

std::string Interpreter::capture(const Body& body, const std::shared_ptr<Scope>& scope) {
  std::string buffer;
  std::string* saved = out_;
  out_ = &buffer;
  try {
    exec_body(body, scope);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buffer;
}

Interpreter::Flow Interpreter::exec(const Stmt& stmt, const std::shared_ptr<Scope>& scope) {
  const RecursionGuard depth(recursion_);
  try {
    step();
    switch (stmt.kind) {
      case StmtKind::kText: emit(static_cast<const Text&>(stmt).text); break;
      case StmtKind::kPrint: {
        const Value v = eval(*static_cast<const Print&>(stmt).expr, *scope);
        charge(v);
        if (v.is_string()) {
          emit(v.str());
        } else {
          std::string text;
          append_str(text, v);
          emit(text);
        }
        break;
      }
      case StmtKind::kFor: return exec_for(static_cast<const For&>(stmt), scope);
      case StmtKind::kIf: {
        const auto& node = static_cast<const If&>(stmt);
        for (const auto& [test, body] : node.branches) {
          if (truthy(eval(*test, *scope))) return exec_body(body, scope);
        }
        return exec_body(node.else_body, scope);
      }
      case StmtKind::kSet: {
        const auto& node = static_cast<const Set&>(stmt);
        assign(*node.target, eval(*node.value, *scope), *scope);
        break;
      }
      case StmtKind::kSetBlock: {
        const auto& node = static_cast<const SetBlock&>(stmt);
        auto inner = std::make_shared<Scope>(scope);
        Value text = Value::string(capture(node.body, inner));
        if (node.filter) text = eval_filter(static_cast<const FilterTest&>(*node.filter), *inner, &text);
        assign(*node.target, std::move(text), *scope);
        break;
      }
      case StmtKind::kMacro: exec_macro_def(static_cast<const Macro&>(stmt), scope); break;
      case StmtKind::kCallBlock: {
        auto inner = std::make_shared<Scope>(scope);
        emit(capture(static_cast<const CallBlock&>(stmt).body, inner));
        break;
      }
      case StmtKind::kFilterBlock: {
        const auto& node = static_cast<const FilterBlock&>(stmt);
        auto inner = std::make_shared<Scope>(scope);
        Value text = Value::string(capture(node.body, inner));
        const Value result = eval_filter(static_cast<const FilterTest&>(*node.filter), *inner, &text);
        emit(to_str(result));
        break;
      }
      case StmtKind::kWith: {
        const auto& node = static_cast<const With&>(stmt);
        auto inner = std::make_shared<Scope>(scope);
        for (const auto& [target, value] : node.assignments) assign(*target, eval(*value, *scope), *inner);
        return exec_body(node.body, inner);
      }
      case StmtKind::kBreak: return Flow::kBreak;
      case StmtKind::kContinue: return Flow::kContinue;
    }
  } catch (Failure& f) {
    f.set_pos_if_unknown(stmt.pos);
    throw;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec_for(const For& node, const std::shared_ptr<Scope>& scope) {
  const Value iterable = eval(*node.iter, *scope);
  charge(iterable);
  std::vector<Value> items = iterate(iterable);
  if (node.filter) {
    std::vector<Value> kept;
    for (Value& item : items) {
      step();
      Scope test_scope(scope);
      assign(*node.target, item, test_scope);
      if (truthy(eval(*node.filter, test_scope))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    if (node.else_body.empty()) return Flow::kNormal;
    return exec_body(node.else_body, std::make_shared<Scope>(scope));
  }
  auto list = std::make_shared<ListObject>();
  list->items = std::move(items);
  Value loop;
  if (node.uses_loop) {
    auto loop_object = std::make_shared<LoopObject>();
    loop_object->items = list;
    loop = Value::object(Kind::kLoop, std::move(loop_object));
  }
  std::shared_ptr<Scope> iteration;
  for (size_t i = 0; i < list->items.size(); ++i) {
    step();
    // A fresh frame per iteration (Jinja2 forgets an iteration's assignments); reused when no macro
    // kept the previous one.
    if (!iteration || iteration.use_count() > 1) {
      iteration = std::make_shared<Scope>(scope);
    } else {
      iteration->vars.clear();
    }
    if (node.uses_loop) {
      loop.loop_object().index0 = static_cast<int64_t>(i);
      iteration->set(program_.loop_id, loop);
    }
    assign(*node.target, list->items[i], *iteration);
    if (exec_body(node.body, iteration) == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Interpreter::exec_macro_def(const Macro& node, const std::shared_ptr<Scope>& scope) {
  auto macro = std::make_shared<CallableObject>();
  macro->type = CallableType::kMacro;
  macro->name = node.name;
  macro->macro = &node;
  macro->closure = scope;
  if (captured_scopes_.empty() || captured_scopes_.back() != scope) captured_scopes_.push_back(scope);
  scope->set(node.name_id, Value::object(Kind::kCallable, std::move(macro)));
}

Value Interpreter::call_macro(const CallableObject& callable, const CallArgs& args) {
  // jinja2.runtime.Macro.__call__: positional arguments, then keywords by name, then defaults;
  // `varargs` / `kwargs` collect the rest when the body uses them.
  const auto& node = *static_cast<const Macro*>(callable.macro);
  const std::string& name = node.name;
  const size_t n_params = node.params.size();
  if (args.positional.size() > n_params && !node.catch_varargs) {
    type_error("macro " + py::repr(name) + " takes not more than " + std::to_string(n_params) + " argument(s)");
  }
  auto scope = std::make_shared<Scope>(std::static_pointer_cast<Scope>(callable.closure));
  std::vector<bool> used(args.keyword.size(), false);
  for (size_t i = 0; i < n_params; ++i) {
    if (i < args.positional.size()) {
      scope->set(node.param_ids[i], args.positional[i]);
      continue;
    }
    bool found = false;
    for (size_t k = 0; k < args.keyword.size(); ++k) {
      if (!used[k] && args.keyword[k].first == node.params[i]) {
        scope->set(node.param_ids[i], args.keyword[k].second);
        used[k] = found = true;
        break;
      }
    }
    if (found) continue;
    const size_t first_default = n_params - node.defaults.size();
    if (i >= first_default) {
      scope->set(node.param_ids[i], eval(*node.defaults[i - first_default], *scope));
    } else {
      scope->set(node.param_ids[i],
                 Value::undefined_hint("parameter " + py::repr(node.params[i]) + " was not provided"));
    }
  }
  auto kwargs = std::make_shared<DictObject>();
  for (size_t k = 0; k < args.keyword.size(); ++k) {
    if (used[k]) continue;
    if (node.uses_caller && args.keyword[k].first == "caller") {
      scope->set(node.caller_id, args.keyword[k].second);
      continue;
    }
    if (!node.catch_kwargs) {
      type_error("macro " + py::repr(name) + " takes no keyword argument " + py::repr(args.keyword[k].first));
    }
    kwargs->set(Value::string(args.keyword[k].first), args.keyword[k].second);
  }
  if (node.uses_caller && !scope->find(node.caller_id)) {
    scope->set(node.caller_id, Value::undefined_hint("No caller defined"));
  }
  if (node.catch_kwargs) scope->set(node.kwargs_id, Value::dict(std::move(kwargs)));
  if (node.catch_varargs) {
    std::vector<Value> rest;
    for (size_t i = n_params; i < args.positional.size(); ++i) rest.push_back(args.positional[i]);
    scope->set(node.varargs_id, Value::list(std::move(rest), SeqType::kTuple));
  }
  return Value::string(capture(node.body, scope));
}

Value Interpreter::call(const Value& callee, const CallArgs& args) {
  switch (callee.kind()) {
    case Kind::kUndefined:
      raise(callee.undefined_form() == UndefinedForm::kHint && callee.undefined_is_security() ? FailureKind::kSecurity
                                                                                              : FailureKind::kUndefined,
            callee.undefined_message());
    case Kind::kCallable: {
      const CallableObject& c = callee.callable_object();
      step();
      if (recursion_ > kMaxRecursion || (c.type == CallableType::kMacro && macro_depth_ >= settings_.max_call_depth)) {
        raise(FailureKind::kLimit, "maximum recursion depth exceeded (macros nest more than " +
                                       std::to_string(settings_.max_call_depth) + " calls deep)");
      }
      switch (c.type) {
        case CallableType::kMacro: {
          ++macro_depth_;
          struct Leave {
            int& d;
            ~Leave() { --d; }
          } leave{macro_depth_};
          return call_macro(c, args);
        }
        case CallableType::kGlobal: return call_global(*this, c.id, args);
        case CallableType::kMethod: return call_method(*this, c.self, c.id, args);
      }
      break;
    }
    default: break;
  }
  type_error("'" + type_name(callee) + "' object is not callable");
}

void Interpreter::assign(const Expr& target, Value value, Scope& scope) {
  switch (target.kind) {
    case ExprKind::kName: scope.set(static_cast<const Name&>(target).id, std::move(value)); return;
    case ExprKind::kNsRef: {
      const auto& ref = static_cast<const NsRef&>(target);
      const Value* ns = nullptr;
      for (const Scope* s = &scope; s != nullptr && ns == nullptr; s = s->parent.get()) ns = s->find(ref.id);
      if (ns == nullptr || ns->kind() != Kind::kNamespace) {
        raise(FailureKind::kRuntime, "cannot assign attribute on non-namespace object");
      }
      NamespaceObject& object = ns->namespace_object();
      object.attrs.set(Value::string(ref.attr), std::move(value));
      return;
    }
    case ExprKind::kTuple: {
      const auto& targets = static_cast<const Sequence&>(target).items;
      if (!(value.is_list() || value.is_string() || value.is_dict() || value.is_undefined())) {
        type_error("cannot unpack non-iterable " + type_name(value) + " object");
      }
      std::vector<Value> items = iterate(value);
      if (items.size() < targets.size()) {
        value_error("not enough values to unpack (expected " + std::to_string(targets.size()) + ", got " +
                    std::to_string(items.size()) + ")");
      }
      if (items.size() > targets.size()) {
        value_error("too many values to unpack (expected " + std::to_string(targets.size()) + ")");
      }
      for (size_t i = 0; i < targets.size(); ++i) assign(*targets[i], std::move(items[i]), scope);
      return;
    }
    default: raise(FailureKind::kSyntax, "cannot assign to this expression");
  }
}

}  // namespace ember::jinja
