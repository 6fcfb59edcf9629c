// Rendering GGUF metadata values for `ember inspect`: one-line escaped text and JSON.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/text_escape.h"  // escape_text, one_line_text, quote_text
#include "gguf/gguf_value.h"

namespace ember::cli {

inline constexpr size_t kUnlimited = std::numeric_limits<size_t>::max();

// How much of a value the text form shows; kUnlimited shows everything (`--all`).
struct TextLimits {
  size_t max_items = 8;          // array elements shown before "... (N items)"
  size_t max_string_bytes = 80;  // string bytes shown before "… (N bytes)"
};

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
