// ember::Llm: loads a GGUF model for the C++ API — backend, weights, tokenizer, chat template.
#include "ember/llm.h"

#include <algorithm>
#include <filesystem>

#include "api/llm_impl.h"
#include "core/check.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "engine/model_files.h"
#include "model/kv_cache.h"
#include "model/model_type.h"

namespace ember {
namespace {

void check_load_options(const LoadOptions& o) {
  if (o.threads < 0 || o.threads > ThreadPool::kMaxThreads) {
    fail(ErrorCode::kInvalidArgument, "threads must be 0 (every CPU) to {}, got {}", ThreadPool::kMaxThreads,
         o.threads);
  }
  if (o.context < 0) fail(ErrorCode::kInvalidArgument, "context must be >= 0 (0: the model's), got {}", o.context);
  if (o.kv_type != DType::kF16 && o.kv_type != DType::kF32 && o.kv_type != DType::kQ8_0) {
    fail(ErrorCode::kInvalidArgument, "kv_type must be f16, f32 or q8_0, got {}", dtype_name(o.kv_type));
  }
}

// LoadOptions::chat_template: Jinja source (it has "{{" or "{%"), a preset name or a file; empty:
// the model's, else ChatML. A template that does not parse fails only when it is applied, so a
// model with a broken template still loads for plain generation.
void load_chat_template(Llm::Impl& impl, const GgufFile& file, const std::string& spec) {
  const bool is_source = spec.find("{{") != std::string::npos || spec.find("{%") != std::string::npos;
  impl.chat_template = resolve_chat_template(&file, is_source ? std::string_view() : std::string_view(spec));
  if (is_source) {
    impl.chat_template.source = spec;
    impl.chat_template.origin = "LoadOptions::chat_template";
  }
  try {
    impl.chat_program.emplace(ChatTemplate::parse(impl.chat_template.source));
  } catch (const TemplateError& e) {
    impl.chat_error.emplace(e);
  }
}

}  // namespace

Llm::Llm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Llm::~Llm() = default;

std::shared_ptr<Llm> Llm::load(const std::string& path, const LoadOptions& options) {
  check_load_options(options);
  auto impl = std::make_unique<Impl>();
  MapOptions map;
  map.mlock = options.mlock;
  ModelWithTokenizer opened = open_model_with_tokenizer(path, map);
  const ModelConfig& config = opened.config;
  impl->tokenizer.emplace(std::move(opened.tokenizer));
  load_chat_template(*impl, opened.files.metadata_file(), options.chat_template);

  ModelInfo& info = impl->info;
  info.path = path;
  info.name = config.name.empty() ? std::filesystem::path(path).filename().string() : config.name;
  info.architecture = std::string(arch_name(config.arch));
  info.type = model_type_label(opened.files);
  info.n_vocab = config.n_vocab;
  info.n_layer = config.n_layer;
  info.n_embd = config.n_embd;
  info.trained_context = config.context_length;
  info.context = resolve_context(options.context, config.context_length);
  check_kv_dtypes(config, options.kv_type, options.kv_type);  // before the weights load

  CpuBackendOptions backend_options;
  backend_options.n_threads = options.threads;
  impl->backend = std::make_unique<CpuBackend>(backend_options);
  ModelOptions model_options;
  model_options.max_step_tokens = std::min(info.context, model_options.max_step_tokens);
  model_options.context_size = info.context;
  model_options.batch_invariant = options.batch_invariant;
  model_options.repack_output = options.repack_output;
  static_assert(kAllGpuLayers == kGpuLayersAll);
  model_options.gpu_layers = options.gpu_layers;
  model_options.gpu_device = options.gpu_device;
  impl->model = Model::from_files(std::move(opened.files), *impl->backend, model_options);
  impl->kv_type = options.kv_type;

  info.parameters = impl->model->parameter_count();
  info.weight_bytes = impl->model->weight_bytes();
  info.threads = impl->backend->n_threads();
  info.kernels = std::string(impl->backend->kernels_name());
  if (const GpuLayers* gpu = impl->model->gpu(); gpu != nullptr) {
    info.gpu_layers = config.n_layer - gpu->first_layer();
    info.gpu = gpu->memory().device;
  }
  return std::shared_ptr<Llm>(new Llm(std::move(impl)));
}

const ModelInfo& Llm::info() const noexcept { return impl_->info; }

std::vector<int32_t> Llm::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> ids =
      impl_->tokenizer->encode(text, EncodeOptions{.add_special = add_special, .parse_special = parse_special});
  // A chat template that writes the BOS text itself, tokenized with add_special: one BOS, not two
  // (a doubled BOS degrades the text; llama.cpp warns about it).
  const std::optional<TokenId> bos = impl_->tokenizer->vocab().special().bos;
  if (add_special && parse_special && impl_->tokenizer->vocab().add_bos() && bos && ids.size() >= 2 && ids[0] == *bos &&
      ids[1] == *bos) {
    ids.erase(ids.begin());
  }
  return ids;
}

std::string Llm::detokenize(std::span<const int32_t> tokens, bool render_special) const {
  return impl_->tokenizer->decode(tokens, DecodeOptions{.render_special = render_special});
}

bool Llm::is_end_of_generation(int32_t token) const { return impl_->tokenizer->vocab().is_end_of_generation(token); }

const std::string& Llm::chat_template() const noexcept { return impl_->chat_template.source; }

std::string Llm::apply_chat_template(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
  if (impl_->chat_error) throw *impl_->chat_error;
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  const nlohmann::ordered_json context = {{"messages", std::move(list)},
                                          {"add_generation_prompt", add_generation_prompt},
                                          {"bos_token", impl_->chat_template.bos_token},
                                          {"eos_token", impl_->chat_template.eos_token}};
  return impl_->chat_program->render(context);
}

Llm::HookHandle Llm::add_hook(HookPoint point, HookFn fn) {
  const std::lock_guard lock(impl_->forward_mutex);  // never while a step runs
  return impl_->model->hooks().add(point, std::move(fn));
}

void Llm::remove_hook(HookHandle handle) {
  const std::lock_guard lock(impl_->forward_mutex);
  impl_->model->hooks().remove(handle);
}

}  // namespace ember
