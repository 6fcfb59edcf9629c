// ember::Llm — the C++ API's loaded model: a GGUF file mapped and ready on the CPU, with its
// tokenizer and chat template. Sessions (ember/session.h) generate text with it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/dtype.h"
#include "ember/export.h"
#include "ember/hooks.h"

namespace ember {

// LoadOptions::gpu_layers: every layer and the output head on the GPU.
inline constexpr int32_t kAllGpuLayers = -1;

struct LoadOptions {
  int32_t threads = 0;  // worker threads; 0: every CPU the process may use
  int32_t context = 0;  // tokens per session, prompt included; 0: the model's, at most 4096
  // K and V cache element type: kF16, kF32, or kQ8_0 (about half of F16's memory; needs a head
  // size that is a multiple of 32, else load fails with kUnsupported).
  DType kv_type = DType::kF16;
  bool mlock = false;  // lock the weights in RAM (a warning in the log when not allowed)
  // Every row's logits bit-identical whatever else shares its forward step, so a seeded request
  // gives the same text under any server load; prefill of F16 / BF16 weights (of every type
  // without AVX-512) runs slower, and on AMD AVX-512 CPUs so does decode of quantized weights.
  bool batch_invariant = false;
  // Many sequences per step (a server): the LM head is repacked for the GEMM, at the memory of a
  // copy of the output matrix.
  bool repack_output = false;
  // Layers run on the GPU (CUDA): the last N, or every layer and the output head with
  // kAllGpuLayers (-1); 0: CPU only. Needs a build with CUDA and a usable GPU (else an Error).
  int32_t gpu_layers = 0;
  int32_t gpu_device = 0;  // CUDA device index
  // The chat template: Jinja source, a preset name (chatml, llama3, llama2, mistral, gemma, phi3,
  // qwen) or a template file; empty: the model's own, else ChatML.
  std::string chat_template = {};
};

// What a loaded model is, for display and for sizing requests.
struct ModelInfo {
  std::string path = {};
  std::string name = {};          // general.name, else the file name
  std::string architecture = {};  // "llama", "qwen2", ...
  std::string type = {};          // the weights' dominant type, e.g. "Q8_0"
  uint64_t parameters = 0;
  uint64_t weight_bytes = 0;  // memory-mapped
  int32_t n_vocab = 0;
  int32_t n_layer = 0;
  int32_t n_embd = 0;
  int32_t trained_context = 0;  // the context the model was trained on (0: unknown)
  int32_t context = 0;          // tokens per session, as loaded
  int32_t threads = 0;
  std::string kernels = {};  // "avx512+amx", "avx2", "scalar"
  int32_t gpu_layers = 0;    // layers on the GPU (0: CPU only)
  std::string gpu = {};      // the GPU's name and compute capability; empty: CPU only
};

// One message of a conversation, as chat templates see it.
struct ChatMessage {
  std::string role = {};  // "system", "user", "assistant", "tool"
  std::string content = {};
};

class EMBER_API Llm {
 public:
  // Maps and validates the file. Throws Error naming the file and what is wrong with it (or with
  // the options: a negative thread count, a context beyond what the KV cache can address, ...).
  static std::shared_ptr<Llm> load(const std::string& path, const LoadOptions& options = {});
  ~Llm();
  Llm(const Llm&) = delete;
  Llm& operator=(const Llm&) = delete;

  const ModelInfo& info() const noexcept;

  // Text to token ids. add_special: BOS (and EOS / SEP) where the vocabulary says to;
  // parse_special: control tokens written in the text (e.g. "<|im_start|>") become those tokens —
  // off for untrusted text. When the vocabulary adds BOS and the text itself starts with the BOS
  // token's text (a rendered chat template) and parse_special is on, it gets one BOS, not two.
  std::vector<int32_t> tokenize(std::string_view text, bool add_special = true, bool parse_special = false) const;
  // Token ids to text (invalid UTF-8 replaced); control tokens render only when asked.
  std::string detokenize(std::span<const int32_t> tokens, bool render_special = false) const;
  // Whether generation ends at this token (EOS, EOT, <|im_end|>, ...).
  bool is_end_of_generation(int32_t token) const;

  // The chat template in use (LoadOptions::chat_template, else the model's, else ChatML) applied to
  // a conversation, rendered as Python Jinja2 would (bos_token / eos_token from the vocabulary);
  // add_generation_prompt opens the assistant's turn. Throws Error: the template's own message when
  // it raises (an unsupported role, say), its line and column when it does not parse.
  std::string apply_chat_template(std::span<const ChatMessage> messages, bool add_generation_prompt = true) const;
  // Its source.
  const std::string& chat_template() const noexcept;

  // Callbacks on the forward pass's intermediates (ember/hooks.h) of every session of this model,
  // called on the thread that runs the step while it holds the model (so a callback must not add
  // or remove hooks, nor drive a session of the same model: that would wait for itself). Register
  // and remove between steps, from any thread.
  using HookHandle = uint64_t;
  HookHandle add_hook(HookPoint point, HookFn fn);
  void remove_hook(HookHandle handle);

  struct Impl;

 private:
  friend class Session;
  friend struct LlmAccess;  // the engine's own front ends (the server): src/api/llm_impl.h
  Impl& impl() noexcept { return *impl_; }
  explicit Llm(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ember
