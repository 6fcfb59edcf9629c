// The streaming tool-call parser (see tool_parser.h): a state machine over the text received so
// far, matching each piece of call markup from the start of the unconsumed text.
#include "tool_calls/tool_parser.h"

#include <algorithm>
#include <utility>

#include "core/utf8.h"

namespace ember::tool_calls {
namespace {

using Kind = ToolCallEvent::Kind;

enum class M { kOk, kMore, kFail };

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_id9(std::string_view s) { return s.size() == 9 && std::all_of(s.begin(), s.end(), is_alnum); }

// How many leading bytes of `s` end on a character boundary: an incomplete last character is left out.
size_t complete_utf8_prefix(std::string_view s) { return s.size() - utf8::incomplete_tail(s); }

// Four hex digits at s[at..at + 4) as v: kOk; kFail at the first byte that is not a hex digit,
// kMore when the text ends before either.
M hex4(std::string_view s, size_t at, uint32_t& v) {
  v = 0;
  for (size_t i = at; i < at + 4; ++i) {
    if (i >= s.size()) return M::kMore;
    const char h = s[i];
    const int digit = h >= '0' && h <= '9'   ? h - '0'
                      : h >= 'a' && h <= 'f' ? h - 'a' + 10
                      : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                             : -1;
    if (digit < 0) return M::kFail;
    v = v * 16 + static_cast<uint32_t>(digit);
  }
  return M::kOk;
}

// Whether s[at..] begins with `l`: kOk, kFail, or kMore when the text ends inside a match.
M starts_with_at(std::string_view s, size_t at, std::string_view l) {
  const std::string_view have = s.substr(std::min(at, s.size()), l.size());
  if (have != l.substr(0, have.size())) return M::kFail;
  return have.size() < l.size() ? M::kMore : M::kOk;
}

// Decodes JSON string characters from s[pos] up to the closing quote (not consumed) or the end of
// what is complete: an escape cut off by the end of `s` stays unconsumed. Returns true at the quote.
bool decode_string_chars(std::string_view s, size_t& pos, std::string& out) {
  while (pos < s.size()) {
    const char c = s[pos];
    if (c == '"') return true;
    if (c != '\\') {
      out += c;
      ++pos;
      continue;
    }
    if (pos + 1 >= s.size()) return false;
    const char e = s[pos + 1];
    if (e != 'u') {
      switch (e) {
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        default: out += e;  // \" \\ \/ (and anything else verbatim: the grammar allows no other)
      }
      pos += 2;
      continue;
    }
    // \u with four hex digits; a non-hex one among them (decided as soon as it arrives, so the
    // split of the text does not matter) makes the \u a U+FFFD and what follows plain characters.
    uint32_t cp = 0;
    const M digits = hex4(s, pos + 2, cp);
    if (digits == M::kMore) return false;
    if (digits == M::kFail) {
      utf8::append(out, U'\uFFFD');
      pos += 2;
      continue;
    }
    size_t used = 6;
    if (cp >= 0xD800 && cp < 0xDC00) {  // a high surrogate: its pair follows as \uDCxx
      M low = starts_with_at(s, pos + 6, "\\u");
      uint32_t lo = 0;
      if (low == M::kOk) low = hex4(s, pos + 8, lo);
      if (low == M::kMore) return false;
      if (low == M::kOk && lo >= 0xDC00 && lo < 0xE000) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        used = 12;
      } else {
        cp = 0xFFFD;  // unpaired: what follows is read on its own
      }
    } else if (cp >= 0xDC00 && cp < 0xE000) {
      cp = 0xFFFD;
    }
    utf8::append(out, static_cast<char32_t>(cp));
    pos += used;
  }
  return false;
}

// Matches markup at the start of the unconsumed text: kOk (and advances), kMore (the text ends
// before the markup is settled), kFail (something else is there).
struct Cursor {
  std::string_view s;
  size_t pos = 0;

