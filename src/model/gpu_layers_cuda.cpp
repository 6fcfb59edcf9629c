// GpuLayers on the CUDA backend: uploads the offloaded layers' weights, keeps the step's buffers
// and its sequences' block tables on the device, and runs decoder_layer() (the same template the
// CPU runs) with CudaBackend; the KV pools of these layers are device memory (KvDeviceMemory).
#include <algorithm>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/log.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/staged_upload.h"
#include "ember/error.h"
#include "model/decoder_layer.h"
#include "model/gpu_experts_cuda.h"
#include "model/gpu_latent_cuda.h"
#include "model/gpu_layers.h"

namespace ember {
namespace cuda {

// The decoder_layer() template's KV ops (and per-head products) for the CUDA backend (found by
// argument lookup).
inline void store_kv(CudaBackend& b, const PagedKvView& kv, const CudaStepKv& s, const float* k, const float* v) {
  b.store_kv(kv, s, k, v);
}
inline void rope_store_kv(CudaBackend& b, const PagedKvView& kv, const CudaStepKv& s, float* q, int64_t n_head_q,
                          float* k, const float* v, int64_t n_rows, int64_t n_rot, bool neox, const float* cos_sin) {
  EMBER_CHECK(n_rows == s.n_rows);
  b.rope_store_kv(kv, s, q, n_head_q, k, v, n_rot, neox, cos_sin);
}
inline void attention(CudaBackend& b, const PagedKvView& kv, const CudaStepKv& s, const float* q,
                      const AttentionParams& params, float* out) {
  b.attention(kv, s, q, params, out);
}
// Latent attention's per-head products: a decode step's in one launch, else one matmul per head.
inline void matmul_heads(CudaBackend& b, const std::vector<CudaLinear>& heads, const float* x, int64_t x_stride,
                         int64_t n_rows, float* y, int64_t y_stride, float* x_scratch, float* y_scratch) {
  if (!b.matmul_heads(heads, x, x_stride, n_rows, y, y_stride)) {
    matmul_each_head(b, heads, x, x_stride, n_rows, y, y_stride, x_scratch, y_scratch);
  }
}

}  // namespace cuda

namespace {

using cuda::CudaBackend;
using cuda::CudaLinear;
using cuda::DeviceBuffer;
using cuda::StagedUpload;

constexpr double kMiB = 1024.0 * 1024.0;
static_assert(cuda::kMaxTopK == Batch::kMaxTopK);

// KV pools of the GPU layers: device memory, blocks copied on the backend's stream. Holds the
// backend, so a cache that outlives its model can still free and copy.
class KvDeviceMemory final : public KvPoolMemory {
 public:
  explicit KvDeviceMemory(std::shared_ptr<CudaBackend> backend) : backend_(std::move(backend)) {}
  std::shared_ptr<void> allocate(size_t bytes) override {
    backend_->make_current();
    return backend_->allocate_shared(bytes, "a KV cache pool");
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    backend_->make_current();
    backend_->device_copy(dst, src, bytes);
  }

 private:
  std::shared_ptr<CudaBackend> backend_;
};

size_t floats_bytes(int64_t rows, int64_t cols) {
  return sizeof(float) * static_cast<size_t>(rows) * static_cast<size_t>(cols);
}

class CudaGpuLayers final : public GpuLayers {
 public:
  CudaGpuLayers(const ModelConfig& config, const Weights& weights, const GpuLayersOptions& options)
      : config_(config), options_(options) {
    apply_env_switches();
    check_shapes(weights);
    backend_ = std::make_shared<CudaBackend>(cuda::CudaBackendOptions{
        .device = options.device, .rows_invariant = options.batch_invariant, .int8_gemm = options_.int8_gemm});
    check_fits(weights);
    upload_weights(weights);
    allocate_scratch();
    // Every upload and allocation done before the first step (the uploads are on the backend's
    // stream; anything else on the legacy stream, which that non-blocking stream does not wait for).
    EMBER_CUDA_CHECK(cudaDeviceSynchronize());
    kv_memory_ = std::make_shared<KvDeviceMemory>(backend_);
  }

