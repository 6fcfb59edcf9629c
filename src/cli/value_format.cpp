// One-line text and JSON forms of GGUF metadata values (escaping, truncation, non-finite floats).
#include "cli/value_format.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace ember::cli {
namespace {

// Length of the well-formed UTF-8 sequence starting at s[i] (code point in *cp), or 0 if ill-formed.
size_t decode_utf8(std::string_view s, size_t i, char32_t* cp) noexcept {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlongs
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  char32_t c = b0 & (0xFF >> (len + 1));
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    c = (c << 6) | (byte(i + k) & 0x3F);
  }
  *cp = c;
  return len;
}

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

namespace {

std::string escape(std::string_view text, bool quotes_and_backslashes) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '\\': out += quotes_and_backslashes ? "\\\\" : "\\"; break;
        case '"': out += quotes_and_backslashes ? "\\\"" : "\""; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20 || c == 0x7F) {
            out += fmt::format("\\x{:02x}", c);
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    char32_t cp = 0;
    const size_t len = decode_utf8(text, i, &cp);
    if (len == 0) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
    } else if (cp <= 0x9F || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) ||
               (cp >= 0x2066 && cp <= 0x2069)) {
      // C1 controls, line separators and bidirectional overrides (which could reorder how a line
      // of hostile metadata displays in a terminal).
      out += fmt::format("\\u{:04x}", static_cast<uint32_t>(cp));
      i += len;
    } else {
      out.append(text.substr(i, len));
      i += len;
    }
  }
  return out;
}

}  // namespace

std::string escape_text(std::string_view text) { return escape(text, true); }

std::string one_line_text(std::string_view text) { return escape(text, false); }

std::string quote_text(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return fmt::format("\"{}\"", escape_text(text));
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // character boundary
  return fmt::format("\"{}\"… ({} bytes)", escape_text(text.substr(0, cut)), text.size());
}

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