  M lit(std::string_view l) {
    const size_t n = std::min(l.size(), s.size() - pos);
    if (s.substr(pos, n) != l.substr(0, n)) return M::kFail;
    if (n < l.size()) return M::kMore;
    pos += l.size();
    return M::kOk;
  }
  void ws() {
    while (pos < s.size() && is_ws(s[pos])) ++pos;
  }
  // The next byte is `c` (not consumed).
  M peek(char c) const {
    if (pos == s.size()) return M::kMore;
    return s[pos] == c ? M::kOk : M::kFail;
  }
  M string(std::string& out) {
    out.clear();
    const M m = lit("\"");
    if (m != M::kOk) return m;
    if (!decode_string_chars(s, pos, out)) return M::kMore;
    ++pos;  // the closing quote
    return M::kOk;
  }
  // Raw text up to (not including) the next '[' (Mistral Small / Devstral names and ids).
  M until_bracket(std::string& out) { return until("[", out); }
  // Raw text up to (not including) the next `delimiter` (DeepSeek's names and types).
  M until(std::string_view delimiter, std::string& out) {
    const size_t end = s.find(delimiter, pos);
    if (end == std::string_view::npos) return M::kMore;
    out.assign(s.substr(pos, end - pos));
    pos = end;
    return M::kOk;
  }
};

// Markup (a call's header, the list's "[", a closer) is read again from its first byte on every
// push until it is settled, so only its first this many bytes decide: what they do not settle is
// malformed. That keeps the re-reading cheap whatever the model writes (a header that never ends
// would otherwise cost quadratic time), and the outcome independent of how the text was split.
constexpr size_t kMaxHeaderBytes = 1024;

// Runs a sequence of matchers, stopping at the first that is not kOk.
#define EMBER_MATCH(expr)        \
  do {                           \
    const M m_ = (expr);         \
    if (m_ != M::kOk) return m_; \
  } while (0)

// `"key" : ` with whitespace around, then the next byte must open an object.
M key_then_object(Cursor& c, std::string_view key) {
  c.ws();
  EMBER_MATCH(c.lit(key));
  c.ws();
  EMBER_MATCH(c.lit(":"));
  c.ws();
  return c.peek('{');
}

// {"name": "<name>", "<args_key>": then the arguments' "{".
M json_call_header(Cursor& c, std::string_view args_key, std::string& name) {
  c.ws();
  EMBER_MATCH(c.lit("{"));
  c.ws();
  EMBER_MATCH(c.lit("\"name\""));
  c.ws();
  EMBER_MATCH(c.lit(":"));
  c.ws();
  EMBER_MATCH(c.string(name));
  c.ws();
  EMBER_MATCH(c.lit(","));
  return key_then_object(c, args_key);
}

}  // namespace

ToolCallParser::ToolCallParser(ToolFormat format, std::vector<std::string> tool_names, std::optional<uint64_t> seed)
    : format_(format), tool_names_(std::move(tool_names)), rng_(seed ? *seed : std::random_device{}()) {
  switch (format_) {
    case ToolFormat::kHermes: marker_ = "<tool_call>"; break;
    case ToolFormat::kMistralNemo:
    case ToolFormat::kMistralSmall:
    case ToolFormat::kDevstral: marker_ = "[TOOL_CALLS]"; break;
    case ToolFormat::kDeepSeekV31:
    case ToolFormat::kDeepSeekR1: marker_ = deepseek::kCallsBegin; break;
    case ToolFormat::kLlama3:
    case ToolFormat::kGeneric: break;
  }
  state_ = marker_.empty() ? State::kStart : State::kContent;
}

std::string ToolCallParser::generate_id() {
  static constexpr std::string_view kAlnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  const bool mistral =
      format_ == ToolFormat::kMistralNemo || format_ == ToolFormat::kMistralSmall || format_ == ToolFormat::kDevstral;
  std::string id = mistral ? "" : "call_";
  // rng() % 62 rather than a distribution object: the same ids on every standard library.
  for (int i = 0; i < (mistral ? 9 : 24); ++i) id += kAlnum[rng_() % kAlnum.size()];
  return id;
}