  // The A/B switches of the environment (GpuLayersOptions says what each does).
  void apply_env_switches() {
    const auto env = [](const char* name, std::string_view values) -> std::string_view {
      const char* v = std::getenv(name);
      if (v == nullptr) return {};
      for (std::string_view rest = values; !rest.empty();) {
        const size_t bar = rest.find('|');
        if (rest.substr(0, bar) == v) return v;
        rest = bar == std::string_view::npos ? std::string_view{} : rest.substr(bar + 1);
      }
      EMBER_LOG_WARN("{}={} is not one of {}: ignored", name, v, values);
      return {};
    };
    if (const std::string_view v = env("EMBER_CUDA_GRAPHS", "0|1"); !v.empty()) options_.graphs = v == "1";
    if (const std::string_view v = env("EMBER_CUDA_TILED_ATTENTION", "0|1|always"); !v.empty()) {
      options_.tiled_attention = v != "0";
      options_.tiled_attention_always = v == "always";
    }
    if (const std::string_view v = env("EMBER_CUDA_INT8_GEMM", "0|1"); !v.empty()) options_.int8_gemm = v == "1";
  }

  int32_t first_layer() const noexcept override { return options_.first_layer; }
  uint64_t graph_replays() const noexcept override { return graph_replays_; }
  uint64_t graph_captures() const noexcept override { return graph_captures_; }
  bool runs_output() const noexcept override { return options_.output; }
  std::shared_ptr<KvPoolMemory> kv_memory() override { return kv_memory_; }

  GpuMemoryReport memory() const override {
    backend_->make_current();  // cudaMemGetInfo reports the calling thread's current device
    const cuda::DeviceInfo info = backend_->info();
    return {.device = fmt::format("{} (compute {}.{})", info.name, info.compute_major, info.compute_minor),
            .weight_bytes = weight_bytes_,
            .scratch_bytes = scratch_bytes_,
            .used_bytes = info.total_bytes - info.free_bytes,
            .total_bytes = info.total_bytes};
  }

  GpuRoofline measure_roofline() const override {
    backend_->make_current();
    const cuda::Roofline r = backend_->measure_roofline();
    return {.copy_gbs = r.copy_gbs, .f16_tflops = r.f16_tflops};
  }

  void run(const GpuStep& step, float* x, bool keep_on_device, const std::function<bool(HookPoint)>& active,
           const GpuHook& hook) override {
    const ModelConfig& c = config_;
    EMBER_CHECK(step.n > 0 && step.n <= options_.max_rows);
    CudaBackend& b = *backend_;
    b.make_current();
    const cuda::CudaStepKv step_kv = upload_inputs(step, x);

    LayerStep layer_step = layer_step_;
    layer_step.n = step.n;
    // A hook sees host memory: the buffer goes down, the hook runs, and it comes back.
    const auto device_hook = [&](HookPoint point, int32_t layer, float* data, int64_t n_rows, int64_t n_cols) {
      hook_rows_.resize(static_cast<size_t>(n_rows * n_cols));
      b.to_host(hook_rows_.data(), data, floats_bytes(n_rows, n_cols));
      b.synchronize();
      hook(point, layer, hook_rows_.data(), n_rows, n_cols);
      b.to_device(data, hook_rows_.data(), floats_bytes(n_rows, n_cols));
    };
    const auto layers = [&] {
      for (int32_t il = options_.first_layer; il < c.n_layer; ++il) {
        const auto i = static_cast<size_t>(il - options_.first_layer);
        const auto experts = [&](const float* xn, int64_t rows, float* out, const auto& on_router_logits) {
          moe_ffn(b, c, moe_[i], xn, rows, moe_scratch_, out, on_router_logits);
        };
        const LatentLinearsOf<CudaLinear>* latent = latent_.empty() ? nullptr : &latent_[i].linears;
        decoder_layer(b, c, il, vectors_[i], linears_[i], latent, buffers_, latent_buffers_, layer_step,
                      step.kv->layer(il), step_kv, experts, active, device_hook);
      }
    };
    if (!graphable(step, active)) {
      layers();
    } else if (const cuda::CudaGraph* graph = graph_for(step, step_kv, layers)) {
      b.replay(*graph);
      ++graph_replays_;
    } else {
      layers();  // CUDA refused the capture: run directly from now on
    }
    // Kept on the device, the step is not waited for: outputs() follows, and the host queues the
    // head's kernels while the GPU still runs the layers.
    if (!keep_on_device) {
      b.to_host(x, buffers_.x, floats_bytes(step.n, c.n_embd));
      b.synchronize();
    }
  }

