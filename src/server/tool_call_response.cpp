// Tool calling, the response side (see tool_call_response.h).
#include "server/tool_call_response.h"

#include <utility>

namespace ember::server {

using nlohmann::json;
using tool_calls::ToolCallEvent;

ToolCallOutput::ToolCallOutput(tool_calls::ToolFormat format, std::vector<std::string> tool_names)
    : parser_(format, std::move(tool_names)) {}

void ToolCallOutput::push(std::string_view text, std::vector<Delta>& out) {
  events_.clear();
  parser_.push(text, events_);
  take(events_, out);
}

void ToolCallOutput::finish(std::vector<Delta>& out) {
  events_.clear();
  parser_.finish(events_);
  take(events_, out);
}

json ToolCallOutput::calls() const {
  json calls = calls_;
  if (parser_.cut_call() && !calls.empty()) calls.erase(calls.size() - 1);
  return calls.empty() ? json(nullptr) : calls;
}

void ToolCallOutput::take(std::vector<ToolCallEvent>& events, std::vector<Delta>& out) {
  for (ToolCallEvent& e : events) {
    if (e.kind == ToolCallEvent::Kind::kContent) {
      content_ += e.text;
      if (out.empty() || !out.back().tool_calls.is_null()) out.emplace_back();
      out.back().content += e.text;
      continue;
    }
    if (out.empty() || out.back().tool_calls.is_null()) {
      // A chunk of calls only (a content chunk may precede it).
      if (out.empty() || !out.back().content.empty()) out.emplace_back();
      out.back().tool_calls = json::array();
    }
    json& list = out.back().tool_calls;
    if (e.kind == ToolCallEvent::Kind::kCallStart) {
      // The openai client builds each call from its first delta and throws when it lacks `type`.
      json call = {
          {"index", e.index}, {"id", e.id}, {"type", "function"}, {"function", {{"name", e.name}, {"arguments", ""}}}};
      list.push_back(call);
      call.erase("index");
      calls_.push_back(std::move(call));
      continue;
    }
    // Arguments: joined to the chunk's delta of the same call when it is one of arguments; after
    // the call's start (whose arguments are "", as OpenAI's first delta) they open the next chunk,
    // so that a chunk holds one entry per call.
    if (!list.empty() && list.back()["index"] == e.index && !list.back().contains("id")) {
      list.back()["function"]["arguments"].get_ref<std::string&>() += e.text;
    } else if (!list.empty() && list.back()["index"] == e.index) {
      out.emplace_back().tool_calls = json::array({{{"index", e.index}, {"function", {{"arguments", e.text}}}}});
    } else {
      list.push_back({{"index", e.index}, {"function", {{"arguments", e.text}}}});
    }
    if (e.index >= 0 && static_cast<size_t>(e.index) < calls_.size()) {
      calls_[static_cast<size_t>(e.index)]["function"]["arguments"].get_ref<std::string&>() += e.text;
    }
  }
}

}  // namespace ember::server
