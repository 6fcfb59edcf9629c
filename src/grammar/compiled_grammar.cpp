// Compiles the IR: inlining decisions, a Thompson NFA per kept rule (bytes, epsilons, calls),
// subset construction over byte classes, canonical state numbering, structural hashes, and the
// checks that make matching terminate (no left recursion, every rule can finish).
#include "grammar/compiled_grammar.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <unordered_map>

#include "core/check.h"
#include "grammar/utf8_ranges.h"

namespace ember::grammar {
namespace {

// Inlined rule bodies larger than this (estimated NFA states) stay calls.
constexpr uint64_t kInlineLimit = 256;
constexpr size_t kMaxNfaStates = 500'000;  // per grammar
// NFA states visited by the subset construction's closures, all rules together: a repeat of a
// nullable item, ("a"?){8000}, has few DFA states but subsets of thousands of NFA states each.
constexpr size_t kMaxSubsetWork = 8'000'000;
constexpr size_t kMaxDfaStates = 100'000;  // per grammar (about a second of subset construction)

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  h *= 0xFF51AFD7ED558CCDull;
  return h ^ (h >> 33);
}

// --- rule graph ---------------------------------------------------------------------------------

// The rules referenced under expression `id`, each expression visited once per `stamp`
// (seen[expr] == stamp): expressions are a DAG that shares children (a JSON schema's array item
// appears twice per nesting level), and walking it as a tree is exponential in its depth.
void collect_refs(const Grammar& g, ExprId id, uint32_t stamp, std::vector<uint32_t>& seen, std::vector<RuleId>& out) {
  if (seen[static_cast<size_t>(id)] == stamp) return;
  seen[static_cast<size_t>(id)] = stamp;
  const Expr& e = g.expr(id);
  if (e.kind == ExprKind::kRef) out.push_back(e.rule);
  for (const ExprId c : e.children) collect_refs(g, c, stamp, seen, out);
}

// recursive[r]: r lies on a cycle of references (itself included).
std::vector<bool> find_recursive(const Grammar& g) {
  const auto n = static_cast<size_t>(g.rule_count());
  std::vector<std::vector<RuleId>> refs(n);
  std::vector<uint32_t> seen(static_cast<size_t>(g.expr_count()), 0);
  for (size_t r = 0; r < n; ++r) {
    collect_refs(g, g.rule(static_cast<RuleId>(r)).body, static_cast<uint32_t>(r + 1), seen, refs[r]);
  }
  // Tarjan's SCC, iterative enough for test-sized grammars (depth = rule chain length).
  std::vector<int> index(n, -1), low(n, 0);
  std::vector<bool> on_stack(n, false), recursive(n, false);
  std::vector<size_t> stack;
  int counter = 0;
  std::function<void(size_t)> visit = [&](size_t v) {
    index[v] = low[v] = counter++;
    stack.push_back(v);
    on_stack[v] = true;
    for (const RuleId w32 : refs[v]) {
      const auto w = static_cast<size_t>(w32);
      if (w == v) recursive[v] = true;
      if (index[w] < 0) {
        visit(w);
        low[v] = std::min(low[v], low[w]);
      } else if (on_stack[w]) {
        low[v] = std::min(low[v], index[w]);
      }
    }
    if (low[v] == index[v]) {
      std::vector<size_t> scc;
      size_t w;
      do {
        w = stack.back();
        stack.pop_back();
        on_stack[w] = false;
        scc.push_back(w);
      } while (w != v);
      if (scc.size() > 1) {
        for (const size_t s : scc) recursive[s] = true;
      }
    }
  };
  for (size_t v = 0; v < n; ++v) {
    if (index[v] < 0) visit(v);
  }
  return recursive;
}

uint64_t sat_add(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }
uint64_t sat_mul(uint64_t a, uint64_t b) { return (b != 0 && a > UINT64_MAX / b) ? UINT64_MAX : a * b; }

// --- NFA ----------------------------------------------------------------------------------------

struct NfaState {
  std::vector<std::pair<ByteRange, int32_t>> bytes;
  std::vector<int32_t> eps;
  std::vector<std::pair<int32_t, int32_t>> calls;  // (kept rule index, target)
};

class NfaBuilder {
 public:
  NfaBuilder(const Grammar& g, const std::vector<int32_t>& kept_index, std::vector<NfaState>& states, size_t& total)
      : g_(g), kept_index_(kept_index), s_(states), total_(total) {}