  void outputs(const GpuOutputs& o) override {
    EMBER_CHECK(options_.output);
    const ModelConfig& c = config_;
    const auto m_logits = static_cast<int64_t>(o.logit_rows.size());
    const auto m_tokens = static_cast<int64_t>(o.token_rows.size());
    const auto m_top = static_cast<int64_t>(o.top_rows.size());
    const int64_t m = m_logits + m_tokens + m_top;
    CudaBackend& b = *backend_;
    b.make_current();
    if (m == 0) {
      b.synchronize();  // the step run() left running
      return;
    }
    // The wanted rows close up in xn: logits rows, then token rows, then top-k rows (runs of
    // consecutive rows in one copy). Already in place when they are the step's first m rows in
    // order (a decode step's every row): the norm reads them from x.
    const float* wanted = buffers_.x;
    if (!first_rows_in_order({o.logit_rows, o.token_rows, o.top_rows})) {
      gather_rows(o.logit_rows, 0);
      gather_rows(o.token_rows, m_logits);
      gather_rows(o.top_rows, m_logits + m_tokens);
      wanted = buffers_.xn;
    }
    float* out = logits_.as<float>();
    b.rms_norm(wanted, output_norm_.as<float>(), buffers_.xn, m, c.n_embd, c.norm_eps);
    b.matmul(output_, buffers_.xn, m, out);
    finish_logits(b, c, out, m * c.n_vocab);
    if (m_logits > 0) b.to_host(o.logits, out, floats_bytes(m_logits, c.n_vocab));
    if (m_tokens > 0) {
      b.greedy_rows(out + m_logits * c.n_vocab, m_tokens, c.n_vocab, tokens_.as<int32_t>());
      b.to_host(o.tokens, tokens_.data(), sizeof(int32_t) * static_cast<size_t>(m_tokens));
    }
    const auto top_entries = static_cast<size_t>(m_top * o.top_k);
    if (m_top > 0) {
      EMBER_CHECK(o.top_k >= 1 && o.top_k <= cuda::kMaxTopK && o.top_k <= c.n_vocab);
      b.top_k_rows(out + (m_logits + m_tokens) * c.n_vocab, m_top, c.n_vocab, o.top_k, top_values_.as<float>(),
                   top_ids_.as<int32_t>(), top_scratch_values_.as<float>(), top_scratch_ids_.as<int32_t>());
      host_top_values_.resize(top_entries);
      host_top_ids_.resize(top_entries);
      b.to_host(host_top_values_.data(), top_values_.data(), sizeof(float) * top_entries);
      b.to_host(host_top_ids_.data(), top_ids_.data(), sizeof(int32_t) * top_entries);
    }
    b.synchronize();
    for (size_t i = 0; i < top_entries; ++i) o.top[i] = {host_top_values_[i], host_top_ids_[i]};
  }

 private:
  // Whether the lists, one after the other, are the rows 0, 1, 2, ...
  static bool first_rows_in_order(std::initializer_list<std::span<const int32_t>> lists) {
    int32_t next = 0;
    for (const std::span<const int32_t> rows : lists) {
      for (const int32_t row : rows) {
        if (row != next++) return false;
      }
    }
    return true;
  }

  // xn rows [at, at + rows.size()) ← x rows `rows` (ascending; a run of consecutive rows in one copy).
  void gather_rows(std::span<const int32_t> rows, int64_t at) {
    const int64_t n_embd = config_.n_embd;
    for (size_t i = 0; i < rows.size();) {
      size_t j = i + 1;
      while (j < rows.size() && rows[j] == rows[j - 1] + 1) ++j;
      backend_->device_copy(buffers_.xn + (at + static_cast<int64_t>(i)) * n_embd, buffers_.x + rows[i] * n_embd,
                            floats_bytes(static_cast<int64_t>(j - i), n_embd));
      i = j;
    }
  }

  // What the kernels cannot run, refused at load rather than met at the first step.
  void check_shapes(const Weights& weights) const {
    const ModelConfig& c = config_;
    if (c.head_dim % 2 != 0 || c.head_dim > cuda::kAttentionMaxHeadDim) {
      fail(ErrorCode::kUnsupported, "GPU attention takes even head sizes up to {}, not {}", cuda::kAttentionMaxHeadDim,
           c.head_dim);
    }
    if (c.n_head % c.n_head_kv != 0) {
      fail(ErrorCode::kUnsupported, "GPU attention: {} query heads are not a multiple of {} kv heads", c.n_head,
           c.n_head_kv);
    }
    if (c.moe.n_expert > 0) check_moe_supported(c, weights, options_.first_layer);
  }

