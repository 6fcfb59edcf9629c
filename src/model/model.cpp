// Model: loading — the config and weights of a GGUF file, the backend's form of every matmul
// weight, RoPE tables, and step scratch sized once.
#include "model/model.h"

#include <algorithm>
#include <utility>

#include "core/check.h"
#include "ember/error.h"
#include "model/latent_weights.h"
#include "quant/quant_traits.h"

namespace ember {
namespace {

size_t floats(int64_t rows, int64_t cols) { return static_cast<size_t>(rows) * static_cast<size_t>(cols); }

// A mixture-of-experts layer's matrices through `prepare` (WeightMatrix -> Linear), each expert its
// own matrix (a view into the merged tensor).
template <class Prepare>
MoeLinears prepare_experts(const LayerWeights& w, const Prepare& prepare) {
  MoeLinears l;
  l.router = prepare(weight_matrix(w.router));
  if (w.selection_bias.data() != nullptr) l.selection_bias = w.selection_bias.data_as<float>();
  const int64_t n_expert = w.expert_gate.ne(2);
  for (int64_t e = 0; e < n_expert; ++e) {
    l.gate.push_back(prepare(expert_matrix(w.expert_gate, e)));
    l.up.push_back(prepare(expert_matrix(w.expert_up, e)));
    l.down.push_back(prepare(expert_matrix(w.expert_down, e)));
  }
  l.has_shared = w.shared_gate.data() != nullptr;
  if (l.has_shared) {
    // ffn_gate_inp_shexp is a vector [n_embd]: a matrix of one row (Qwen2-MoE; Granite's has none).
    l.shared_gated = w.shared_router.data() != nullptr;
    if (l.shared_gated) {
      l.shared_router =
          prepare(WeightMatrix{w.shared_router.data(), w.shared_router.dtype(), 1, w.shared_router.ne(0)});
    }
    l.shared_gate = prepare(weight_matrix(w.shared_gate));
    l.shared_up = prepare(weight_matrix(w.shared_up));
    l.shared_down = prepare(weight_matrix(w.shared_down));
  }
  return l;
}

// A latent-attention layer's matrices through `prepare`, k_b and v_b one matrix per head (views
// into their [.., .., n_head] tensors; from a merged attn_kv_b, v_b is a view of its rows and k_b a
// transposed copy kept in `owned`).
template <class Prepare>
LatentLinearsOf<Linear> prepare_latent_attention(const LayerWeights& w, const ModelConfig& c,
                                                 std::vector<std::vector<std::byte>>& owned, const Prepare& prepare) {
  const MlaConfig& mla = c.mla;
  LatentLinearsOf<Linear> m;
  if (mla.q_lora_rank > 0) {
    m.wq_a = prepare(weight_matrix(w.wq_a));
    m.wq_b = prepare(weight_matrix(w.wq_b));
  } else {
    m.wq = prepare(weight_matrix(w.wq));
  }
  m.wkv_a = prepare(weight_matrix(w.wkv_a));
  for (int64_t h = 0; h < c.n_head; ++h) {
    if (!mla.merged_kv_b) {
      m.k_b.push_back(prepare(expert_matrix(w.wk_b, h)));
      m.v_b.push_back(prepare(expert_matrix(w.wv_b, h)));
      continue;
    }
    m.k_b.push_back(prepare(transposed_k_b(w.wkv_b, mla, h, owned.emplace_back())));
    m.v_b.push_back(prepare(merged_v_b(w.wkv_b, mla, h)));
  }
  return m;
}

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& path, CpuBackend& backend, const ModelOptions& options) {
  return from_files(GgufModelFiles::open(path, options.map), backend, options);
}

std::unique_ptr<Model> Model::from_files(GgufModelFiles files, CpuBackend& backend, const ModelOptions& options) {
  return std::unique_ptr<Model>(new Model(std::move(files), backend, options));
}

std::unique_ptr<Model> Model::from_file(GgufFile file, CpuBackend& backend, const ModelOptions& options) {
  return from_files(GgufModelFiles::from_file(std::move(file)), backend, options);
}

Model::Model(GgufModelFiles files, CpuBackend& backend, const ModelOptions& options)
    : files_(std::move(files)), backend_(backend), options_(options) {
  if (options_.max_step_tokens <= 0) {
    fail(ErrorCode::kInvalidArgument, "model: max_step_tokens must be positive, not {}", options_.max_step_tokens);
  }
  if (options_.gpu_layers < kGpuLayersAll) {
    fail(ErrorCode::kInvalidArgument, "model: {} GPU layers (give a count >= 0, or all)", options_.gpu_layers);
  }
  if (options_.context_size < 0) {
    fail(ErrorCode::kInvalidArgument, "model: context size {} is negative", options_.context_size);
  }
  config_ = ModelConfig::from_gguf(files_);
  const GgufFile& file = files_.metadata_file();
  if (config_.norm != NormKind::kRms) {
    fail(ErrorCode::kUnsupported, "{}: layer-norm models are not supported yet", file.name());
  }
  if (config_.head_dim_v != config_.head_dim) {
    fail(ErrorCode::kUnsupported, "{}: value heads of {} dims with key heads of {} are not supported yet", file.name(),
         config_.head_dim_v, config_.head_dim);
  }
  if (options_.context_size == 0) options_.context_size = config_.context_length;
  weights_ = Weights::bind(files_, config_);
  for (const GgufModelFiles::Tensor& t : files_.tensors()) {
    weight_bytes_ += t.info->n_bytes;
    parameter_count_ += t.info->n_elements;
  }

  // Phi-3 LongRoPE: the long factors serve contexts beyond the original one (llama.cpp's rule).
  RopeParams rope = config_.rope;
  if (!config_.rope_factors_long.empty() && options_.context_size > rope.n_ctx_orig) {
    rope.freq_factors = config_.rope_factors_long;
  }
  if (rope.n_rot > 0) rope_.emplace(std::move(rope));
  if (config_.rope_local.n_rot > 0) rope_local_.emplace(config_.rope_local);
  layer_step_ = {.n = 0,
                 .n_rot = rope_ ? static_cast<int32_t>(rope_->n_rot()) : 0,
                 .neox = rope_ && rope_->neox(),
                 .n_rot_local = rope_local_ ? static_cast<int32_t>(rope_local_->n_rot()) : 0,
                 .neox_local = rope_local_ && rope_local_->neox(),
                 .batch_invariant = options_.batch_invariant};
  if (gpu_first_layer() < config_.n_layer || gpu_output()) {
    gpu_ = GpuLayers::create(config_, weights_,
                             {.first_layer = gpu_first_layer(),
                              .output = gpu_output(),
                              .device = options_.gpu_device,
                              .max_rows = options_.max_step_tokens,
                              .max_context = options_.context_size > 0 ? options_.context_size : kDefaultMaxContext,
                              .n_rot = layer_step_.n_rot,
                              .n_rot_local = layer_step_.n_rot_local,
                              .neox = layer_step_.neox,
                              .neox_local = layer_step_.neox_local,
                              .batch_invariant = options_.batch_invariant});
  }
  // The CPU layers' forms (packed copies: GiBs on a large model) after the GPU's, so whatever the
  // GPU refuses (an architecture, a routing, the memory) is refused before that work.
  prepare_weights();
  size_scratch();
}

int32_t Model::gpu_first_layer() const noexcept {
  if (options_.gpu_layers == kGpuLayersAll) return 0;
  return std::max(0, config_.n_layer - options_.gpu_layers);
}

uint64_t Model::derived_weight_bytes() const noexcept {
  uint64_t bytes = 0;
  for (const std::vector<std::byte>& m : owned_matrices_) bytes += m.size();
  return bytes;
}

bool Model::gpu_output() const noexcept {
  return options_.gpu_layers == kGpuLayersAll || options_.gpu_layers > config_.n_layer;
}

void Model::prepare_weights() {
  // Batch invariance (ModelOptions::batch_invariant) needs every matmul to compute a row the same
  // way whatever the step's row count. The GEMV path does (one vec_dot per row and output, rows
  // quantized one by one), and so do avx512's integer panels when every row count takes them (one
  // kernel family; asked for with invariant_rows, whatever the backend's decode default): those
  // stay packed, at full prefill speed. Any other packed matrix would switch from the GEMV to the
  // GEMM (or AMX) at gemm_min_rows rows, which changes the last bits, so it is not repacked: its
  // prefill runs the GEMV (each weight row read once for all the step's rows, but no register
  // blocking: measured ~5x slower prefill for F16 on avx512+AMX, ~2.5x for Q8_0 on avx2; a 16-row
  // decode step ~1.1-1.5x), and the packed copy's memory is saved.
  const auto prepare_matrix = [&](const WeightMatrix& m) {
    const bool repack = !options_.batch_invariant || backend_.rows_invariant(m.dtype, true);
    return backend_.prepare(m, repack, options_.batch_invariant);
  };
  const auto prepare = [&](const TensorView& t) { return prepare_matrix(weight_matrix(t)); };
  linears_.resize(static_cast<size_t>(config_.n_layer));
  if (config_.moe.n_expert > 0) moe_.resize(linears_.size());
  if (config_.mla.kv_lora_rank > 0) latent_.resize(linears_.size());
  // Offloaded layers run from their device copies: no CPU form (nor a packed copy) for them.
  for (size_t il = 0; il < static_cast<size_t>(gpu_first_layer()); ++il) {
    const LayerWeights& w = weights_.layers[il];
    LayerLinears& l = linears_[il];
    if (config_.mla.kv_lora_rank > 0) {
      latent_[il] = prepare_latent_attention(w, config_, owned_matrices_, prepare_matrix);
    } else if (w.wq.data() == nullptr) {
      l.fused_qkv = true;
      l.wqkv = prepare(w.wqkv);
    } else {
      l.wq = prepare(w.wq);
      l.wk = prepare(w.wk);
      l.wv = prepare(w.wv);
    }
    l.wo = prepare(w.wo);
    if (config_.layer_has_experts(static_cast<int32_t>(il))) {
      moe_[il] = prepare_experts(w, prepare_matrix);
      continue;
    }
    l.fused_gate_up = w.w_gate.data() == nullptr;
    if (!l.fused_gate_up) l.w_gate = prepare(w.w_gate);
    l.w_up = prepare(w.w_up);
    l.w_down = prepare(w.w_down);
  }
  // The output matrix is repacked only on request (ModelOptions::repack_output): a session's steps
  // want logits for one row, which the GEMV path serves, and a packed copy of a large vocabulary
  // costs much memory. With the head on the GPU the CPU form only serves the rare host fallback
  // (hidden-state rows, output hooks): never packed.
  const bool repack_output = options_.repack_output && !gpu_output();
  output_ =
      repack_output ? prepare(weights_.output) : backend_.prepare(weight_matrix(weights_.output), /*repack=*/false);
}

void Model::size_scratch() {
  const ModelConfig& c = config_;
  const int64_t rows = options_.max_step_tokens;
  const int64_t q_dim = int64_t{c.n_head} * c.head_dim;
  const int64_t kv_dim = int64_t{c.n_head_kv} * c.head_dim;
  const int64_t n_rot = std::max(rope_ ? rope_->n_rot() : 0, rope_local_ ? rope_local_->n_rot() : 0);
  const bool moe = c.moe.n_expert > 0;
  const bool dense =
      !moe || std::any_of(c.layers.begin(), c.layers.end(), [](const LayerConfig& l) { return l.dense_ffn; });
  // A mixture-of-experts model's FFN matmuls have the experts' widths (n_ff is a dense layer's).
  const int64_t ff = std::max<int64_t>(moe ? std::max(c.moe.n_ff_expert, c.moe.n_ff_shared) : 0, dense ? c.n_ff : 0);
  backend_.reserve(
      {.max_rows = rows,
       .max_k = std::max({int64_t{c.n_embd}, ff, q_dim, int64_t{c.mla.q_lora_rank}, int64_t{c.mla.kv_lora_rank},
                          int64_t{c.mla.nope_dim}, int64_t{c.n_head} * c.mla.v_dim}),
       .max_n_rot = n_rot,
       .n_head = c.n_head,
       .n_head_kv = c.n_head_kv,
       .head_dim = c.head_dim});
  x_.resize(floats(rows, c.n_embd));
  xn_.resize(floats(rows, c.n_embd));
  const bool fused_qkv =
      std::any_of(linears_.begin(), linears_.end(), [](const LayerLinears& l) { return l.fused_qkv; });
  if (fused_qkv) qkv_.resize(floats(rows, q_dim + 2 * kv_dim));
  q_.resize(floats(rows, q_dim));
  k_.resize(floats(rows, kv_dim));
  v_.resize(floats(rows, kv_dim));
  attn_.resize(floats(rows, q_dim));
  proj_.resize(floats(rows, c.n_embd));
  if (moe) moe_scratch_.reserve(c, rows);
  if (dense) {
    gate_up_.resize(floats(rows, 2 * int64_t{c.n_ff}));
    hidden_.resize(floats(rows, c.n_ff));
  }
  if (c.mla.kv_lora_rank > 0) {
    latent_scratch_.resize(static_cast<size_t>(latent_buffer_floats(c, rows)));
    latent_buffers_ = carve_latent_buffers(c, rows, latent_scratch_.data());
  }
  if (rope_) cos_sin_.resize(floats(rows, rope_->n_rot()));
  if (rope_local_) cos_sin_local_.resize(floats(rows, rope_local_->n_rot()));
  kv_rows_.reserve(static_cast<size_t>(rows));
  for (auto* v : {&batch_start_, &batch_rows_}) v->reserve(static_cast<size_t>(rows));
  batch_seqs_.reserve(static_cast<size_t>(rows));
  kv_seq_ids_.reserve(static_cast<size_t>(rows));
  kv_seqs_.reserve(static_cast<size_t>(rows));
  positions_.reserve(static_cast<size_t>(rows));
  row_ids_.reserve(static_cast<size_t>(rows));
}

KvCacheOptions Model::kv_options(int64_t n_tokens, DType k_dtype, DType v_dtype) const {
  if (n_tokens <= 0 || n_tokens > (int64_t{1} << 30)) {
    fail(ErrorCode::kInvalidArgument, "KV cache: {} tokens is not a usable size", n_tokens);
  }
  KvCacheOptions kv{.n_blocks = static_cast<int32_t>((n_tokens + kKvBlockTokens - 1) / kKvBlockTokens),
                    .k_dtype = k_dtype,
                    .v_dtype = v_dtype,
                    .first_device_layer = 0,
                    .device = nullptr};
  if (gpu_) {
    kv.first_device_layer = gpu_->first_layer();
    kv.device = gpu_->kv_memory();
  }
  return kv;
}

}  // namespace ember