  int32_t add_state() {
    if (++total_ > kMaxNfaStates) {
      fail(ErrorCode::kInvalidArgument, "grammar is too large to compile (more than {} automaton states)",
           kMaxNfaStates);
    }
    s_.emplace_back();
    return static_cast<int32_t>(s_.size() - 1);
  }

  // Builds `id` starting at `from`; returns the state where it ends.
  int32_t build(ExprId id, int32_t from) {
    const Expr& e = g_.expr(id);
    switch (e.kind) {
      case ExprKind::kEmpty: return from;
      case ExprKind::kLiteral: {
        int32_t cur = from;
        for (const char ch : e.literal) {
          const int32_t to = add_state();
          const auto b = static_cast<uint8_t>(ch);
          s_[static_cast<size_t>(cur)].bytes.push_back({ByteRange{b, b}, to});
          cur = to;
        }
        return cur;
      }
      case ExprKind::kClass: {
        const int32_t end = add_state();
        std::vector<ByteRangeSequence> seqs;
        for (const CodepointRange r : e.ranges) utf8_sequences(r, seqs);
        for (const ByteRangeSequence& seq : seqs) {
          int32_t cur = from;
          for (size_t k = 0; k < seq.size(); ++k) {
            const int32_t to = k + 1 == seq.size() ? end : add_state();
            s_[static_cast<size_t>(cur)].bytes.push_back({seq[k], to});
            cur = to;
          }
        }
        return end;
      }
      case ExprKind::kRef: {
        const int32_t kept = kept_index_[static_cast<size_t>(e.rule)];
        if (kept < 0) return build(g_.rule(e.rule).body, from);  // inlined
        const int32_t to = add_state();
        s_[static_cast<size_t>(from)].calls.push_back({kept, to});
        return to;
      }
      case ExprKind::kSequence: {
        int32_t cur = from;
        for (const ExprId c : e.children) cur = build(c, cur);
        return cur;
      }
      case ExprKind::kChoice: {
        const int32_t end = add_state();
        for (const ExprId c : e.children) {
          const int32_t start = add_state();
          s_[static_cast<size_t>(from)].eps.push_back(start);
          const int32_t last = build(c, start);
          s_[static_cast<size_t>(last)].eps.push_back(end);
        }
        return end;
      }
      case ExprKind::kRepeat: {
        int32_t cur = from;
        for (uint32_t i = 0; i < e.min; ++i) {
          const int32_t start = add_state();  // a fresh entry so loops below never re-enter a copy
          s_[static_cast<size_t>(cur)].eps.push_back(start);
          cur = build(e.children[0], start);
        }
        if (e.max == kUnbounded) {
          const int32_t loop = add_state();
          s_[static_cast<size_t>(cur)].eps.push_back(loop);
          const int32_t body_start = add_state();
          s_[static_cast<size_t>(loop)].eps.push_back(body_start);
          const int32_t last = build(e.children[0], body_start);
          s_[static_cast<size_t>(last)].eps.push_back(loop);
          return loop;
        }
        // max - min optional copies, each reachable only after the previous one: item{0,k}.
        const int32_t end = add_state();
        for (uint32_t i = e.min; i < e.max; ++i) {
          s_[static_cast<size_t>(cur)].eps.push_back(end);
          const int32_t start = add_state();
          s_[static_cast<size_t>(cur)].eps.push_back(start);
          cur = build(e.children[0], start);
        }
        s_[static_cast<size_t>(cur)].eps.push_back(end);
        return end;
      }
    }
    return from;
  }