  // Everything this will allocate, against the device's free memory, before allocating any of it.
  void check_fits(const Weights& weights) const {
    uint64_t need = 0;
    for (int32_t il = options_.first_layer; il < config_.n_layer; ++il) need += layer_bytes(weights, il);
    if (options_.output) need += weights.output.n_bytes() + weights.output_norm.n_bytes();
    need += planned_scratch_bytes(weights);
    const cuda::DeviceInfo info = backend_->info();
    // Headroom for the CUDA context, cuBLAS's workspace and the KV cache allocated next.
    const uint64_t headroom = 512ull << 20;
    if (need + headroom > info.free_bytes) {
      fail(ErrorCode::kOutOfMemory,
           "the GPU layers need {:.0f} MiB ({} of {} layers{}) plus {:.0f} MiB of headroom, but {} has {:.0f} MiB free "
           "of {:.0f} MiB: offload fewer layers (--gpu-layers N)",
           static_cast<double>(need) / kMiB, config_.n_layer - options_.first_layer, config_.n_layer,
           options_.output ? " and the output head" : "", static_cast<double>(headroom) / kMiB, info.name,
           static_cast<double>(info.free_bytes) / kMiB, static_cast<double>(info.total_bytes) / kMiB);
    }
  }

  uint64_t layer_bytes(const Weights& weights, int32_t il) const {
    const LayerWeights& w = weights.layers[static_cast<size_t>(il)];
    uint64_t bytes = 0;
    for (const TensorView* t :
         {&w.attn_norm, &w.wq, &w.wk, &w.wv, &w.wqkv, &w.bq, &w.bk, &w.bv, &w.q_norm, &w.k_norm, &w.wo,
          &w.post_attn_norm, &w.ffn_norm, &w.w_gate, &w.w_up, &w.w_down, &w.post_ffn_norm}) {
      if (t->data() != nullptr) bytes += t->n_bytes();
    }
    return bytes + moe_layer_bytes(w) + (config_.mla.kv_lora_rank > 0 ? latent_layer_bytes(config_, w) : 0);
  }

  // The largest matrix the GEMM path dequantizes to f16 (elements): F16 and F32 ones are used as
  // they are, and those the int8 GEMM takes are not dequantized when it is on. An expert tensor's
  // matrices are one expert each (ne[0] x ne[1]).
  int64_t max_matrix_elements(const Weights& weights) const {
    int64_t most = 0;
    const auto consider_matrix = [&](DType type, int64_t elements) {
      const bool dequantized =
          type != DType::kF16 && type != DType::kF32 && !(options_.int8_gemm && cuda::int8_gemm_supports(type));
      if (dequantized) most = std::max(most, elements);
    };
    const auto consider = [&](const TensorView& t) {
      if (t.data() != nullptr) consider_matrix(t.dtype(), t.ne(0) * t.ne(1));
    };
    for (int32_t il = options_.first_layer; il < config_.n_layer; ++il) {
      const LayerWeights& w = weights.layers[static_cast<size_t>(il)];
      for (const TensorView* t : {&w.wq, &w.wk, &w.wv, &w.wqkv, &w.wo, &w.w_gate, &w.w_up, &w.w_down, &w.router,
                                  &w.expert_gate, &w.expert_up, &w.expert_down, &w.shared_router, &w.shared_gate,
                                  &w.shared_up, &w.shared_down, &w.wq_a, &w.wq_b, &w.wkv_a}) {
        consider(*t);
      }
      if (config_.mla.kv_lora_rank > 0) {
        for (const HeadMatrixShape h : {latent_k_b_shape(config_, w), latent_v_b_shape(config_, w)}) {
          consider_matrix(h.dtype, h.elements);
        }
      }
    }
    if (options_.output) consider(weights.output);
    return most;
  }

  int64_t max_k() const {
    const ModelConfig& c = config_;
    // (Latent attention's inputs too: its low ranks and per-head widths, as the CPU's reserve.)
    return std::max({int64_t{c.n_embd}, ffn_width(), int64_t{c.n_head} * c.head_dim, int64_t{c.mla.q_lora_rank},
                     int64_t{c.mla.kv_lora_rank}, int64_t{c.mla.nope_dim}, int64_t{c.n_head} * c.mla.v_dim});
  }

  // The FFN's hidden width: a dense layer's n_ff, or the widest expert (shared included).
  int64_t ffn_width() const {
    const ModelConfig& c = config_;
    return std::max<int64_t>(c.moe.n_expert > 0 ? std::max(c.moe.n_ff_expert, c.moe.n_ff_shared) : 0,
                             has_dense_ffn() ? c.n_ff : 0);
  }

  // Whether an offloaded layer has a dense FFN (every layer of a dense model, DeepSeek's leading ones).
  bool has_dense_ffn() const {
    for (int32_t il = options_.first_layer; il < config_.n_layer; ++il) {
      if (!config_.layer_has_experts(il)) return true;
    }
    return false;
  }

