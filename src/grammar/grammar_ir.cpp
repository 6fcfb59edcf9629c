// The grammar IR's builders (normalizing as they go), completeness check and GBNF printer.
#include "grammar/grammar_ir.h"

#include <algorithm>

#include "core/check.h"
#include "core/utf8.h"

namespace ember::grammar {
namespace {

constexpr uint32_t kSurrogateFirst = 0xD800;
constexpr uint32_t kSurrogateLast = 0xDFFF;

// Sorted, merged (overlapping or adjacent), surrogates removed, clipped to U+10FFFF.
std::vector<CodepointRange> normalize(std::vector<CodepointRange> ranges) {
  std::vector<CodepointRange> clipped;
  for (CodepointRange r : ranges) {
    if (r.first > r.last || r.first > kMaxCodepoint) continue;
    r.last = std::min(r.last, kMaxCodepoint);
    if (r.first < kSurrogateFirst && r.last >= kSurrogateFirst) {
      clipped.push_back({r.first, kSurrogateFirst - 1});
      if (r.last > kSurrogateLast) clipped.push_back({kSurrogateLast + 1, r.last});
    } else if (r.first >= kSurrogateFirst && r.first <= kSurrogateLast) {
      if (r.last > kSurrogateLast) clipped.push_back({kSurrogateLast + 1, r.last});
    } else {
      clipped.push_back(r);
    }
  }
  std::sort(clipped.begin(), clipped.end(), [](auto a, auto b) { return a.first < b.first; });
  std::vector<CodepointRange> out;
  for (const CodepointRange r : clipped) {
    // Ranges never span the surrogate gap (D800..DFFF), so the parts on either side stay apart.
    if (!out.empty() && r.first <= out.back().last + 1) {
      out.back().last = std::max(out.back().last, r.last);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

std::vector<CodepointRange> complement(const std::vector<CodepointRange>& sorted) {
  std::vector<CodepointRange> out;
  uint32_t next = 0;
  for (const CodepointRange r : sorted) {
    if (r.first > next) out.push_back({next, r.first - 1});
    next = r.last + 1;
  }
  if (next <= kMaxCodepoint) out.push_back({next, kMaxCodepoint});
  return normalize(std::move(out));
}

void append_escaped(std::string& out, uint32_t cp, bool in_class) {
  switch (cp) {
    case '\n': out += "\\n"; return;
    case '\r': out += "\\r"; return;
    case '\t': out += "\\t"; return;
    case '\\': out += "\\\\"; return;
    default: break;
  }
  if ((!in_class && cp == '"') || (in_class && (cp == ']' || cp == '[' || cp == '-' || cp == '^'))) {
    out += '\\';
    out += static_cast<char>(cp);
    return;
  }
  if (cp < 0x20 || cp == 0x7F) {
    out += fmt::format("\\x{:02X}", cp);
  } else if (cp > 0x7F && !in_class) {
    utf8::append(out, static_cast<char32_t>(cp));
  } else if (cp > 0xFFFF) {
    out += fmt::format("\\U{:08X}", cp);
  } else if (cp > 0x7F) {
    out += fmt::format("\\u{:04X}", cp);
  } else {
    out += static_cast<char>(cp);
  }
}

}  // namespace

ExprId Grammar::add(Expr e) {
  exprs_.push_back(std::move(e));
  return static_cast<ExprId>(exprs_.size() - 1);
}

ExprId Grammar::empty() { return add(Expr{}); }

ExprId Grammar::literal(std::string_view utf8_text) {
  if (utf8_text.empty()) return empty();
  EMBER_CHECK_MSG(utf8::is_valid(utf8_text), "grammar literals are valid UTF-8");
  return add(Expr{.kind = ExprKind::kLiteral, .literal = std::string(utf8_text)});
}

ExprId Grammar::codepoint(uint32_t cp) {
  EMBER_CHECK(cp <= kMaxCodepoint && (cp < kSurrogateFirst || cp > kSurrogateLast));
  std::string text;
  utf8::append(text, static_cast<char32_t>(cp));
  return literal(text);
}

ExprId Grammar::char_class(std::vector<CodepointRange> ranges, bool negate) {
  std::vector<CodepointRange> norm = normalize(std::move(ranges));
  if (negate) norm = complement(norm);
  if (norm.empty()) return -1;
  return add(Expr{.kind = ExprKind::kClass, .ranges = std::move(norm)});
}

ExprId Grammar::any_codepoint() { return char_class({{0, kMaxCodepoint}}); }

ExprId Grammar::ref(RuleId rule) {
  EMBER_CHECK(rule >= 0 && rule < rule_count());
  return add(Expr{.kind = ExprKind::kRef, .rule = rule});
}

ExprId Grammar::sequence(std::vector<ExprId> items) {
  std::vector<ExprId> flat;
  for (const ExprId id : items) {
    const Expr& e = expr(id);
    if (e.kind == ExprKind::kEmpty) continue;
    if (e.kind == ExprKind::kSequence) {
      flat.insert(flat.end(), e.children.begin(), e.children.end());
    } else {
      flat.push_back(id);
    }
  }
  if (flat.empty()) return empty();
  if (flat.size() == 1) return flat[0];
  return add(Expr{.kind = ExprKind::kSequence, .children = std::move(flat)});
}

ExprId Grammar::choice(std::vector<ExprId> alternatives) {
  EMBER_CHECK(!alternatives.empty());
  std::vector<ExprId> flat;
  for (const ExprId id : alternatives) {
    const Expr& e = expr(id);
    if (e.kind == ExprKind::kChoice) {
      flat.insert(flat.end(), e.children.begin(), e.children.end());
    } else {
      flat.push_back(id);
    }
  }
  if (flat.size() == 1) return flat[0];
  return add(Expr{.kind = ExprKind::kChoice, .children = std::move(flat)});
}

ExprId Grammar::repeat(ExprId item, uint32_t min, uint32_t max) {
  EMBER_CHECK(min <= max && (max <= kMaxRepeat || max == kUnbounded) && min <= kMaxRepeat);
  if (max == 0 || expr(item).kind == ExprKind::kEmpty) return empty();
  if (min == 1 && max == 1) return item;
  // Nested open repeats collapse: (x{a,}){b,} is x{a*b,} for b >= 1 (any length >= a*b splits into
  // b or more runs of >= a), and (x{a,})* is x* for a <= 1. Without this, "x"+++...+ would
  // double the automaton at every '+'. (x?)? is x?.
  const Expr inner = expr(item);
  if (inner.kind == ExprKind::kRepeat && inner.max == kUnbounded && max == kUnbounded) {
    if (min >= 1 && uint64_t{inner.min} * min <= kMaxRepeat)
      return repeat(inner.children[0], inner.min * min, kUnbounded);
    if (min == 0 && inner.min <= 1) return repeat(inner.children[0], 0, kUnbounded);
  }
  if (inner.kind == ExprKind::kRepeat && inner.min == 0 && inner.max == 1 && min == 0 && max == 1) return item;
  return add(Expr{.kind = ExprKind::kRepeat, .children = {item}, .min = min, .max = max});
}

RuleId Grammar::declare_rule(std::string_view name) {
  const auto [it, inserted] = rule_ids_.emplace(std::string(name), static_cast<RuleId>(rules_.size()));
  if (inserted) rules_.push_back(Rule{.name = std::string(name)});
  return it->second;
}

void Grammar::define_rule(RuleId rule, ExprId body) {
  EMBER_CHECK(rule >= 0 && rule < rule_count() && body >= 0 && body < expr_count());
  rules_[static_cast<size_t>(rule)].body = body;
}

std::string Grammar::fresh_name(std::string_view base) const {
  if (find_rule(base) < 0) return std::string(base);
  for (int i = 1;; ++i) {
    std::string name = fmt::format("{}-{}", base, i);
    if (find_rule(name) < 0) return name;
  }
}

RuleId Grammar::find_rule(std::string_view name) const {
  const auto it = rule_ids_.find(std::string(name));
  return it == rule_ids_.end() ? -1 : it->second;
}

RuleId Grammar::import(const Grammar& other, std::string_view prefix) {
  other.check_complete();
  std::vector<RuleId> ids(static_cast<size_t>(other.rule_count()));
  for (RuleId r = 0; r < other.rule_count(); ++r) {
    const std::string name = fresh_name(fmt::format("{}{}", prefix, other.rule(r).name));
    ids[static_cast<size_t>(r)] = declare_rule(name);
    set_shared(ids[static_cast<size_t>(r)], other.rule(r).shared);
  }
  // Expressions copied depth-first with their rule references renumbered, each once: a shared
  // child stays shared (copied as a tree, a JSON schema's nested arrays double per level).
  std::vector<ExprId> copied(static_cast<size_t>(other.expr_count()), -1);
  auto copy = [&](auto&& self, ExprId id) -> ExprId {
    ExprId& done = copied[static_cast<size_t>(id)];
    if (done >= 0) return done;
    Expr e = other.expr(id);
    if (e.kind == ExprKind::kRef) e.rule = ids[static_cast<size_t>(e.rule)];
    for (ExprId& c : e.children) c = self(self, c);
    done = add(std::move(e));
    return done;
  };
  for (RuleId r = 0; r < other.rule_count(); ++r)
    define_rule(ids[static_cast<size_t>(r)], copy(copy, other.rule(r).body));
  return ids[static_cast<size_t>(other.root())];
}

void Grammar::check_complete() const {
  if (root_ < 0) fail(ErrorCode::kInvalidArgument, "grammar has no root rule");
  for (const Rule& r : rules_) {
    if (r.body < 0) fail(ErrorCode::kInvalidArgument, "rule '{}' is used but never defined", r.name);
  }
}

std::string Grammar::to_gbnf(size_t max_bytes) const {
  // Precedence: choice < sequence < postfix. `parent` says what the caller can hold unparenthesized.
  enum Level { kInChoice, kInSequence, kInPostfix };
  std::string out;
  auto print = [&](auto&& self, ExprId id, Level level) -> void {
    if (out.size() > max_bytes) {
      fail(ErrorCode::kInvalidArgument, "grammar is too large: its GBNF text passes {} bytes", max_bytes);
    }
    const Expr& e = expr(id);
    switch (e.kind) {
      case ExprKind::kEmpty: out += "\"\""; return;
      case ExprKind::kLiteral: {
        out += '"';
        for (size_t pos = 0; pos < e.literal.size();) {
          const utf8::Decoded d = utf8::decode(e.literal, pos);
          append_escaped(out, d.code_point, false);
          pos += d.length;
        }
        out += '"';
        return;
      }
      case ExprKind::kClass:
        out += '[';
        for (const CodepointRange r : e.ranges) {
          append_escaped(out, r.first, true);
          if (r.last != r.first) {
            out += '-';
            append_escaped(out, r.last, true);
          }
        }
        out += ']';
        return;
      case ExprKind::kRef: out += rule(e.rule).name; return;
      case ExprKind::kSequence:
      case ExprKind::kChoice: {
        const bool is_choice = e.kind == ExprKind::kChoice;
        const bool paren = is_choice ? level != kInChoice : level == kInPostfix;
        if (paren) out += '(';
        for (size_t i = 0; i < e.children.size(); ++i) {
          if (i > 0) out += is_choice ? " | " : " ";
          self(self, e.children[i], is_choice ? kInSequence : kInPostfix);
        }
        if (paren) out += ')';
        return;
      }
      case ExprKind::kRepeat:
        self(self, e.children[0], kInPostfix);
        if (e.min == 0 && e.max == 1) {
          out += '?';
        } else if (e.min == 0 && e.max == kUnbounded) {
          out += '*';
        } else if (e.min == 1 && e.max == kUnbounded) {
          out += '+';
        } else if (e.max == kUnbounded) {
          out += fmt::format("{{{},}}", e.min);
        } else if (e.min == e.max) {
          out += fmt::format("{{{}}}", e.min);
        } else {
          out += fmt::format("{{{},{}}}", e.min, e.max);
        }
        return;
    }
  };
  std::vector<RuleId> order;
  if (root_ >= 0) order.push_back(root_);
  for (RuleId r = 0; r < rule_count(); ++r) {
    if (r != root_) order.push_back(r);
  }
  for (const RuleId r : order) {
    const Rule& rl = rule(r);
    out += rl.name;
    out += " ::= ";
    if (rl.body >= 0) print(print, rl.body, kInChoice);
    out += '\n';
  }
  if (out.size() > max_bytes) {
    fail(ErrorCode::kInvalidArgument, "grammar is too large: its GBNF text passes {} bytes", max_bytes);
  }
  return out;
}

}  // namespace ember::grammar
