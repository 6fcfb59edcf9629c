// libFuzzer target for the JSON Schema converter: any input that parses as JSON is converted with
// and without strict mode; refusals (ember::Error) are fine, crashes, hangs and huge grammars not.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "ember/error.h"
#include "grammar/compiled_grammar.h"
#include "grammar/json_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::ordered_json schema = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return 0;
  for (const bool strict : {false, true}) {
    try {
      const ember::grammar::Grammar g = ember::grammar::json_schema_grammar(schema, {.strict = strict});
      g.check_complete();
      if (g.expr_count() > 400000) __builtin_trap();  // the converter's limit is 200000 (plus one step)
      if (g.expr_count() < 4000) ember::grammar::CompiledGrammar::compile(g);  // a refusal is fine
    } catch (const ember::Error&) {
    }
  }
  return 0;
}
