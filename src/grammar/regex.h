// Regular expressions (an ECMAScript subset) to the grammar IR: for the `regex` constraint of a
// request and for JSON Schema's `pattern`, where the expression describes a JSON string's decoded
// content and must be emitted in its escaped form.
#pragma once

#include <string_view>

#include "grammar/grammar_ir.h"

namespace ember::grammar {

enum class RegexMode : uint8_t {
  // The expression matches the whole output: anchored at both ends whether or not it says ^ / $.
  kWholeText,
  // A JSON Schema `pattern`: unanchored unless it says ^ / $ (ECMA-262 search semantics), and
  // the expression built matches the *JSON-escaped* text of a string that the pattern matches
  // (the content between the quotes): `"` as \", `\` as \\, control characters as their JSON
  // escapes, any character also as \uXXXX where JSON allows it.
  kJsonStringContent,
};

// One character of a JSON string in its escaped form: any code point but `"`, `\` and
// U+0000..U+001F raw, or `\` then one of `" \ / b f n r t`, or `\u` then four hex digits (either
// case; JSON itself does not pair surrogates). Returns a reference to the grammar's rule
// "json-char", declaring and defining it on first use (small: the compiler inlines it); the regex
// and JSON Schema front ends both use it for "any string content".
ExprId json_string_char(Grammar& grammar);

// Adds the expression for `pattern` to `grammar` and returns it (it may add helper rules).
// Throws Error(kInvalidArgument) "regex: MESSAGE at offset N" (N in bytes) for a syntax error or a
// feature we cannot enforce (backreferences, lookaround, \b, \p{...}, flags), never ignoring one.
// Limits: 64 KiB of pattern, groups nested 100 deep. ^ may only start and $ only end a top-level
// alternative. The pattern is UTF-8 and matches code points (ECMAScript's `u` flag); regex.cpp
// lists the dialect in full.
ExprId regex_to_expr(Grammar& grammar, std::string_view pattern, RegexMode mode);

// A complete grammar for the `regex` constraint: root = regex_to_expr(pattern, kWholeText).
Grammar regex_grammar(std::string_view pattern);

}  // namespace ember::grammar
