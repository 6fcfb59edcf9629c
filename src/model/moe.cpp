// moe_ffn: routing (softmax or sigmoid, biased and grouped top-k), the per-expert matmuls over gathered rows, and the
// weighted sum.
#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "core/check.h"

namespace ember {

WeightMatrix expert_matrix(const TensorView& experts, int64_t e) {
  const auto* base = static_cast<const std::byte*>(experts.data());
  return {base + static_cast<size_t>(e) * experts.nb(2), experts.dtype(), experts.ne(1), experts.ne(0)};
}

ExpertRouting ExpertRouting::of(const MoeConfig& moe, const float* bias) noexcept {
  return {.n_expert = moe.n_expert,
          .k = moe.n_used,
          .normalize = moe.norm_weights,
          .scale = moe.weights_scale,
          .bias = bias,
          .n_group = moe.n_group,
          .n_group_used = moe.n_group_used};
}

namespace {

constexpr int32_t kMaxExperts = 512;  // the most a config allows (llama.cpp's LLAMA_MAX_EXPERTS)

// Insertion of e, scored score[e], into the n_chosen (<= k) best so far, kept in decreasing order;
// strictly greater moves up, so an equal score stays after (the lower index first).
void insert_best(const float* score, int32_t e, int32_t* chosen, int32_t& n_chosen, int32_t k) {
  int32_t at = n_chosen;
  while (at > 0 && score[e] > score[chosen[at - 1]]) --at;
  if (at >= k) return;
  const int32_t last = std::min(n_chosen, k - 1);
  for (int32_t i = last; i > at; --i) chosen[i] = chosen[i - 1];
  chosen[at] = e;
  n_chosen = std::min(n_chosen + 1, k);
}

// score[e] = -inf for the experts outside the n_group_used groups whose two best scores sum highest.
void mask_groups(float* score, const ExpertRouting& r) {
  const int32_t per_group = r.n_expert / r.n_group;
  float group_score[kMaxExperts];
  for (int32_t g = 0; g < r.n_group; ++g) {
    int32_t best[2];
    int32_t n_best = 0;
    for (int32_t e = g * per_group; e < (g + 1) * per_group; ++e) insert_best(score, e, best, n_best, 2);
    group_score[g] = score[best[0]] + score[best[1]];
  }
  int32_t groups[kMaxExperts];
  int32_t n_groups = 0;
  for (int32_t g = 0; g < r.n_group; ++g) insert_best(group_score, g, groups, n_groups, r.n_group_used);
  bool allowed[kMaxExperts] = {};
  for (int32_t i = 0; i < n_groups; ++i) allowed[groups[i]] = true;
  for (int32_t e = 0; e < r.n_expert; ++e) {
    if (!allowed[e / per_group]) score[e] = -std::numeric_limits<float>::infinity();
  }
}

}  // namespace

void select_experts(const float* probs, int64_t n_rows, const ExpertRouting& r, int32_t* experts, float* weights) {
  EMBER_CHECK(r.k >= 1 && r.k <= r.n_expert && r.n_expert <= kMaxExperts);
  const bool grouped = r.n_group > 1;
  EMBER_CHECK(!grouped || (r.n_expert % r.n_group == 0 && r.n_expert / r.n_group >= 2 && r.n_group_used >= 1 &&
                           r.n_group_used < r.n_group && r.k <= r.n_group_used * (r.n_expert / r.n_group)));
  float biased[kMaxExperts];
  for (int64_t row = 0; row < n_rows; ++row) {
    const float* p = probs + row * r.n_expert;
    const float* score = p;
    if (r.bias != nullptr || grouped) {
      for (int32_t e = 0; e < r.n_expert; ++e) biased[e] = r.bias != nullptr ? p[e] + r.bias[e] : p[e];
      if (grouped) mask_groups(biased, r);
      score = biased;
    }
    int32_t* chosen = experts + row * r.k;
    float* w = weights + row * r.k;
    // Insertion into the k best so far: n_expert is at most 512 and k small (2-8).
    int32_t n_chosen = 0;
    for (int32_t e = 0; e < r.n_expert; ++e) insert_best(score, e, chosen, n_chosen, r.k);
    float sum = 0.0f;
    for (int32_t i = 0; i < r.k; ++i) sum += (w[i] = p[chosen[i]]);
    if (r.normalize) {
      const float divisor = std::max(sum, 6.103515625e-5f);  // 2^-14: llama.cpp's clamp of the sum
      for (int32_t i = 0; i < r.k; ++i) w[i] /= divisor;
    }
    if (r.scale != 0.0f && r.scale != 1.0f) {
      for (int32_t i = 0; i < r.k; ++i) w[i] *= r.scale;
    }
  }
}

void gate_router_logits(CpuBackend& b, ExpertGating gating, float* logits, int64_t n_rows, int32_t n_expert) {
  if (gating == ExpertGating::kSoftmax) {
    b.softmax(logits, logits, n_rows, n_expert, 1.0f, 0.0f);
    return;
  }
  const int64_t n = n_rows * n_expert;
  for (int64_t i = 0; i < n; ++i) logits[i] = 1.0f / (1.0f + std::exp(-logits[i]));
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
  gate_router_logits(b, moe.gating, s.probs.data(), n, moe.n_expert);
  select_experts(s.probs.data(), n, ExpertRouting::of(moe, l.selection_bias), s.experts.data(), s.weights.data());

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
