// Latent-attention layers on the CUDA backend (gpu_latent_cuda.h).
#include "model/gpu_latent_cuda.h"

#include <vector>

#include "ember/error.h"
#include "model/latent_weights.h"
#include "model/moe.h"
#include "model/transformer_layer.h"
#include "quant/quant_traits.h"

namespace ember {
namespace {

size_t matrix_bytes(const WeightMatrix& m) {
  return *dtype_bytes_for(m.dtype, static_cast<size_t>(m.n_out) * static_cast<size_t>(m.k));
}

}  // namespace

HeadMatrixShape latent_k_b_shape(const ModelConfig& c, const LayerWeights& w) {
  const DType type = c.mla.merged_kv_b ? transposed_k_b_type(w.wkv_b.dtype(), c.mla.nope_dim) : w.wk_b.dtype();
  return {type, int64_t{c.mla.kv_lora_rank} * c.mla.nope_dim};
}

HeadMatrixShape latent_v_b_shape(const ModelConfig& c, const LayerWeights& w) {
  return {c.mla.merged_kv_b ? w.wkv_b.dtype() : w.wv_b.dtype(), int64_t{c.mla.v_dim} * c.mla.kv_lora_rank};
}

uint64_t latent_layer_bytes(const ModelConfig& c, const LayerWeights& w) {
  uint64_t bytes = 0;
  // (wq, of a file without the low-rank pair, is counted with the other layers' wq.)
  for (const TensorView* t : {&w.wq_a, &w.q_a_norm, &w.wq_b, &w.wkv_a, &w.kv_a_norm, &w.wk_b, &w.wv_b}) {
    if (t->data() != nullptr) bytes += t->n_bytes();
  }
  if (c.mla.merged_kv_b) {
    for (const HeadMatrixShape s : {latent_k_b_shape(c, w), latent_v_b_shape(c, w)}) {
      bytes += static_cast<uint64_t>(c.n_head) * *dtype_bytes_for(s.dtype, static_cast<uint64_t>(s.elements));
    }
  }
  return bytes;
}

CudaLatentLayer upload_latent_layer(cuda::CudaBackend& b, const ModelConfig& c, const LayerWeights& w, int32_t il,
                                    uint64_t& bytes) {
  const MlaConfig& mla = c.mla;
  CudaLatentLayer l;
  const auto linear = [&](const TensorView& t, const char* what) {
    cuda::CudaLinear uploaded = b.upload(weight_matrix(t), fmt::format("blk.{}.{}", il, what));
    bytes += uploaded.storage.bytes();
    return uploaded;
  };
  // n_head matrices shaped as `first`, head_bytes apart from first.data, in one upload.
  const auto heads = [&](const WeightMatrix& first, size_t head_bytes, const char* what) {
    cuda::CudaExperts e =
        b.upload_experts(first, static_cast<int64_t>(head_bytes), c.n_head, fmt::format("blk.{}.{}", il, what));
    bytes += e.storage.bytes();
    return e;
  };
  if (mla.q_lora_rank > 0) {
    l.linears.wq_a = linear(w.wq_a, "attn_q_a");
    l.linears.wq_b = linear(w.wq_b, "attn_q_b");
  } else {
    l.linears.wq = linear(w.wq, "attn_q");
  }
  l.linears.wkv_a = linear(w.wkv_a, "attn_kv_a_mqa");
  if (!mla.merged_kv_b) {
    l.k_b = heads(expert_matrix(w.wk_b, 0), w.wk_b.nb(2), "attn_k_b");
    l.v_b = heads(expert_matrix(w.wv_b, 0), w.wv_b.nb(2), "attn_v_b");
  } else {
    // Every head's k_b copy, and its v_b rows as they are, side by side on the host, then one upload
    // each (the W_UK rows the copies come from are not uploaded).
    std::vector<std::byte> k_all, v_all, one;
    WeightMatrix k_first{}, v_first{};
    for (int64_t h = 0; h < c.n_head; ++h) {
      const WeightMatrix k = transposed_k_b(w.wkv_b, mla, h, one);
      const WeightMatrix v = merged_v_b(w.wkv_b, mla, h);
      if (h == 0) {
        k_first = k;
        v_first = v;
      }
      const auto* v_bytes = static_cast<const std::byte*>(v.data);
      k_all.insert(k_all.end(), one.begin(), one.end());
      v_all.insert(v_all.end(), v_bytes, v_bytes + matrix_bytes(v));
    }
    k_first.data = k_all.data();
    v_first.data = v_all.data();
    l.k_b = heads(k_first, matrix_bytes(k_first), "attn_kv_b (k_b, transposed)");
    l.v_b = heads(v_first, matrix_bytes(v_first), "attn_kv_b (v_b)");
    b.synchronize();  // the copies read k_all / v_all, freed on return (a pageable copy may be queued)
  }
  for (int32_t h = 0; h < c.n_head; ++h) {
    l.linears.k_b.push_back(l.k_b.expert(h));
    l.linears.v_b.push_back(l.v_b.expert(h));
  }
  return l;
}

}  // namespace ember
