// Masks from cache entries plus checks of the uncertain token groups; cache entries from a trie walk.
#include "grammar/matcher.h"

#include <algorithm>
#include <array>

#include "core/check.h"
#include "core/utf8.h"

namespace ember::grammar {

static_assert(std::tuple_size_v<GrammarMatcher::CharBytes> == utf8::kAutomatonStates);

GrammarMatcher::GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar, const VocabTrie& trie,
                               std::span<const int32_t> end_tokens, MaskCache* cache)
    : sets_(std::move(grammar)), trie_(&trie), end_tokens_(end_tokens.begin(), end_tokens.end()), cache_(cache) {
  state_ = sets_.root_set();
  walk_sets_.resize(static_cast<size_t>(trie.max_depth()) + 1);
  walk_escapes_.resize(static_cast<size_t>(trie.max_depth()) + 1);
  walk_own_.resize(static_cast<size_t>(trie.max_depth()) + 1);
  walk_chars_.resize(static_cast<size_t>(trie.max_depth()) + 1);
  runs_.resize(static_cast<size_t>(sets_.grammar().rule_count()));
  // One byte per run of bytes that the automata and UTF-8 cannot tell apart: lead bytes of
  // non-ASCII characters for state 0, the allowed continuation bytes for the others.
  const CompiledGrammar& g = sets_.grammar();
  for (int u = 0; u < utf8::kAutomatonStates; ++u) {
    const int first = u == 0 ? 0xC2 : 0x80;
    const int last = u == 0 ? 0xF4 : 0xBF;
    for (int b = first; b <= last; ++b) {
      const auto byte = static_cast<uint8_t>(b);
      if (utf8::next_state(u, byte) < 0) continue;
      const bool same = b > first && g.byte_class(byte) == g.byte_class(static_cast<uint8_t>(b - 1)) &&
                        utf8::next_state(u, byte) == utf8::next_state(u, static_cast<uint8_t>(b - 1));
      if (!same) char_bytes_[static_cast<size_t>(u)].push_back(byte);
    }
  }
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
  const VocabTrie& trie = *trie_;
  for (const MaskEntry::Uncertain& group : entry->uncertain) {
    // The bytes down to the group's node are every token's: one run decides them all.
    const auto depth = static_cast<size_t>(trie.depth(group.node));
    const std::string_view path = trie.piece(trie.tokens_below(group.node)[0]).substr(0, depth);
    const int32_t at = sets_.run(parent, path.substr(group.consumed));
    if (at == StackSets::kDead) continue;
    for (const int32_t token : trie.tokens_at(group.node)) mask.set(token);
    // The rest of the subtree, walked from there (walk_sets_ is free outside compute_entry).
    walk_sets_[depth] = at;
    for (int32_t i = group.node + 1; i < trie.end(group.node);) {
      const auto d = static_cast<size_t>(trie.depth(i));
      const int32_t s = sets_.step(walk_sets_[d - 1], trie.byte(i));
      if (s == StackSets::kDead) {
        i = trie.end(i);
        continue;
      }
      walk_sets_[d] = s;
      for (const int32_t token : trie.tokens_at(i)) mask.set(token);
      ++i;
    }
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

namespace {

// Subtrees of up to this many nodes are walked rather than checked against a run.
constexpr int32_t kMinSkippedSubtree = 8;

// From `state` part way through a character (UTF-8 automaton state `utf8`, 1-7): the state every
// well-formed rest of the character leads to, or -1 when some rest dies or two lead apart.
// `memo` holds (state, utf8, answer): the states met repeat for every lead byte.
int32_t char_end_state(const CompiledGrammar& g, const GrammarMatcher::CharBytes& bytes, int32_t rule, int32_t state,
                       int utf8, std::vector<std::array<int32_t, 3>>& memo) {
  for (const auto& m : memo) {
    if (m[0] == state && m[1] == utf8) return m[2];
  }
  int32_t target = -2;  // none seen yet
  for (const uint8_t b : bytes[static_cast<size_t>(utf8)]) {
    const int next_utf8 = utf8::next_state(utf8, b);
    const int32_t next = g.next(rule, state, b);
    const int32_t end = next < 0 ? -1 : next_utf8 == 0 ? next : char_end_state(g, bytes, rule, next, next_utf8, memo);
    target = target == -2 || target == end ? end : -1;
    if (target == -1) break;
  }
  memo.push_back({state, utf8, target});
  return target;
}

}  // namespace

// The characters that lead `state` to its most common next state: that state, and the ASCII
// bytes among them; non_ascii when every well-formed non-ASCII character leads there too.
GrammarMatcher::Run& GrammarMatcher::stepped_run(int32_t rule, int32_t state) {
  std::vector<Run>& rule_runs = runs_[static_cast<size_t>(rule)];
  if (rule_runs.empty()) rule_runs.resize(static_cast<size_t>(sets_.grammar().rule(rule).n_states));
  Run& r = rule_runs[static_cast<size_t>(state)];
  if (r.stepped) return r;
  r.stepped = true;
  const CompiledGrammar& g = sets_.grammar();
  std::vector<std::array<int32_t, 3>> memo;
  int32_t non_ascii_end = -2;
  for (const uint8_t b : char_bytes_[0]) {
    const int32_t next = g.next(rule, state, b);
    const int32_t end = next < 0 ? -1 : char_end_state(g, char_bytes_, rule, next, utf8::next_state(0, b), memo);
    non_ascii_end = non_ascii_end == -2 || non_ascii_end == end ? end : -1;
    if (non_ascii_end == -1) break;
  }
  if (non_ascii_end >= 0) {
    r.next = non_ascii_end;
    r.non_ascii = true;
  } else {
    std::vector<std::pair<int32_t, int32_t>> counts;  // (next state, ASCII bytes leading there)
    for (int b = 0; b < 128; ++b) {
      const int32_t next = g.next(rule, state, static_cast<uint8_t>(b));
      if (next < 0) continue;
      auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == next; });
      if (it == counts.end()) {
        counts.emplace_back(next, 1);
      } else {
        ++it->second;
      }
    }
    int32_t best = 0;
    for (const auto& [next, count] : counts) {
      if (count > best) {
        best = count;
        r.next = next;
      }
    }
  }
  if (r.next < 0) return r;
  for (int b = 0; b < 128; ++b) {
    if (g.next(rule, state, static_cast<uint8_t>(b)) == r.next) r.ascii[b >> 6] |= uint64_t{1} << (b & 63);
  }
  return r;
}

