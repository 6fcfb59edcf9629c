// JSON Schema (and JSON mode) to the grammar IR: the grammar's language is the JSON texts valid
// against the schema, within documented restrictions. A keyword that cannot be enforced is an error
// naming it, never silently ignored. Restrictions (each a sound subset: what is produced validates):
// - keys in schema order, required ones always, optional ones in any subset; additionalProperties
//   absent means no extra keys (unless the object declares nothing: then any object); allowed extra
//   keys come after the declared ones, are written without escapes, are never a declared name, and
//   may repeat one another;
// - enum / const values only in their canonical spelling (nlohmann dump(): compact, UTF-8 raw);
// - whitespace between tokens only, and bounded: "", " ", or one or two newlines and <= 20 spaces or
//   tabs; numbers: <= 16 integral digits (open-ended integer ranges too), <= 16 fraction and <= 3
//   exponent digits; bounded numbers take integral bounds only and are written without exponent;
// - formats date, time, date-time (upper-case T / Z, no leap second, 29 February in any year),
//   uuid, email (dot-atom@label.label...), hostname (overall length unchecked), ipv4, ipv6,
//   duration, all without escapes; pattern (regex.h's dialect) not together with format or lengths;
// - minLength / maxLength count JSON string characters: a \u surrogate pair counts two;
// - oneOf only when its branches are provably disjoint; allOf (and $ref / anyOf next to other
//   keywords) is merged into one schema, whose errors point at the allOf; nullable without type
//   is ignored.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "grammar/grammar_ir.h"

namespace ember::grammar {

struct JsonSchemaOptions {
  // OpenAI's strict mode: additionally require what strict structured outputs require (root an
  // object, every property required, additionalProperties false on every object, ...).
  bool strict = false;
};

// Throws Error(kInvalidArgument) "schema<JSON pointer>: message", e.g. "schema/properties/a/pattern:
// regex: lookbehind is not supported at offset 0" or, at the root, "schema: the schema false accepts
// nothing": the pointer names the keyword (or the schema) refused. A caller may replace the leading
// "schema" with the request field, e.g. "response_format.json_schema.schema/properties/a". Refused:
// an invalid schema, a keyword or value we cannot enforce, a strict-mode violation, a schema beyond
// the limits (64 nested schemas, 512 JSON levels, 200000 grammar expressions).
Grammar json_schema_grammar(const nlohmann::ordered_json& schema, const JsonSchemaOptions& options = {});
// The same from text; invalid JSON is an Error(kInvalidArgument) "schema: invalid JSON: ..." too.
Grammar json_schema_grammar(std::string_view schema_text, const JsonSchemaOptions& options = {});
// Text as std::string or a literal (without these, both overloads above would match).
inline Grammar json_schema_grammar(const std::string& schema_text, const JsonSchemaOptions& options = {}) {
  return json_schema_grammar(std::string_view(schema_text), options);
}
inline Grammar json_schema_grammar(const char* schema_text, const JsonSchemaOptions& options = {}) {
  return json_schema_grammar(std::string_view(schema_text), options);
}

// JSON mode (`response_format: {"type": "json_object"}`): any JSON object.
Grammar json_object_grammar();

}  // namespace ember::grammar
