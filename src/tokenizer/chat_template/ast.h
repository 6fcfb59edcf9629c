// The syntax tree of a chat template: Jinja2's node types (jinja2/nodes.py) that Hugging Face
// templates use. Nodes are immutable after parsing; each keeps its byte offset for error messages.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/chat_template/value.h"

namespace ember::jinja::ast {

enum class ExprKind : uint8_t {
  kConst,
  kName,
  kList,
  kTuple,
  kDict,
  kGetattr,
  kGetitem,
  kSlice,
  kNeg,
  kPos,
  kNot,
  kBinary,
  kAnd,
  kOr,
  kConcat,
  kCompare,
  kCondExpr,
  kCall,
  kFilter,
  kTest,
  kNsRef,  // `ns.attr` as an assignment target
};

struct Expr {
  Expr(ExprKind k, uint32_t p) : kind(k), pos(p) {}
  virtual ~Expr() = default;
  ExprKind kind;
  uint32_t pos;
  uint32_t depth = 1;  // height of the subtree (bounded by the parser: evaluation recurses on it)
};
using ExprPtr = std::unique_ptr<Expr>;

struct Const final : Expr {
  Const(uint32_t p, Value v) : Expr(ExprKind::kConst, p), value(std::move(v)) {}
  Value value;
};

struct Name final : Expr {
  Name(uint32_t p, uint32_t i) : Expr(ExprKind::kName, p), id(i) {}
  uint32_t id;  // index into Program::names
};

struct NsRef final : Expr {
  NsRef(uint32_t p, uint32_t i, std::string a) : Expr(ExprKind::kNsRef, p), id(i), attr(std::move(a)) {}
  uint32_t id;
  std::string attr;
};

// kList and kTuple.
struct Sequence final : Expr {
  using Expr::Expr;
  std::vector<ExprPtr> items;
};

struct DictLiteral final : Expr {
  explicit DictLiteral(uint32_t p) : Expr(ExprKind::kDict, p) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
};

struct Getattr final : Expr {
  Getattr(uint32_t p, ExprPtr o, std::string a)
      : Expr(ExprKind::kGetattr, p), object(std::move(o)), attr(std::move(a)) {}
  ExprPtr object;
  std::string attr;
};

struct Getitem final : Expr {
  Getitem(uint32_t p, ExprPtr o, ExprPtr a) : Expr(ExprKind::kGetitem, p), object(std::move(o)), arg(std::move(a)) {}
  ExprPtr object;
  ExprPtr arg;  // may be a Slice
};

struct Slice final : Expr {
  explicit Slice(uint32_t p) : Expr(ExprKind::kSlice, p) {}
  ExprPtr start, stop, step;  // null: None
};

// kNeg, kPos, kNot.
struct Unary final : Expr {
  Unary(ExprKind k, uint32_t p, ExprPtr o) : Expr(k, p), operand(std::move(o)) {}
  ExprPtr operand;
};

enum class BinaryOp : uint8_t { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };

// kBinary (with op), kAnd, kOr.
struct Binary final : Expr {
  Binary(ExprKind k, uint32_t p, BinaryOp o, ExprPtr l, ExprPtr r)
      : Expr(k, p), op(o), left(std::move(l)), right(std::move(r)) {}
  BinaryOp op;
  ExprPtr left, right;
};

struct Concat final : Expr {
  explicit Concat(uint32_t p) : Expr(ExprKind::kConcat, p) {}
  std::vector<ExprPtr> items;
};

enum class CompareOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Compare final : Expr {
  Compare(uint32_t p, ExprPtr f) : Expr(ExprKind::kCompare, p), first(std::move(f)) {}
  ExprPtr first;
  std::vector<std::pair<CompareOp, ExprPtr>> rest;  // Python chains: a < b < c
};

struct CondExpr final : Expr {
  explicit CondExpr(uint32_t p) : Expr(ExprKind::kCondExpr, p) {}
  ExprPtr test, then, otherwise;  // otherwise null: an Undefined naming the line
  uint32_t line = 0;
};

struct Args {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
  ExprPtr star, star_star;  // *args, **kwargs (null when absent)
};

struct Call final : Expr {
  Call(uint32_t p, ExprPtr c) : Expr(ExprKind::kCall, p), callee(std::move(c)) {}
  ExprPtr callee;
  Args args;
};

// kFilter and kTest. A filter block's innermost filter has no operand: it filters the body.
struct FilterTest final : Expr {
  FilterTest(ExprKind k, uint32_t p, ExprPtr o, std::string n)
      : Expr(k, p), operand(std::move(o)), name(std::move(n)) {}
  ExprPtr operand;
  std::string name;
  int id = -1;        // the filter / test (interpreter.h); -1: unknown
  bool soft = false;  // inside if / conditional expression: an unknown name fails only when reached
  Args args;
};

// Calls f(Expr&) on each direct child of e.
template <typename F>
void for_each_child(Expr& e, F&& f);

enum class StmtKind : uint8_t {
  kText,
  kPrint,
  kFor,
  kIf,
  kMacro,
  kCallBlock,
  kFilterBlock,
  kSet,
  kSetBlock,
  kWith,
  kBreak,
  kContinue,
};

struct Stmt {
  Stmt(StmtKind k, uint32_t p) : kind(k), pos(p) {}
  virtual ~Stmt() = default;
  StmtKind kind;
  uint32_t pos;
};
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Text final : Stmt {
  Text(uint32_t p, std::string t) : Stmt(StmtKind::kText, p), text(std::move(t)) {}
  std::string text;
};

struct Print final : Stmt {
  Print(uint32_t p, ExprPtr e) : Stmt(StmtKind::kPrint, p), expr(std::move(e)) {}
  ExprPtr expr;
};

struct For final : Stmt {
  explicit For(uint32_t p) : Stmt(StmtKind::kFor, p) {}
  ExprPtr target, iter, filter;  // filter: `for x in xs if cond` (null when absent)
  Body body, else_body;
  bool uses_loop = true;
};

struct If final : Stmt {
  explicit If(uint32_t p) : Stmt(StmtKind::kIf, p) {}
  std::vector<std::pair<ExprPtr, Body>> branches;  // if, elif...
  Body else_body;
};

struct Macro final : Stmt {
  explicit Macro(uint32_t p) : Stmt(StmtKind::kMacro, p) {}
  std::string name;
  uint32_t name_id = 0;
  std::vector<std::string> params;
  std::vector<uint32_t> param_ids;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() params
  Body body;
  bool catch_varargs = false, catch_kwargs = false, uses_caller = false;
  uint32_t varargs_id = 0, kwargs_id = 0, caller_id = 0;
};

// `{% generation %}` (and call blocks): the body rendered as a macro with no arguments would be.
struct CallBlock final : Stmt {
  explicit CallBlock(uint32_t p) : Stmt(StmtKind::kCallBlock, p) {}
  Body body;
};

struct FilterBlock final : Stmt {
  explicit FilterBlock(uint32_t p) : Stmt(StmtKind::kFilterBlock, p) {}
  ExprPtr filter;  // a FilterTest chain whose innermost operand is null
  Body body;
};

struct Set final : Stmt {
  Set(uint32_t p, ExprPtr t, ExprPtr v) : Stmt(StmtKind::kSet, p), target(std::move(t)), value(std::move(v)) {}
  ExprPtr target, value;
};

struct SetBlock final : Stmt {
  explicit SetBlock(uint32_t p) : Stmt(StmtKind::kSetBlock, p) {}
  ExprPtr target, filter;  // filter may be null
  Body body;
};

struct With final : Stmt {
  explicit With(uint32_t p) : Stmt(StmtKind::kWith, p) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> assignments;
  Body body;
};

struct LoopControl final : Stmt {
  using Stmt::Stmt;
};

template <typename F>
void for_each_args(Args& args, F& f) {
  for (auto& a : args.positional) f(*a);
  for (auto& kv : args.keyword) f(*kv.second);
  if (args.star) f(*args.star);
  if (args.star_star) f(*args.star_star);
}

template <typename F>
void for_each_child(Expr& e, F&& f) {
  switch (e.kind) {
    case ExprKind::kList:
    case ExprKind::kTuple:
      for (auto& item : static_cast<Sequence&>(e).items) f(*item);
      break;
    case ExprKind::kDict:
      for (auto& kv : static_cast<DictLiteral&>(e).items) {
        f(*kv.first);
        f(*kv.second);
      }
      break;
    case ExprKind::kGetattr: f(*static_cast<Getattr&>(e).object); break;
    case ExprKind::kGetitem:
      f(*static_cast<Getitem&>(e).object);
      f(*static_cast<Getitem&>(e).arg);
      break;
    case ExprKind::kSlice: {
      auto& s = static_cast<Slice&>(e);
      for (ExprPtr* p : {&s.start, &s.stop, &s.step})
        if (*p) f(**p);
      break;
    }
    case ExprKind::kNeg:
    case ExprKind::kPos:
    case ExprKind::kNot: f(*static_cast<Unary&>(e).operand); break;
    case ExprKind::kBinary:
    case ExprKind::kAnd:
    case ExprKind::kOr:
      f(*static_cast<Binary&>(e).left);
      f(*static_cast<Binary&>(e).right);
      break;
    case ExprKind::kConcat:
      for (auto& item : static_cast<Concat&>(e).items) f(*item);
      break;
    case ExprKind::kCompare:
      f(*static_cast<Compare&>(e).first);
      for (auto& r : static_cast<Compare&>(e).rest) f(*r.second);
      break;
    case ExprKind::kCondExpr: {
      auto& c = static_cast<CondExpr&>(e);
      for (ExprPtr* p : {&c.test, &c.then, &c.otherwise})
        if (*p) f(**p);
      break;
    }
    case ExprKind::kCall:
      f(*static_cast<Call&>(e).callee);
      for_each_args(static_cast<Call&>(e).args, f);
      break;
    case ExprKind::kFilter:
    case ExprKind::kTest: {
      auto& t = static_cast<FilterTest&>(e);
      if (t.operand) f(*t.operand);
      for_each_args(t.args, f);
      break;
    }
    default: break;
  }
}

}  // namespace ember::jinja::ast