// No calls and cannot end the rule: the stack set there is the frame alone.
bool GrammarMatcher::only_bytes(int32_t rule, int32_t state) const {
  const CompiledRule& r = sets_.grammar().rule(rule);
  const auto s = static_cast<size_t>(state);
  return !r.accepting[s] && r.call_begin[s] == r.call_begin[s + 1];
}

bool GrammarMatcher::takes_none_of(int32_t rule, int32_t state, const Run& run) const {
  const CompiledGrammar& g = sets_.grammar();
  for (int b = 0; b < 128; ++b) {
    if ((run.ascii[b >> 6] >> (b & 63) & 1) != 0 && g.next(rule, state, static_cast<uint8_t>(b)) >= 0) return false;
  }
  if (run.non_ascii) {
    for (int b = 0xC2; b <= 0xF4; ++b) {
      if (g.next(rule, state, static_cast<uint8_t>(b)) >= 0) return false;
    }
  }
  return true;
}

// The run from `state`: follows next states while they take the same characters, until one does
// not (the run ends there), a state repeats (the run never ends) or the run is far longer than
// any token (a bound is enough).
const GrammarMatcher::Run& GrammarMatcher::run(int32_t rule, int32_t state) {
  Run& first = stepped_run(rule, state);
  if (first.length != Run::kUnknown) return first;
  if (first.next < 0) {
    first.length = 0;
    first.exact = true;
    return first;
  }
  const int32_t cap = trie_->max_chars() + 1;
  std::vector<int32_t> chain = {state};  // chain[k]: the state after k characters of the run
  int32_t length = 0;                    // characters the run takes from chain[0]
  bool exact = false;
  bool sliced = false;
  bool cut = false;  // stopped at 2 * cap: the later states' lengths are not known
  for (;;) {
    const int32_t next = stepped_run(rule, chain.back()).next;
    if (std::find(chain.begin(), chain.end(), next) != chain.end()) {
      length = cap + static_cast<int32_t>(chain.size());  // a loop: the run never ends
      break;
    }
    const Run& n = stepped_run(rule, next);
    if (!n.same_chars(first)) {
      length = static_cast<int32_t>(chain.size());
      exact = true;
      sliced = only_bytes(rule, next) && takes_none_of(rule, next, first);
      break;
    }
    if (n.length != Run::kUnknown) {
      length = n.length + static_cast<int32_t>(chain.size());
      exact = n.exact;
      sliced = n.sliced;
      break;
    }
    if (static_cast<int32_t>(chain.size()) >= 2 * cap) {
      length = static_cast<int32_t>(chain.size());  // at least: the first `cap` states get `cap`
      cut = true;
      break;
    }
    chain.push_back(next);
  }
  for (size_t k = chain.size(); k-- > 0;) {
    Run& r = stepped_run(rule, chain[k]);
    const int32_t left = length - static_cast<int32_t>(k);
    // Past a cut only a lower bound is known: leave those states to find their own run.
    if (cut && left < cap) continue;
    r.length = std::min(cap, left);
    r.exact = exact && left < cap;
    sliced = sliced && only_bytes(rule, chain[k]);
    r.sliced = sliced && r.exact;
  }
  return first;
}

