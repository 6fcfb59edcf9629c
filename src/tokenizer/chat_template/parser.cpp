// The chat-template parser: Jinja2's grammar (jinja2/parser.py) over the lexer's tokens, with the
// statements Hugging Face templates use (for, if, set, macro, filter, with, generation, break,
// continue). Unknown filters and tests fail here unless inside an if / conditional expression, where
// Jinja2 defers the error to the moment they are reached.
#include <algorithm>
#include <unordered_set>

#include "tokenizer/chat_template/builtins.h"
#include "tokenizer/chat_template/failure.h"
#include "tokenizer/chat_template/lexer.h"
#include "tokenizer/chat_template/program.h"
#include "tokenizer/chat_template/py_text.h"

namespace ember::jinja {
namespace {

using namespace ast;

// Deeper nesting of expressions or blocks is rejected: it bounds the parser's and the
// interpreter's recursion (Python itself stops near 1000 frames).
constexpr int kMaxNesting = 200;
// Expression trees are at most this tall (evaluating and destroying them recurses).
constexpr uint32_t kMaxExprDepth = 256;

template <typename T, typename... A>
std::unique_ptr<T> make(A&&... a) {
  return std::make_unique<T>(std::forward<A>(a)...);
}

class Parser {
 public:
  Parser(Program& program, std::vector<Token> tokens) : p_(program), tokens_(std::move(tokens)) {
    p_.loop_id = intern("loop");
  }

  Body parse_template() {
    Body body = subparse({});
    if (current().type != Tok::kEof) fail(current(), "unexpected " + py::repr(describe_token(current())));
    // Unknown filters and tests fail when compiling, unless an if statement or a conditional
    // expression holds them (soft), which is known only once their whole expression is parsed.
    for (const auto& [node, what] : unknown_) {
      if (!node->soft) fail_at(node->pos, std::string("No ") + what + " named " + py::repr(node->name) + ".");
    }
    return body;
  }

 private:
  // --- token stream ---
  const Token& current() const { return tokens_[index_]; }
  const Token& look() const { return tokens_[std::min(index_ + 1, tokens_.size() - 1)]; }
  const Token& next() {
    const Token& t = tokens_[index_];
    if (index_ + 1 < tokens_.size()) ++index_;
    return t;
  }
  bool is_op(Op op) const { return current().type == Tok::kOperator && current().op == op; }
  bool is_name(std::string_view name) const { return current().type == Tok::kName && current().text == name; }
  bool skip_op(Op op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }

  [[noreturn]] void fail(const Token& at, std::string message) {
    throw Failure(FailureKind::kSyntax, std::move(message), at.pos);
  }
  [[noreturn]] void fail_expected(std::string_view what) {
    if (current().type == Tok::kEof) fail(current(), "unexpected end of template, expected " + std::string(what) + ".");
    fail(current(), "expected token " + std::string(what) + ", got " + py::repr(describe_token(current())));
  }
  const Token& expect_op(Op op, std::string_view spelling) {
    if (!is_op(op)) {
      std::string what(1, '\'');  // built piecewise: GCC 12 warns (-Wrestrict) on "'" + s + "'"
      what += spelling;
      what += '\'';
      fail_expected(what);
    }
    return next();
  }
  const Token& expect_name() {
    if (current().type != Tok::kName) fail_expected("'name'");
    return next();
  }
  void expect_block_end() {
    if (current().type != Tok::kBlockEnd) fail_expected("'end of statement block'");
    next();
  }

  uint32_t intern(std::string_view name) {
    const auto it = p_.name_ids.find(std::string(name));
    if (it != p_.name_ids.end()) return it->second;
    const auto id = static_cast<uint32_t>(p_.names.size());
    p_.names.emplace_back(name);
    p_.name_ids.emplace(std::string(name), id);
    return id;
  }

  struct DepthGuard {
    DepthGuard(Parser& parser, const Token& at) : p(parser) {
      if (++p.depth_ > kMaxNesting)
        p.fail(at, "the template nests more than " + std::to_string(kMaxNesting) + " levels deep");
    }
    ~DepthGuard() { --p.depth_; }
    Parser& p;
  };

