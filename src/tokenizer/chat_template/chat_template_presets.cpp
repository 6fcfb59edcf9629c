// The named chat templates and resolve_chat_template(). The presets follow the models' own
// templates for system / user / assistant turns; a message's content may be a string or a list of
// {"type": "text", "text": ...} parts.
#include "tokenizer/chat_template/chat_template_presets.h"

#include <unistd.h>

#include <system_error>

#include "core/check.h"
#include "core/whole_file.h"
#include "gguf/gguf_reader.h"

namespace ember {
namespace {

// text(message): the message's content as one string.
#define EMBER_TEXT_MACRO                                                                     \
  "{%- macro text(message) -%}\n"                                                            \
  "{%- if message['content'] is string -%}{{- message['content'] -}}\n"                      \
  "{%- elif message['content'] is iterable -%}{%- for part in message['content'] -%}\n"      \
  "{%- if part is mapping and part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}\n" \
  "{%- endfor -%}{%- endif -%}\n"                                                            \
  "{%- endmacro -%}\n"

constexpr ChatTemplatePreset kPresets[] = {
    {"chatml", "ChatML (<|im_start|>role ... <|im_end|>)",
     EMBER_TEXT_MACRO "{%- for message in messages -%}\n"
                      "{{- '<|im_start|>' + message['role'] + '\\n' + text(message) + '<|im_end|>\\n' -}}\n"
                      "{%- endfor -%}\n"
                      "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n"},
    {"llama3", "Llama 3 / 3.1 Instruct (<|start_header_id|>role<|end_header_id|>)",
     EMBER_TEXT_MACRO
     "{%- for message in messages -%}\n"
     "{%- if loop.first -%}{{- bos_token -}}{%- endif -%}\n"
     "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + text(message) | trim + '<|eot_id|>' "
     "-}}\n"
     "{%- endfor -%}\n"
     "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}\n"},
    {"llama2", "Llama 2 Chat ([INST] <<SYS>> ... [/INST])",
     EMBER_TEXT_MACRO "{%- if messages and messages[0]['role'] == 'system' -%}\n"
                      "{%- set system = text(messages[0]) -%}{%- set loop_messages = messages[1:] -%}\n"
                      "{%- else -%}{%- set system = '' -%}{%- set loop_messages = messages -%}{%- endif -%}\n"
                      "{%- for message in loop_messages -%}\n"
                      "{%- if message['role'] == 'user' -%}\n"
                      "{%- if loop.first and system -%}{%- set content = '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' + "
                      "text(message) -%}\n"
                      "{%- else -%}{%- set content = text(message) -%}{%- endif -%}\n"
                      "{{- bos_token + '[INST] ' + content | trim + ' [/INST]' -}}\n"
                      "{%- elif message['role'] == 'assistant' -%}\n"
                      "{{- ' ' + text(message) | trim + ' ' + eos_token -}}\n"
                      "{%- endif -%}\n"
                      "{%- endfor -%}\n"},
    {"mistral", "Mistral Instruct ([INST] ... [/INST]; the system prompt joins the first user turn)",
     EMBER_TEXT_MACRO
     "{%- if messages and messages[0]['role'] == 'system' -%}\n"
     "{%- set system = text(messages[0]) -%}{%- set loop_messages = messages[1:] -%}\n"
     "{%- else -%}{%- set system = '' -%}{%- set loop_messages = messages -%}{%- endif -%}\n"
     "{{- bos_token -}}\n"
     "{%- for message in loop_messages -%}\n"
     "{%- if message['role'] == 'user' -%}\n"
     "{%- if loop.first and system -%}{{- '[INST] ' + system + '\\n\\n' + text(message) + ' [/INST]' -}}\n"
     "{%- else -%}{{- '[INST] ' + text(message) + ' [/INST]' -}}{%- endif -%}\n"
     "{%- elif message['role'] == 'assistant' -%}\n"
     "{{- text(message) + eos_token -}}\n"
     "{%- endif -%}\n"
     "{%- endfor -%}\n"},
    {"gemma", "Gemma (<start_of_turn>user / model; the system prompt joins the first user turn)",
     EMBER_TEXT_MACRO "{{- bos_token -}}\n"
                      "{%- if messages and messages[0]['role'] == 'system' -%}\n"
                      "{%- set prefix = text(messages[0]) + '\\n\\n' -%}{%- set loop_messages = messages[1:] -%}\n"
                      "{%- else -%}{%- set prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}\n"
                      "{%- for message in loop_messages -%}\n"
                      "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}\n"
                      "{{- '<start_of_turn>' + role + '\\n' + (prefix if loop.first else '') + text(message) | trim + "
                      "'<end_of_turn>\\n' -}}\n"
                      "{%- endfor -%}\n"
                      "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}\n"},
    {"phi3", "Phi-3 / Phi-3.5 (<|user|> ... <|end|>)",
     EMBER_TEXT_MACRO
     "{%- for message in messages -%}\n"
     "{%- if message['role'] in ['system', 'user', 'assistant'] and (message['role'] != 'system' or text(message)) "
     "-%}\n"
     "{{- '<|' + message['role'] + '|>\\n' + text(message) + '<|end|>\\n' -}}\n"
     "{%- endif -%}\n"
     "{%- endfor -%}\n"
     "{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- else -%}{{- eos_token -}}{%- endif -%}\n"},
    {"qwen", "Qwen 2 / 2.5 (ChatML with a default system prompt)",
     EMBER_TEXT_MACRO
     "{%- if messages and messages[0]['role'] == 'system' -%}\n"
     "{{- '<|im_start|>system\\n' + text(messages[0]) + '<|im_end|>\\n' -}}\n"
     "{%- else -%}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}{%- endif -%}\n"
     "{%- for message in messages -%}\n"
     "{%- if not (loop.first and message['role'] == 'system') -%}\n"
     "{{- '<|im_start|>' + message['role'] + '\\n' + text(message) + '<|im_end|>\\n' -}}\n"
     "{%- endif -%}\n"
     "{%- endfor -%}\n"
     "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n"},
};

#undef EMBER_TEXT_MACRO

std::string token_text(const GgufFile& model, std::string_view id_key) {
  if (!model.contains("tokenizer.ggml.tokens")) return "";
  const std::optional<uint32_t> id = model.get_optional<uint32_t>(id_key);
  if (!id) return "";
  const auto tokens = model.get_strings("tokenizer.ggml.tokens");
  return *id < tokens.size() ? std::string(tokens[*id]) : std::string();
}

}  // namespace

std::span<const ChatTemplatePreset> chat_template_presets() { return kPresets; }

const ChatTemplatePreset* find_chat_template_preset(std::string_view name) {
  for (const ChatTemplatePreset& p : kPresets)
    if (p.name == name) return &p;
  return nullptr;
}

std::string chat_template_preset_names() {
  std::string names;
  for (const ChatTemplatePreset& p : kPresets) names += (names.empty() ? "" : ", ") + std::string(p.name);
  return names;
}

ResolvedChatTemplate resolve_chat_template(const GgufFile* model, std::string_view override_spec) {
  ResolvedChatTemplate r;
  if (model != nullptr) {
    // A special id that is absent or out of range means no such token (bos_token stays empty).
    try {
      r.bos_token = token_text(*model, "tokenizer.ggml.bos_token_id");
      r.eos_token = token_text(*model, "tokenizer.ggml.eos_token_id");
    } catch (const Error&) {
      r.bos_token.clear();
      r.eos_token.clear();
    }
  }
  if (!override_spec.empty()) {
    if (const ChatTemplatePreset* preset = find_chat_template_preset(override_spec)) {
      r.source = std::string(preset->source);
      r.origin = "preset '" + std::string(preset->name) + "'";
      return r;
    }
    const std::string path(override_spec);
    // A name that opens nothing may be a mistyped preset: say both.
    if (::access(path.c_str(), R_OK) != 0) {
      fail(ErrorCode::kNotFound, "chat template '{}' is neither a preset ({}) nor a readable file", path,
           chat_template_preset_names());
    }
    r.source = read_whole_file(path, "chat template file");
    r.origin = "file '" + path + "'";
    return r;
  }
  if (model != nullptr) {
    if (const auto source = model->get_optional<std::string>("tokenizer.chat_template")) {
      r.source = *source;
      r.origin = "tokenizer.chat_template of '" + model->name() + "'";
      return r;
    }
  }
  r.source = std::string(kPresets[0].source);
  r.origin = "default ChatML (the model has no tokenizer.chat_template)";
  return r;
}

}  // namespace ember
