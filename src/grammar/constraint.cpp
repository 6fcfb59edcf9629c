// Dispatch to the front ends, and the compiled-grammar cache (LRU by kind, strictness and text).
#include "grammar/constraint.h"

#include <list>
#include <mutex>
#include <string>
#include <utility>

#include "grammar/gbnf_parser.h"
#include "grammar/json_schema.h"
#include "grammar/regex.h"

namespace ember::grammar {
namespace {

constexpr size_t kCachedGrammars = 64;

Grammar front_end(const OutputConstraint& c) {
  switch (c.kind) {
    case OutputConstraint::Kind::kGbnf: return parse_gbnf(c.text);
    case OutputConstraint::Kind::kJsonSchema:
      return json_schema_grammar(std::string_view(c.text), {.strict = c.strict});
    case OutputConstraint::Kind::kJsonObject: return json_object_grammar();
    case OutputConstraint::Kind::kRegex: return regex_grammar(c.text);
    case OutputConstraint::Kind::kNone: break;
  }
  return Grammar{};
}

class GrammarCache {
 public:
  std::shared_ptr<const CompiledGrammar> get(const OutputConstraint& c) {
    std::string key = std::to_string(static_cast<int>(c.kind)) + (c.strict ? "s:" : ":") + c.text;
    {
      const std::lock_guard lock(mutex_);
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->first == key) {
          entries_.splice(entries_.begin(), entries_, it);
          return it->second;
        }
      }
    }
    auto compiled = CompiledGrammar::compile(front_end(c));  // outside the lock: may take milliseconds
    const std::lock_guard lock(mutex_);
    entries_.emplace_front(std::move(key), compiled);
    if (entries_.size() > kCachedGrammars) entries_.pop_back();
    return compiled;
  }

 private:
  std::mutex mutex_;
  std::list<std::pair<std::string, std::shared_ptr<const CompiledGrammar>>> entries_;
};

}  // namespace

std::shared_ptr<const CompiledGrammar> compile_constraint(const OutputConstraint& constraint) {
  if (constraint.kind == OutputConstraint::Kind::kNone) return nullptr;
  static GrammarCache cache;
  return cache.get(constraint);
}

const char* constraint_kind_name(OutputConstraint::Kind kind) noexcept {
  switch (kind) {
    case OutputConstraint::Kind::kGbnf: return "gbnf";
    case OutputConstraint::Kind::kJsonSchema: return "json_schema";
    case OutputConstraint::Kind::kJsonObject: return "json_object";
    case OutputConstraint::Kind::kRegex: return "regex";
    case OutputConstraint::Kind::kNone: break;
  }
  return "none";
}

}  // namespace ember::grammar
