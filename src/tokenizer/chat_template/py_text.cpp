// Python str semantics over UTF-8 (see py_text.h). Character classes and case mappings come from
// utf8proc; CPython's tables can differ for characters assigned in later Unicode versions.
#include "tokenizer/chat_template/py_text.h"

#include <utf8proc.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/utf8.h"

namespace ember::jinja::py {
namespace {

bool is_ascii(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

utf8proc_category_t category(char32_t c) { return utf8proc_category(static_cast<utf8proc_int32_t>(c)); }

bool is_cased(char32_t c) {
  const auto k = category(c);
  return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT;
}

char32_t to_upper(char32_t c) { return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c))); }
char32_t to_lower(char32_t c) { return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))); }
char32_t to_title(char32_t c) { return static_cast<char32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(c))); }

struct SpecialCase {
  char32_t cp;
  const char* upper;
  const char* lower;
  const char* title;
};
constexpr SpecialCase kSpecialCases[] = {
#include "tokenizer/chat_template/py_special_casing.inc"
};

enum class Case { kUpper, kLower, kTitle };

// Appends c mapped as Python maps it: the full (possibly multi-character) mapping of SpecialCasing,
// else utf8proc's simple one.
void append_case(std::string& out, char32_t c, Case which) {
  if (c >= 0x80) {
    const auto it = std::lower_bound(std::begin(kSpecialCases), std::end(kSpecialCases), c,
                                     [](const SpecialCase& s, char32_t v) { return s.cp < v; });
    if (it != std::end(kSpecialCases) && it->cp == c) {
      out += which == Case::kUpper ? it->upper : which == Case::kLower ? it->lower : it->title;
      return;
    }
  }
  utf8::append(out, which == Case::kUpper ? to_upper(c) : which == Case::kLower ? to_lower(c) : to_title(c));
}

// Unicode's Case_Ignorable, approximately: marks, format characters, modifiers and the word-internal
// punctuation that CPython's final-sigma rule skips.
bool is_case_ignorable(char32_t c) {
  if (c == '\'' || c == '.' || c == ':' || c == '^' || c == '`' || c == 0xB7 || c == 0x2019) return true;
  const auto k = category(c);
  return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
         k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK;
}

// CPython's Final_Sigma context for U+03A3 at cps[i]: a cased letter before it (skipping case-ignorables)
// and none after it.
bool final_sigma(const std::vector<char32_t>& cps, size_t i) {
  size_t j = i;
  while (j > 0 && is_case_ignorable(cps[j - 1])) --j;
  if (j == 0 || !is_cased(cps[j - 1])) return false;
  size_t k = i + 1;
  while (k < cps.size() && is_case_ignorable(cps[k])) ++k;
  return k == cps.size() || !is_cased(cps[k]);
}

// CPython's Py_UNICODE_ISPRINTABLE: everything but Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs other than ' '.
bool is_printable(char32_t c) {
  if (c < 0x80) return c >= 0x20 && c < 0x7F;
  switch (category(c)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS: return false;
    default: return true;
  }
}

bool is_line_break(char32_t c) {
  switch (c) {
    case '\n':
    case '\r':
    case 0x0B:
    case 0x0C:
    case 0x1C:
    case 0x1D:
    case 0x1E:
    case 0x85:
    case 0x2028:
    case 0x2029: return true;
    default: return false;
  }
}

template <typename Pred>
bool all_cased_are(std::string_view s, Pred pred) {
  bool any_cased = false;
  for (size_t i = 0; i < s.size();) {
    const auto d = utf8::decode(s, i);
    i += d.length;
    if (!is_cased(d.code_point)) continue;
    if (!pred(d.code_point)) return false;
    any_cased = true;
  }
  return any_cased;
}

template <typename Pred>
bool all_nonempty(std::string_view s, Pred pred) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size();) {
    const auto d = utf8::decode(s, i);
    i += d.length;
    if (!pred(d.code_point)) return false;
  }
  return true;
}

bool is_alpha_cp(char32_t c) {
  const auto k = category(c);
  return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}
bool is_digit_cp(char32_t c) { return category(c) == UTF8PROC_CATEGORY_ND; }

}  // namespace

bool is_space(char32_t c) noexcept {
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

int64_t length(std::string_view s) noexcept {
  int64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

size_t byte_offset(std::string_view s, int64_t index) noexcept {
  size_t i = 0;
  for (int64_t k = 0; k < index && i < s.size(); ++k) i += utf8::decode(s, i).length;
  return i;
}

std::vector<char32_t> code_points(std::string_view s) {
  std::vector<char32_t> cps;
  cps.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto d = utf8::decode(s, i);
    cps.push_back(d.code_point);
    i += d.length;
  }
  return cps;
}

std::string from_code_points(const std::vector<char32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) utf8::append(out, cps[i]);
  return out;
}

