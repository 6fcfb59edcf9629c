// Hash-consed stacks, interned stack sets and their memoized byte transitions.
#include "grammar/stack_sets.h"

#include <algorithm>

#include "core/check.h"

namespace ember::grammar {

size_t StackSets::KeyHash::operator()(const std::vector<int32_t>& v) const noexcept {
  uint64_t h = 0xCBF29CE484222325ull;
  for (const int32_t x : v) h = (h ^ static_cast<uint32_t>(x)) * 0x100000001B3ull;
  return static_cast<size_t>(h ^ (h >> 29));
}

StackSets::StackSets(std::shared_ptr<const CompiledGrammar> grammar)
    : grammar_(std::move(grammar)), nc_(static_cast<size_t>(grammar_->n_classes())) {
  set_begin_.push_back(0);
}

size_t StackSets::memory_bytes() const noexcept {
  return nodes_.capacity() * sizeof(Node) + node_ids_.size() * (sizeof(Node) + 16) + set_tops_.capacity() * 4 +
         set_begin_.capacity() * 4 + flags_.capacity() + transitions_.capacity() * 4 + set_ids_.size() * 48;
}

int32_t StackSets::intern_node(Node n) {
  auto [it, inserted] = node_ids_.emplace(n, static_cast<int32_t>(nodes_.size()));
  if (inserted) {
    nodes_.push_back(n);
    node_mark_.push_back(0);
    parent_sets_.push_back(kUnknown);
  }
  return it->second;
}

void StackSets::close(int32_t start, uint8_t& flags) {
  // Iterative depth-first search; node_mark_ == stamp_ marks nodes seen in this closure.
  work_.clear();
  work_.push_back(start);
  while (!work_.empty()) {
    const int32_t id = work_.back();
    work_.pop_back();
    if (id == kBottom) {
      flags |= kComplete;
      continue;
    }
    if (id == kEscape) {
      flags |= kEscaped;
      continue;
    }
    if (node_mark_[static_cast<size_t>(id)] == stamp_) continue;
    node_mark_[static_cast<size_t>(id)] = stamp_;
    const Node n = nodes_[static_cast<size_t>(id)];
    const CompiledRule& rule = grammar_->rule(n.rule);
    const auto s = static_cast<size_t>(n.state);
    if (rule.consumes[s]) scratch_.push_back(id);
    if (rule.accepting[s]) work_.push_back(n.parent);
    for (int32_t k = rule.call_begin[s]; k < rule.call_begin[s + 1]; ++k) {
      const CallEdge& call = rule.calls[static_cast<size_t>(k)];
      const auto ret = static_cast<size_t>(call.return_state);
      // A return to a state that can only end the rule needs no frame: return to our parent.
      const bool tail = rule.accepting[ret] && !rule.consumes[ret] && rule.call_begin[ret] == rule.call_begin[ret + 1];
      const int32_t parent = tail ? n.parent : intern_node({n.rule, call.return_state, n.parent});
      work_.push_back(intern_node({call.rule, 0, parent}));
    }
  }
}

int32_t StackSets::intern_set(uint8_t flags) {
  std::sort(scratch_.begin(), scratch_.end());
  scratch_.erase(std::unique(scratch_.begin(), scratch_.end()), scratch_.end());
  // An ambiguous grammar can double the ways to read the output at every byte: bound the work
  // and memory one sequence may take instead of running out of either.
  if (scratch_.size() > kMaxTops || nodes_.size() > kMaxNodes) {
    fail(ErrorCode::kInvalidArgument,
         "the grammar is too ambiguous: more than {} ways to read the output so far (rewrite the rules so that "
         "fewer alternatives can match the same text)",
         scratch_.size() > kMaxTops ? kMaxTops : kMaxNodes);
  }
  if (scratch_.empty() && flags == 0) return kDead;
  scratch_.push_back(-static_cast<int32_t>(flags) - 1);  // the flags are part of the key
  auto [it, inserted] = set_ids_.emplace(scratch_, static_cast<int32_t>(flags_.size()));
  scratch_.pop_back();
  if (inserted) {
    set_tops_.insert(set_tops_.end(), scratch_.begin(), scratch_.end());
    set_begin_.push_back(static_cast<uint32_t>(set_tops_.size()));
    flags_.push_back(flags);
    transitions_.resize(transitions_.size() + nc_, kUnknown);
  }
  return it->second;
}

int32_t StackSets::root_set() {
  if (root_set_ == kUnknown) {
    scratch_.clear();
    uint8_t flags = 0;
    ++stamp_;
    close(intern_node({grammar_->root(), 0, kBottom}), flags);
    root_set_ = intern_set(flags);
  }
  return root_set_;
}

int32_t StackSets::frame_set(int32_t rule, int32_t state) {
  scratch_.clear();
  uint8_t flags = 0;
  ++stamp_;
  close(intern_node({rule, state, kEscape}), flags);
  return intern_set(flags);
}

int32_t StackSets::parent_set(int32_t node) {
  int32_t& memo = parent_sets_[static_cast<size_t>(node)];
  if (memo == kUnknown) {
    scratch_.clear();
    uint8_t flags = 0;
    ++stamp_;
    close(nodes_[static_cast<size_t>(node)].parent, flags);
    const int32_t id = intern_set(flags);
    parent_sets_[static_cast<size_t>(node)] = id;  // interning may have grown parent_sets_
    return id;
  }
  return memo;
}

std::span<const int32_t> StackSets::tops(int32_t set) const {
  const auto s = static_cast<size_t>(set);
  return std::span(set_tops_).subspan(set_begin_[s], set_begin_[s + 1] - set_begin_[s]);
}

int32_t StackSets::compute_step(int32_t set, uint8_t byte, size_t slot) {
  scratch_.clear();
  uint8_t flags = 0;
  ++stamp_;
  const auto s = static_cast<size_t>(set);
  for (uint32_t i = set_begin_[s]; i < set_begin_[s + 1]; ++i) {
    const Node n = nodes_[static_cast<size_t>(set_tops_[i])];
    const int32_t next = grammar_->next(n.rule, n.state, byte);
    if (next >= 0) close(intern_node({n.rule, next, n.parent}), flags);
  }
  const int32_t id = intern_set(flags);
  transitions_[slot] = id;
  return id;
}

}  // namespace ember::grammar