  // Saves and sets a parser flag for the duration of a scope.
  template <typename T>
  struct Scoped {
    Scoped(T& ref, T value) : r(ref), saved(ref) { r = value; }
    ~Scoped() { r = saved; }
    T& r;
    T saved;
  };

  // --- statements ---
  // Parses until one of `end_tags` opens a block (left as the current token) or the template ends.
  Body subparse(const std::vector<std::string_view>& end_tags) {
    Body body;
    while (current().type != Tok::kEof) {
      const Token& t = current();
      if (t.type == Tok::kData) {
        body.push_back(make<Text>(t.pos, t.text));
        next();
      } else if (t.type == Tok::kVariableBegin) {
        next();
        ExprPtr e = parse_tuple(false, true, {}, false);
        if (current().type != Tok::kVariableEnd) fail_expected("'end of print statement'");
        next();
        body.push_back(make<Print>(t.pos, std::move(e)));
      } else if (t.type == Tok::kBlockBegin) {
        next();
        for (std::string_view end : end_tags)
          if (is_name(end)) return body;
        body.push_back(parse_statement());
        expect_block_end();
      } else {
        fail(t, "unexpected " + py::repr(describe_token(t)));
      }
    }
    return body;
  }

  // After a statement's head: an optional ':' then '%}', the body up to an end tag, which is
  // consumed when drop_end (the caller checks which one it was otherwise).
  Body parse_statements(const std::vector<std::string_view>& end_tags, bool drop_end, const Token& opener) {
    skip_op(Op::kColon);
    expect_block_end();
    Body body = subparse(end_tags);
    if (current().type == Tok::kEof) {
      std::string names;
      for (std::string_view e : end_tags) names += (names.empty() ? "" : " or ") + py::repr(std::string(e));
      fail(current(), "Unexpected end of template. Jinja was looking for the following tags: " + names +
                          ". The innermost block that needs to be closed is " + py::repr(opener.text) + ".");
    }
    if (drop_end) next();
    return body;
  }

  StmtPtr parse_statement() {
    const Token& t = current();
    DepthGuard guard(*this, t);
    if (t.type != Tok::kName) fail(t, "tag name expected");
    const std::string& tag = t.text;
    if (tag == "for") return parse_for();
    if (tag == "if") return parse_if();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "filter") return parse_filter_block();
    if (tag == "with") return parse_with();
    if (tag == "generation") return parse_generation();
    if (tag == "print") {
      next();
      return make<Print>(t.pos, parse_tuple(false, true, {}, false));
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail(t, "'" + tag + "' outside loop");
      next();
      return make<LoopControl>(tag == "break" ? StmtKind::kBreak : StmtKind::kContinue, t.pos);
    }
    if (tag == "block" || tag == "extends" || tag == "include" || tag == "import" || tag == "from" || tag == "call" ||
        tag == "autoescape" || tag == "raw") {
      fail(t, "the '" + tag + "' tag is not supported in chat templates");
    }
    std::string message = "Encountered unknown tag " + py::repr(tag) + ".";
    if (!end_stack_.empty()) {
      message += " Jinja was looking for the following tags: " + end_stack_.back() + ".";
    }
    fail(t, message);
  }

  struct EndScope {
    EndScope(Parser& parser, std::string tags) : p(parser) { p.end_stack_.push_back(std::move(tags)); }
    ~EndScope() { p.end_stack_.pop_back(); }
    Parser& p;
  };

  StmtPtr parse_for() {
    const Token& opener = next();
    auto node = make<For>(opener.pos);
    node->target = parse_assign_target(true, false, "in");
    if (!skip_name("in")) fail_expected("'in'");
    node->iter = parse_tuple(false, false, "recursive", false);
    {
      Scoped<bool> soft(soft_, false);
      if (skip_name("if")) node->filter = parse_expression(true);
    }
    if (is_name("recursive")) fail(current(), "recursive for loops are not supported in chat templates");
    EndScope ends(*this, "'endfor' or 'else'");
    Scoped<bool> soft(soft_, false);
    usage_.emplace_back();
    {
      Scoped<int> loops(loop_depth_, loop_depth_ + 1);
      node->body = parse_statements({"endfor", "else"}, false, opener);
    }
    node->uses_loop = usage_.back().count(p_.loop_id) > 0;
    pop_usage();
    if (next().text == "else") node->else_body = parse_statements({"endfor"}, true, opener);
    return node;
  }

