// GrammarMatcher: follows one sequence's output through a compiled grammar and says which tokens
// may come next. The mask for a state is built from the shared MaskCache (the tokens each top
// frame accepts whatever lies below it) plus a check of the few tokens that end a frame part way
// against the real stack; a cache miss is one walk of the vocabulary's byte trie.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "grammar/compiled_grammar.h"
#include "grammar/mask_cache.h"
#include "grammar/stack_sets.h"
#include "grammar/token_mask.h"
#include "tokenizer/vocab_trie.h"

namespace ember::grammar {

class GrammarMatcher {
 public:
  // Per UTF-8 automaton state (utf8::next_state), the bytes that can follow, one per run of bytes
  // the grammar's automata cannot tell apart.
  using CharBytes = std::array<std::vector<uint8_t>, 8>;

  // `trie` (the vocabulary's, Tokenizer::vocab_trie()) must outlive the matcher. `end_tokens`:
  // the end-of-generation tokens, allowed exactly when the grammar is complete.
  GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar, const VocabTrie& trie,
                 std::span<const int32_t> end_tokens, MaskCache* cache = &MaskCache::shared());

  // Lazy mode: the matcher waits, allowing everything, until a trigger appears in the accepted
  // tokens — its text in their bytes (matched across token boundaries), or its token when `token`
  // is >= 0 — and then starts the grammar on the bytes from the trigger's start (`in_grammar`) or
  // from its end. Bytes after the trigger that the grammar rejects end the constraint for good:
  // the output goes on unconstrained (it was not the construct the grammar describes).
  struct Trigger {
    std::string text;
    int32_t token = -1;
  };
  // `at_start`: only a trigger at the very start of the output counts; output that cannot begin
  // with one abandons the constraint.
  void set_lazy(std::vector<Trigger> triggers, bool in_grammar, bool at_start = false);
  // Lets `token` (a control token, which has no bytes in the trie) stand for `text` in the grammar.
  void add_token_text(int32_t token, std::string text);
  // True while a lazy matcher waits for its trigger (or after it gave up): no mask applies.
  bool unconstrained() const noexcept { return waiting_ || abandoned_; }

  // The tokens allowed next, into `mask` (resized to the vocabulary).
  void fill_mask(TokenMask& mask);
  // Advances by a token; false (and no change) when the grammar does not allow it.
  bool accept(int32_t token);
  // Advances by bytes (for tests and prompts that start the output); false when not allowed.
  bool accept_bytes(std::string_view bytes);
  // Whether accept(token) would succeed, without advancing: one token checked alone, the slow
  // way fill_mask must agree with (tests).
  bool allows(int32_t token);

  // What the trie walks of cache misses did (tests and benchmarks): nodes stepped through, and
  // subtrees accepted from a run without a walk, whole or token by token by length.
  struct WalkStats {
    uint64_t walks = 0;
    uint64_t nodes = 0;
    uint64_t whole_runs = 0;
    uint64_t sliced_runs = 0;
  };
  const WalkStats& walk_stats() const noexcept { return walk_stats_; }

  // Everything accept() changes, to roll a speculative draft back: restore(checkpoint()) after
  // any accepts leaves the matcher as it was (the memoized sets and the cache only grow).
  struct Checkpoint {
    int32_t state;
    bool ended, waiting, abandoned;
    std::string recent;
  };
  Checkpoint checkpoint() const { return {state_, ended_, waiting_, abandoned_, recent_}; }
  void restore(const Checkpoint& c) {
    state_ = c.state;
    ended_ = c.ended;
    waiting_ = c.waiting;
    abandoned_ = c.abandoned;
    recent_ = c.recent;
  }
  // The same, taking the checkpoint's text: cannot throw (for a scope guard's destructor).
  void restore(Checkpoint&& c) noexcept {
    state_ = c.state;
    ended_ = c.ended;
    waiting_ = c.waiting;
    abandoned_ = c.abandoned;
    recent_ = std::move(c.recent);
  }

  bool can_end() const { return !ended_ && state_ != StackSets::kDead && sets_.complete(state_); }
  // The grammar is complete and nothing more can follow (or an end token was accepted).
  bool finished() const {
    return !unconstrained() && (ended_ || (sets_.complete(state_) && sets_.tops(state_).empty()));
  }

 private:
  // A state's run: the characters that all lead it to one next state, and how many such
  // characters in a row its rule takes from there on (a string's content, `maxLength` or not). A
  // trie subtree made only of those characters is accepted without walking it: whole when no
  // token in it is longer than the run, else token by token by length when the run is `sliced`.
  struct Run {
    static constexpr int32_t kUnknown = -1;
    int32_t length = kUnknown;  // characters, capped past the vocabulary's longest token
    int32_t next = -1;          // the state after one of the characters; -1: no run
    uint64_t ascii[2] = {0, 0};
    bool non_ascii = false;  // every well-formed non-ASCII character belongs to the run
    bool stepped = false;    // next, ascii and non_ascii are known
    bool exact = false;      // the run ends after `length` characters (not a cap or a bound)
    // Exact, every state to the run's end only takes bytes (no calls, cannot end the rule), and
    // the end takes none of the run's characters: a token of them fits iff no longer than `length`.
    bool sliced = false;
    bool same_chars(const Run& o) const {
      return ascii[0] == o.ascii[0] && ascii[1] == o.ascii[1] && non_ascii == o.non_ascii;
    }
  };
  const Run& run(int32_t rule, int32_t state);
  Run& stepped_run(int32_t rule, int32_t state);
  bool only_bytes(int32_t rule, int32_t state) const;
  bool takes_none_of(int32_t rule, int32_t state, const Run& r) const;
  // Accepts the tokens below trie `node` without walking it, if the frame's own rule (in `state`
  // there) takes them as a run; false when it cannot tell.
  bool accept_run_subtree(int32_t rule, int32_t state, int32_t node, size_t depth, MaskEntry& entry);
  void add_frame(int32_t node, TokenMask& mask);
  void watch_for_trigger(int32_t token);
  std::shared_ptr<const MaskEntry> entry_for(int32_t rule, int32_t state);
  std::shared_ptr<const MaskEntry> compute_entry(int32_t rule, int32_t state);

  StackSets sets_;
  const VocabTrie* trie_;
  std::vector<int32_t> end_tokens_;
  MaskCache* cache_;
  int32_t state_;
  bool ended_ = false;
  bool waiting_ = false;    // lazy, before the trigger
  bool abandoned_ = false;  // lazy, the bytes after the trigger did not fit
  bool trigger_in_grammar_ = true;
  bool triggers_at_start_ = false;
  std::vector<Trigger> triggers_;
  std::vector<std::pair<int32_t, std::string>> token_texts_;  // add_token_text()
  std::string recent_;                  // while waiting: the last bytes accepted, enough to hold a trigger's start
  std::vector<int32_t> tops_;           // per fill_mask: the state's top frames
  std::vector<uint64_t> merged_;        // per fill_mask: (rule, state) frames already merged
  std::vector<int32_t> walk_sets_;      // per trie depth during a walk
  std::vector<int32_t> walk_escapes_;   // per trie depth: escapes on the path so far
  std::vector<int32_t> walk_own_;       // per trie depth: the walked frame's own state, -1 once it left
  std::vector<int32_t> walk_chars_;     // per trie depth: characters on the path
  std::vector<std::vector<Run>> runs_;  // [rule][state], computed as walks meet them
  CharBytes char_bytes_;
  WalkStats walk_stats_;
};

}  // namespace ember::grammar