void ToolCallParser::push(std::string_view text, std::vector<ToolCallEvent>& out) {
  buf_.append(text);
  run(out);
}

void ToolCallParser::finish(std::vector<ToolCallEvent>& out) {
  run(out);
  switch (state_) {
    case State::kStart:  // not settled as a call: it was content
    case State::kContent:
      if (!skip_ws_ || std::any_of(buf_.begin(), buf_.end(), [](char c) { return !is_ws(c); }))
        emit_content(buf_, out, true);
      break;
    case State::kArguments:  // cut off inside the arguments: keep what arrived
      cut_call_ = true;
      if (format_ == ToolFormat::kMistralNemo) {
        start_call(std::move(nemo_name_), generate_id(), out);
        emit_arguments(nemo_args_, out, true);
      }
      emit_arguments("", out, true);
      break;
    case State::kResponse: emit_content("", out, true); break;
    case State::kResponseEnd: break;
    case State::kTrailer:
      // Mistral Nemo announces a call at its closer: one whose arguments are complete stands
      // (cut off before "]" or its id; a generated id).
      if (format_ == ToolFormat::kMistralNemo) {
        start_call(std::move(nemo_name_), generate_id(), out);
        emit_arguments(nemo_args_, out, true);
      }
      break;
    case State::kOpenList:  // a call cut off before its arguments: dropped
    case State::kHeader: break;
  }
  emit_content("", out, true);
  buf_.clear();
}

void ToolCallParser::run(std::vector<ToolCallEvent>& out) {
  while (step(out)) {
  }
}

void ToolCallParser::start_call(std::string name, std::string id, std::vector<ToolCallEvent>& out) {
  emit_content("", out, true);
  out.push_back({.kind = Kind::kCallStart, .index = calls_, .text = "", .name = std::move(name), .id = std::move(id)});
  ++calls_;
  depth_ = 0;
  in_string_ = escape_ = false;
}

void ToolCallParser::emit_content(std::string_view text, std::vector<ToolCallEvent>& out, bool flush) {
  content_partial_.append(text);
  const size_t n = flush ? content_partial_.size() : complete_utf8_prefix(content_partial_);
  if (n == 0) return;
  if (!out.empty() && out.back().kind == Kind::kContent) {
    out.back().text.append(content_partial_, 0, n);
  } else {
    out.push_back({.kind = Kind::kContent, .index = 0, .text = content_partial_.substr(0, n), .name = "", .id = ""});
  }
  content_partial_.erase(0, n);
}

void ToolCallParser::emit_arguments(std::string_view text, std::vector<ToolCallEvent>& out, bool flush) {
  args_partial_.append(text);
  const size_t n = flush ? args_partial_.size() : complete_utf8_prefix(args_partial_);
  if (n == 0) return;
  const int index = calls_ - 1;
  if (!out.empty() && out.back().kind == Kind::kCallArguments && out.back().index == index) {
    out.back().text.append(args_partial_, 0, n);
  } else {
    out.push_back(
        {.kind = Kind::kCallArguments, .index = index, .text = args_partial_.substr(0, n), .name = "", .id = ""});
  }
  args_partial_.erase(0, n);
}

// The text after a marker is not a call after all: the marker is content (when the text followed
// it, not an earlier call), and so is what follows.
void ToolCallParser::not_a_call(std::vector<ToolCallEvent>& out) {
  if (state_ == State::kStart) {
    state_ = State::kContent;
    return;
  }
  if (after_marker_) emit_content(marker_, out);
  state_ = State::kContent;
}