  StmtPtr parse_if() {
    const Token& opener = next();
    auto node = make<If>(opener.pos);
    Scoped<bool> soft(soft_, true);
    EndScope ends(*this, "'elif' or 'else' or 'endif'");
    while (true) {
      ExprPtr test = parse_tuple(false, false, {}, false);
      Body body = parse_statements({"elif", "else", "endif"}, false, opener);
      node->branches.emplace_back(std::move(test), std::move(body));
      const Token& end = next();
      if (end.text == "elif") continue;
      if (end.text == "else") node->else_body = parse_statements({"endif"}, true, opener);
      break;
    }
    return node;
  }

  StmtPtr parse_set() {
    const Token& opener = next();
    ExprPtr target = parse_assign_target(true, true, {});
    if (skip_op(Op::kAssign)) return make<Set>(opener.pos, std::move(target), parse_tuple(false, true, {}, false));
    auto node = make<SetBlock>(opener.pos);
    node->target = std::move(target);
    Scoped<bool> soft(soft_, false);
    if (is_op(Op::kPipe)) node->filter = parse_filter(nullptr, false);
    EndScope ends(*this, "'endset'");
    node->body = parse_statements({"endset"}, true, opener);
    return node;
  }

  StmtPtr parse_macro() {
    const Token& opener = next();
    auto node = make<Macro>(opener.pos);
    const Token& name = expect_name();
    node->name = name.text;
    node->name_id = intern(name.text);
    Scoped<bool> soft(soft_, false);
    Scoped<int> loops(loop_depth_, 0);
    usage_.emplace_back();
    expect_op(Op::kLParen, "(");
    while (!is_op(Op::kRParen)) {
      if (!node->params.empty()) expect_op(Op::kComma, ",");
      const Token& param = expect_name();
      node->params.push_back(param.text);
      node->param_ids.push_back(intern(param.text));
      if (skip_op(Op::kAssign)) {
        node->defaults.push_back(parse_expression(true));
      } else if (!node->defaults.empty()) {
        fail(param, "non-default argument follows default argument");
      }
    }
    next();
    EndScope ends(*this, "'endmacro'");
    node->body = parse_statements({"endmacro"}, true, opener);
    node->varargs_id = intern("varargs");
    node->kwargs_id = intern("kwargs");
    node->caller_id = intern("caller");
    const auto& used = usage_.back();
    auto is_param = [&](uint32_t id) { return std::count(node->param_ids.begin(), node->param_ids.end(), id) > 0; };
    node->catch_varargs = used.count(node->varargs_id) > 0 && !is_param(node->varargs_id);
    node->catch_kwargs = used.count(node->kwargs_id) > 0 && !is_param(node->kwargs_id);
    node->uses_caller = used.count(node->caller_id) > 0 && !is_param(node->caller_id);
    pop_usage();  // an enclosing for loop binds `loop` if a macro inside it reads it
    return node;
  }

  StmtPtr parse_filter_block() {
    const Token& opener = next();
    auto node = make<FilterBlock>(opener.pos);
    Scoped<bool> soft(soft_, false);
    node->filter = parse_filter(nullptr, true);
    EndScope ends(*this, "'endfilter'");
    node->body = parse_statements({"endfilter"}, true, opener);
    return node;
  }

  StmtPtr parse_with() {
    const Token& opener = next();
    auto node = make<With>(opener.pos);
    while (current().type != Tok::kBlockEnd) {
      if (!node->assignments.empty()) expect_op(Op::kComma, ",");
      ExprPtr target = parse_assign_target(true, false, {});
      expect_op(Op::kAssign, "=");
      node->assignments.emplace_back(std::move(target), parse_expression(true));
    }
    Scoped<bool> soft(soft_, false);
    EndScope ends(*this, "'endwith'");
    node->body = parse_statements({"endwith"}, true, opener);
    return node;
  }

