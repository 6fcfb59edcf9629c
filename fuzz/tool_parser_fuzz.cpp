// libFuzzer target: the streaming tool-call parser on arbitrary model output, in every format.
// Never a crash or hang, and the stream's split does not matter: the text pushed whole and pushed
// in small pieces give the same content, the same calls (names, ids, arguments) and the same
// finish state. Valid UTF-8 in gives whole characters in every event.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.h"
#include "tool_calls/tool_format.h"
#include "tool_calls/tool_parser.h"

namespace {

using ember::tool_calls::kAllToolFormats;
using ember::tool_calls::ToolCallEvent;
using ember::tool_calls::ToolCallParser;
using ember::tool_calls::ToolFormat;

// What a client ends up with: the content, and per call its name, id and arguments.
struct Outcome {
  std::string content;
  std::vector<std::string> calls;  // name '\0' id '\0' arguments, by index
  bool saw_calls = false, cut_call = false;
  bool operator==(const Outcome&) const = default;
};

void fold(const std::vector<ToolCallEvent>& events, Outcome& o, bool valid_input) {
  for (const ToolCallEvent& e : events) {
    if (valid_input && !ember::utf8::is_valid(e.text)) {
      std::fprintf(stderr, "event text is not whole UTF-8 characters\n");
      std::abort();
    }
    switch (e.kind) {
      case ToolCallEvent::Kind::kContent: o.content += e.text; break;
      case ToolCallEvent::Kind::kCallStart:
        if (e.index != static_cast<int>(o.calls.size())) {
          std::fprintf(stderr, "call %d announced as the %zu-th\n", e.index, o.calls.size());
          std::abort();
        }
        o.calls.push_back(e.name + '\0' + e.id + '\0');
        break;
      case ToolCallEvent::Kind::kCallArguments:
        if (e.index < 0 || e.index >= static_cast<int>(o.calls.size())) {
          std::fprintf(stderr, "arguments for call %d, which was not announced\n", e.index);
          std::abort();
        }
        o.calls[static_cast<size_t>(e.index)] += e.text;
        break;
    }
  }
}

// Pushes `text` in pieces of the sizes `sizes` cycles through (whole when empty).
Outcome parse(ToolFormat format, const std::vector<std::string>& names, std::string_view text,
              const std::vector<size_t>& sizes) {
  ToolCallParser parser(format, names, /*seed=*/7);
  const bool valid = ember::utf8::is_valid(text);
  Outcome o;
  std::vector<ToolCallEvent> events;
  for (size_t at = 0, i = 0; at < text.size(); ++i) {
    const size_t n = sizes.empty() ? text.size() : std::min(sizes[i % sizes.size()], text.size() - at);
    events.clear();
    parser.push(text.substr(at, n), events);
    fold(events, o, valid);
    at += n;
  }
  events.clear();
  parser.finish(events);
  fold(events, o, valid);
  o.saw_calls = parser.saw_calls();
  o.cut_call = parser.cut_call();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > 16 * 1024) return 0;
  const ToolFormat format = kAllToolFormats[data[0] % std::size(kAllToolFormats)];
  const std::vector<std::string> names = data[0] / std::size(kAllToolFormats) % 2 == 0
                                             ? std::vector<std::string>{}
                                             : std::vector<std::string>{"get_weather", "search"};
  // Piece sizes 1..8 from the second byte's bits, three at a time.
  std::vector<size_t> sizes;
  for (int shift = 0; shift < 8; shift += 3) sizes.push_back(((data[1] >> shift) & 7u) + 1);
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  const Outcome whole = parse(format, names, text, {});
  const Outcome pieces = parse(format, names, text, sizes);
  if (!(whole == pieces)) {
    std::fprintf(stderr, "format %d: pushed whole and in pieces, the outcomes differ\n", static_cast<int>(format));
    std::abort();
  }
  return 0;
}
