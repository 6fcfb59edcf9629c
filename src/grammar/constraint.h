// OutputConstraint (the public API's structured-output request) to a compiled grammar, through
// the front end its kind names, with a small cache keyed by the request's text: the same schema
// on every request of a client compiles once.
#pragma once

#include <memory>

#include "ember/sampling.h"
#include "grammar/compiled_grammar.h"

namespace ember::grammar {

// nullptr for Kind::kNone. Throws Error(kInvalidArgument) with the front end's message (a GBNF
// position, a JSON pointer, a regex offset) for a constraint that cannot be compiled.
std::shared_ptr<const CompiledGrammar> compile_constraint(const OutputConstraint& constraint);

// The name of a constraint kind as the API spells it: "gbnf", "json_schema", "json_object",
// "regex" ("none").
const char* constraint_kind_name(OutputConstraint::Kind kind) noexcept;

}  // namespace ember::grammar