  uint64_t planned_scratch_bytes(const Weights& weights) const {
    const ModelConfig& c = config_;
    const int64_t rows = options_.max_rows;
    const int64_t q_dim = int64_t{c.n_head} * c.head_dim;
    const int64_t kv_dim = int64_t{c.n_head_kv} * c.head_dim;
    // The head's outputs: logits, greedy tokens, and the top-k values and ids.
    const int64_t output_widths = options_.output ? c.n_vocab + 1 + 2 * int64_t{cuda::kMaxTopK} : 0;
    const bool moe = c.moe.n_expert > 0;
    const int64_t widths = 2 * c.n_embd + (q_dim + 2 * kv_dim) + q_dim + 2 * kv_dim + q_dim + c.n_embd +
                           (has_dense_ffn() ? 3 * int64_t{c.n_ff} : 0) + output_widths;
    uint64_t bytes = floats_bytes(rows, widths) + (options_.output ? 8 * cuda::top_k_scratch_entries() : 0);
    if (c.mla.kv_lora_rank > 0) bytes += floats_bytes(latent_buffer_floats(c, rows), 1);
    if (moe) bytes += CudaMoeScratch::planned_bytes(c, rows);
    if (rows > cuda::kGemvMaxRows && !options_.batch_invariant) {
      bytes += static_cast<uint64_t>(max_matrix_elements(weights)) * 2 + static_cast<uint64_t>(rows * max_k()) * 2;
    }
    return bytes + cuda::attention_workspace_bytes(rows, c.n_head, c.head_dim, options_.max_context);
  }

  void upload_weights(const Weights& weights) {
    CudaBackend& b = *backend_;
    const auto linear = [&](const TensorView& t, const char* what, int32_t il) {
      CudaLinear l = b.upload(weight_matrix(t), fmt::format("blk.{}.{}", il, what));
      weight_bytes_ += l.storage.bytes();
      return l;
    };
    const auto vector = [&](const TensorView& t) -> const float* {
      if (t.data() == nullptr) return nullptr;
      vector_buffers_.push_back(b.upload_bytes(t.data(), t.n_bytes(), "a norm or bias vector"));
      weight_bytes_ += t.n_bytes();
      return vector_buffers_.back().as<float>();
    };
    for (int32_t il = options_.first_layer; il < config_.n_layer; ++il) {
      const LayerWeights& w = weights.layers[static_cast<size_t>(il)];
      LayerLinearsOf<CudaLinear>& l = linears_.emplace_back();
      if (config_.mla.kv_lora_rank > 0) {
        latent_.push_back(upload_latent_layer(b, config_, w, il, weight_bytes_));
      } else if (w.wq.data() == nullptr) {
        l.fused_qkv = true;
        l.wqkv = linear(w.wqkv, "attn_qkv", il);
      } else {
        l.wq = linear(w.wq, "attn_q", il);
        l.wk = linear(w.wk, "attn_k", il);
        l.wv = linear(w.wv, "attn_v", il);
      }
      l.wo = linear(w.wo, "attn_output", il);
      vectors_.push_back(layer_vectors(w, vector));
      if (config_.layer_has_experts(il)) {
        moe_.push_back(upload_moe_layer(b, w, il, weight_bytes_));
        continue;
      }
      moe_.emplace_back();  // (moe_[i] is layer first_layer + i's)
      l.fused_gate_up = w.w_gate.data() == nullptr;
      if (!l.fused_gate_up) l.w_gate = linear(w.w_gate, "ffn_gate", il);
      l.w_up = linear(w.w_up, "ffn_up", il);
      l.w_down = linear(w.w_down, "ffn_down", il);
    }
    if (options_.output) {
      output_ = b.upload(weight_matrix(weights.output), "output");
      weight_bytes_ += output_.storage.bytes();
      output_norm_ = b.upload_bytes(weights.output_norm.data(), weights.output_norm.n_bytes(), "output_norm");
      weight_bytes_ += output_norm_.bytes();
    }
    max_matrix_elements_ = max_matrix_elements(weights);
  }

