// Named chat templates (--chat-template NAME) and the rule that picks a model's template: an
// override (preset name or file), else the GGUF's tokenizer.chat_template, else ChatML.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace ember {

class GgufFile;

struct ChatTemplatePreset {
  std::string_view name;
  std::string_view description;
  std::string_view source;  // Jinja2, rendered by ChatTemplate
};

// chatml, llama3, llama2, mistral, gemma, phi3, qwen.
std::span<const ChatTemplatePreset> chat_template_presets();
// nullptr when `name` is not a preset.
const ChatTemplatePreset* find_chat_template_preset(std::string_view name);
// "chatml, llama3, llama2, mistral, gemma, phi3, qwen".
std::string chat_template_preset_names();

// The template to render a model's conversations with, where it came from, and the model's BOS /
// EOS token texts (for the bos_token / eos_token variables; empty when the model has none).
struct ResolvedChatTemplate {
  std::string source;
  std::string origin;  // "preset 'llama3'", "file 'x.jinja'", "tokenizer.chat_template of 'm.gguf'", "default ChatML"
  std::string bos_token, eos_token;
};

// override_spec: "" (none), a preset name, or a template file's path (a preset name wins over a
// file of the same name). model may be null (then only the override or ChatML). Throws
// Error(kNotFound) for an override that is neither a preset nor a readable file (the message lists
// the presets), Error(kIo) when the file cannot be read.
ResolvedChatTemplate resolve_chat_template(const GgufFile* model, std::string_view override_spec);

}  // namespace ember
