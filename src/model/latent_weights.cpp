// Latent attention's per-head matrices from a merged attn_kv_b (latent_weights.h).
#include "model/latent_weights.h"

#include "quant/quant_traits.h"

namespace ember {

DType transposed_k_b_type(DType src, int64_t nope_dim) {
  if (src == DType::kF32 || src == DType::kF16) return src;
  return nope_dim % 32 == 0 ? DType::kQ8_0 : DType::kF32;
}

WeightMatrix transposed_k_b(const TensorView& kv_b, const MlaConfig& mla, int64_t h, std::vector<std::byte>& out) {
  const int64_t lora = mla.kv_lora_rank, nope = mla.nope_dim;
  std::vector<float> w_uk(static_cast<size_t>(nope * lora));
  const auto* base = static_cast<const std::byte*>(kv_b.data());
  for (int64_t i = 0; i < nope; ++i) {
    const auto row = static_cast<size_t>(h * (nope + mla.v_dim) + i);
    dequantize(kv_b.dtype(), base + row * kv_b.nb(1), w_uk.data() + i * lora, lora);
  }
  std::vector<float> k_b(w_uk.size());
  for (int64_t j = 0; j < lora; ++j) {
    for (int64_t i = 0; i < nope; ++i) k_b[static_cast<size_t>(j * nope + i)] = w_uk[static_cast<size_t>(i * lora + j)];
  }
  const DType to = transposed_k_b_type(kv_b.dtype(), nope);
  out.resize(*dtype_bytes_for(to, k_b.size()));
  quantize_rows(to, k_b.data(), out.data(), lora, nope);  // (F16 from F16 values is exact)
  return {out.data(), to, lora, nope};
}

WeightMatrix merged_v_b(const TensorView& kv_b, const MlaConfig& mla, int64_t h) {
  const auto* base = static_cast<const std::byte*>(kv_b.data());
  const auto first_v_row = static_cast<size_t>(h * (mla.nope_dim + mla.v_dim) + mla.nope_dim);
  return {base + first_v_row * kv_b.nb(1), kv_b.dtype(), mla.v_dim, mla.kv_lora_rank};
}

}  // namespace ember