  StmtPtr parse_generation() {
    const Token& opener = next();
    auto node = make<CallBlock>(opener.pos);
    Scoped<bool> soft(soft_, false);
    Scoped<int> loops(loop_depth_, 0);
    EndScope ends(*this, "'endgeneration'");
    node->body = parse_statements({"endgeneration"}, true, opener);
    return node;
  }

  void pop_usage() {
    std::unordered_set<uint32_t> used = std::move(usage_.back());
    usage_.pop_back();
    if (!usage_.empty()) usage_.back().insert(used.begin(), used.end());
  }

  // --- assignment targets ---
  ExprPtr parse_assign_target(bool with_tuple, bool with_namespace, std::string_view end_name) {
    if (with_namespace && current().type == Tok::kName && look().type == Tok::kOperator && look().op == Op::kDot) {
      const Token& ns = next();
      next();
      const Token& attr = expect_name();
      return make<NsRef>(ns.pos, intern(ns.text), attr.text);
    }
    ExprPtr target = with_tuple ? parse_tuple(true, true, end_name, false) : parse_primary();
    check_assignable(*target);
    return target;
  }

  void check_assignable(const Expr& e) {
    if (e.kind == ExprKind::kName) {
      const auto& name = p_.names[static_cast<const Name&>(e).id];
      if (name == "true" || name == "false" || name == "none" || name == "True" || name == "False" || name == "None") {
        fail_at(e.pos, "Can't assign to special constant");
      }
      return;
    }
    if (e.kind == ExprKind::kTuple) {
      for (const auto& item : static_cast<const Sequence&>(e).items) check_assignable(*item);
      return;
    }
    fail_at(e.pos, "can't assign to this expression");
  }

  [[noreturn]] void fail_at(uint32_t pos, std::string message) {
    throw Failure(FailureKind::kSyntax, std::move(message), pos);
  }

  // --- expressions ---
  bool is_tuple_end(std::string_view end_name) const {
    const Token& t = current();
    if (t.type == Tok::kVariableEnd || t.type == Tok::kBlockEnd || (t.type == Tok::kOperator && t.op == Op::kRParen)) {
      return true;
    }
    return !end_name.empty() && t.type == Tok::kName && t.text == end_name;
  }

