// Python's str semantics over UTF-8 text for the chat-template interpreter: code-point indexing,
// str.isspace / strip / split / splitlines / find / replace / case mapping, repr() of strings and
// floats. Every string the interpreter holds is valid UTF-8 (template sources and JSON contexts are
// validated on the way in), so code points decode without errors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ember::jinja::py {

// Python's str.isspace(): Unicode White_Space plus U+001C..U+001F (bidi classes WS, B, S and Zs).
bool is_space(char32_t c) noexcept;

// Code points in `s` (Python's len()).
int64_t length(std::string_view s) noexcept;
// Byte offset of code point `index` (0 <= index <= length).
size_t byte_offset(std::string_view s, int64_t index) noexcept;
std::vector<char32_t> code_points(std::string_view s);
std::string from_code_points(const std::vector<char32_t>& cps, size_t begin, size_t end);
// Each code point as its own string (iterating a str).
std::vector<std::string> characters(std::string_view s);

// str.strip / lstrip / rstrip: `chars` absent strips whitespace (is_space), else any of its code points.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);

// str.split / rsplit. `sep` absent: runs of whitespace, empty pieces dropped. maxsplit < 0: no limit.
// An empty `sep` is the caller's error to report (Python raises ValueError).
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
// str.splitlines(keepends): \n \r \r\n \v \f \x1c \x1d \x1e \x85 U+2028 U+2029 end lines.
std::vector<std::string> splitlines(std::string_view s, bool keepends);

// str.replace(old, new, count): count < 0 replaces all; an empty `old` inserts between characters.
std::string replace(std::string_view s, std::string_view old_text, std::string_view new_text, int64_t count);
// str.find / rfind over code points in [start, end); -1 when absent.
int64_t find(std::string_view s, std::string_view sub, int64_t start, int64_t end, bool reverse);
// str.count(sub) (non-overlapping).
int64_t count(std::string_view s, std::string_view sub);

// Python's slice index adjustment (PySlice_AdjustIndices) for a sequence of `length` items.
struct SliceRange {
  int64_t start, stop, step, count;
};
// step != 0 (the caller raises for 0). Absent bounds are Python's None.
SliceRange adjust_slice(int64_t length, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step);
// Index `i` of a sequence of `length` items after negative-index wrapping, or nullopt out of range.
std::optional<int64_t> wrap_index(int64_t i, int64_t length) noexcept;

// Case mapping (Unicode simple mappings; ASCII fast path).
std::string upper(std::string_view s);
std::string lower(std::string_view s);
// str.capitalize(): first character title-cased, the rest lower-cased.
std::string capitalize(std::string_view s);
// str.title(): a cased character after an uncased one is title-cased, other cased ones lower-cased.
std::string title_method(std::string_view s);
// Jinja2's |title: split at runs of [-\s({\[<], each piece's first character upper-cased, the rest lower.
std::string title_filter(std::string_view s);
bool is_upper(std::string_view s);  // str.isupper()
bool is_lower(std::string_view s);  // str.islower()
bool is_alpha(std::string_view s);  // str.isalpha()
bool is_digit(std::string_view s);  // str.isdigit() (decimal digits)
bool is_alnum(std::string_view s);  // str.isalnum()

// repr() of a str: quotes and escapes exactly as CPython (non-printable characters as \x \u \U).
std::string repr(std::string_view s);
void append_repr(std::string& out, std::string_view s);
// repr() / str() of a float: shortest round-trip digits, Python's switch to exponent form
// (exponent < -4 or >= 16), '.0' on integral values, 'inf', '-inf', 'nan'.
std::string float_repr(double d);
void append_float_repr(std::string& out, double d);

// Python's int(text, base) for base 10 / 16 / 8 / 2 / 0 (prefix-detected): optional whitespace and
// sign, '_' between digits. nullopt on invalid text or a value outside int64.
std::optional<int64_t> parse_int(std::string_view text, int base);
// Python's float(text): whitespace, sign, decimal / exponent, inf / nan (any case). nullopt when invalid.
std::optional<double> parse_float(std::string_view text);

// markupsafe.escape(): & < > ' " as &amp; &lt; &gt; &#39; &#34;.
std::string html_escape(std::string_view s);

}  // namespace ember::jinja::py
