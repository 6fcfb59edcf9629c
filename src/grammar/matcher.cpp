// Masks from cache entries plus checks of the uncertain tokens; cache entries from a trie walk.
#include "grammar/matcher.h"

#include <algorithm>

#include "core/check.h"

namespace ember::grammar {

GrammarMatcher::GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar, const VocabTrie& trie,
                               std::span<const int32_t> end_tokens, MaskCache* cache)
    : sets_(std::move(grammar)), trie_(&trie), end_tokens_(end_tokens.begin(), end_tokens.end()), cache_(cache) {
  state_ = sets_.root_set();
  walk_sets_.resize(static_cast<size_t>(trie.max_depth()) + 1);
  walk_escapes_.resize(static_cast<size_t>(trie.max_depth()) + 1);
}

void GrammarMatcher::set_lazy(std::vector<Trigger> triggers, bool in_grammar, bool at_start) {
  triggers_ = std::move(triggers);
  trigger_in_grammar_ = in_grammar;
  triggers_at_start_ = at_start;
  waiting_ = !triggers_.empty();
}

void GrammarMatcher::add_token_text(int32_t token, std::string text) {
  token_texts_.emplace_back(token, std::move(text));
}

// The bytes `token` stands for here: its piece, or the text add_token_text() gave it.
static std::string_view token_bytes(const VocabTrie& trie, const std::vector<std::pair<int32_t, std::string>>& texts,
                                    int32_t token) {
  for (const auto& [id, text] : texts) {
    if (id == token) return text;
  }
  return token >= 0 && token < trie.n_vocab() ? trie.piece(token) : std::string_view();
}

void GrammarMatcher::watch_for_trigger(int32_t token) {
  size_t max_text = 0;
  for (const Trigger& t : triggers_) {
    if (t.token >= 0 && t.token == token) {
      waiting_ = false;
      // A control token has no bytes: the language then starts right after it either way.
      // The trigger's text, not the token's piece: a control token has none.
      if (trigger_in_grammar_ && !accept_bytes(t.text)) abandoned_ = true;
      return;
    }
    max_text = std::max(max_text, t.text.size());
  }
  recent_ += token_bytes(*trie_, token_texts_, token);
  if (triggers_at_start_) {
    // recent_ holds the whole output so far: a trigger must start it, or could still.
    for (const Trigger& t : triggers_) {
      if (recent_.starts_with(t.text)) {
        waiting_ = false;
        if (!accept_bytes(std::string_view(recent_).substr(trigger_in_grammar_ ? 0 : t.text.size()))) abandoned_ = true;
        recent_.clear();
        return;
      }
    }
    bool could_start = false;
    for (const Trigger& t : triggers_) could_start = could_start || t.text.starts_with(recent_);
    if (!could_start) {
      waiting_ = false;
      abandoned_ = true;
      recent_.clear();
    }
    return;
  }
  size_t best = std::string::npos;
  const Trigger* found = nullptr;
  for (const Trigger& t : triggers_) {
    const size_t at = t.text.empty() ? std::string::npos : recent_.find(t.text);
    if (at < best) {
      best = at;
      found = &t;
    }
  }
  if (found != nullptr) {
    waiting_ = false;
    const size_t from = trigger_in_grammar_ ? best : best + found->text.size();
    if (!accept_bytes(std::string_view(recent_).substr(from))) abandoned_ = true;
    recent_.clear();
    return;
  }
  // Keep only what could still be the start of a trigger.
  if (max_text > 0 && recent_.size() >= max_text) recent_.erase(0, recent_.size() - (max_text - 1));
}

bool GrammarMatcher::accept(int32_t token) {
  if (waiting_) {
    watch_for_trigger(token);
    return true;
  }
  if (abandoned_) return true;
  if (ended_) return false;
  if (std::find(end_tokens_.begin(), end_tokens_.end(), token) != end_tokens_.end()) {
    if (!sets_.complete(state_)) return false;
    ended_ = true;
    return true;
  }
  if (token < 0 || token >= trie_->n_vocab()) return false;
  const std::string_view piece = token_bytes(*trie_, token_texts_, token);
  if (piece.empty()) return false;  // control tokens never match bytes
  return accept_bytes(piece);
}

bool GrammarMatcher::allows(int32_t token) {
  if (unconstrained()) return true;
  if (ended_) return false;
  if (std::find(end_tokens_.begin(), end_tokens_.end(), token) != end_tokens_.end()) return sets_.complete(state_);
  const std::string_view piece = token_bytes(*trie_, token_texts_, token);
  if (piece.empty()) return false;
  return sets_.run(state_, piece) != StackSets::kDead;
}

