// moe_ffn: routing (softmax, top-k), the per-expert matmuls over gathered rows, and the weighted sum.
#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/check.h"

namespace ember {

WeightMatrix expert_matrix(const TensorView& experts, int64_t e) {
  const auto* base = static_cast<const std::byte*>(experts.data());
  return {base + static_cast<size_t>(e) * experts.nb(2), experts.dtype(), experts.ne(1), experts.ne(0)};
}

void select_experts(const float* probs, int64_t n_rows, int32_t n_expert, int32_t k, bool normalize, int32_t* experts,
                    float* weights) {
  EMBER_CHECK(k >= 1 && k <= n_expert);
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* p = probs + r * n_expert;
    int32_t* chosen = experts + r * k;
    float* w = weights + r * k;
    // Insertion into the k best so far: n_expert is at most 512 and k small (2-8).
    int32_t n_chosen = 0;
    for (int32_t e = 0; e < n_expert; ++e) {
      int32_t at = n_chosen;
      while (at > 0 && p[e] > p[chosen[at - 1]]) --at;  // strictly greater: an equal one stays after
      if (at >= k) continue;
      const int32_t last = std::min(n_chosen, k - 1);
      for (int32_t i = last; i > at; --i) chosen[i] = chosen[i - 1];
      chosen[at] = e;
      n_chosen = std::min(n_chosen + 1, k);
    }
    float sum = 0.0f;
    for (int32_t i = 0; i < k; ++i) sum += (w[i] = p[chosen[i]]);
    if (normalize && sum > 0.0f) {
      for (int32_t i = 0; i < k; ++i) w[i] /= sum;
    }
  }
}

void MoeScratch::reserve(const ModelConfig& c, int64_t max_rows) {
  const auto rows = static_cast<size_t>(max_rows);
  const auto n_expert = static_cast<size_t>(c.moe.n_expert);
  const auto n_used = static_cast<size_t>(c.moe.n_used);
  const auto n_embd = static_cast<size_t>(c.n_embd);
  const auto widest = static_cast<size_t>(std::max(c.moe.n_ff_expert, c.moe.n_ff_shared));
  EMBER_CHECK(rows * n_used <= static_cast<size_t>(INT32_MAX));  // entries are int32 row * n_used + slot
  probs.resize(rows * n_expert);
  experts.resize(rows * n_used);
  weights.resize(rows * n_used);
  offsets.resize(n_expert + 1);
  entries.resize(rows * n_used);
  x.resize(rows * n_embd);
  gate_up.resize(rows * 2 * widest);
  hidden.resize(rows * widest);
  y.resize(rows * n_embd);
  shared_gate.resize(rows);
}

namespace {

// out_row += w · y_row over n floats.
void add_scaled(float* out_row, const float* y_row, float w, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out_row[i] += w * y_row[i];
}

}  // namespace

void moe_router_logits(CpuBackend& b, const MoeLinears& l, const float* xn, int64_t n, MoeScratch& s) {
  b.matmul(l.router, xn, n, s.probs.data());
}

void moe_experts(CpuBackend& b, const ModelConfig& c, const MoeLinears& l, const float* xn, int64_t n, MoeScratch& s,
                 float* out) {
  const MoeConfig& moe = c.moe;
  const int64_t n_embd = c.n_embd;
  const int32_t k = moe.n_used;
  EMBER_CHECK(static_cast<size_t>(n) * static_cast<size_t>(k) <= s.entries.size());

  // Route: probabilities over the experts, each row's k best.
  b.softmax(s.probs.data(), s.probs.data(), n, moe.n_expert, 1.0f, 0.0f);
  select_experts(s.probs.data(), n, moe.n_expert, k, moe.norm_weights, s.experts.data(), s.weights.data());

  // Group the (row, slot) entries by expert, rows in order within each (a counting sort).
  std::fill(s.offsets.begin(), s.offsets.end(), 0);
  const int64_t n_entries = n * k;
  for (int64_t i = 0; i < n_entries; ++i) ++s.offsets[static_cast<size_t>(s.experts[static_cast<size_t>(i)]) + 1];
  for (size_t e = 1; e < s.offsets.size(); ++e) s.offsets[e] += s.offsets[e - 1];
  for (int64_t i = 0; i < n_entries; ++i) {
    // offsets[e] is expert e's next free place while filling, and its end afterwards.
    s.entries[static_cast<size_t>(s.offsets[static_cast<size_t>(s.experts[static_cast<size_t>(i)])]++)] =
        static_cast<int32_t>(i);
  }
  // offsets[e] now holds expert e's end = expert e+1's start: shift back to starts.
  for (size_t e = s.offsets.size() - 1; e > 0; --e) s.offsets[e] = s.offsets[e - 1];
  s.offsets[0] = 0;

  std::memset(out, 0, sizeof(float) * static_cast<size_t>(n * n_embd));
  const size_t row_bytes = sizeof(float) * static_cast<size_t>(n_embd);
  for (int32_t e = 0; e < moe.n_expert; ++e) {
    const int32_t begin = s.offsets[static_cast<size_t>(e)], end = s.offsets[static_cast<size_t>(e) + 1];
    const int64_t m = end - begin;
    if (m == 0) continue;
    for (int64_t i = 0; i < m; ++i) {
      const int64_t row = s.entries[static_cast<size_t>(begin + i)] / k;
      std::memcpy(s.x.data() + i * n_embd, xn + row * n_embd, row_bytes);
    }
    const auto ue = static_cast<size_t>(e);
    b.matmul_glu(l.gate[ue], &l.up[ue], s.x.data(), m, /*gelu=*/false, s.gate_up.data(), s.hidden.data());
    b.matmul(l.down[ue], s.hidden.data(), m, s.y.data());
    for (int64_t i = 0; i < m; ++i) {
      const int32_t entry = s.entries[static_cast<size_t>(begin + i)];
      add_scaled(out + (entry / k) * n_embd, s.y.data() + i * n_embd, s.weights[static_cast<size_t>(entry)], n_embd);
    }
  }

  if (!l.has_shared) return;
  b.matmul_glu(l.shared_gate, &l.shared_up, xn, n, /*gelu=*/false, s.gate_up.data(), s.hidden.data());
  b.matmul(l.shared_down, s.hidden.data(), n, s.y.data());
  if (!l.shared_gated) {
    b.add(out, s.y.data(), out, n, n_embd, n_embd);
    return;
  }
  b.matmul(l.shared_router, xn, n, s.shared_gate.data());
  for (int64_t r = 0; r < n; ++r) {
    const float gate = 1.0f / (1.0f + std::exp(-s.shared_gate[static_cast<size_t>(r)]));
    add_scaled(out + r * n_embd, s.y.data() + r * n_embd, gate, n_embd);
  }
}

}  // namespace ember
