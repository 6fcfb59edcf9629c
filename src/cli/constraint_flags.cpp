// --grammar / --json-schema / --json / --regex: file or inline text, then a compile check.
#include "cli/constraint_flags.h"

#include <fmt/format.h>

#include "cli/text_input.h"
#include "ember/error.h"
#include "grammar/constraint.h"

namespace ember::cli {
namespace {

constexpr const char* kGroup = "Structured output";

// The text of a flag that takes a FILE, or the value itself when it `looks_inline`.
std::string file_or_text(const std::string& flag, const std::string& value, bool looks_inline, std::string_view what) {
  if (looks_inline) return value;
  try {
    return read_text_input(value, what);
  } catch (const Error& e) {
    throw CLI::ValidationError(flag, e.what());
  }
}

}  // namespace

void add_constraint_flags(CLI::App* cmd, ConstraintFlags& flags) {
  CLI::Option* grammar = cmd->add_option("--grammar", flags.grammar,
                                         "Constrain the output to a GBNF grammar (llama.cpp's format; start rule "
                                         "'root'): a FILE, or the grammar itself when it contains '::='")
                             ->type_name("FILE")
                             ->group(kGroup);
  CLI::Option* schema = cmd->add_option("--json-schema,-j", flags.json_schema,
                                        "Constrain the output to JSON valid against a JSON Schema: a FILE, or the "
                                        "schema itself when it starts with '{'")
                            ->type_name("FILE")
                            ->group(kGroup);
  CLI::Option* json = cmd->add_flag("--json", flags.json, "Constrain the output to a JSON object")->group(kGroup);
  CLI::Option* regex = cmd->add_option("--regex", flags.regex,
                                       "Constrain the whole output to match a regular expression (ECMAScript subset)")
                           ->type_name("RE")
                           ->group(kGroup);
  grammar->excludes(schema, json, regex);
  schema->excludes(json, regex);
  json->excludes(regex);
}

OutputConstraint resolve_constraint_flags(const ConstraintFlags& flags) {
  OutputConstraint c;
  std::string flag;
  if (flags.grammar) {
    flag = "--grammar";
    c.kind = OutputConstraint::Kind::kGbnf;
    c.text = file_or_text(flag, *flags.grammar, flags.grammar->find("::=") != std::string::npos, "the grammar");
  } else if (flags.json_schema) {
    flag = "--json-schema";
    c.kind = OutputConstraint::Kind::kJsonSchema;
    c.text = file_or_text(flag, *flags.json_schema, flags.json_schema->starts_with("{"), "the JSON schema");
  } else if (flags.regex) {
    flag = "--regex";
    c.kind = OutputConstraint::Kind::kRegex;
    c.text = *flags.regex;
  } else if (flags.json) {
    flag = "--json";
    c.kind = OutputConstraint::Kind::kJsonObject;
  }
  try {
    grammar::compile_constraint(c);
  } catch (const Error& e) {
    throw CLI::ValidationError(flag, e.what());
  }
  return c;
}

}  // namespace ember::cli
