// One-line text and JSON forms of GGUF metadata values (escaping, truncation, non-finite floats).
#include "cli/value_format.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace ember::cli {
namespace {

template <typename T>
std::string number_text(T x) {
  if constexpr (std::is_same_v<T, bool>) {
    return x ? "true" : "false";
  } else if constexpr (std::is_floating_point_v<T>) {
    return float_text(x, std::is_same_v<T, float>);
  } else {
    return fmt::format("{}", x);
  }
}

nlohmann::json float_json(double x, bool is_float32) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (!is_float32) return x;
  // The double nearest the float's shortest decimal form: 1e-05, not 9.999999747378752e-06.
  const std::string text = float_text(x, true);
  double shortest = x;
  std::from_chars(text.data(), text.data() + text.size(), shortest);
  return shortest;
}

template <typename T>
nlohmann::json number_json(T x) {
  if constexpr (std::is_floating_point_v<T>) {
    return float_json(x, std::is_same_v<T, float>);
  } else {
    return x;
  }
}

// Calls fn(GgufArrayView<T>) with the view matching a numeric array's element type.
template <typename Fn>
void visit_number_array(const GgufValue& v, Fn&& fn) {
  switch (v.array_type()) {
    case GgufType::kUint8: fn(v.numbers<uint8_t>()); return;
    case GgufType::kInt8: fn(v.numbers<int8_t>()); return;
    case GgufType::kUint16: fn(v.numbers<uint16_t>()); return;
    case GgufType::kInt16: fn(v.numbers<int16_t>()); return;
    case GgufType::kUint32: fn(v.numbers<uint32_t>()); return;
    case GgufType::kInt32: fn(v.numbers<int32_t>()); return;
    case GgufType::kUint64: fn(v.numbers<uint64_t>()); return;
    case GgufType::kInt64: fn(v.numbers<int64_t>()); return;
    case GgufType::kFloat32: fn(v.numbers<float>()); return;
    case GgufType::kFloat64: fn(v.numbers<double>()); return;
    case GgufType::kBool: fn(v.numbers<bool>()); return;
    case GgufType::kString:
    case GgufType::kArray: return;
  }
}

std::string scalar_text(const GgufValue& v) {
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  if (v.type() == GgufType::kBool) return number_text(v.as_bool());
  if (v.to_int64(&i)) return number_text(i);
  if (v.to_uint64(&u)) return number_text(u);  // uint64 above INT64_MAX
  if (v.to_double(&d)) return float_text(d, v.type() == GgufType::kFloat32);
  return "?";
}

nlohmann::json scalar_json(const GgufValue& v) {
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  if (v.type() == GgufType::kBool) return v.as_bool();
  if (v.type() == GgufType::kString) return std::string(v.as_string());
  if (v.to_uint64(&u)) return u;  // non-negative integers stay unsigned
  if (v.to_int64(&i)) return i;
  if (v.to_double(&d)) return float_json(d, v.type() == GgufType::kFloat32);
  return nullptr;
}

}  // namespace

std::string value_type_text(const GgufValue& value) {
  if (!value.is_array()) return std::string(gguf_type_name(value.type()));
  return fmt::format("array[{}]", gguf_type_name(value.array_type()));
}

std::string float_text(double value, bool is_float32) {
  if (is_float32) return fmt::format("{}", static_cast<float>(value));
  return fmt::format("{}", value);
}

std::string value_text(const GgufValue& value, const TextLimits& limits) {
  if (value.type() == GgufType::kString) return quote_text(value.as_string(), limits.max_string_bytes);
  if (!value.is_array()) return scalar_text(value);

  const uint64_t n = value.array_size();
  const size_t shown = static_cast<size_t>(std::min<uint64_t>(n, limits.max_items));
  std::string out = "[";
  const auto append = [&](size_t i, const std::string& item) {
    if (i > 0) out += ", ";
    out += item;
  };
  if (value.array_type() == GgufType::kString) {
    for (size_t i = 0; i < shown; ++i) append(i, quote_text(value.strings()[i], limits.max_string_bytes));
  } else if (value.array_type() == GgufType::kArray) {
    for (size_t i = 0; i < shown; ++i) append(i, value_text(value.items()[i], limits));
  } else {
    visit_number_array(value, [&](auto view) {
      for (size_t i = 0; i < shown; ++i) append(i, number_text(view[i]));
    });
  }
  if (shown < n) out += fmt::format("{}... ({} items)", shown > 0 ? ", " : "", n);
  out += "]";
  return out;
}

nlohmann::json value_json(const GgufValue& value) {
  if (!value.is_array()) return scalar_json(value);
  nlohmann::json out = nlohmann::json::array();
  if (value.array_type() == GgufType::kString) {
    for (std::string_view s : value.strings()) out.push_back(std::string(s));
  } else if (value.array_type() == GgufType::kArray) {
    for (const GgufValue& item : value.items()) out.push_back(value_json(item));
  } else {
    visit_number_array(value, [&](auto view) {
      for (auto x : view) out.push_back(number_json(x));
    });
  }
  return out;
}

bool value_to_index(const GgufValue& value, uint64_t* out) noexcept {
  return !value.is_array() && value.to_uint64(out);
}

}  // namespace ember::cli