 private:
  const Grammar& g_;
  const std::vector<int32_t>& kept_index_;
  std::vector<NfaState>& s_;
  size_t& total_;
};

// --- DFA ----------------------------------------------------------------------------------------

struct ByteClasses {
  std::array<uint8_t, 256> of{};
  std::vector<uint8_t> first_byte;  // per class
  int32_t count = 0;
};

ByteClasses byte_classes(const std::vector<std::vector<NfaState>>& nfas) {
  std::array<bool, 257> boundary{};
  boundary[0] = true;
  for (const auto& nfa : nfas) {
    for (const NfaState& s : nfa) {
      for (const auto& [range, to] : s.bytes) {
        boundary[range.first] = true;
        boundary[static_cast<size_t>(range.last) + 1] = true;
      }
    }
  }
  ByteClasses c;
  int32_t cls = -1;
  for (size_t b = 0; b < 256; ++b) {
    if (boundary[b]) {
      ++cls;
      c.first_byte.push_back(static_cast<uint8_t>(b));
    }
    c.of[b] = static_cast<uint8_t>(cls);
  }
  c.count = cls + 1;
  return c;
}

// Epsilon closure of `set`, sorted. `mark`/`stamp`: a visited marker reused across calls, so a
// closure costs its own size, not the NFA's.
void eps_closure(const std::vector<NfaState>& nfa, std::vector<int32_t>& set, std::vector<uint32_t>& mark,
                 uint32_t& stamp, size_t& work) {
  ++stamp;
  for (const int32_t s : set) mark[static_cast<size_t>(s)] = stamp;
  for (size_t i = 0; i < set.size(); ++i) {
    for (const int32_t t : nfa[static_cast<size_t>(set[i])].eps) {
      if (mark[static_cast<size_t>(t)] != stamp) {
        mark[static_cast<size_t>(t)] = stamp;
        set.push_back(t);
      }
    }
  }
  std::sort(set.begin(), set.end());
  work += set.size();
  if (work > kMaxSubsetWork) {
    fail(ErrorCode::kInvalidArgument,
         "grammar is too large to compile (the automata need more than {} steps to build; a long repetition of "
         "something that may be empty, such as (\"a\"?){{8000}}, does this)",
         kMaxSubsetWork);
  }
}

// Subset construction; states numbered in discovery order, which is canonical: successors are
// explored by byte value (each class once, at its first byte) and then by (rule, target).
CompiledRule determinize(const std::vector<NfaState>& nfa, int32_t start, int32_t final_state,
                         const ByteClasses& classes, size_t& total_dfa, size_t& work) {
  CompiledRule out;
  std::map<std::vector<int32_t>, int32_t> ids;
  std::vector<std::vector<int32_t>> sets;
  std::vector<uint32_t> mark(nfa.size(), 0);
  uint32_t stamp = 0;
  auto intern = [&](std::vector<int32_t> set) {
    eps_closure(nfa, set, mark, stamp, work);
    auto [it, inserted] = ids.emplace(set, static_cast<int32_t>(sets.size()));
    if (inserted) {
      if (++total_dfa > kMaxDfaStates) {
        fail(ErrorCode::kInvalidArgument,
             "grammar is too large to compile (more than {} automaton states; a bounded repetition of a broad "
             "class next to another that overlaps it, such as .{{0,20}}x.{{0,20}}, multiplies states)",
             kMaxDfaStates);
      }
      sets.push_back(std::move(set));
    }
    return it->second;
  };
  intern({start});
  const auto nc = static_cast<size_t>(classes.count);
  std::vector<std::vector<int32_t>> targets(nc);
  for (size_t d = 0; d < sets.size(); ++d) {
    for (auto& t : targets) t.clear();
    std::map<int32_t, std::vector<int32_t>> call_targets;
    bool accepting = false;
    for (const int32_t s : sets[d]) {
      if (s == final_state) accepting = true;
      const NfaState& st = nfa[static_cast<size_t>(s)];
      for (const auto& [range, to] : st.bytes) {
        for (size_t c = classes.of[range.first]; c <= classes.of[range.last]; ++c) targets[c].push_back(to);
      }
      for (const auto& [rule, to] : st.calls) call_targets[rule].push_back(to);
    }
    out.accepting.push_back(accepting ? 1 : 0);
    out.next.resize((d + 1) * nc, -1);
    bool consumes = false;
    size_t previous = nc;  // the last class with targets: broad ranges give neighbours equal ones
    for (size_t c = 0; c < nc; ++c) {
      if (targets[c].empty()) continue;
      consumes = true;
      if (previous < nc && targets[c] == targets[previous]) {
        out.next[d * nc + c] = out.next[d * nc + previous];
        continue;
      }
      previous = c;
      std::vector<int32_t> t = targets[c];
      std::sort(t.begin(), t.end());
      t.erase(std::unique(t.begin(), t.end()), t.end());
      const int32_t id = intern(std::move(t));
      out.next[d * nc + c] = id;  // `sets` may have grown: index by d, never hold references
    }
    out.consumes.push_back(consumes ? 1 : 0);
    out.call_begin.push_back(static_cast<int32_t>(out.calls.size()));
    for (auto& [rule, t] : call_targets) {
      std::sort(t.begin(), t.end());
      t.erase(std::unique(t.begin(), t.end()), t.end());
      const int32_t ret = intern(std::move(t));
      out.calls.push_back({rule, ret});
    }
  }
  out.call_begin.push_back(static_cast<int32_t>(out.calls.size()));
  out.n_states = static_cast<int32_t>(sets.size());
  return out;
}

// --- analysis -----------------------------------------------------------------------------------

// Fixed point over all rules: can[r] when rule r can reach an accepting state using byte edges
// (when `bytes`) and calls to rules with can[] true.
std::vector<bool> reach_accepting(const std::vector<CompiledRule>& rules, int32_t nc, bool bytes) {
  std::vector<bool> can(rules.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < rules.size(); ++r) {
      if (can[r]) continue;
      const CompiledRule& rule = rules[r];
      std::vector<bool> seen(static_cast<size_t>(rule.n_states), false);
      std::vector<int32_t> work = {0};
      seen[0] = true;
      bool found = false;
      while (!work.empty() && !found) {
        const int32_t s = work.back();
        work.pop_back();
        if (rule.accepting[static_cast<size_t>(s)]) found = true;
        auto push = [&](int32_t t) {
          if (t >= 0 && !seen[static_cast<size_t>(t)]) {
            seen[static_cast<size_t>(t)] = true;
            work.push_back(t);
          }
        };
        if (bytes) {
          for (int32_t c = 0; c < nc; ++c)
            push(rule.next[static_cast<size_t>(s) * static_cast<size_t>(nc) + static_cast<size_t>(c)]);
        }
        for (int32_t k = rule.call_begin[static_cast<size_t>(s)]; k < rule.call_begin[static_cast<size_t>(s) + 1];
             ++k) {
          const CallEdge& call = rule.calls[static_cast<size_t>(k)];
          if (can[static_cast<size_t>(call.rule)]) push(call.return_state);
        }
      }
      if (found) {
        can[r] = true;
        changed = true;
      }
    }
  }
  return can;
}