  void allocate_scratch() {
    const ModelConfig& c = config_;
    const int64_t rows = options_.max_rows;
    const int64_t q_dim = int64_t{c.n_head} * c.head_dim;
    const int64_t kv_dim = int64_t{c.n_head_kv} * c.head_dim;
    const auto buffer = [&](DeviceBuffer& into, int64_t width, const char* what) {
      into = DeviceBuffer(floats_bytes(rows, std::max<int64_t>(width, 1)), what);
      scratch_bytes_ += into.bytes();
      return into.as<float>();
    };
    buffers_.xn = buffer(xn_, c.n_embd, "the normed rows");
    const bool fused = std::any_of(linears_.begin(), linears_.end(), [](const auto& l) { return l.fused_qkv; });
    buffers_.qkv = fused ? buffer(qkv_, q_dim + 2 * kv_dim, "the fused q/k/v rows") : nullptr;
    buffers_.q = buffer(q_, q_dim, "the query rows");
    buffers_.k = buffer(k_, kv_dim, "the key rows");
    buffers_.v = buffer(v_, kv_dim, "the value rows");
    buffers_.attn = buffer(attn_, q_dim, "the attention output");
    buffers_.proj = buffer(proj_, c.n_embd, "the block output");
    if (c.mla.kv_lora_rank > 0) {
      latent_scratch_ = DeviceBuffer(floats_bytes(latent_buffer_floats(c, rows), 1), "the latent attention's rows");
      scratch_bytes_ += latent_scratch_.bytes();
      latent_buffers_ = carve_latent_buffers(c, rows, latent_scratch_.as<float>());
    }
    if (c.moe.n_expert > 0) {
      moe_scratch_ = CudaMoeScratch(c, rows);
      scratch_bytes_ += moe_scratch_.device.bytes();
    }
    if (has_dense_ffn()) {
      buffers_.gate_up = buffer(gate_up_, 2 * int64_t{c.n_ff}, "the gate/up rows");
      buffers_.hidden = buffer(hidden_, c.n_ff, "the FFN hidden rows");
    }
    if (options_.output) {
      buffer(logits_, c.n_vocab, "the logits");
      tokens_ = DeviceBuffer(sizeof(int32_t) * static_cast<size_t>(rows), "the greedy tokens");
      top_values_ = DeviceBuffer(sizeof(float) * static_cast<size_t>(rows * cuda::kMaxTopK), "the top-k logits");
      top_ids_ = DeviceBuffer(sizeof(int32_t) * static_cast<size_t>(rows * cuda::kMaxTopK), "the top-k ids");
      top_scratch_values_ = DeviceBuffer(sizeof(float) * cuda::top_k_scratch_entries(), "the top-k slices' logits");
      top_scratch_ids_ = DeviceBuffer(sizeof(int32_t) * cuda::top_k_scratch_entries(), "the top-k slices' ids");
    }
    reserve_context(options_.max_context);
    layer_step_ = {.n = 0,
                   .n_rot = options_.n_rot,
                   .neox = options_.neox,
                   .n_rot_local = options_.n_rot_local,
                   .neox_local = options_.neox_local,
                   .batch_invariant = options_.batch_invariant};
  }

  // The step's inputs (its block tables sized for sequences of up to `context` tokens) and the
  // attention workspace for such sequences.
  void reserve_context(int32_t context) {
    graphs_.clear();  // they hold the buffers this replaces
    const int64_t rows = options_.max_rows;
    const int32_t blocks = (context + kKvBlockTokens - 1) / kKvBlockTokens;
    const ModelConfig& c = config_;
    const auto rows_of = [rows](size_t bytes_per_row) { return bytes_per_row * static_cast<size_t>(rows); };
    // In upload_inputs()' order, each at its largest.
    const size_t input_bytes = StagedUpload::packed_bytes(
        {rows_of(sizeof(float) * static_cast<size_t>(c.n_embd)),
         rows_of(sizeof(float) * static_cast<size_t>(options_.n_rot)),
         rows_of(sizeof(float) * static_cast<size_t>(options_.n_rot_local)),
         rows_of(sizeof(int32_t) * static_cast<size_t>(blocks)), rows_of(sizeof(int32_t)), rows_of(sizeof(KvRow)),
         rows_of(sizeof(cuda::QueryTile)), rows_of(sizeof(int32_t))});
    scratch_bytes_ -= inputs_.capacity();
    inputs_ = StagedUpload(input_bytes, "the step's inputs (rows, RoPE rows, block tables)");
    scratch_bytes_ += inputs_.capacity();
    buffers_.x = static_cast<float*>(inputs_.device());  // upload_inputs() stages the rows first
    max_blocks_ = blocks;
    backend_->reserve({.max_rows = rows,
                       .max_k = max_k(),
                       .max_n_rot = std::max(options_.n_rot, options_.n_rot_local),
                       .n_head = c.n_head,
                       .n_head_kv = c.n_head_kv,
                       .head_dim = c.head_dim},
                      max_matrix_elements_, blocks * kKvBlockTokens);
    max_context_ = blocks * kKvBlockTokens;
  }