bool ToolCallParser::step_content(std::vector<ToolCallEvent>& out) {
  if (skip_ws_) {
    // Dropped as it comes (not re-read on every push).
    const size_t n = std::find_if(buf_.begin(), buf_.end(), [](char c) { return !is_ws(c); }) - buf_.begin();
    buf_.erase(0, n);
    if (buf_.empty()) return false;  // all whitespace so far: still undecided
    skip_ws_ = false;
  }
  if (marker_.empty() || (format_ == ToolFormat::kGeneric)) {
    emit_content(buf_, out);
    buf_.clear();
    return false;
  }
  const size_t at = buf_.find(marker_);
  if (at == std::string::npos) {
    // Hold back the longest suffix that could begin the marker.
    size_t keep = std::min(buf_.size(), marker_.size() - 1);
    while (keep > 0 && std::string_view(buf_).substr(buf_.size() - keep) != std::string_view(marker_).substr(0, keep))
      --keep;
    emit_content(std::string_view(buf_).substr(0, buf_.size() - keep), out);
    buf_.erase(0, buf_.size() - keep);
    return false;
  }
  emit_content(std::string_view(buf_).substr(0, at), out);
  buf_.erase(0, at + marker_.size());
  after_marker_ = true;
  state_ = format_ == ToolFormat::kMistralNemo ? State::kOpenList : State::kHeader;
  return true;
}