std::vector<std::string> characters(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8::decode(s, i).length;
    out.emplace_back(s.substr(i, n));
    i += n;
  }
  return out;
}

std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  std::vector<char32_t> set;
  if (chars) set = code_points(*chars);
  auto strippable = [&](char32_t c) { return chars ? std::find(set.begin(), set.end(), c) != set.end() : is_space(c); };
  size_t begin = 0, end = s.size();
  if (left) {
    while (begin < end) {
      const auto d = utf8::decode(s, begin);
      if (!strippable(d.code_point)) break;
      begin += d.length;
    }
  }
  if (right) {
    while (end > begin) {
      size_t start = end - 1;
      while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
      if (!strippable(utf8::decode(s, start).code_point)) break;
      end = start;
    }
  }
  return std::string(s.substr(begin, end - begin));
}

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (maxsplit < 0) maxsplit = std::numeric_limits<int64_t>::max();
  if (sep) {
    size_t pos = 0;
    while (static_cast<int64_t>(out.size()) < maxsplit) {
      const size_t hit = s.find(*sep, pos);
      if (hit == std::string_view::npos) break;
      out.emplace_back(s.substr(pos, hit - pos));
      pos = hit + sep->size();
    }
    out.emplace_back(s.substr(pos));
    return out;
  }
  size_t i = 0;
  while (i < s.size()) {
    // Skip whitespace, then take a word (or, once maxsplit is reached, the rest minus its trailing space).
    while (i < s.size()) {
      const auto d = utf8::decode(s, i);
      if (!is_space(d.code_point)) break;
      i += d.length;
    }
    if (i >= s.size()) break;
    if (static_cast<int64_t>(out.size()) == maxsplit) {
      out.emplace_back(s.substr(i));  // CPython keeps the remainder's trailing whitespace
      break;
    }
    const size_t start = i;
    while (i < s.size()) {
      const auto d = utf8::decode(s, i);
      if (is_space(d.code_point)) break;
      i += d.length;
    }
    out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  if (maxsplit < 0) return split(s, sep, maxsplit);
  std::vector<std::string> out;
  if (sep) {
    size_t end = s.size();
    while (static_cast<int64_t>(out.size()) < maxsplit && end >= sep->size()) {
      const size_t hit = s.rfind(*sep, end - sep->size());
      if (hit == std::string_view::npos) break;
      out.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
      end = hit;
    }
    out.emplace_back(s.substr(0, end));
  } else {
    const std::vector<char32_t> cps = code_points(s);
    size_t end = cps.size();
    while (end > 0) {
      while (end > 0 && is_space(cps[end - 1])) --end;
      if (end == 0) break;
      if (static_cast<int64_t>(out.size()) == maxsplit) {
        out.push_back(from_code_points(cps, 0, end));  // and the leading whitespace for rsplit
        break;
      }
      size_t start = end;
      while (start > 0 && !is_space(cps[start - 1])) --start;
      out.push_back(from_code_points(cps, start, end));
      end = start;
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
  std::vector<std::string> out;
  size_t start = 0, i = 0;
  while (i < s.size()) {
    const auto d = utf8::decode(s, i);
    if (!is_line_break(d.code_point)) {
      i += d.length;
      continue;
    }
    size_t end = i + d.length;
    if (d.code_point == '\r' && end < s.size() && s[end] == '\n') ++end;
    out.emplace_back(s.substr(start, (keepends ? end : i) - start));
    start = i = end;
  }
  if (start < s.size()) out.emplace_back(s.substr(start));
  return out;
}

std::string replace(std::string_view s, std::string_view old_text, std::string_view new_text, int64_t count) {
  if (count < 0) count = std::numeric_limits<int64_t>::max();
  std::string out;
  if (old_text.empty()) {
    // Python inserts `new` before every character and at the end, up to `count` times.
    int64_t done = 0;
    size_t i = 0;
    while (i <= s.size()) {
      if (done < count) {
        out += new_text;
        ++done;
      }
      if (i == s.size()) break;
      const size_t n = utf8::decode(s, i).length;
      out += s.substr(i, n);
      i += n;
    }
    return out;
  }
  size_t pos = 0;
  for (int64_t done = 0; done < count; ++done) {
    const size_t hit = s.find(old_text, pos);
    if (hit == std::string_view::npos) break;
    out += s.substr(pos, hit - pos);
    out += new_text;
    pos = hit + old_text.size();
  }
  out += s.substr(pos);
  return out;
}

int64_t find(std::string_view s, std::string_view sub, int64_t start, int64_t end, bool reverse) {
  const int64_t n = length(s);
  const SliceRange r = adjust_slice(n, start, end, 1);
  if (r.stop - r.start < length(sub)) return -1;
  const size_t b = byte_offset(s, r.start);
  const size_t e = byte_offset(s, r.stop);
  const std::string_view window = s.substr(b, e - b);
  const size_t hit = reverse ? window.rfind(sub) : window.find(sub);
  if (hit == std::string_view::npos) return -1;
  return r.start + length(window.substr(0, hit));
}

int64_t count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return length(s) + 1;
  int64_t n = 0;
  for (size_t pos = s.find(sub); pos != std::string_view::npos; pos = s.find(sub, pos + sub.size())) ++n;
  return n;
}

SliceRange adjust_slice(int64_t length, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step) {
  // CPython's PySlice_Unpack + PySlice_AdjustIndices.
  int64_t b = start ? *start : (step < 0 ? std::numeric_limits<int64_t>::max() : 0);
  int64_t e = stop ? *stop : (step < 0 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max());
  auto adjust = [&](int64_t& v) {
    if (v < 0) {
      v = v < -length ? (step < 0 ? -1 : 0) : v + length;
    } else if (v >= length) {
      v = step < 0 ? length - 1 : length;
    }
  };
  adjust(b);
  adjust(e);
  int64_t n = 0;
  if (step < 0) {
    if (e < b) n = (b - e - 1) / (-step) + 1;
  } else if (b < e) {
    n = (e - b - 1) / step + 1;
  }
  return {b, e, step, n};
}

std::optional<int64_t> wrap_index(int64_t i, int64_t length) noexcept {
  if (i < 0) i += length;
  if (i < 0 || i >= length) return std::nullopt;
  return i;
}

std::string upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  if (is_ascii(s)) {
    for (char c : s) out += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
    return out;
  }
  for (char32_t c : code_points(s)) append_case(out, c, Case::kUpper);
  return out;
}