// Rules reachable from the root through calls.
std::vector<bool> reachable_rules(const std::vector<CompiledRule>& rules, int32_t root) {
  std::vector<bool> seen(rules.size(), false);
  std::vector<int32_t> work = {root};
  seen[static_cast<size_t>(root)] = true;
  while (!work.empty()) {
    const CompiledRule& r = rules[static_cast<size_t>(work.back())];
    work.pop_back();
    for (const CallEdge& c : r.calls) {
      if (!seen[static_cast<size_t>(c.rule)]) {
        seen[static_cast<size_t>(c.rule)] = true;
        work.push_back(c.rule);
      }
    }
  }
  return seen;
}

// A rule that calls itself (through others) before consuming a byte would push frames forever.
void check_left_recursion(const std::vector<CompiledRule>& rules, const std::vector<bool>& nullable) {
  // left[r]: rules called from states r reaches from its start without consuming a byte.
  std::vector<std::vector<int32_t>> left(rules.size());
  for (size_t r = 0; r < rules.size(); ++r) {
    const CompiledRule& rule = rules[r];
    std::vector<bool> seen(static_cast<size_t>(rule.n_states), false);
    std::vector<int32_t> work = {0};
    seen[0] = true;
    while (!work.empty()) {
      const int32_t s = work.back();
      work.pop_back();
      for (int32_t k = rule.call_begin[static_cast<size_t>(s)]; k < rule.call_begin[static_cast<size_t>(s) + 1]; ++k) {
        const CallEdge& call = rule.calls[static_cast<size_t>(k)];
        left[r].push_back(call.rule);
        if (nullable[static_cast<size_t>(call.rule)] && !seen[static_cast<size_t>(call.return_state)]) {
          seen[static_cast<size_t>(call.return_state)] = true;
          work.push_back(call.return_state);
        }
      }
    }
  }
  // A cycle in `left`: depth-first search with colours, reporting the path.
  std::vector<int> colour(rules.size(), 0);
  std::vector<int32_t> path;
  std::function<void(int32_t)> visit = [&](int32_t r) {
    colour[static_cast<size_t>(r)] = 1;
    path.push_back(r);
    for (const int32_t s : left[static_cast<size_t>(r)]) {
      if (colour[static_cast<size_t>(s)] == 1) {
        std::string cycle;
        auto it = std::find(path.begin(), path.end(), s);
        for (; it != path.end(); ++it) cycle += rules[static_cast<size_t>(*it)].name + " -> ";
        cycle += rules[static_cast<size_t>(s)].name;
        fail(ErrorCode::kInvalidArgument, "left recursion is not supported: {}", cycle);
      }
      if (colour[static_cast<size_t>(s)] == 0) visit(s);
    }
    path.pop_back();
    colour[static_cast<size_t>(r)] = 2;
  };
  for (size_t r = 0; r < rules.size(); ++r) {
    if (colour[r] == 0) visit(static_cast<int32_t>(r));
  }
}

