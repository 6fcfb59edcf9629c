// Tool calling on /v1/chat/completions, the response side: a choice's output text run through the
// family's ToolCallParser, as OpenAI's message.tool_calls (whole) or delta.tool_calls (streamed).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tool_calls/tool_parser.h"

namespace ember::server {

class ToolCallOutput {
 public:
  // What one streamed chunk carries: content text, or tool_calls deltas ([{index, id, type,
  // function: {name, arguments: ""}}] when a call starts, [{index, function: {arguments}}] after).
  struct Delta {
    std::string content;
    nlohmann::json tool_calls = nullptr;
  };

  ToolCallOutput(tool_calls::ToolFormat format, std::vector<std::string> tool_names);

  // Feeds output text; appends the chunks it settles, in order (content and calls never share
  // one, so a client sees them in the order the model wrote them).
  void push(std::string_view text, std::vector<Delta>& out);
  // The output ended: what was held back.
  void finish(std::vector<Delta>& out);

  // finish_reason "tool_calls": calls were made and none was cut off inside its arguments (a stop
  // string, max_tokens: its arguments are not whole JSON; the reply keeps its own reason).
  bool saw_calls() const { return parser_.saw_calls() && !parser_.cut_call(); }
  // Everything so far: the content (null in a message with calls when only whitespace), and the
  // calls as message.tool_calls (null when none), less a call cut off inside its arguments (after
  // finish(); streaming has sent its deltas already).
  const std::string& content() const { return content_; }
  nlohmann::json calls() const;

 private:
  void take(std::vector<tool_calls::ToolCallEvent>& events, std::vector<Delta>& out);

  tool_calls::ToolCallParser parser_;
  std::string content_;
  nlohmann::json calls_ = nlohmann::json::array();
  std::vector<tool_calls::ToolCallEvent> events_;
};

}  // namespace ember::server
