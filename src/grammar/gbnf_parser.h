// GBNF (llama.cpp's grammar format) to the grammar IR: rules, alternation, sequences, groups,
// `? * +` and `{m,n}` repetition, character classes with ranges and negation, string literals
// with escapes, `.`, comments — with errors that give the line and column.
#pragma once

#include <string_view>

#include "grammar/grammar_ir.h"

namespace ember::grammar {

// The most GBNF text parse_gbnf() takes.
inline constexpr size_t kMaxGbnfBytes = size_t{1} << 20;

// Parses `text` into a complete grammar whose root is the rule named `root`. Throws
// Error(kInvalidArgument) with "grammar:LINE:COL: message" (1-based, the column in bytes) for any
// syntax error, an undefined or redefined rule, a missing root, or input past the size limits
// (1 MiB of text, groups 100 deep, 200000 expressions nested at most 500 deep, 10000 rules).
// Stricter than llama.cpp where it is silently wrong: `[]`, `[^]`, `{m,n}` with m > n and a
// second definition of a rule are errors; `\xHH` is the code point U+00HH, not a byte. Names may
// contain `_`. Token terminals (`<...>`, `!<...>`) are refused for now.
Grammar parse_gbnf(std::string_view text, std::string_view root = "root");

}  // namespace ember::grammar
