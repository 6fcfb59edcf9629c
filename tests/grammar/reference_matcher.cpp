// The reference matcher: memoized sets of end positions per (expression, start position).
#include "grammar/reference_matcher.h"

#include <map>
#include <set>
#include <utility>

#include "core/check.h"
#include "core/utf8.h"

namespace ember::grammar::testing {
namespace {

using Ends = std::set<size_t>;

class Reference {
 public:
  Reference(const Grammar& g, std::string_view text) : g_(g), text_(text) {}

  Ends ends(ExprId id, size_t pos) {
    const auto key = std::make_pair(id, pos);
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    EMBER_CHECK_MSG(active_.insert(key).second, "left recursion in a test grammar");
    Ends out = compute(g_.expr(id), pos);
    active_.erase(key);
    memo_[key] = out;
    return out;
  }

 private:
  Ends compute(const Expr& e, size_t pos) {
    switch (e.kind) {
      case ExprKind::kEmpty: return {pos};
      case ExprKind::kLiteral:
        if (text_.substr(pos).starts_with(e.literal)) return {pos + e.literal.size()};
        return {};
      case ExprKind::kClass: {
        if (pos >= text_.size()) return {};
        const utf8::Decoded d = utf8::decode(text_, pos);
        // decode() turns invalid bytes into U+FFFD of length 1: only a real U+FFFD may match it.
        const bool real = d.code_point != utf8::kReplacement || text_.substr(pos).starts_with("\xEF\xBF\xBD");
        if (!real) return {};
        for (const CodepointRange r : e.ranges) {
          if (d.code_point >= r.first && d.code_point <= r.last) return {pos + d.length};
        }
        return {};
      }
      case ExprKind::kRef: return ends(g_.rule(e.rule).body, pos);
      case ExprKind::kSequence: {
        Ends cur = {pos};
        for (const ExprId child : e.children) {
          Ends next;
          for (const size_t p : cur) {
            const Ends part = ends(child, p);
            next.insert(part.begin(), part.end());
          }
          cur = std::move(next);
          if (cur.empty()) break;
        }
        return cur;
      }
      case ExprKind::kChoice: {
        Ends out;
        for (const ExprId child : e.children) {
          const Ends part = ends(child, pos);
          out.insert(part.begin(), part.end());
        }
        return out;
      }
      case ExprKind::kRepeat: {
        // Level k: the ends after exactly k items (an item matching empty cannot add new ends, so
        // the levels stop growing once nothing new appears).
        Ends out;
        Ends level = {pos};
        Ends seen = {pos};
        if (e.min == 0) out.insert(pos);
        for (uint32_t k = 1; k <= e.max && !level.empty(); ++k) {
          Ends next;
          for (const size_t p : level) {
            const Ends part = ends(e.children[0], p);
            next.insert(part.begin(), part.end());
          }
          if (k >= e.min) out.insert(next.begin(), next.end());
          if (k >= e.min) {
            Ends fresh;
            for (const size_t p : next) {
              if (seen.insert(p).second) fresh.insert(p);
            }
            level = std::move(fresh);
          } else {
            level = std::move(next);
          }
          if (e.max == kUnbounded && k > e.min + text_.size() + 1) break;
        }
        return out;
      }
    }
    return {};
  }

  const Grammar& g_;
  std::string_view text_;
  std::map<std::pair<ExprId, size_t>, Ends> memo_;
  std::set<std::pair<ExprId, size_t>> active_;
};

}  // namespace

bool reference_matches(const Grammar& grammar, std::string_view text) {
  grammar.check_complete();
  Reference ref(grammar, text);
  return ref.ends(grammar.rule(grammar.root()).body, 0).count(text.size()) > 0;
}

}  // namespace ember::grammar::testing
