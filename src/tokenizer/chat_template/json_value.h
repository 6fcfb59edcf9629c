// JSON in and out of the interpreter: render contexts (nlohmann::ordered_json, which keeps object
// keys in file order as Python's json.load does) to Values, and Python's json.dumps for |tojson.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template/value.h"

namespace ember::jinja {

// JSON null / bool / integer / float / string / array / object as None / bool / int / float / str /
// list / dict. Unsigned integers above INT64_MAX become floats. Throws Failure(kLimit) for
// documents nested deeper than kMaxValueDepth and Failure(kValue) for strings that are not UTF-8.
Value from_json(const nlohmann::ordered_json& json);

// json.dumps(value, ensure_ascii, indent, separators, sort_keys) exactly as CPython writes it.
struct JsonDumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;                         // None: one line; else the text of one indentation level
  std::optional<std::string> item_separator, key_separator;  // None: Python's defaults
  bool sort_keys = false;
};
void dump_json(std::string& out, const Value& value, const JsonDumpOptions& options);

}  // namespace ember::jinja