// A rule's own automaton (accepting states, transitions as byte runs so that the hash does not
// depend on this grammar's byte classes, return states and the number of calls per state), without
// its callees' identity.
uint64_t local_hash(const CompiledRule& r, int32_t nc, const ByteClasses& classes) {
  uint64_t h = mix(0x51ED270B27u, static_cast<uint64_t>(r.n_states));
  for (int32_t s = 0; s < r.n_states; ++s) {
    h = mix(h, r.accepting[static_cast<size_t>(s)]);
    int32_t prev = -2;
    for (int b = 0; b < 256; ++b) {
      const int32_t t = r.next[static_cast<size_t>(s) * static_cast<size_t>(nc) + classes.of[static_cast<size_t>(b)]];
      if (t != prev) {
        h = mix(h, (static_cast<uint64_t>(b) << 32) | static_cast<uint32_t>(t));
        prev = t;
      }
    }
    const int32_t calls = r.call_begin[static_cast<size_t>(s) + 1] - r.call_begin[static_cast<size_t>(s)];
    h = mix(h, 0xCA11000000000000ull | static_cast<uint32_t>(calls));
    for (int32_t k = r.call_begin[static_cast<size_t>(s)]; k < r.call_begin[static_cast<size_t>(s) + 1]; ++k) {
      h = mix(h, static_cast<uint32_t>(r.calls[static_cast<size_t>(k)].return_state));
    }
  }
  return h;
}

// A random key per process: the hashes key a cache shared by every request, so a client must not
// be able to forge a rule whose hash equals a builtin's.
uint64_t process_key() {
  static const uint64_t key = [] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }();
  return key;
}

// Rules reaching more rules than this are not shared across grammars (their hash is unique), so
// hashing stays linear in the grammar for long chains of rules.
constexpr size_t kMaxHashedRules = 64;

// Hash of a rule and every rule it reaches (local hashes in discovery order, callees named by
// their discovery index): equal only for rules with the same automata, callees included.
uint64_t structural_hash(const std::vector<CompiledRule>& rules, const std::vector<uint64_t>& local, int32_t start,
                         uint64_t unique) {
  std::unordered_map<int32_t, int32_t> order = {{start, 0}};
  std::vector<int32_t> queue = {start};
  uint64_t h = process_key();
  for (size_t q = 0; q < queue.size(); ++q) {
    if (queue.size() > kMaxHashedRules) return mix(process_key(), unique);
    const CompiledRule& r = rules[static_cast<size_t>(queue[q])];
    h = mix(h, local[static_cast<size_t>(queue[q])]);
    for (const CallEdge& c : r.calls) {
      auto [it, inserted] = order.emplace(c.rule, static_cast<int32_t>(queue.size()));
      if (inserted) queue.push_back(c.rule);
      h = mix(h, static_cast<uint64_t>(it->second));
    }
  }
  return h;
}

}  // namespace

int32_t CompiledGrammar::total_states() const noexcept {
  int32_t n = 0;
  for (const CompiledRule& r : rules_) n += r.n_states;
  return n;
}