  // Comma-separated expressions; a tuple if there is a comma. simplified: primaries only (targets).
  ExprPtr parse_tuple(bool simplified, bool with_condexpr, std::string_view end_name, bool explicit_parens) {
    const uint32_t pos = current().pos;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(Op::kComma, ",");
      if (is_tuple_end(end_name)) break;
      items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (is_op(Op::kComma)) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) fail(current(), "Expected an expression, got " + py::repr(describe_token(current())));
    }
    auto tuple = make<Sequence>(ExprKind::kTuple, pos);
    tuple->items = std::move(items);
    return finish(std::move(tuple));
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this, current());
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  // Sets a new node's depth from its children's; the tree is built bottom-up, so they are final.
  template <typename T>
  std::unique_ptr<T> finish(std::unique_ptr<T> node) {
    uint32_t d = 0;
    for_each_child(*node, [&](Expr& child) { d = std::max(d, child.depth); });
    node->depth = d + 1;
    if (node->depth > kMaxExprDepth) fail_at(node->pos, "the expression nests too deeply");
    return node;
  }

  // Marks every filter and test in `e` as soft (see FilterTest::soft).
  static void mark_soft(Expr& e);

  ExprPtr parse_condexpr() {
    const uint32_t pos = current().pos;
    ExprPtr expr1 = parse_or();
    while (is_name("if")) {
      const uint32_t line = p_.line_of(current().pos);
      next();
      mark_soft(*expr1);
      Scoped<bool> soft(soft_, true);
      auto node = make<CondExpr>(pos);
      node->test = parse_or();
      if (skip_name("else")) node->otherwise = parse_condexpr();
      node->then = std::move(expr1);
      node->line = line;
      expr1 = finish(std::move(node));
    }
    return expr1;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const uint32_t pos = next().pos;
      left = finish(make<Binary>(ExprKind::kOr, pos, BinaryOp::kAdd, std::move(left), parse_and()));
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const uint32_t pos = next().pos;
      left = finish(make<Binary>(ExprKind::kAnd, pos, BinaryOp::kAdd, std::move(left), parse_not()));
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      const Token& t = next();
      DepthGuard guard(*this, t);
      return finish(make<Unary>(ExprKind::kNot, t.pos, parse_not()));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const uint32_t pos = current().pos;
    ExprPtr first = parse_math1();
    std::unique_ptr<Compare> node;
    while (true) {
      CompareOp op;
      const Token& t = current();
      if (t.type == Tok::kOperator && (t.op == Op::kEq || t.op == Op::kNe || t.op == Op::kLt || t.op == Op::kLe ||
                                       t.op == Op::kGt || t.op == Op::kGe)) {
        op = t.op == Op::kEq   ? CompareOp::kEq
             : t.op == Op::kNe ? CompareOp::kNe
             : t.op == Op::kLt ? CompareOp::kLt
             : t.op == Op::kLe ? CompareOp::kLe
             : t.op == Op::kGt ? CompareOp::kGt
                               : CompareOp::kGe;
        next();
      } else if (is_name("in")) {
        op = CompareOp::kIn;
        next();
      } else if (is_name("not") && look().type == Tok::kName && look().text == "in") {
        op = CompareOp::kNotIn;
        next();
        next();
      } else {
        break;
      }
      if (!node) node = make<Compare>(pos, std::move(first));
      node->rest.emplace_back(op, parse_math1());
    }
    if (!node) return first;
    return finish(std::move(node));
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op(Op::kAdd) || is_op(Op::kSub)) {
      const Token& t = next();
      left = finish(make<Binary>(ExprKind::kBinary, t.pos, t.op == Op::kAdd ? BinaryOp::kAdd : BinaryOp::kSub,
                                 std::move(left), parse_concat()));
    }
    return left;
  }

  ExprPtr parse_concat() {
    const uint32_t pos = current().pos;
    ExprPtr first = parse_math2();
    if (!is_op(Op::kTilde)) return first;
    auto node = make<Concat>(pos);
    node->items.push_back(std::move(first));
    while (skip_op(Op::kTilde)) node->items.push_back(parse_math2());
    return finish(std::move(node));
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op(Op::kMul) || is_op(Op::kDiv) || is_op(Op::kFloorDiv) || is_op(Op::kMod)) {
      const Token& t = next();
      const BinaryOp op = t.op == Op::kMul   ? BinaryOp::kMul
                          : t.op == Op::kDiv ? BinaryOp::kDiv
                          : t.op == Op::kMod ? BinaryOp::kMod
                                             : BinaryOp::kFloorDiv;
      left = finish(make<Binary>(ExprKind::kBinary, t.pos, op, std::move(left), parse_pow()));
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op(Op::kPow)) {
      const Token& t = next();
      left = finish(make<Binary>(ExprKind::kBinary, t.pos, BinaryOp::kPow, std::move(left), parse_unary(true)));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    const Token& t = current();
    DepthGuard guard(*this, t);
    ExprPtr node;
    if (is_op(Op::kSub) || is_op(Op::kAdd)) {
      next();
      node = finish(make<Unary>(t.op == Op::kSub ? ExprKind::kNeg : ExprKind::kPos, t.pos, parse_unary(false)));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = current();
    DepthGuard guard(*this, t);
    switch (t.type) {
      case Tok::kName: {
        next();
        if (t.text == "true" || t.text == "True") return make<Const>(t.pos, Value::boolean(true));
        if (t.text == "false" || t.text == "False") return make<Const>(t.pos, Value::boolean(false));
        if (t.text == "none" || t.text == "None") return make<Const>(t.pos, Value::none());
        const uint32_t id = intern(t.text);
        if (!usage_.empty()) usage_.back().insert(id);
        return make<Name>(t.pos, id);
      }
      case Tok::kString: {
        std::string text;
        while (current().type == Tok::kString) text += next().text;  // adjacent literals concatenate
        return make<Const>(t.pos, Value::string(std::move(text)));
      }
      case Tok::kInteger: next(); return make<Const>(t.pos, Value::integer(t.integer));
      case Tok::kFloat: next(); return make<Const>(t.pos, Value::floating(t.floating));
      case Tok::kOperator:
        if (t.op == Op::kLParen) {
          next();
          ExprPtr e = parse_tuple(false, true, {}, true);
          expect_op(Op::kRParen, ")");
          return e;
        }
        if (t.op == Op::kLBracket) return parse_list();
        if (t.op == Op::kLBrace) return parse_dict();
        break;
      default: break;
    }
    if (t.type == Tok::kEof) fail(t, "unexpected end of template, expected an expression.");
    fail(t, "unexpected " + py::repr(describe_token(t)));
  }

  ExprPtr parse_list() {
    const uint32_t pos = next().pos;
    auto node = make<Sequence>(ExprKind::kList, pos);
    while (!is_op(Op::kRBracket)) {
      if (!node->items.empty()) expect_op(Op::kComma, ",");
      if (is_op(Op::kRBracket)) break;
      node->items.push_back(parse_expression(true));
    }
    expect_op(Op::kRBracket, "]");
    return finish(std::move(node));
  }

  ExprPtr parse_dict() {
    const uint32_t pos = next().pos;
    auto node = make<DictLiteral>(pos);
    while (!is_op(Op::kRBrace)) {
      if (!node->items.empty()) expect_op(Op::kComma, ",");
      if (is_op(Op::kRBrace)) break;
      ExprPtr key = parse_expression(true);
      expect_op(Op::kColon, ":");
      node->items.emplace_back(std::move(key), parse_expression(true));
    }
    expect_op(Op::kRBrace, "}");
    return finish(std::move(node));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(Op::kDot) || is_op(Op::kLBracket)) {
        node = parse_subscript(std::move(node));
      } else if (is_op(Op::kLParen)) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op(Op::kPipe)) {
        node = parse_filter(std::move(node), false);
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op(Op::kLParen)) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& t = next();
    DepthGuard guard(*this, t);
    if (t.op == Op::kDot) {
      const Token& attr = current();
      if (attr.type == Tok::kName) {
        next();
        return finish(make<Getattr>(t.pos, std::move(node), attr.text));
      }
      if (attr.type != Tok::kInteger) fail(attr, "expected name or number");
      next();
      return finish(make<Getitem>(t.pos, std::move(node), make<Const>(attr.pos, Value::integer(attr.integer))));
    }
    std::vector<ExprPtr> args;
    while (!is_op(Op::kRBracket)) {
      if (!args.empty()) expect_op(Op::kComma, ",");
      args.push_back(parse_subscribed());
    }
    expect_op(Op::kRBracket, "]");
    if (args.size() == 1) return finish(make<Getitem>(t.pos, std::move(node), std::move(args[0])));
    auto tuple = make<Sequence>(ExprKind::kTuple, t.pos);
    tuple->items = std::move(args);
    return finish(make<Getitem>(t.pos, std::move(node), finish(std::move(tuple))));
  }

  ExprPtr parse_subscribed() {
    const uint32_t pos = current().pos;
    ExprPtr start;
    if (!is_op(Op::kColon)) {
      start = parse_expression(true);
      if (!is_op(Op::kColon)) return start;
    }
    next();  // the first ':'
    auto slice = make<Slice>(pos);
    slice->start = std::move(start);
    if (!is_op(Op::kColon) && !is_op(Op::kRBracket) && !is_op(Op::kComma)) slice->stop = parse_expression(true);
    if (skip_op(Op::kColon) && !is_op(Op::kRBracket) && !is_op(Op::kComma)) slice->step = parse_expression(true);
    return finish(std::move(slice));
  }

  ExprPtr parse_call(ExprPtr callee) {
    const uint32_t pos = current().pos;
    auto node = make<Call>(pos, std::move(callee));
    parse_call_args(node->args);
    return finish(std::move(node));
  }

  void parse_call_args(Args& args) {
    const Token& open = expect_op(Op::kLParen, "(");
    auto ensure = [&](bool ok) {
      if (!ok) fail(open, "invalid syntax for function call expression");
    };
    bool require_comma = false;
    while (!is_op(Op::kRParen)) {
      if (require_comma) {
        expect_op(Op::kComma, ",");
        if (is_op(Op::kRParen)) break;
      }
      if (is_op(Op::kMul)) {
        ensure(!args.star && !args.star_star);
        next();
        args.star = parse_expression(true);
      } else if (is_op(Op::kPow)) {
        ensure(!args.star_star);
        next();
        args.star_star = parse_expression(true);
      } else if (current().type == Tok::kName && look().type == Tok::kOperator && look().op == Op::kAssign) {
        ensure(!args.star_star);
        std::string key = next().text;
        next();
        args.keyword.emplace_back(std::move(key), parse_expression(true));
      } else {
        ensure(!args.star && !args.star_star && args.keyword.empty());
        args.positional.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    next();
  }

  // `| name(args)` chains; with start_inline the first name has no '|' before it (filter blocks).
  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op(Op::kPipe) || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      const Token& name = expect_name();
      auto f = make<FilterTest>(ExprKind::kFilter, name.pos, std::move(node), dotted_name(name.text));
      if (is_op(Op::kLParen)) parse_call_args(f->args);
      resolve(*f, find_filter(f->name), "filter");
      node = finish(std::move(f));
    }
    return node;
  }

  std::string dotted_name(std::string name) {
    while (is_op(Op::kDot)) {
      next();
      name += "." + expect_name().text;
    }
    return name;
  }

  ExprPtr parse_test(ExprPtr node) {
    const Token& is = next();
    const bool negated = skip_name("not");
    const Token& name = expect_name();
    auto t = make<FilterTest>(ExprKind::kTest, name.pos, std::move(node), dotted_name(name.text));
    const Token& c = current();
    if (is_op(Op::kLParen)) {
      parse_call_args(t->args);
    } else if ((c.type == Tok::kName || c.type == Tok::kString || c.type == Tok::kInteger || c.type == Tok::kFloat ||
                (c.type == Tok::kOperator && (c.op == Op::kLParen || c.op == Op::kLBracket || c.op == Op::kLBrace))) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail(c, "You cannot chain multiple tests with is");
      t->args.positional.push_back(parse_postfix(parse_primary()));
    }
    resolve(*t, find_test(t->name), "test");
    if (negated) return finish(make<Unary>(ExprKind::kNot, is.pos, finish(std::move(t))));
    return finish(std::move(t));
  }

  void resolve(FilterTest& f, int id, const char* what) {
    f.id = id;
    f.soft = soft_;
    if (id < 0) unknown_.emplace_back(&f, what);
  }

  Program& p_;
  std::vector<Token> tokens_;
  size_t index_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  bool soft_ = false;
  std::vector<std::string> end_stack_;
  std::vector<std::unordered_set<uint32_t>> usage_;  // names loaded inside the enclosing for / macro bodies
  std::vector<std::pair<const FilterTest*, const char*>> unknown_;  // unknown filters / tests, in order
};