std::string lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  if (is_ascii(s)) {
    for (char c : s) out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    return out;
  }
  const std::vector<char32_t> cps = code_points(s);
  for (size_t i = 0; i < cps.size(); ++i) {
    if (cps[i] == 0x3A3 && final_sigma(cps, i)) {
      utf8::append(out, 0x3C2);
    } else {
      append_case(out, cps[i], Case::kLower);
    }
  }
  return out;
}

std::string capitalize(std::string_view s) {
  std::string out;
  bool first = true;
  for (char32_t c : code_points(s)) {
    append_case(out, c, first ? Case::kTitle : Case::kLower);
    first = false;
  }
  return out;
}

std::string title_method(std::string_view s) {
  std::string out;
  bool previous_cased = false;
  for (char32_t c : code_points(s)) {
    const bool cased = is_cased(c);
    if (cased) {
      append_case(out, c, previous_cased ? Case::kLower : Case::kTitle);
    } else {
      utf8::append(out, c);
    }
    previous_cased = cased;
  }
  return out;
}

std::string title_filter(std::string_view s) {
  // The separators of Jinja2's _word_beginning_split_re: [-\s({\[<]. Each separator run stays as is;
  // every other piece gets item[0].upper() + item[1:].lower().
  auto is_sep = [](char32_t c) { return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_space(c); };
  std::string out;
  bool at_piece_start = true;
  for (char32_t c : code_points(s)) {
    if (is_sep(c)) {
      at_piece_start = true;
      utf8::append(out, c);
      continue;
    }
    append_case(out, c, at_piece_start ? Case::kUpper : Case::kLower);
    at_piece_start = false;
  }
  return out;
}

bool is_upper(std::string_view s) {
  return all_cased_are(s, [](char32_t c) { return category(c) != UTF8PROC_CATEGORY_LL; });
}
bool is_lower(std::string_view s) {
  return all_cased_are(s, [](char32_t c) { return category(c) == UTF8PROC_CATEGORY_LL; });
}
bool is_alpha(std::string_view s) { return all_nonempty(s, is_alpha_cp); }
bool is_digit(std::string_view s) { return all_nonempty(s, is_digit_cp); }
bool is_alnum(std::string_view s) {
  return all_nonempty(s, [](char32_t c) { return is_alpha_cp(c) || is_digit_cp(c); });
}

void append_repr(std::string& out, std::string_view s) {
  // CPython's unicode_repr: single quotes unless the text has ' and no ".
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  out += quote;
  char buf[16];
  for (size_t i = 0; i < s.size();) {
    const auto d = utf8::decode(s, i);
    const char32_t c = d.code_point;
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (is_printable(c)) {
      out.append(s.substr(i, d.length));
    } else {
      const int n = c <= 0xFF     ? std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c))
                    : c <= 0xFFFF ? std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c))
                                  : std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(c));
      out.append(buf, static_cast<size_t>(n));
    }
    i += d.length;
  }
  out += quote;
}

std::string repr(std::string_view s) {
  std::string out;
  append_repr(out, s);
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&#39;"; break;
      case '"': out += "&#34;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace ember::jinja::py