std::shared_ptr<const CompiledGrammar> CompiledGrammar::compile(const Grammar& g) {
  g.check_complete();
  const auto n_rules = static_cast<size_t>(g.rule_count());
  const std::vector<bool> recursive = find_recursive(g);

  // Estimated inline sizes (NFA states), memoized; recursive or kept rules count as one call.
  std::vector<uint64_t> rule_size(n_rules, 0);
  std::vector<int32_t> kept_index(n_rules, -1);
  auto keep_rule = [&](size_t r) {
    return recursive[r] || g.rule(static_cast<RuleId>(r)).shared || static_cast<RuleId>(r) == g.root();
  };
  // Memoized per expression too: the DAG's shared children would make a tree walk exponential.
  std::vector<std::optional<uint64_t>> expr_sizes(static_cast<size_t>(g.expr_count()));
  std::function<uint64_t(ExprId)> expr_size_of;
  const auto expr_size = [&](ExprId id) -> uint64_t {
    std::optional<uint64_t>& memo = expr_sizes[static_cast<size_t>(id)];
    if (!memo) memo = expr_size_of(id);
    return *memo;
  };
  expr_size_of = [&](ExprId id) -> uint64_t {
    const Expr& e = g.expr(id);
    switch (e.kind) {
      case ExprKind::kEmpty: return 0;
      case ExprKind::kLiteral: return e.literal.size();
      case ExprKind::kClass: return 4 * e.ranges.size() + 1;
      case ExprKind::kRef: {
        const auto r = static_cast<size_t>(e.rule);
        if (keep_rule(r)) return 1;
        if (rule_size[r] == 0) rule_size[r] = std::max<uint64_t>(1, expr_size(g.rule(e.rule).body));
        return rule_size[r] > kInlineLimit ? 1 : rule_size[r];
      }
      case ExprKind::kSequence:
      case ExprKind::kChoice: {
        uint64_t n = 2;
        for (const ExprId c : e.children) n = sat_add(n, expr_size(c) + 1);
        return n;
      }
      case ExprKind::kRepeat: {
        const uint64_t copies = e.max == kUnbounded ? uint64_t{e.min} + 1 : e.max;
        return sat_add(sat_mul(copies, sat_add(expr_size(e.children[0]), 2)), 2);
      }
    }
    return 1;
  };
  for (size_t r = 0; r < n_rules; ++r) {
    if (!keep_rule(r) && rule_size[r] == 0)
      rule_size[r] = std::max<uint64_t>(1, expr_size(g.rule(static_cast<RuleId>(r)).body));
  }
  // The root first: compiled index 0.
  std::vector<RuleId> kept = {g.root()};
  for (size_t r = 0; r < n_rules; ++r) {
    if (static_cast<RuleId>(r) != g.root() && (keep_rule(r) || rule_size[r] > kInlineLimit))
      kept.push_back(static_cast<RuleId>(r));
  }
  for (size_t k = 0; k < kept.size(); ++k) kept_index[static_cast<size_t>(kept[k])] = static_cast<int32_t>(k);

  std::vector<std::vector<NfaState>> nfas(kept.size());
  std::vector<std::pair<int32_t, int32_t>> ends(kept.size());
  size_t total_nfa = 0;
  for (size_t k = 0; k < kept.size(); ++k) {
    NfaBuilder builder(g, kept_index, nfas[k], total_nfa);
    const int32_t start = builder.add_state();
    ends[k] = {start, builder.build(g.rule(kept[k]).body, start)};
  }
  const ByteClasses classes = byte_classes(nfas);

  auto out = std::make_shared<CompiledGrammar>();
  out->n_classes_ = classes.count;
  out->byte_class_ = classes.of;
  size_t total_dfa = 0;
  size_t subset_work = 0;
  for (size_t k = 0; k < kept.size(); ++k) {
    out->rules_.push_back(determinize(nfas[k], ends[k].first, ends[k].second, classes, total_dfa, subset_work));
    out->rules_.back().name = g.rule(kept[k]).name;
    std::vector<NfaState>().swap(nfas[k]);
  }

  const std::vector<bool> reachable = reachable_rules(out->rules_, 0);
  const std::vector<bool> productive = reach_accepting(out->rules_, classes.count, true);
  for (size_t r = 0; r < out->rules_.size(); ++r) {
    if (reachable[r] && !productive[r]) {
      fail(ErrorCode::kInvalidArgument, "rule '{}' can never finish (every alternative refers to itself again)",
           out->rules_[r].name);
    }
  }
  check_left_recursion(out->rules_, reach_accepting(out->rules_, classes.count, false));
  std::vector<uint64_t> local(out->rules_.size());
  for (size_t r = 0; r < out->rules_.size(); ++r) local[r] = local_hash(out->rules_[r], classes.count, classes);
  // Unshareable rules get a hash no other grammar can have: this grammar's address and the rule.
  const auto grammar_id = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(out.get()));
  static std::atomic<uint64_t> compiled_count{0};
  const uint64_t unique_base = mix(grammar_id, compiled_count.fetch_add(1));
  for (size_t r = 0; r < out->rules_.size(); ++r) {
    out->rules_[r].hash = structural_hash(out->rules_, local, static_cast<int32_t>(r), mix(unique_base, r));
  }
  return out;
}

}  // namespace ember::grammar
