// Multi-head latent attention (DeepSeek V2/V3, MlaConfig) written once against a backend, as
// transformer_layer.h's attention_block is: the absorbed form, whose cache holds one row per token,
// [latent (kv_lora_rank) | k_pe (n_rot)], attended by every head as a single kv head.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "model/transformer_layer.h"

namespace ember {

// A latent-attention layer's matrices in a backend's form (wo stays in LayerLinearsOf).
template <class LinearT>
struct LatentLinearsOf {
  LinearT wq;                // x -> q, when mla.q_lora_rank == 0
  LinearT wq_a, wq_b;        // x -> q_lora_rank -> q, otherwise
  LinearT wkv_a;             // x -> [latent | k_pe]
  std::vector<LinearT> k_b;  // [n_head]: q_nope (nope_dim) -> kv_lora_rank
  std::vector<LinearT> v_b;  // [n_head]: kv_lora_rank -> v_dim
};

// The step's latent-attention buffers, [max rows] of the width in brackets each (beside LayerBuffers,
// whose q [n_head * head_dim], k and v [head_dim] and attn [n_head * head_dim] it uses too).
struct LatentBuffers {
  float* q_full = nullptr;    // [n_head * (nope_dim + n_rot)] the projected queries
  float* q_a = nullptr;       // [q_lora_rank]
  float* kv_a = nullptr;      // [kv_lora_rank + n_rot] the projected [latent | k_pe]
  float* latent = nullptr;    // [kv_lora_rank] normed
  float* head_in = nullptr;   // [max(nope_dim, kv_lora_rank)] one head's input of a per-head matmul
  float* head_out = nullptr;  // [max(kv_lora_rank, v_dim)] and its output
  float* attn_v = nullptr;    // [n_head * v_dim] the heads' values, side by side
};

// The step's LatentBuffers for `rows` rows, carved out of `base` (latent_buffer_floats(c, rows)
// floats); with base nullptr, only the count is computed (the widths are in one place).
inline LatentBuffers carve_latent_buffers(const ModelConfig& c, int64_t rows, float* base, int64_t* total = nullptr) {
  const MlaConfig& m = c.mla;
  const int64_t n_rot = c.rope.n_rot;
  LatentBuffers t;
  int64_t used = 0;
  const auto take = [&](float*& field, int64_t width) {
    field = base == nullptr ? nullptr : base + used;
    used += (rows * width + 15) / 16 * 16;  // whole 64 bytes: every buffer as aligned as `base` (up to 64)
  };
  take(t.q_full, int64_t{c.n_head} * (m.nope_dim + n_rot));
  take(t.q_a, m.q_lora_rank);
  take(t.kv_a, m.kv_lora_rank + n_rot);
  take(t.latent, m.kv_lora_rank);
  take(t.head_in, std::max<int64_t>(m.nope_dim, m.kv_lora_rank));
  take(t.head_out, std::max<int64_t>(m.kv_lora_rank, m.v_dim));
  take(t.attn_v, int64_t{c.n_head} * m.v_dim);
  if (total != nullptr) *total = used;
  return t;
}

// Floats a step's LatentBuffers for `rows` rows take together.
inline int64_t latent_buffer_floats(const ModelConfig& c, int64_t rows) {
  int64_t total = 0;
  carve_latent_buffers(c, rows, nullptr, &total);
  return total;
}

// Per-head products of rows laid out [row][head][...]: y row j (at y + j·y_stride) = heads[j %
// n_head] · x row j (at x + j·x_stride) for j < n_rows · n_head, one matmul per head. A head's
// rows are gathered into x_scratch and its outputs scattered from y_scratch ([n_rows][the widest
// k / n_out] each), except for a single row whose slices stay 16-byte aligned (as the GPU's
// matmul wants them), which goes in and out in place.
template <class Backend, class LinearT>
void matmul_each_head(Backend& b, const std::vector<LinearT>& heads, const float* x, int64_t x_stride, int64_t n_rows,
                      float* y, int64_t y_stride, float* x_scratch, float* y_scratch) {
  const auto n_head = static_cast<int64_t>(heads.size());
  const bool in_place = n_rows == 1 && x_stride % 4 == 0 && y_stride % 4 == 0;
  for (int64_t h = 0; h < n_head; ++h) {
    const LinearT& w = heads[static_cast<size_t>(h)];
    const int64_t k = w.w.k, n_out = w.w.n_out;
    if (in_place) {
      b.matmul(w, x + h * x_stride, 1, y + h * y_stride);
      continue;
    }
    b.copy_rows(x_scratch, k, x + h * x_stride, n_head * x_stride, n_rows, k);
    b.matmul(w, x_scratch, n_rows, y_scratch);
    b.copy_rows(y + h * y_stride, n_head * y_stride, y_scratch, n_out, n_rows, n_out);
  }
}

// The backend's per-head products: matmul_each_head, unless the backend has an overload of its
// own, found by argument lookup (CUDA: one launch for a decode step's heads).
template <class Backend, class LinearT>
void matmul_heads(Backend& b, const std::vector<LinearT>& heads, const float* x, int64_t x_stride, int64_t n_rows,
                  float* y, int64_t y_stride, float* x_scratch, float* y_scratch) {
  matmul_each_head(b, heads, x, x_stride, n_rows, y, y_stride, x_scratch, y_scratch);
}

// x += latent_attention(norm(x)) for step.n rows (llama.cpp's deepseek2 graph, MLA path):
//   q = wq·xn, or wq_b·norm(wq_a·xn)            [n][n_head][nope | n_rot]
//   [c | k_pe] = wkv_a·xn; c = norm(c)          [n][kv_lora_rank | n_rot]
//   K = V = [c | rope(k_pe)]                    one cached row per token
//   Q[h] = [k_b[h]·q_nope[h] | rope(q_pe[h])]   [n][n_head][kv_lora_rank + n_rot]
//   o[h] = v_b[h]·(attention(Q[h], K, V) latent part)
//   x += o·woᵀ
template <class Backend, class LinearT, class StepKv, class Active, class Hook>
void latent_attention_block(Backend& b, const ModelConfig& c, int32_t il, const LayerVectors& w,
                            const LayerLinearsOf<LinearT>& l, const LatentLinearsOf<LinearT>& m, const LayerBuffers& s,
                            const LatentBuffers& t, const LayerStep& step, const PagedKvView& cache, const StepKv& kv,
                            Active&& active, Hook&& hook) {
  const MlaConfig& mla = c.mla;
  const int64_t n = step.n, n_head = c.n_head, n_rot = step.n_rot;
  const int64_t lora = mla.kv_lora_rank, nope = mla.nope_dim, qk = nope + n_rot,
                row = c.head_dim;  // row = lora + n_rot

  b.rms_norm(s.x, w.attn_norm, s.xn, n, c.n_embd, c.norm_eps);
  if (mla.q_lora_rank > 0) {
    b.matmul(m.wq_a, s.xn, n, t.q_a);
    b.rms_norm(t.q_a, w.q_a_norm, t.q_a, n, mla.q_lora_rank, c.norm_eps);
    b.matmul(m.wq_b, t.q_a, n, t.q_full);
  } else {
    b.matmul(m.wq, s.xn, n, t.q_full);
  }
  b.matmul(m.wkv_a, s.xn, n, t.kv_a);
  b.copy_rows(t.latent, lora, t.kv_a, row, n, lora);
  b.rms_norm(t.latent, w.kv_a_norm, t.latent, n, lora, c.norm_eps);
  b.copy_rows(s.k, row, t.latent, lora, n, lora);
  b.copy_rows(s.k + lora, row, t.kv_a + lora, row, n, n_rot);
  // Q[h]'s latent part, k_b[h]·q_nope[h] (q_nope: the first nope of each head's qk).
  matmul_heads(b, m.k_b, t.q_full, qk, n, s.q, row, t.head_in, t.head_out);
  // Q[h]'s rope part, q_pe[h], for every row and head at once: (row, head) pairs are `row` floats
  // apart in Q and qk apart in q_full.
  b.copy_rows(s.q + lora, row, t.q_full + nope, qk, n * n_head, n_rot);
  // The rope dims are each head's last n_rot: rotate from there, heads `row` floats apart.
  b.rope_qk(s.q + lora, n_head * row, n_head, s.k + lora, row, 1, n, row, n_rot, step.neox, s.cos_sin);
  store_kv(b, cache, kv, s.k, s.k);
  const AttentionParams params{.n_head = c.n_head,
                               .scale = c.attn_scale,
                               .softcap = 0.0f,
                               .window = 0,
                               .alibi_slopes = nullptr,
                               .split_tokens = step.batch_invariant ? -1 : 0};
  attention(b, cache, kv, s.q, params, s.attn);  // [n][n_head][row]: the latent part is the first lora
  // Each head's value, v_b[h]·(its output's latent part, the first lora of the row).
  matmul_heads(b, m.v_b, s.attn, row, n, t.attn_v, mla.v_dim, t.head_in, t.head_out);
  add_attention_output(b, c, il, w, l.wo, t.attn_v, s, n, active, hook);
}

}  // namespace ember