bool GrammarMatcher::accept_run_subtree(int32_t rule, int32_t state, int32_t node, size_t depth, MaskEntry& entry) {
  const VocabTrie::Below& below = trie_->below(node);
  if (!below.well_formed) return false;
  const Run& r = run(rule, state);
  if ((below.ascii[0] & ~r.ascii[0]) != 0 || (below.ascii[1] & ~r.ascii[1]) != 0 || (below.non_ascii && !r.non_ascii)) {
    return false;
  }
  auto accept = [&](int32_t token) { entry.accepted[static_cast<size_t>(token) >> 6] |= uint64_t{1} << (token & 63); };
  const std::span<const TokenId> tokens = trie_->tokens_below(node);
  if (r.length >= below.max_chars) {
    for (const int32_t token : tokens) accept(token);
    ++walk_stats_.whole_runs;
    return true;
  }
  // Tokens longer than the run die where it ends, inside the frame: rejected, unless the rule
  // could have ended earlier on the path (then they are uncertain: walk them) or other readings
  // share the set.
  const int32_t set = walk_sets_[depth];
  if (!r.sliced || walk_escapes_[depth] > 0 || sets_.escaped(set) || sets_.tops(set).size() != 1) return false;
  const std::span<const uint16_t> chars = trie_->chars_below(node);
  const int32_t limit = r.length + walk_chars_[depth];
  for (size_t k = 0; k < tokens.size(); ++k) {
    if (chars[k] <= limit) accept(tokens[k]);
  }
  ++walk_stats_.sliced_runs;
  return true;
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
  ++walk_stats_.walks;
  walk_sets_[0] = sets_.frame_set(rule, state);
  walk_escapes_[0] = 0;
  walk_own_[0] = state;
  walk_chars_[0] = 0;
  const CompiledGrammar& g = sets_.grammar();
  for (int32_t i = 1; i < trie.size();) {
    const auto d = static_cast<size_t>(trie.depth(i));
    const int32_t s = sets_.step(walk_sets_[d - 1], trie.byte(i));
    ++walk_stats_.nodes;
    if (s == StackSets::kDead) {
      if (walk_escapes_[d - 1] > 0) {
        for (size_t k = 1; k < d; ++k) {
          if (sets_.escaped(walk_sets_[k])) entry->uncertain.push_back({i, static_cast<uint16_t>(k)});
        }
      }
      i = trie.end(i);
      continue;
    }
    walk_sets_[d] = s;
    walk_escapes_[d] = walk_escapes_[d - 1] + (sets_.escaped(s) ? 1 : 0);
    const int32_t own = walk_own_[d - 1] < 0 ? -1 : g.next(rule, walk_own_[d - 1], trie.byte(i));
    walk_own_[d] = own;
    walk_chars_[d] = walk_chars_[d - 1] + ((trie.byte(i) & 0xC0) != 0x80 ? 1 : 0);
    // A large subtree of characters the frame's own rule takes as a run needs no walk (small ones
    // are cheaper to walk).
    if (own >= 0 && trie.end(i) - i > kMinSkippedSubtree && accept_run_subtree(rule, own, i, d, *entry)) {
      i = trie.end(i);
      continue;
    }
    for (const int32_t token : trie.tokens_at(i)) {
      entry->accepted[static_cast<size_t>(token) >> 6] |= uint64_t{1} << (token & 63);
    }
    ++i;
  }
  entry->uncertain.shrink_to_fit();
  return entry;
}

}  // namespace ember::grammar
