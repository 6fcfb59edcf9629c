// Rendering GGUF metadata values for `ember inspect`: one-line escaped text and JSON.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "gguf/gguf_value.h"

namespace ember::cli {

inline constexpr size_t kUnlimited = std::numeric_limits<size_t>::max();

// How much of a value the text form shows; kUnlimited shows everything (`--all`).
struct TextLimits {
  size_t max_items = 8;          // array elements shown before "... (N items)"
  size_t max_string_bytes = 80;  // string bytes shown before "… (N bytes)"
};

// `text` with backslash, quote, \n, \r, \t escaped and other control characters (C0, DEL, C1,
// U+2028/U+2029) and ill-formed UTF-8 bytes written as \xNN or \uNNNN: the result is one line.
std::string escape_text(std::string_view text);
// `text` on one line for a message: as escape_text() but keeping backslashes and quotes as they
// are (messages quote the values they name themselves, and `\"gpt2\"` reads worse than "gpt2").
std::string one_line_text(std::string_view text);

// A quoted, escaped string, cut at a character boundary after `max_bytes` with "… (N bytes)".
std::string quote_text(std::string_view text, size_t max_bytes);

// "uint32", "string", "array[int32]", "array[array]".
std::string value_type_text(const GgufValue& value);

// One-line text of a value: numbers, true/false, quoted strings, [a, b, ... (N items)].
std::string value_text(const GgufValue& value, const TextLimits& limits);

// Shortest decimal form that reads back as the same float ("1e-05", "10000", "nan", "inf").
std::string float_text(double value, bool is_float32);

// The full value as JSON: numbers, booleans, strings, (nested) arrays. Non-finite floats become the
// strings "NaN", "Infinity", "-Infinity" so the document stays valid JSON.
nlohmann::json value_json(const GgufValue& value);

// A scalar integer value as uint64 when it is a non-negative integer.
bool value_to_index(const GgufValue& value, uint64_t* out) noexcept;

}  // namespace ember::cli