void Parser::mark_soft(Expr& e) {
  // Parsed before the 'if' that made it part of a conditional expression.
  if (e.kind == ExprKind::kFilter || e.kind == ExprKind::kTest) static_cast<FilterTest&>(e).soft = true;
  for_each_child(e, [](Expr& child) { mark_soft(child); });
}

}  // namespace

uint32_t Program::line_of(uint32_t pos) const {
  const auto it = std::upper_bound(line_starts.begin(), line_starts.end(), pos);
  return static_cast<uint32_t>(it - line_starts.begin());
}

uint32_t Program::column_of(uint32_t pos) const {
  const uint32_t line = line_of(pos);
  const uint32_t start = line_starts[line - 1];
  const uint32_t end = std::min<uint32_t>(pos, static_cast<uint32_t>(source.size()));
  return static_cast<uint32_t>(py::length(std::string_view(source).substr(start, end - start))) + 1;
}

std::unique_ptr<Program> parse_program(std::string_view source) {
  auto program = std::make_unique<Program>();
  program->source = normalize_source(source);
  program->line_starts.push_back(0);
  for (size_t i = 0; i < program->source.size(); ++i) {
    if (program->source[i] == '\n') program->line_starts.push_back(static_cast<uint32_t>(i + 1));
  }
  Parser parser(*program, tokenize(program->source));
  program->body = parser.parse_template();
  for (const std::string& name : program->names) program->global_ids.push_back(find_global(name));
  return program;
}

}  // namespace ember::jinja
