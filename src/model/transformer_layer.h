// A transformer layer's blocks written once against a backend (DESIGN.md §4): x += attn(norm(x)),
// x += ffn(norm(x)), as templates that the CPU backend (forward.cpp) and the CUDA backend
// (gpu_layers_cuda.cpp) instantiate with their own pointers — host memory for one, device memory for
// the other — so the math of a layer exists once whichever backend runs it (decoder_layer.h puts
// the blocks together).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

#include "cpu/attention.h"
#include "cpu/cpu_backend.h"
#include "cpu/kv_layout.h"
#include "model/hooks.h"
#include "model/model_config.h"

namespace ember {

// A matmul weight [k, n_out] (ggml order) as a backend's matrix of n_out rows of k.
inline WeightMatrix weight_matrix(const TensorView& t) { return {t.data(), t.dtype(), t.ne(1), t.ne(0)}; }

// A layer's matmul weights in a backend's form (Linear for the CPU, cuda::CudaLinear for CUDA).
template <class LinearT>
struct LayerLinearsOf {
  LinearT wq, wk, wv;  // separate projections (Phi-3: unused, wqkv instead)
  LinearT wqkv;        // [q | k | v] rows fused in the file (Phi-3)
  LinearT wo;
  LinearT w_gate;  // unused when w_up holds [gate; up] (Phi-3)
  LinearT w_up;
  LinearT w_down;
  bool fused_qkv = false;
  bool fused_gate_up = false;
};

// A layer's small F32 vectors where the backend reads them (nullptr when the model has none).
struct LayerVectors {
  const float* attn_norm = nullptr;  // [n_embd]
  const float* bq = nullptr;         // [n_head * head_dim]
  const float* bk = nullptr;         // [n_head_kv * head_dim]
  const float* bv = nullptr;         // [n_head_kv * head_dim]
  const float* q_norm = nullptr;     // [head_dim]
  const float* k_norm = nullptr;     // [head_dim]
  const float* post_attn_norm = nullptr;
  const float* ffn_norm = nullptr;
  const float* post_ffn_norm = nullptr;
  const float* q_a_norm = nullptr;   // [q_lora_rank] (latent attention)
  const float* kv_a_norm = nullptr;  // [kv_lora_rank] (latent attention)
};

// The step's buffers in the backend's memory, [max rows] of the width in brackets each.
struct LayerBuffers {
  float* x = nullptr;                    // residual stream [n_embd]
  float* xn = nullptr;                   // normed input [n_embd]
  float* qkv = nullptr;                  // fused projection output [q + k + v] (fused models only)
  float* q = nullptr;                    // [n_head * head_dim]
  float* k = nullptr;                    // [n_head_kv * head_dim]
  float* v = nullptr;                    // [n_head_kv * head_dim]
  float* attn = nullptr;                 // attention output [n_head * head_dim]
  float* proj = nullptr;                 // block output [n_embd]
  float* gate_up = nullptr;              // [2 * n_ff]
  float* hidden = nullptr;               // [n_ff]
  const float* cos_sin = nullptr;        // [rows][n_rot] of the global RoPE table
  const float* cos_sin_local = nullptr;  // [rows][n_rot] of the local one (Gemma 3)
};

// What a layer needs to know of the step besides its buffers.
struct LayerStep {
  int64_t n = 0;  // rows
  int32_t n_rot = 0;
  bool neox = false;
  int32_t n_rot_local = 0;  // 0: no local table
  bool neox_local = false;
  bool batch_invariant = false;
};

// The CPU's view of a step's sequences (KvSeq views extended by the step's rows) and rows.
struct CpuStepKv {
  std::span<const KvSeq> seqs;
  std::span<const KvRow> rows;
};
inline void store_kv(CpuBackend& b, const PagedKvView& kv, const CpuStepKv& s, const float* k, const float* v) {
  b.store_kv(kv, s.seqs, s.rows, k, v);
}
// RoPE on q's and k's heads of the step's n_rows rows, then store_kv (one launch on the GPU).
inline void rope_store_kv(CpuBackend& b, const PagedKvView& kv, const CpuStepKv& s, float* q, int64_t n_head_q,
                          float* k, const float* v, int64_t n_rows, int64_t n_rot, bool neox, const float* cos_sin) {
  const int64_t head_dim = kv.head_dim;
  b.rope_qk(q, n_head_q * head_dim, n_head_q, k, kv.n_head_kv * head_dim, kv.n_head_kv, n_rows, head_dim, n_rot, neox,
            cos_sin);
  store_kv(b, kv, s, k, v);
}
inline void attention(CpuBackend& b, const PagedKvView& kv, const CpuStepKv& s, const float* q,
                      const AttentionParams& params, float* out) {
  b.attention(kv, s.seqs, s.rows, q, params, out);
}

// Whether a block's output goes into x as it comes out of its last matmul (no post-norm, no residual
// scale, no hook wanting it): then x += output is one matmul_accumulate.
template <class Active>
bool adds_output_as_is(const ModelConfig& c, HookPoint point, Active&& active) {
  return !c.post_norms && c.residual_scale == 0.0f && !active(point);
}

// What the logits get after the output matmul, on either backend: Granite's divisor, then any
// soft-cap (c·tanh(z / c)). n_floats: rows × n_vocab.
template <class Backend>
void finish_logits(Backend& b, const ModelConfig& c, float* logits, int64_t n_floats) {
  if (c.logit_scale != 0.0f) b.scale(logits, logits, n_floats, 1.0f / c.logit_scale);
  if (c.final_softcap > 0.0f) b.softcap(logits, n_floats, c.final_softcap);
}

template <class Backend, class LinearT, class Active, class Hook>
void add_attention_output(Backend& b, const ModelConfig& c, int32_t il, const LayerVectors& w, const LinearT& wo,
                          const float* attn, const LayerBuffers& s, int64_t n, Active&& active, Hook&& hook);

// x += attn(norm(x)) for step.n rows; `hook(point, layer, data, n_rows, n_cols)` runs a hook point
// when `active(point)`.
template <class Backend, class LinearT, class StepKv, class Active, class Hook>
void attention_block(Backend& b, const ModelConfig& c, int32_t il, const LayerVectors& w,
                     const LayerLinearsOf<LinearT>& l, const LayerBuffers& s, const LayerStep& step,
                     const PagedKvView& cache, const StepKv& kv, Active&& active, Hook&& hook) {
  const LayerConfig& layer = c.layers[static_cast<size_t>(il)];
  const int64_t n = step.n;
  const int64_t q_dim = int64_t{c.n_head} * c.head_dim;
  const int64_t kv_dim = int64_t{c.n_head_kv} * c.head_dim;

  b.rms_norm(s.x, w.attn_norm, s.xn, n, c.n_embd, c.norm_eps);
  if (l.fused_qkv) {
    // [n][q | k | v] split into the contiguous q, k, v the attention and the cache take.
    b.matmul(l.wqkv, s.xn, n, s.qkv);
    const int64_t width = q_dim + 2 * kv_dim;
    b.copy_rows(s.q, q_dim, s.qkv, width, n, q_dim);
    b.copy_rows(s.k, kv_dim, s.qkv + q_dim, width, n, kv_dim);
    b.copy_rows(s.v, kv_dim, s.qkv + q_dim + kv_dim, width, n, kv_dim);
  } else {
    // The q/k/v biases (Qwen2) go with the matmuls: in the GEMV's store on the GPU.
    const LinearT* const ws[] = {&l.wq, &l.wk, &l.wv};
    float* const ys[] = {s.q, s.k, s.v};
    const float* const biases[] = {w.bq, w.bk, w.bv};
    b.matmul_many(ws, s.xn, n, ys,
                  c.attn_qkv_bias ? std::span<const float* const>(biases) : std::span<const float* const>());
  }
  if (c.attn_qkv_bias && l.fused_qkv) {
    b.add(s.q, w.bq, s.q, n, q_dim, 0);
    b.add(s.k, w.bk, s.k, n, kv_dim, 0);
    b.add(s.v, w.bv, s.v, n, kv_dim, 0);
  }
  if (c.attn_qk_norm) {  // per head, before rope
    b.rms_norm(s.q, w.q_norm, s.q, n * c.n_head, c.head_dim, c.norm_eps);
    b.rms_norm(s.k, w.k_norm, s.k, n * c.n_head_kv, c.head_dim, c.norm_eps);
  }
  const bool local = layer.uses_local_rope && step.n_rot_local > 0;
  const int32_t n_rot = layer.skips_rope ? 0 : local ? step.n_rot_local : step.n_rot;
  if (n_rot > 0) {
    rope_store_kv(b, cache, kv, s.q, c.n_head, s.k, s.v, n, n_rot, local ? step.neox_local : step.neox,
                  local ? s.cos_sin_local : s.cos_sin);
  } else {
    store_kv(b, cache, kv, s.k, s.v);
  }
  // Split-K (0: automatic) cuts a long context into chunks when the step's rows cannot keep the
  // threads busy, so whether a row's sums are split depends on what shares its step; a
  // batch-invariant model never splits (-1). Unsplit, a row's result does not depend on its tile
  // (the queries of a tile see their own positions only, in the same block order), so neither the
  // batch nor the chunking of its sequence changes it.
  const AttentionParams params{.n_head = c.n_head,
                               .scale = c.attn_scale,
                               .softcap = c.attn_softcap,
                               .window = layer.sliding_window,
                               .alibi_slopes = nullptr,
                               .split_tokens = step.batch_invariant ? -1 : 0};
  attention(b, cache, kv, s.q, params, s.attn);
  add_attention_output(b, c, il, w, l.wo, s.attn, s, n, active, hook);
}

// x += attn·woᵀ for n rows of attention output `attn`, through the post-norm (Gemma), the residual
// scale (Granite) and the kAttentionOutput hook.
template <class Backend, class LinearT, class Active, class Hook>
void add_attention_output(Backend& b, const ModelConfig& c, int32_t il, const LayerVectors& w, const LinearT& wo,
                          const float* attn, const LayerBuffers& s, int64_t n, Active&& active, Hook&& hook) {
  if (adds_output_as_is(c, HookPoint::kAttentionOutput, active)) [[likely]] {
    b.matmul_accumulate(wo, attn, n, s.x, s.proj);  // x += attn·woᵀ (one GEMV on the GPU)
    return;
  }
  b.matmul(wo, attn, n, s.proj);
  if (c.post_norms) b.rms_norm(s.proj, w.post_attn_norm, s.proj, n, c.n_embd, c.norm_eps);
  if (c.residual_scale != 0.0f) b.scale(s.proj, s.proj, n * c.n_embd, c.residual_scale);
  if (active(HookPoint::kAttentionOutput)) [[unlikely]] {
    hook(HookPoint::kAttentionOutput, il, s.proj, n, c.n_embd);
  }
  b.add(s.x, s.proj, s.x, n, c.n_embd, c.n_embd);
}

// x += the FFN's output, which is in s.proj ([n][n_embd]): after the post-FFN norm (Gemma), the
// residual scale (Granite) and the kFfnOutput hook.
template <class Backend, class Active, class Hook>
void add_ffn_output(Backend& b, const ModelConfig& c, int32_t il, const LayerVectors& w, const LayerBuffers& s,
                    int64_t n, Active&& active, Hook&& hook) {
  if (c.post_norms) b.rms_norm(s.proj, w.post_ffn_norm, s.proj, n, c.n_embd, c.norm_eps);
  if (c.residual_scale != 0.0f) b.scale(s.proj, s.proj, n * c.n_embd, c.residual_scale);
  if (active(HookPoint::kFfnOutput)) [[unlikely]] {
    hook(HookPoint::kFfnOutput, il, s.proj, n, c.n_embd);
  }
  b.add(s.x, s.proj, s.x, n, c.n_embd, c.n_embd);
}

// x += ffn(norm(x)) for step.n rows.
template <class Backend, class LinearT, class Active, class Hook>
void ffn_block(Backend& b, const ModelConfig& c, int32_t il, const LayerVectors& w, const LayerLinearsOf<LinearT>& l,
               const LayerBuffers& s, int64_t n, Active&& active, Hook&& hook) {
  b.rms_norm(s.x, w.ffn_norm, s.xn, n, c.n_embd, c.norm_eps);
  // hidden = glu(xn·W_gateᵀ, xn·W_upᵀ) through s.gate_up; a fused [gate; up] matrix is w_up alone.
  b.matmul_glu(l.fused_gate_up ? l.w_up : l.w_gate, l.fused_gate_up ? nullptr : &l.w_up, s.xn, n,
               c.ffn == FfnKind::kGeGlu, s.gate_up, s.hidden);
  if (adds_output_as_is(c, HookPoint::kFfnOutput, active)) [[likely]] {
    b.matmul_accumulate(l.w_down, s.hidden, n, s.x, s.proj);  // x += hidden·w_downᵀ
    return;
  }
  b.matmul(l.w_down, s.hidden, n, s.proj);
  add_ffn_output(b, c, il, w, s, n, active, hook);
}

// x += experts(norm(x)) for n rows of a mixture-of-experts layer: `experts(xn, n, out, on_router_logits)`
// is the backend's mixture (moe_ffn), writing [n][n_embd] into out and calling
// on_router_logits(logits) with its router logits [n][n_expert] (the kRouterLogits hook point)
// before it chooses from them.
template <class Backend, class Experts, class Active, class Hook>
void expert_ffn_block(Backend& b, const ModelConfig& c, int32_t il, const LayerVectors& w, const LayerBuffers& s,
                      int64_t n, Experts&& experts, Active&& active, Hook&& hook) {
  b.rms_norm(s.x, w.ffn_norm, s.xn, n, c.n_embd, c.norm_eps);
  experts(s.xn, n, s.proj, [&](float* logits) {
    if (active(HookPoint::kRouterLogits)) [[unlikely]] {
      hook(HookPoint::kRouterLogits, il, logits, n, c.moe.n_expert);
    }
  });
  add_ffn_output(b, c, il, w, s, n, active, hook);
}

template <class Active, class Hook>
void residual_hook(const ModelConfig& c, int32_t il, const LayerBuffers& s, int64_t n, Active&& active, Hook&& hook) {
  if (active(HookPoint::kResidual)) [[unlikely]] {
    hook(HookPoint::kResidual, il, s.x, n, c.n_embd);
  }
}

// A layer's F32 vectors, each mapped by `where(tensor)` to the pointer the backend reads it at
// (nullptr for a tensor the model does not have).
template <class LayerWeightsT, class Where>
LayerVectors layer_vectors(const LayerWeightsT& w, Where&& where) {
  return {.attn_norm = where(w.attn_norm),
          .bq = where(w.bq),
          .bk = where(w.bk),
          .bv = where(w.bv),
          .q_norm = where(w.q_norm),
          .k_norm = where(w.k_norm),
          .post_attn_norm = where(w.post_attn_norm),
          .ffn_norm = where(w.ffn_norm),
          .post_ffn_norm = where(w.post_ffn_norm),
          .q_a_norm = where(w.q_a_norm),
          .kv_a_norm = where(w.kv_a_norm)};
}

// The F32 vectors of `w` as host pointers (the CPU reads them in place from the mapping).
template <class LayerWeightsT>
LayerVectors host_vectors(const LayerWeightsT& w) {
  return layer_vectors(
      w, [](const auto& t) -> const float* { return t.data() == nullptr ? nullptr : t.template data_as<float>(); });
}

}  // namespace ember
