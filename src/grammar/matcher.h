// GrammarMatcher: follows one sequence's output through a compiled grammar and says which tokens
// may come next. The mask for a state is built from the shared MaskCache (the tokens each top
// frame accepts whatever lies below it) plus a check of the few tokens that end a frame part way
// against the real stack; a cache miss is one walk of the vocabulary's byte trie.
#pragma once

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

  bool can_end() const { return !ended_ && state_ != StackSets::kDead && sets_.complete(state_); }
  // The grammar is complete and nothing more can follow (or an end token was accepted).
  bool finished() const {
    return !unconstrained() && (ended_ || (sets_.complete(state_) && sets_.tops(state_).empty()));
  }

 private:
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
  std::string recent_;                 // while waiting: the last bytes accepted, enough to hold a trigger's start
  std::vector<int32_t> tops_;          // per fill_mask: the state's top frames
  std::vector<uint64_t> merged_;       // per fill_mask: (rule, state) frames already merged
  std::vector<int32_t> walk_sets_;     // per trie depth during a walk
  std::vector<int32_t> walk_escapes_;  // per trie depth: escapes on the path so far
};

}  // namespace ember::grammar
