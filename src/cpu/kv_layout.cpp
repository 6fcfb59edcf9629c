// Paged KV layout helpers and the store of a step's new K/V rows into their slots.
#include "cpu/kv_layout.h"

#include "core/check.h"

namespace ember {

size_t KvLayout::row_bytes() const noexcept {
  return static_cast<size_t>(dtype_bytes_for(dtype, static_cast<uint64_t>(head_dim)).value_or(0));
}

bool kv_dtype_supported(DType dtype, int32_t head_dim) noexcept {
  if (dtype == DType::kQ8_0) return head_dim > 0 && head_dim % kQ8_0BlockValues == 0;
  return dtype == DType::kF32 || dtype == DType::kF16;
}

void check_kv_view(const PagedKvView& kv) {
  EMBER_CHECK(kv.n_head_kv > 0 && kv.head_dim > 0 && kv.n_blocks >= 0);
  EMBER_CHECK_MSG(kv_dtype_supported(kv.k_dtype, kv.head_dim) && kv_dtype_supported(kv.v_dtype, kv.head_dim),
                  "paged KV: F32, F16 or Q8_0 pools (Q8_0: head_dim a multiple of 32)");
  EMBER_CHECK(kv.k != nullptr && kv.v != nullptr);
}

void store_kv(const CpuKernels& kernels, ThreadPool& pool, const PagedKvView& kv, std::span<const KvSeq> seqs,
              std::span<const KvRow> rows, const float* k, const float* v) {
  check_kv_view(kv);
  const KvLayout kl = kv.k_layout(), vl = kv.v_layout();
  const QuantizeRowFn to_k = kernels.quantize_row_for(kv.k_dtype);
  const QuantizeRowFn to_v = kernels.quantize_row_for(kv.v_dtype);
  EMBER_CHECK(to_k != nullptr && to_v != nullptr);
  for (const KvRow& row : rows) {
    EMBER_CHECK(row.seq >= 0 && static_cast<size_t>(row.seq) < seqs.size() && row.pos >= 0);
    const std::span<const int32_t> table = seqs[static_cast<size_t>(row.seq)].block_table;
    EMBER_CHECK_MSG(static_cast<size_t>(row.pos / kKvBlockTokens) < table.size(), "store_kv: position past the table");
    const int32_t block = table[static_cast<size_t>(row.pos / kKvBlockTokens)];
    EMBER_CHECK(block >= 0 && block < kv.n_blocks);
  }
  const int64_t row_floats = static_cast<int64_t>(kv.n_head_kv) * kv.head_dim;
  auto* k_pool = static_cast<std::byte*>(kv.k);
  auto* v_pool = static_cast<std::byte*>(kv.v);
  EMBER_CHECK_MSG(v_pool != k_pool || (v == k && kv.v_dtype == kv.k_dtype),
                  "store_kv: values kept in the key rows must be the keys");
  const bool store_v = v_pool != k_pool;  // else the values are the key rows (latent attention)
  pool.parallel_for(static_cast<int64_t>(rows.size()), [&](int64_t i, int) {
    const KvRow& row = rows[static_cast<size_t>(i)];
    const int32_t block = seqs[static_cast<size_t>(row.seq)].block_table[static_cast<size_t>(row.pos / kKvBlockTokens)];
    const int32_t slot = row.pos % kKvBlockTokens;
    for (int32_t h = 0; h < kv.n_head_kv; ++h) {
      const int64_t src = i * row_floats + static_cast<int64_t>(h) * kv.head_dim;
      to_k(k + src, k_pool + kl.offset(block, h, slot), kv.head_dim, nullptr);
      if (store_v) to_v(v + src, v_pool + vl.offset(block, h, slot), kv.head_dim, nullptr);
    }
  });
}

}  // namespace ember
