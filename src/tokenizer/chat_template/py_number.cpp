// Python's numbers as text: repr() of floats (shortest round-trip digits, CPython's layout), and
// int(text, base) / float(text) parsing.
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "tokenizer/chat_template/py_text.h"

namespace ember::jinja::py {
namespace {

bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

void append_float_repr(std::string& out, double d) {
  if (std::isnan(d)) {
    out += "nan";
    return;
  }
  if (std::isinf(d)) {
    out += d < 0 ? "-inf" : "inf";
    return;
  }
  // Shortest round-trip digits from to_chars' scientific form "d.ddde±x", re-laid out as CPython's
  // repr does (float_repr_style 'short', mode 'r').
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  if (sci.front() == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos))
    if (c != '.') digits += c;
  int exponent = 0;
  std::from_chars(sci.data() + e_pos + (sci[e_pos + 1] == '+' ? 2 : 1), sci.data() + sci.size(), exponent);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  if (exponent < -4 || exponent >= 16) {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out.append(digits, 1);
    }
    out += exponent < 0 ? "e-" : "e+";
    const int a = exponent < 0 ? -exponent : exponent;
    if (a < 10) out += '0';
    out += std::to_string(a);
  } else if (exponent < 0) {
    out += "0.";
    out.append(static_cast<size_t>(-exponent - 1), '0');
    out += digits;
  } else {
    const auto int_digits = static_cast<size_t>(exponent) + 1;
    if (digits.size() <= int_digits) {
      out += digits;
      out.append(int_digits - digits.size(), '0');
      out += ".0";
    } else {
      out.append(digits, 0, int_digits);
      out += '.';
      out.append(digits, int_digits);
    }
  }
}

std::string float_repr(double d) {
  std::string out;
  append_float_repr(out, d);
  return out;
}

std::optional<int64_t> parse_int(std::string_view text, int base) {
  std::string t = strip(text, std::nullopt, true, true);
  std::string_view v = t;
  bool negative = false;
  if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
    negative = v[0] == '-';
    v.remove_prefix(1);
  }
  auto has_prefix = [&](char lower_letter) {
    return v.size() >= 2 && v[0] == '0' && (v[1] == lower_letter || v[1] == lower_letter - 32);
  };
  const int prefixed = has_prefix('x') ? 16 : has_prefix('o') ? 8 : has_prefix('b') ? 2 : 0;
  if (base == 0) base = prefixed != 0 ? prefixed : 10;
  if (prefixed != 0 && prefixed == base) {
    v.remove_prefix(2);
    if (!v.empty() && v[0] == '_') v.remove_prefix(1);
  }
  if (v.empty() || v.front() == '_' || v.back() == '_') return std::nullopt;
  // Magnitudes accumulate as negative numbers so INT64_MIN parses.
  int64_t value = 0;
  char previous = 0;
  for (char c : v) {
    if (c == '_') {
      if (previous == '_') return std::nullopt;
      previous = c;
      continue;
    }
    previous = c;
    int digit = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'z' ? c - 'a' + 10
                : c >= 'A' && c <= 'Z' ? c - 'A' + 10
                                       : 99;
    if (digit >= base) return std::nullopt;
    if (__builtin_mul_overflow(value, static_cast<int64_t>(base), &value) ||
        __builtin_sub_overflow(value, static_cast<int64_t>(digit), &value)) {
      return std::nullopt;
    }
  }
  if (negative) return value;
  if (value == std::numeric_limits<int64_t>::min()) return std::nullopt;
  return -value;
}

std::optional<double> parse_float(std::string_view text) {
  const std::string t = strip(text, std::nullopt, true, true);
  std::string_view v = t;
  if (v.empty()) return std::nullopt;
  std::string_view body = v;
  bool negative = false;
  if (body[0] == '+' || body[0] == '-') {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  std::string low = lower(body);
  if (low == "inf" || low == "infinity") return negative ? -HUGE_VAL : HUGE_VAL;
  if (low == "nan") return std::nan("");
  std::string clean;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c == '_') {
      // Python allows '_' only between digits.
      if (i == 0 || i + 1 == body.size() || !is_ascii_digit(body[i - 1]) || !is_ascii_digit(body[i + 1])) {
        return std::nullopt;
      }
      continue;
    }
    if (!(is_ascii_digit(c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
      return std::nullopt;
    }
    clean += c;
  }
  if (clean.empty() || clean[0] == '+' || clean[0] == '-') return std::nullopt;
  double value = 0;
  const auto res = std::from_chars(clean.data(), clean.data() + clean.size(), value);
  if (res.ptr != clean.data() + clean.size()) {
    if (res.ec != std::errc::result_out_of_range) return std::nullopt;
  }
  if (res.ec == std::errc::result_out_of_range) value = std::strtod(clean.c_str(), nullptr);
  return negative ? -value : value;
}

}  // namespace ember::jinja::py