bool ToolCallParser::step(std::vector<ToolCallEvent>& out) {
  // Every state but content, arguments and the response string reads markup: its first
  // kMaxHeaderBytes only (`buf_` starts where the state began).
  Cursor c{.s = std::string_view(buf_).substr(0, kMaxHeaderBytes), .pos = 0};
  // Markup still unsettled by its first kMaxHeaderBytes is malformed.
  const auto settle = [&](M match) { return match == M::kMore && buf_.size() > kMaxHeaderBytes ? M::kFail : match; };
  M m = M::kOk;
  switch (state_) {
    case State::kContent: return step_content(out);

    case State::kStart: {
      // A header not settled within kMaxHeaderBytes is content, however the text came.
      std::string name;
      if (format_ == ToolFormat::kLlama3) {
        m = json_call_header(c, "\"parameters\"", name);
        // Only a known tool makes a call: a normal answer may well start with {"name": ...
        if (m == M::kOk && !tool_names_.empty() &&
            std::find(tool_names_.begin(), tool_names_.end(), name) == tool_names_.end())
          m = M::kFail;
        // Settled early (the header is read again from the start on every push): a partial name
        // no tool's name begins with, or a header longer than any call's.
        if (m == M::kMore && !tool_names_.empty() &&
            std::none_of(tool_names_.begin(), tool_names_.end(),
                         [&](const std::string& t) { return t.compare(0, name.size(), name) == 0; }))
          m = M::kFail;
        m = settle(m);
        if (m == M::kMore) return false;
        if (m == M::kFail) {
          not_a_call(out);
          return true;
        }
        buf_.erase(0, c.pos);
        start_call(std::move(name), generate_id(), out);
        state_ = State::kArguments;
        return true;
      }
      // Generic: {"tool_call": {, {"tool_calls": [ or {"response": "
      const auto header = [&]() -> M {
        c.ws();
        EMBER_MATCH(c.lit("{"));
        c.ws();
        EMBER_MATCH(c.string(name));
        if (name != "tool_call" && name != "tool_calls" && name != "response") return M::kFail;
        c.ws();
        EMBER_MATCH(c.lit(":"));
        c.ws();
        if (name == "tool_calls") return c.lit("[");
        return c.peek(name == "response" ? '"' : '{');
      };
      m = settle(header());
      if (m == M::kMore) return false;
      if (m == M::kFail) {
        not_a_call(out);
        return true;
      }
      buf_.erase(0, c.pos);
      generic_list_ = name == "tool_calls";
      if (name == "response") {
        buf_.erase(0, 1);  // the opening quote
        state_ = State::kResponse;
      } else {
        state_ = State::kHeader;
      }
      return true;
    }

    case State::kOpenList:
      c.ws();
      m = settle(c.lit("["));
      if (m == M::kMore) return false;
      if (m == M::kFail) {
        not_a_call(out);
        return true;
      }
      buf_.erase(0, c.pos);
      state_ = State::kHeader;
      return true;

    case State::kHeader: {
      std::string name, id;
      switch (format_) {
        case ToolFormat::kHermes:
        case ToolFormat::kMistralNemo:
        case ToolFormat::kGeneric:
        case ToolFormat::kLlama3:  // (Llama 3.x reads its header in kStart)
          m = json_call_header(c, "\"arguments\"", name);
          break;
        case ToolFormat::kMistralSmall:
        case ToolFormat::kDevstral:
          m = [&]() -> M {
            EMBER_MATCH(c.until_bracket(name));
            if (format_ == ToolFormat::kMistralSmall && c.lit("[CALL_ID]") == M::kOk) EMBER_MATCH(c.until_bracket(id));
            EMBER_MATCH(c.lit("[ARGS]"));
            return c.peek('{');
          }();
          // "[CALL_ID" cut off: lit() above said kMore, which the [ARGS] match cannot tell apart.
          if (m == M::kFail && format_ == ToolFormat::kMistralSmall && id.empty()) {
            Cursor probe{.s = c.s, .pos = c.pos};
            if (probe.lit("[CALL_ID]") == M::kMore) m = M::kMore;
          }
          break;
        case ToolFormat::kDeepSeekV31:
        case ToolFormat::kDeepSeekR1:
          m = [&]() -> M {
            namespace ds = deepseek;
            c.ws();
            EMBER_MATCH(c.lit(ds::kCallBegin));
            if (format_ == ToolFormat::kDeepSeekR1) {  // the type, then the name on its own line
              EMBER_MATCH(c.lit("function"));
              EMBER_MATCH(c.lit(ds::kSep));
              EMBER_MATCH(c.until("\n", name));
            } else {
              EMBER_MATCH(c.until(ds::kSep, name));
            }
            // A name running into other markup (a control token of a later call) is not a name.
            if (name.find("<｜") != std::string::npos) return M::kFail;
            if (format_ == ToolFormat::kDeepSeekR1) {
              c.ws();
              EMBER_MATCH(c.lit("```json"));
            } else {
              EMBER_MATCH(c.lit(ds::kSep));
            }
            c.ws();
            return c.peek('{');
          }();
          break;
      }
      m = settle(m);
      if (m == M::kMore) return false;
      if (m == M::kFail) {
        not_a_call(out);
        return true;
      }
      buf_.erase(0, c.pos);
      if (format_ == ToolFormat::kMistralNemo) {
        nemo_name_ = std::move(name);
        nemo_args_.clear();
        depth_ = 0;
        in_string_ = escape_ = false;
      } else {
        start_call(std::move(name), is_id9(id) ? id : generate_id(), out);
      }
      state_ = State::kArguments;
      return true;
    }

    case State::kArguments: {
      size_t i = 0;
      bool done = false;
      for (; i < buf_.size() && !done; ++i) {
        const char ch = buf_[i];
        if (in_string_) {
          if (escape_) {
            escape_ = false;
          } else if (ch == '\\') {
            escape_ = true;
          } else if (ch == '"') {
            in_string_ = false;
          }
        } else if (ch == '"') {
          in_string_ = true;
        } else if (ch == '{' || ch == '[') {
          ++depth_;
        } else if (ch == '}' || ch == ']') {
          done = --depth_ == 0;
        }
      }
      if (format_ == ToolFormat::kMistralNemo) {
        nemo_args_.append(buf_, 0, i);
      } else {
        emit_arguments(std::string_view(buf_).substr(0, i), out, done);
      }
      buf_.erase(0, i);
      if (!done) return false;
      state_ = State::kTrailer;
      return true;
    }

    case State::kTrailer: {
      bool next_call = false;
      std::string id;
      size_t call_closed_at = 0;  // DeepSeek: the call's own closer read, the list's malformed
      switch (format_) {
        case ToolFormat::kHermes:
          m = [&]() -> M {
            c.ws();
            EMBER_MATCH(c.lit("}"));
            c.ws();
            return c.lit("</tool_call>");
          }();
          break;
        case ToolFormat::kLlama3:
          c.ws();
          m = c.lit("}");
          break;
        case ToolFormat::kMistralNemo:
          m = [&]() -> M {
            c.ws();
            if (c.peek(',') == M::kOk) {
              ++c.pos;
              c.ws();
              EMBER_MATCH(c.lit("\"id\""));
              c.ws();
              EMBER_MATCH(c.lit(":"));
              c.ws();
              EMBER_MATCH(c.string(id));
              c.ws();
            }
            EMBER_MATCH(c.lit("}"));
            c.ws();
            if (c.peek(',') == M::kOk) {
              ++c.pos;
              next_call = true;
              return M::kOk;
            }
            return c.lit("]");
          }();
          break;
        case ToolFormat::kMistralSmall:
        case ToolFormat::kDevstral: m = M::kOk; break;  // the next [TOOL_CALLS], if any, is a marker
        case ToolFormat::kDeepSeekV31:
        case ToolFormat::kDeepSeekR1:
          m = [&]() -> M {
            namespace ds = deepseek;
            c.ws();
            if (format_ == ToolFormat::kDeepSeekR1) {
              EMBER_MATCH(c.lit("```"));
              c.ws();
            }
            EMBER_MATCH(c.lit(ds::kCallEnd));
            call_closed_at = c.pos;
            c.ws();
            // The list's closer, or the next call (its header reads its <｜tool▁call▁begin｜>).
            const M next = starts_with_at(c.s, c.pos, ds::kCallBegin);
            if (next == M::kOk) {
              next_call = true;
              return M::kOk;
            }
            const M end = c.lit(ds::kCallsEnd);
            return end == M::kFail && next == M::kMore ? M::kMore : end;
          }();
          break;
        case ToolFormat::kGeneric:
          m = [&]() -> M {
            c.ws();
            EMBER_MATCH(c.lit("}"));
            c.ws();
            if (generic_list_) {
              if (c.peek(',') == M::kOk) {
                ++c.pos;
                next_call = true;
                return M::kOk;
              }
              EMBER_MATCH(c.lit("]"));
              c.ws();
            }
            return c.lit("}");
          }();
          break;
      }
      m = settle(m);
      if (m == M::kMore) return false;
      if (format_ == ToolFormat::kMistralNemo) {
        // The call is complete (or its closer is malformed): announce it now that the id is known.
        start_call(std::move(nemo_name_), is_id9(id) ? id : generate_id(), out);
        emit_arguments(nemo_args_, out, true);
      }
      if (m == M::kOk) buf_.erase(0, c.pos);
      if (m == M::kFail) buf_.erase(0, call_closed_at);
      // A malformed closer: the call stands, what follows is content.
      state_ = next_call ? State::kHeader : State::kContent;
      after_marker_ = false;
      skip_ws_ = m == M::kOk;
      return true;
    }

    case State::kResponse: {
      std::string text;
      size_t pos = 0;
      const bool closed = decode_string_chars(buf_, pos, text);
      emit_content(text, out);
      buf_.erase(0, pos);
      if (!closed) return false;
      buf_.erase(0, 1);  // the closing quote
      state_ = State::kResponseEnd;
      return true;
    }

    case State::kResponseEnd:
      c.ws();
      m = settle(c.lit("}"));
      if (m == M::kMore) return false;
      if (m == M::kOk) buf_.erase(0, c.pos);
      state_ = State::kContent;
      skip_ws_ = m == M::kOk;
      return true;
  }
  return false;
}

#undef EMBER_MATCH  // a unity batch continues with the next file

}  // namespace ember::tool_calls