  // The step's inputs in one copy: its rows of the residual stream `x`, RoPE rows, sequences
  // (block tables padded to the longest) and rows. Their device addresses follow from the step's
  // rows, sequences and table width alone, which the graphs' key holds.
  cuda::CudaStepKv upload_inputs(const GpuStep& step, const float* x) {
    int32_t longest = 1;
    for (const KvSeq& s : step.seqs) longest = std::max(longest, s.n_tokens);
    // A sequence longer than the context the workspace was sized for (a KV cache bigger than the
    // model's context): grow once, between steps.
    if (longest > max_context_) {
      backend_->synchronize();
      reserve_context(std::max(longest, 2 * max_context_));  // doubling: rare re-reserves (and re-captures)
    }
    // Decode steps (GEMV-sized) take the reserved shape, whatever their lengths: the same kernel
    // arguments every step (so a graph of the step can be replayed), and the same attention split
    // with or without graphs (so both give the same bits).
    const bool fixed_shape = step.n <= cuda::kGemvMaxRows;
    const int32_t width = fixed_shape ? max_blocks_ : (longest + kKvBlockTokens - 1) / kKvBlockTokens;
    // Past a sequence's blocks: -1, which the kernels trap on should they ever read one.
    host_tables_.assign(step.seqs.size() * static_cast<size_t>(width), -1);
    host_tokens_.clear();
    for (size_t i = 0; i < step.seqs.size(); ++i) {
      const KvSeq& s = step.seqs[i];
      const auto used = static_cast<size_t>((s.n_tokens + kKvBlockTokens - 1) / kKvBlockTokens);
      EMBER_CHECK(used <= s.block_table.size());
      std::copy_n(s.block_table.begin(), used, host_tables_.begin() + static_cast<std::ptrdiff_t>(i * width));
      host_tokens_.push_back(s.n_tokens);
    }
    const ModelConfig& c = config_;
    inputs_.begin();
    EMBER_CHECK(inputs_.stage(std::span(x, static_cast<size_t>(step.n * c.n_embd))) == buffers_.x);
    const auto rope_rows = [&](const float* rows, int32_t n_rot) {
      return inputs_.stage(std::span(rows, n_rot > 0 ? static_cast<size_t>(step.n * n_rot) : 0));
    };
    buffers_.cos_sin = rope_rows(step.cos_sin, options_.n_rot);
    buffers_.cos_sin_local = rope_rows(step.cos_sin_local, options_.n_rot_local);
    const int32_t* block_tables = inputs_.stage(std::span<const int32_t>(host_tables_));
    const int32_t* seq_tokens = inputs_.stage(std::span<const int32_t>(host_tokens_));
    const KvRow* rows = inputs_.stage(step.rows);
    // Prefill-sized steps: query tiles for the tensor-core attention, the rows they leave.
    const PagedKvView pools = step.kv->layer(options_.first_layer);
    const bool tiled =
        !fixed_shape && options_.tiled_attention && !options_.batch_invariant &&
        cuda::tiled_attention_supports(pools.k_dtype, pools.v_dtype, pools.head_dim) &&
        cuda::plan_query_tiles(step.rows, config_.n_head, options_.tiled_attention_always ? 0 : cuda::kMinTiledBlocks,
                               host_tiles_, host_lone_rows_);
    const cuda::QueryTile* tiles = tiled ? inputs_.stage(std::span<const cuda::QueryTile>(host_tiles_)) : nullptr;
    const int32_t* lone_rows = tiled ? inputs_.stage(std::span<const int32_t>(host_lone_rows_)) : nullptr;
    inputs_.send(backend_->stream());
    return {.seqs = {.block_tables = block_tables,
                     .n_tokens = seq_tokens,
                     .n_seqs = static_cast<int32_t>(step.seqs.size()),
                     .max_blocks = width},
            .rows = rows,
            .n_rows = static_cast<int32_t>(step.rows.size()),
            .max_context = fixed_shape ? max_context_ : longest,
            .tiles = tiles,
            .n_tiles = tiled ? static_cast<int32_t>(host_tiles_.size()) : 0,
            .lone_rows = lone_rows,
            .n_lone = tiled ? static_cast<int32_t>(host_lone_rows_.size()) : 0};
  }

  // Whether the step runs as a graph: graphs on, a decode step (every row its own sequence, at most
  // cuda::kGemvMaxRows: the GEMV path, no cuBLAS in the capture; a short prefill chunk is not worth
  // a graph), and no hook on any layer (hooks run on the host mid-step).
  bool graphable(const GpuStep& step, const std::function<bool(HookPoint)>& active) const {
    if (!options_.graphs || step.n > cuda::kGemvMaxRows || step.seqs.size() != static_cast<size_t>(step.n)) {
      return false;
    }
    for (HookPoint p :
         {HookPoint::kAttentionOutput, HookPoint::kFfnOutput, HookPoint::kResidual, HookPoint::kRouterLogits}) {
      if (active && active(p)) return false;
    }
    return true;
  }

