// The matcher's state space: stacks of (rule, state) frames, hash-consed so that a stack is one
// node id; sets of stacks (every way the grammar can be read so far) interned as set ids; and the
// byte transitions between sets memoized, which builds a DFA over stack sets lazily. A trie walk
// over the vocabulary then costs one table lookup per node once the sets it meets are known.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "grammar/compiled_grammar.h"

namespace ember::grammar {

class StackSets {
 public:
  // Parents that are not frames: below the root (reaching it = the grammar is complete) and
  // below a lone frame of a mask-cache walk (reaching it = that frame's rule has ended).
  static constexpr int32_t kBottom = -1;
  static constexpr int32_t kEscape = -2;
  static constexpr int32_t kDead = -1;  // a set id: no stack survives

  struct Node {
    int32_t rule;
    int32_t state;
    int32_t parent;  // a node id, kBottom or kEscape
  };

  explicit StackSets(std::shared_ptr<const CompiledGrammar> grammar);

  const CompiledGrammar& grammar() const noexcept { return *grammar_; }

  int32_t root_set();                              // the grammar before any byte
  int32_t frame_set(int32_t rule, int32_t state);  // one frame over kEscape
  int32_t parent_set(int32_t node);                // where `node` returns to once its rule ends
  int32_t step(int32_t set, uint8_t byte) {
    const size_t slot = static_cast<size_t>(set) * nc_ + grammar_->byte_class(byte);
    const int32_t known = transitions_[slot];
    return known != kUnknown ? known : compute_step(set, byte, slot);
  }
  int32_t run(int32_t set, std::string_view bytes) {
    for (const char ch : bytes) {
      if (set == kDead) break;
      set = step(set, static_cast<uint8_t>(ch));
    }
    return set;
  }

  // The frames on top of the set's stacks: each can take a byte.
  std::span<const int32_t> tops(int32_t set) const;
  bool complete(int32_t set) const { return (flags_[static_cast<size_t>(set)] & kComplete) != 0; }
  bool escaped(int32_t set) const { return (flags_[static_cast<size_t>(set)] & kEscaped) != 0; }
  const Node& node(int32_t id) const { return nodes_[static_cast<size_t>(id)]; }
  size_t set_count() const noexcept { return flags_.size(); }
  size_t memory_bytes() const noexcept;

 private:
  // Past these a step throws Error(kInvalidArgument): readings of the output in one set, and
  // frames in all (an ambiguous grammar can double them per byte).
  static constexpr size_t kMaxTops = 20'000;
  static constexpr size_t kMaxNodes = 4'000'000;
  static constexpr int32_t kUnknown = -2;
  static constexpr uint8_t kComplete = 1;
  static constexpr uint8_t kEscaped = 2;

  struct NodeHash {
    size_t operator()(const Node& n) const noexcept {
      uint64_t h = static_cast<uint32_t>(n.rule) * 0x9E3779B97F4A7C15ull;
      h ^= static_cast<uint32_t>(n.state) + 0x7F4A7C15ull + (h << 6) + (h >> 2);
      h ^= static_cast<uint32_t>(n.parent) + 0x165667B1ull + (h << 6) + (h >> 2);
      return static_cast<size_t>(h * 0xFF51AFD7ED558CCDull);
    }
  };
  struct NodeEq {
    bool operator()(const Node& a, const Node& b) const noexcept {
      return a.rule == b.rule && a.state == b.state && a.parent == b.parent;
    }
  };
  struct KeyHash {
    size_t operator()(const std::vector<int32_t>& v) const noexcept;
  };

  int32_t intern_node(Node n);
  // Adds to scratch_ the tops reachable from `node` without a byte (pushing calls, popping
  // finished frames), and the flags met on the way.
  void close(int32_t node, uint8_t& flags);
  int32_t intern_set(uint8_t flags);  // from scratch_ (sorted, deduplicated here)
  int32_t compute_step(int32_t set, uint8_t byte, size_t slot);

  std::shared_ptr<const CompiledGrammar> grammar_;
  size_t nc_;
  std::vector<Node> nodes_;
  std::unordered_map<Node, int32_t, NodeHash, NodeEq> node_ids_;
  std::vector<uint32_t> node_mark_;
  uint32_t stamp_ = 0;
  std::vector<int32_t> parent_sets_;  // per node, memo of parent_set(); kUnknown until asked

  std::vector<int32_t> set_tops_;     // all sets' tops, concatenated
  std::vector<uint32_t> set_begin_;   // [set], [set + 1]: its tops in set_tops_
  std::vector<uint8_t> flags_;        // per set
  std::vector<int32_t> transitions_;  // [set * n_classes + class]
  std::unordered_map<std::vector<int32_t>, int32_t, KeyHash> set_ids_;
  std::vector<int32_t> scratch_;
  std::vector<int32_t> work_;
  int32_t root_set_ = kUnknown;
};

}  // namespace ember::grammar