bool GrammarMatcher::accept_bytes(std::string_view bytes) {
  if (ended_) return bytes.empty();
  const int32_t next = sets_.run(state_, bytes);
  if (next == StackSets::kDead) return false;
  state_ = next;
  return true;
}

void GrammarMatcher::fill_mask(TokenMask& mask) {
  if (mask.n_vocab() < trie_->n_vocab()) mask.resize(trie_->n_vocab());
  mask.clear();
  if (ended_) return;
  // The set's tops include the callers' frames wherever a rule may already end (the closure pops
  // them), so each top only answers for the tokens that start inside its own frame. tops() views
  // storage that interning new sets may move: copy the ids first.
  const std::span<const int32_t> view = sets_.tops(state_);
  tops_.assign(view.begin(), view.end());
  // The same frame under different parents shares its accepted set: merge it once.
  merged_.clear();
  for (const int32_t node : tops_) add_frame(node, mask);
  for (const auto& [token, text] : token_texts_) {
    if (sets_.run(state_, text) != StackSets::kDead) mask.set(token);
  }
  // Last: an end token is allowed exactly when the grammar is complete, whatever its bytes matched.
  for (const int32_t t : end_tokens_) {
    if (t < 0 || t >= mask.n_vocab()) continue;
    if (sets_.complete(state_)) {
      mask.set(t);
    } else {
      mask.reset(t);
    }
  }
}

void GrammarMatcher::add_frame(int32_t node, TokenMask& mask) {
  const StackSets::Node n = sets_.node(node);
  const std::shared_ptr<const MaskEntry> entry = entry_for(n.rule, n.state);
  const uint64_t frame = (static_cast<uint64_t>(static_cast<uint32_t>(n.rule)) << 32) | static_cast<uint32_t>(n.state);
  if (std::find(merged_.begin(), merged_.end(), frame) == merged_.end()) {
    merged_.push_back(frame);
    mask.merge(entry->accepted);
  }
  if (entry->uncertain.empty()) return;
  // Tokens that end the frame's rule part way: the rest must fit where the frame returns to.
  const int32_t parent = sets_.parent_set(node);
  if (sets_.tops(parent).empty()) return;  // nothing can follow the rule: no rest fits
  for (const auto& [token, consumed] : entry->uncertain) {
    if (mask.test(token)) continue;
    if (sets_.run(parent, trie_->piece(token).substr(consumed)) != StackSets::kDead) mask.set(token);
  }
}

std::shared_ptr<const MaskEntry> GrammarMatcher::entry_for(int32_t rule, int32_t state) {
  const MaskKey key{.trie_id = trie_->id(), .rule_hash = sets_.grammar().rule(rule).hash, .state = state};
  std::shared_ptr<const MaskEntry> entry = cache_->find(key);
  if (!entry) {
    entry = compute_entry(rule, state);
    cache_->insert(key, entry);
  }
  return entry;
}

// One depth-first walk of the trie from the frame alone (its parent is kEscape). A token is
// accepted when some reading keeps it inside the frame's rule to its last byte — or ends the rule
// exactly at its last byte: the caller can always go on from there. A subtree that dies after the
// rule ended at depth k (k >= 1) is uncertain with k bytes consumed; an end at depth 0 needs
// nothing: the real set then holds the caller's frames as tops of their own.
std::shared_ptr<const MaskEntry> GrammarMatcher::compute_entry(int32_t rule, int32_t state) {
  auto entry = std::make_shared<MaskEntry>();
  entry->accepted.assign((static_cast<size_t>(trie_->n_vocab()) + 63) / 64, 0);
  const VocabTrie& trie = *trie_;
  walk_sets_[0] = sets_.frame_set(rule, state);
  walk_escapes_[0] = 0;
  for (int32_t i = 1; i < trie.size();) {
    const auto d = static_cast<size_t>(trie.depth(i));
    const int32_t s = sets_.step(walk_sets_[d - 1], trie.byte(i));
    if (s == StackSets::kDead) {
      if (walk_escapes_[d - 1] > 0) {
        for (size_t k = 1; k < d; ++k) {
          if (!sets_.escaped(walk_sets_[k])) continue;
          for (const int32_t token : trie.tokens_below(i))
            entry->uncertain.emplace_back(token, static_cast<uint16_t>(k));
        }
      }
      i = trie.end(i);
      continue;
    }
    walk_sets_[d] = s;
    walk_escapes_[d] = walk_escapes_[d - 1] + (sets_.escaped(s) ? 1 : 0);
    for (const int32_t token : trie.tokens_at(i)) {
      entry->accepted[static_cast<size_t>(token) >> 6] |= uint64_t{1} << (token & 63);
    }
    ++i;
  }
  std::sort(entry->uncertain.begin(), entry->uncertain.end());
  entry->uncertain.shrink_to_fit();
  return entry;
}

}  // namespace ember::grammar
