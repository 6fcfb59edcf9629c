// The paged KV cache as the CPU kernels see it (DESIGN.md §6): per layer, a K pool and a V pool of
// fixed blocks of 16 tokens, each sequence a block table into them, and the op that stores a
// step's new K/V rows into their slots. Allocation and ref-counting belong to the cache manager.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/thread_pool.h"
#include "cpu/cpu_kernels.h"
#include "ember/dtype.h"

namespace ember {

inline constexpr int32_t kKvBlockTokens = 16;

// Values per block of a Q8_0 pool row (a row of head_dim values is head_dim / 32 blocks of 34 bytes:
// an f16 scale, then 32 int8).
inline constexpr int32_t kQ8_0BlockValues = 32;

// One pool's block layout: [block][n_head_kv][16 tokens][head_dim] of `dtype`, so the 16 tokens of
// one kv head (what one attention task reads) are contiguous. F32, F16, or Q8_0 (each token's row
// of one head is head_dim / 32 Q8_0 blocks, so head_dim must be a multiple of 32).
struct KvLayout {
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  DType dtype = DType::kF16;

  // Bytes of one token's head_dim values.
  size_t row_bytes() const noexcept;
  // Bytes of one kv head's 16 tokens.
  size_t head_bytes() const noexcept { return kKvBlockTokens * row_bytes(); }
  // Bytes of one block: all kv heads.
  size_t block_bytes() const noexcept { return static_cast<size_t>(n_head_kv) * head_bytes(); }
  // Byte offset of (block, kv head, slot) in the pool.
  size_t offset(int32_t block, int32_t kv_head, int32_t slot) const noexcept {
    return static_cast<size_t>(block) * block_bytes() + static_cast<size_t>(kv_head) * head_bytes() +
           static_cast<size_t>(slot) * row_bytes();
  }
};

// One layer's K and V pools (non-owning). K and V may differ in dtype (the kernels take any pair;
// the CLI and API set one type for both).
struct PagedKvView {
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  DType k_dtype = DType::kF16;
  DType v_dtype = DType::kF16;
  void* k = nullptr;  // [n_blocks] blocks of k_layout().block_bytes()
  void* v = nullptr;  // [n_blocks] blocks of v_layout().block_bytes()
  int32_t n_blocks = 0;

  KvLayout k_layout() const noexcept { return {n_head_kv, head_dim, k_dtype}; }
  KvLayout v_layout() const noexcept { return {n_head_kv, head_dim, v_dtype}; }
};

// A sequence as the kernels see it: position p lives in block block_table[p / 16], slot p % 16;
// positions [0, n_tokens) hold stored K/V.
struct KvSeq {
  std::span<const int32_t> block_table;
  int32_t n_tokens = 0;
};

// One row of a batch (DESIGN.md §2): the sequence it belongs to (an index into the step's KvSeq
// list) and its position in that sequence.
struct KvRow {
  int32_t seq = 0;
  int32_t pos = 0;
};

// Whether the kernels store and read pools of `dtype` for heads of head_dim values: F32 and F16
// always, Q8_0 when head_dim is a multiple of 32.
bool kv_dtype_supported(DType dtype, int32_t head_dim) noexcept;

// Aborts (EMBER_CHECK) unless kv is a usable view: supported pool types, head_dim > 0, n_head_kv > 0.
void check_kv_view(const PagedKvView& kv);

// Stores the K and V rows of a batch, k and v [rows.size()][n_head_kv][head_dim] floats, into the
// slots of (rows[i].seq, rows[i].pos), converting to the pools' dtypes with `kernels`' quantizers.
// A slot is only written (callers extend KvSeq::n_tokens afterwards). Bad indices abort. Each
// (seq, pos) may appear at most once per call (rows are stored in parallel; the scheduler never
// schedules one position twice in a step). A view whose V pool is its K pool (latent attention's
// values kept in the key rows) takes v == k and stores them once.
void store_kv(const CpuKernels& kernels, ThreadPool& pool, const PagedKvView& kv, std::span<const KvSeq> seqs,
              std::span<const KvRow> rows, const float* k, const float* v);

}  // namespace ember
