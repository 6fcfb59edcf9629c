// Mixture-of-experts layers on the CUDA backend: upload, scratch, routing and the experts' two
// paths (gpu_experts_cuda.h).
#include "model/gpu_experts_cuda.h"

#include <algorithm>
#include <cstddef>

#include "core/check.h"
#include "ember/error.h"
#include "model/transformer_layer.h"

namespace ember {
namespace {

using cuda::CudaBackend;
using cuda::CudaLinear;

// The scratch's device buffers in order: element counts per row of a step, and each one's element
// size. Each starts 256-byte aligned (the GEMV's vector loads want 16).
struct ScratchPlan {
  int64_t widths[12];
};

ScratchPlan plan(const ModelConfig& c) {
  const MoeConfig& moe = c.moe;
  const int64_t k = moe.n_used;
  const int64_t widest = std::max(moe.n_ff_expert, moe.n_ff_shared);
  // logits, experts, weights, row_ids, positions, x, gate_up, hidden, y, shared_hidden, shared_y, shared_logit
  return {{moe.n_expert, k, k, k, k, k * c.n_embd, 2 * widest, k * moe.n_ff_expert, k * c.n_embd, moe.n_ff_shared,
           moe.n_ff_shared > 0 ? int64_t{c.n_embd} : 0, 1}};
}

constexpr size_t kAlign = 256;

size_t aligned(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

}  // namespace

void check_moe_supported(const ModelConfig& c, const Weights& weights, int32_t first_layer) {
  if (c.moe.n_used > cuda::kMaxExpertsUsed) {
    fail(ErrorCode::kUnsupported, "GPU mixture of experts: {} experts per token, more than the {} the kernels take",
         c.moe.n_used, cuda::kMaxExpertsUsed);
  }
  if (c.ffn != FfnKind::kSwiGlu) fail(ErrorCode::kUnsupported, "GPU mixture of experts: SwiGLU experts only");
  if (c.moe.n_group > cuda::kMaxExpertGroups) {
    fail(ErrorCode::kUnsupported, "GPU mixture of experts: {} expert groups, more than the {} the router takes",
         c.moe.n_group, cuda::kMaxExpertGroups);
  }
  for (int32_t il = first_layer; il < c.n_layer; ++il) {
    const LayerWeights& w = weights.layers[static_cast<size_t>(il)];
    if (w.expert_gate.data() != nullptr && w.expert_gate.dtype() != w.expert_up.dtype()) {
      // (The CPU runs them; the GPU's fused gate/up GEMV takes one type.)
      fail(ErrorCode::kUnsupported, "GPU mixture of experts: blk.{}.ffn_gate_exps is {} but ffn_up_exps is {}", il,
           dtype_name(w.expert_gate.dtype()), dtype_name(w.expert_up.dtype()));
    }
  }
}

uint64_t moe_layer_bytes(const LayerWeights& w) {
  uint64_t bytes = 0;
  for (const TensorView* t : {&w.router, &w.selection_bias, &w.expert_gate, &w.expert_up, &w.expert_down,
                              &w.shared_router, &w.shared_gate, &w.shared_up, &w.shared_down}) {
    if (t->data() != nullptr) bytes += t->n_bytes();
  }
  return bytes;
}

CudaMoeLayer upload_moe_layer(CudaBackend& b, const LayerWeights& w, int32_t il, uint64_t& bytes) {
  CudaMoeLayer l;
  const auto linear = [&](const WeightMatrix& m, const char* what) {
    CudaLinear uploaded = b.upload(m, fmt::format("blk.{}.{}", il, what));
    bytes += uploaded.storage.bytes();
    return uploaded;
  };
  const auto experts = [&](const TensorView& t, const char* what) {
    // ggml order [k, n_out, n_expert]: expert e's n_out rows of k at e · nb[2].
    cuda::CudaExperts e =
        b.upload_experts(WeightMatrix{t.data(), t.dtype(), t.ne(1), t.ne(0)}, static_cast<int64_t>(t.nb(2)),
                         static_cast<int32_t>(t.ne(2)), fmt::format("blk.{}.{}", il, what));
    bytes += e.storage.bytes();
    return e;
  };
  EMBER_CHECK(w.expert_gate.dtype() == w.expert_up.dtype());  // check_moe_supported refused the others
  l.router = linear(weight_matrix(w.router), "ffn_gate_inp");
  if (w.selection_bias.data() != nullptr) {
    l.selection_bias =
        b.upload_bytes(w.selection_bias.data(), w.selection_bias.n_bytes(), fmt::format("blk.{}.exp_probs_b", il));
    bytes += l.selection_bias.bytes();
  }
  l.gate = experts(w.expert_gate, "ffn_gate_exps");
  l.up = experts(w.expert_up, "ffn_up_exps");
  l.down = experts(w.expert_down, "ffn_down_exps");
  l.has_shared = w.shared_gate.data() != nullptr;
  if (l.has_shared) {
    l.shared_gated = w.shared_router.data() != nullptr;
    if (l.shared_gated) {
      // ffn_gate_inp_shexp is a vector [n_embd]: a matrix of one row.
      l.shared_router = linear(WeightMatrix{w.shared_router.data(), w.shared_router.dtype(), 1, w.shared_router.ne(0)},
                               "ffn_gate_inp_shexp");
    }
    l.shared_gate = linear(weight_matrix(w.shared_gate), "ffn_gate_shexp");
    l.shared_up = linear(weight_matrix(w.shared_up), "ffn_up_shexp");
    l.shared_down = linear(weight_matrix(w.shared_down), "ffn_down_shexp");
  }
  return l;
}

uint64_t CudaMoeScratch::planned_bytes(const ModelConfig& c, int64_t max_rows) {
  uint64_t bytes = 0;
  for (const int64_t width : plan(c).widths) bytes += aligned(sizeof(float) * static_cast<size_t>(width * max_rows));
  return bytes;
}

CudaMoeScratch::CudaMoeScratch(const ModelConfig& c, int64_t max_rows)
    : device(planned_bytes(c, max_rows), "the mixture-of-experts scratch") {
  auto* at = static_cast<std::byte*>(device.data());
  void* parts[12];
  const ScratchPlan p = plan(c);
  for (size_t i = 0; i < 12; ++i) {
    parts[i] = at;
    at += aligned(sizeof(float) * static_cast<size_t>(p.widths[i] * max_rows));
  }
  logits = static_cast<float*>(parts[0]);
  experts = static_cast<int32_t*>(parts[1]);
  weights = static_cast<float*>(parts[2]);
  row_ids = static_cast<int32_t*>(parts[3]);
  positions = static_cast<int32_t*>(parts[4]);
  x = static_cast<float*>(parts[5]);
  gate_up = static_cast<float*>(parts[6]);
  hidden = static_cast<float*>(parts[7]);
  y = static_cast<float*>(parts[8]);
  shared_hidden = static_cast<float*>(parts[9]);
  shared_y = static_cast<float*>(parts[10]);
  shared_logit = static_cast<float*>(parts[11]);
  const auto entries = static_cast<size_t>(max_rows * c.moe.n_used);
  host_experts.resize(entries);
  host_index.resize(2 * entries);
  offsets.resize(static_cast<size_t>(c.moe.n_expert) + 1);
}

void moe_router_logits(CudaBackend& b, const CudaMoeLayer& l, const float* xn, int64_t n, CudaMoeScratch& s) {
  b.matmul(l.router, xn, n, s.logits);
}

void moe_experts(CudaBackend& b, const ModelConfig& c, const CudaMoeLayer& l, const float* xn, int64_t n,
                 CudaMoeScratch& s, float* out) {
  const MoeConfig& moe = c.moe;
  const int32_t k = moe.n_used;
  const int64_t n_embd = c.n_embd;
  const int64_t n_entries = n * k;
  EMBER_CHECK(static_cast<size_t>(n_entries) <= s.host_experts.size());
  const cuda::ExpertRoute route{.n_expert = moe.n_expert,
                                .k = k,
                                .sigmoid = moe.gating == ExpertGating::kSigmoid,
                                .normalize = moe.norm_weights,
                                .scale = moe.weights_scale,
                                .bias = l.selection_bias.as<float>(),
                                .n_group = moe.n_group,
                                .n_group_used = moe.n_group_used};
  b.route_experts(s.logits, n, route, s.logits, s.experts, s.weights);

  const int32_t* positions = nullptr;  // entry i's output row in y (null: row i)
  if (n <= cuda::kGemvMaxRows) {
    // Every entry's GEMVs straight from its expert's blocks: hidden [entries][n_ff_expert], y
    // [entries][n_embd].
    b.matmul_experts_glu(l.gate, l.up, /*gelu=*/false, s.experts, n_entries, xn, k, s.hidden);
    b.matmul_experts(l.down, s.experts, n_entries, s.hidden, 1, s.y);
  } else {
    // Group the entries by expert on the host (a counting sort, rows in order within an expert):
    // row_ids[i] is grouped entry i's source row, positions[entry] its place i. (The host round
    // trip cannot be in a graph: graphed steps are decode-sized, GpuLayers' graphable().)
    EMBER_CHECK(!b.capturing());
    b.to_host(s.host_experts.data(), s.experts, sizeof(int32_t) * static_cast<size_t>(n_entries));
    b.synchronize();
    std::fill(s.offsets.begin(), s.offsets.end(), 0);
    for (int64_t i = 0; i < n_entries; ++i) {
      const int32_t e = s.host_experts[static_cast<size_t>(i)];
      EMBER_CHECK(e >= 0 && e < moe.n_expert);
      ++s.offsets[static_cast<size_t>(e) + 1];
    }
    for (size_t e = 1; e < s.offsets.size(); ++e) s.offsets[e] += s.offsets[e - 1];
    int32_t* row_ids = s.host_index.data();
    int32_t* places = s.host_index.data() + n_entries;
    for (int64_t i = 0; i < n_entries; ++i) {
      const auto e = static_cast<size_t>(s.host_experts[static_cast<size_t>(i)]);
      const int32_t place = s.offsets[e]++;
      row_ids[place] = static_cast<int32_t>(i / k);
      places[i] = place;
    }
    // offsets[e] now holds expert e's end = expert e+1's start: shift back to starts.
    for (size_t e = s.offsets.size() - 1; e > 0; --e) s.offsets[e] = s.offsets[e - 1];
    s.offsets[0] = 0;
    b.to_device(s.row_ids, row_ids, sizeof(int32_t) * static_cast<size_t>(n_entries));
    b.to_device(s.positions, places, sizeof(int32_t) * static_cast<size_t>(n_entries));
    b.gather_rows(xn, n, n_embd, s.row_ids, n_entries, s.x);
    const int64_t n_ff = moe.n_ff_expert;
    for (int32_t e = 0; e < moe.n_expert; ++e) {
      const int32_t begin = s.offsets[static_cast<size_t>(e)], end = s.offsets[static_cast<size_t>(e) + 1];
      if (end == begin) continue;
      const CudaLinear gate = l.gate.expert(e), up = l.up.expert(e), down = l.down.expert(e);
      b.matmul_glu(gate, &up, s.x + begin * n_embd, end - begin, /*gelu=*/false, s.gate_up, s.hidden + begin * n_ff);
      b.matmul(down, s.hidden + begin * n_ff, end - begin, s.y + begin * n_embd);
    }
    positions = s.positions;
  }

  const float* shared = nullptr;
  const float* shared_gate = nullptr;
  if (l.has_shared) {
    b.matmul_glu(l.shared_gate, &l.shared_up, xn, n, /*gelu=*/false, s.gate_up, s.shared_hidden);
    b.matmul(l.shared_down, s.shared_hidden, n, s.shared_y);
    shared = s.shared_y;
    if (l.shared_gated) {
      b.matmul(l.shared_router, xn, n, s.shared_logit);
      shared_gate = s.shared_logit;
    }
  }
  b.combine_experts(s.y, positions, s.experts, s.weights, n, k, n_embd, shared, shared_gate, out);
}

}  // namespace ember
