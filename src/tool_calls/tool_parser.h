// Incremental parser of a model's output into content and tool calls, per format, for streaming.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tool_calls/tool_format.h"

namespace ember::tool_calls {

// What the output holds, in order. A call is announced once (kCallStart: index, name, id), then its
// arguments' JSON text arrives in kCallArguments fragments (verbatim bytes; concatenated per index
// they are the arguments object) — the shape of OpenAI's streamed tool_calls deltas.
struct ToolCallEvent {
  enum class Kind { kContent, kCallStart, kCallArguments };
  Kind kind = Kind::kContent;
  int index = 0;          // the call's, from 0 (kCallStart, kCallArguments)
  std::string text = {};  // kContent: the text; kCallArguments: the fragment
  std::string name = {};  // kCallStart
  std::string id = {};    // kCallStart
};

// Fed the decoded output text piece by piece (control tokens rendered as their text, so that
// "[TOOL_CALLS]" is seen), it emits events as soon as they are certain:
// - content passes through, except a suffix that could begin a marker ("<tool_call>",
//   "[TOOL_CALLS]", DeepSeek's "<｜tool▁calls▁begin｜>"): held back until the next piece settles
//   it, like a stop-string matcher; and an incomplete UTF-8 character, held until complete (events
//   are always whole characters);
// - markup is never content: the marker, the call's JSON keys and brackets, the closer
//   ("</tool_call>", "]"), and whitespace between calls are consumed;
// - Llama 3.x: the output is a call only when it starts with {"name": "<one of tool_names>",
//   "parameters": {  (tool_names empty: any name); otherwise it is all content. Generic: the output
//   is {"tool_call": ...}, {"tool_calls": [...]} or {"response": "..."} (the response string is
//   decoded into content); otherwise all content;
// - ids: the model's own for Mistral Small 3.2 ([CALL_ID]) and Mistral Nemo ("id") when it is 9
//   alphanumerics, else generated: 9 alphanumerics for the Mistral families (their templates
//   refuse other ids), "call_" + 24 alphanumerics for the others;
// - Mistral Nemo writes the id after the arguments, so its kCallStart and the whole arguments come
//   together when the call's object closes (the other families stream the arguments);
// - text that looks like a call but is not (a marker not followed by the call syntax) becomes
//   content, marker included. At finish(), a call cut off before its arguments started is dropped,
//   one cut off inside its arguments keeps what arrived (cut_call()), one whose arguments are
//   complete stands (Mistral Nemo: also without its id or "]"), held-back content is released.
// - Llama 3.x: a partial name no tool's name begins with settles the output as content at once;
// - markup is decided on its first 1024 bytes only (so the split of the text never changes the
//   outcome, and a run of markup that never ends costs linear time): a header (Llama 3.x and
//   generic: the output's start) not complete within them is not a call, a closer not complete
//   within them is malformed (the call stands, what follows is content);
// - JSON strings the parser decodes (names, generic's response): a \u escape with a non-hex digit
//   is U+FFFD and the rest plain characters; an unpaired surrogate is U+FFFD.
// The grammar (tool_grammar.h) guarantees the shapes; the parser does not validate the arguments.
class ToolCallParser {
 public:
  // `seed` makes the generated ids reproducible (tests); absent: a random seed.
  ToolCallParser(ToolFormat format, std::vector<std::string> tool_names, std::optional<uint64_t> seed = std::nullopt);

  void push(std::string_view text, std::vector<ToolCallEvent>& out);
  // The output ended: release what was held back.
  void finish(std::vector<ToolCallEvent>& out);
  // Whether a call was announced (kCallStart): finish_reason "tool_calls".
  bool saw_calls() const { return calls_ > 0; }
  // After finish(): the last call was cut off inside its arguments (a stop string, max_tokens), so
  // its arguments are not a whole JSON object.
  bool cut_call() const { return cut_call_; }

 private:
  enum class State {
    kStart,        // Llama 3.x / generic: deciding whether the output is a call
    kContent,      // passing content through, watching for the marker
    kOpenList,     // Mistral Nemo: "[" after the marker
    kHeader,       // the call's name (and id) up to the first byte of the arguments
    kArguments,    // inside the arguments object
    kTrailer,      // after the arguments: the call's closer
    kResponse,     // generic: inside the "response" string
    kResponseEnd,  // generic: the response object's "}"
  };
  void run(std::vector<ToolCallEvent>& out);
  bool step(std::vector<ToolCallEvent>& out);  // false: needs more text
  bool step_content(std::vector<ToolCallEvent>& out);
  void start_call(std::string name, std::string id, std::vector<ToolCallEvent>& out);
  void emit_content(std::string_view text, std::vector<ToolCallEvent>& out, bool flush = false);
  void emit_arguments(std::string_view text, std::vector<ToolCallEvent>& out, bool flush = false);
  void not_a_call(std::vector<ToolCallEvent>& out);
  std::string generate_id();

  ToolFormat format_;
  std::vector<std::string> tool_names_;
  std::mt19937_64 rng_;
  std::string marker_;  // empty: no marker (Llama 3.x, generic)
  State state_;
  std::string buf_;            // text received, not yet consumed
  bool skip_ws_ = false;       // drop whitespace after a call
  bool generic_list_ = false;  // generic: {"tool_calls": [...]}
  bool after_marker_ = false;  // the header being read follows the marker (not an earlier call)
  int calls_ = 0;
  bool cut_call_ = false;
  std::string content_partial_;  // an incomplete UTF-8 character of content
  std::string args_partial_;     // ... of arguments
  // The arguments scanner: depth of {} / [] outside strings.
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  // Mistral Nemo: the current call, announced when its id is read.
  std::string nemo_name_, nemo_args_;
};

}  // namespace ember::tool_calls
