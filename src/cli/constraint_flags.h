// The structured-output flags of `ember run` (--grammar, --json-schema, --json, --regex): what they
// read, how they exclude each other, and the check that compiles the constraint before the model
// loads, so a bad grammar is a command-line error naming its position.
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "ember/sampling.h"

namespace ember::cli {

struct ConstraintFlags {
  std::optional<std::string> grammar;      // a GBNF file, or grammar text (it holds "::=")
  std::optional<std::string> json_schema;  // a JSON Schema file, or schema text (it starts with '{')
  std::optional<std::string> regex;        // the regular expression itself
  bool json = false;                       // any JSON object
};

// Adds the flags (one of them at most), writing into `flags` (which must outlive the parse).
void add_constraint_flags(CLI::App* cmd, ConstraintFlags& flags);

// Reads the files and compiles the constraint. Throws CLI::ValidationError (exit 2) naming the flag
// for an unreadable file or a constraint that does not compile (the grammar's line and column, the
// schema's JSON pointer, the regex's offset). Kind::kNone when no flag was given.
OutputConstraint resolve_constraint_flags(const ConstraintFlags& flags);

}  // namespace ember::cli
