// A grammar compiled for matching: every rule that is not inlined becomes a DFA over byte classes
// whose edges are bytes or calls to other rules (a recursive transition network). Small
// non-recursive rules are inlined into their callers; rules marked shared, recursive ones and the
// root stay rules. Each rule carries a structural hash, so equal rules of different grammars (the
// JSON builtins of every schema) share token-mask cache entries.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "grammar/grammar_ir.h"

namespace ember::grammar {

struct CallEdge {
  int32_t rule = 0;          // the compiled rule called
  int32_t return_state = 0;  // the caller's state once it returns
};

struct CompiledRule {
  std::string name;
  int32_t n_states = 0;             // the start state is 0
  std::vector<int32_t> next;        // [state * n_classes + class]: the next state, -1: none
  std::vector<uint8_t> accepting;   // [state]: the rule may end here
  std::vector<uint8_t> consumes;    // [state]: some byte leads on
  std::vector<int32_t> call_begin;  // [state], [state + 1]: its calls in `calls`
  std::vector<CallEdge> calls;
  // Equal for rules that match the same bytes with the same automata, callees included (states
  // numbered canonically), whatever grammar they come from.
  uint64_t hash = 0;
};

class CompiledGrammar {
 public:
  // Throws Error(kInvalidArgument) for an incomplete grammar, left recursion ("left recursion:
  // a -> b -> a"), a rule that can never finish, or one too large to compile.
  static std::shared_ptr<const CompiledGrammar> compile(const Grammar& grammar);

  int32_t n_classes() const noexcept { return n_classes_; }
  uint8_t byte_class(uint8_t byte) const noexcept { return byte_class_[byte]; }
  int32_t root() const noexcept { return root_; }
  const CompiledRule& rule(int32_t id) const { return rules_[static_cast<size_t>(id)]; }
  int32_t rule_count() const noexcept { return static_cast<int32_t>(rules_.size()); }

  int32_t next(int32_t rule, int32_t state, uint8_t byte) const noexcept {
    const CompiledRule& r = rules_[static_cast<size_t>(rule)];
    return r.next[static_cast<size_t>(state) * static_cast<size_t>(n_classes_) + byte_class_[byte]];
  }
  int32_t total_states() const noexcept;

 private:
  int32_t n_classes_ = 0;
  std::array<uint8_t, 256> byte_class_{};
  std::vector<CompiledRule> rules_;
  int32_t root_ = 0;
};

}  // namespace ember::grammar