  // The graph of the step's shape (rows, sequences, the reserved context, the KV pools): found, or
  // captured now from `layers`. Null when CUDA refuses to end or instantiate the capture; graphs are
  // then turned off. (An op CUDA refuses inside the capture aborts with its name: see docs/cuda.md.)
  template <class Layers>
  const cuda::CudaGraph* graph_for(const GpuStep& step, const cuda::CudaStepKv& step_kv, const Layers& layers) {
    // Built in a buffer kept across steps: no allocation on a decode step that finds its graph.
    std::vector<uintptr_t>& key = graph_key_;
    key.assign({static_cast<uintptr_t>(step.n), static_cast<uintptr_t>(step_kv.seqs.n_seqs),
                static_cast<uintptr_t>(step_kv.seqs.max_blocks), static_cast<uintptr_t>(step_kv.max_context)});
    for (int32_t il = options_.first_layer; il < config_.n_layer; ++il) {
      const PagedKvView v = step.kv->layer(il);
      key.insert(key.end(), {reinterpret_cast<uintptr_t>(v.k), reinterpret_cast<uintptr_t>(v.v),
                             static_cast<uintptr_t>(v.n_blocks), static_cast<uintptr_t>(v.k_dtype),
                             static_cast<uintptr_t>(v.v_dtype), static_cast<uintptr_t>(v.n_head_kv),
                             static_cast<uintptr_t>(v.head_dim)});
    }
    // Most recently used last: a hit moves there, a capture evicts the front.
    for (auto it = graphs_.begin(); it != graphs_.end(); ++it) {
      if (it->first == key) {
        std::rotate(it, it + 1, graphs_.end());
        return &graphs_.back().second;
      }
    }
    constexpr size_t kMaxGraphs = 16;  // shapes in use: decode batch sizes
    if (graphs_.size() == kMaxGraphs) graphs_.erase(graphs_.begin());
    CudaBackend& b = *backend_;
    b.begin_capture();
    layers();
    cuda::CudaGraph graph = b.end_capture();
    if (!graph.valid()) {
      options_.graphs = false;
      return nullptr;
    }
    ++graph_captures_;
    graphs_.emplace_back(key, std::move(graph));
    return &graphs_.back().second;
  }

  ModelConfig config_;
  GpuLayersOptions options_;
  std::shared_ptr<CudaBackend> backend_;
  std::shared_ptr<KvDeviceMemory> kv_memory_;
  std::vector<LayerLinearsOf<CudaLinear>> linears_;  // layers [first_layer, n_layer)
  std::vector<CudaMoeLayer> moe_;                    // a mixture of experts' FFNs, layers [first_layer, n_layer)
  std::vector<CudaLatentLayer> latent_;              // latent attention's matrices (MLA models), as linears_
  CudaMoeScratch moe_scratch_;
  std::vector<LayerVectors> vectors_;
  std::vector<DeviceBuffer> vector_buffers_;
  CudaLinear output_;
  DeviceBuffer output_norm_;
  int64_t max_matrix_elements_ = 0;
  uint64_t weight_bytes_ = 0;
  uint64_t scratch_bytes_ = 0;

  LayerStep layer_step_;
  LayerBuffers buffers_;
  LatentBuffers latent_buffers_;
  DeviceBuffer latent_scratch_;
  DeviceBuffer xn_, qkv_, q_, k_, v_, attn_, proj_, gate_up_, hidden_, logits_;
  StagedUpload inputs_;  // the step's rows of x (the residual stream, in place), RoPE rows, sequences, rows
  DeviceBuffer tokens_, top_values_, top_ids_, top_scratch_values_, top_scratch_ids_;
  int32_t max_blocks_ = 0;
  int32_t max_context_ = 0;
  std::vector<int32_t> host_tables_, host_tokens_;
  std::vector<cuda::QueryTile> host_tiles_;
  std::vector<int32_t> host_lone_rows_;
  std::vector<float> hook_rows_;
  std::vector<float> host_top_values_;  // outputs()' staging of the top-k rows
  std::vector<int32_t> host_top_ids_;
  std::vector<std::pair<std::vector<uintptr_t>, cuda::CudaGraph>> graphs_;  // by shape, least recently used first
  std::vector<uintptr_t> graph_key_;                                        // graph_for's scratch
  uint64_t graph_replays_ = 0;
  uint64_t graph_captures_ = 0;
};

}  // namespace

std::unique_ptr<GpuLayers> GpuLayers::create(const ModelConfig& config, const Weights& weights,
                                             const GpuLayersOptions& options) {
  return std::make_unique<CudaGpuLayers>(config, weights, options);
}

}  // namespace ember
