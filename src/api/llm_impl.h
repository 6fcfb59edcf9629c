// Llm::Impl: what a loaded model holds — shared by the C++ API's sessions and the C API.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cpu/cpu_backend.h"
#include "ember/llm.h"
#include "model/model.h"
#include "tokenizer/chat_template/chat_template.h"
#include "tokenizer/chat_template/chat_template_presets.h"
#include "tokenizer/tokenizer.h"

namespace ember {

struct Llm::Impl {
  ModelInfo info;
  std::unique_ptr<CpuBackend> backend;  // declared first: outlives the model, which runs on it
  std::unique_ptr<Model> model;
  std::optional<Tokenizer> tokenizer;
  ResolvedChatTemplate chat_template;        // the source, its origin, the BOS / EOS texts
  std::optional<ChatTemplate> chat_program;  // parsed at load
  std::optional<TemplateError> chat_error;   // or why it does not parse (thrown when applied)
  DType kv_type = DType::kF16;
  // One forward step at a time: the model's step scratch and logits are shared by its sessions.
  std::mutex forward_mutex;
};

// What a loaded Llm holds, for ember's own front ends that drive the model directly (the server's
// engine); not part of the public API.
struct LlmAccess {
  static Llm::Impl& impl(Llm& llm) noexcept { return llm.impl(); }
};

}  // namespace ember
