// Flash-style attention over the paged KV cache (DESIGN.md §4): online softmax tiled over the
// 16-token blocks, K/V read through each sequence's block table (no gather copy), the query heads
// of one kv head processed together (GQA), long decode ranges split across threads (split-K).
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "cpu/attention_kernel.h"
#include "cpu/cpu_kernels.h"
#include "cpu/kv_layout.h"

namespace ember {

// The attention kernels of one ISA (scalar is the reference).
struct AttentionKernels {
  Isa isa = Isa::kScalar;
  AttnTileFn tile = nullptr;
  AttnExpFn exp = nullptr;        // the kernels' exp, exposed for tests
  int32_t head_dim_multiple = 1;  // other head_dim run on the scalar tile
};

// Precondition: isa_supported(isa, cpu_features()).
const AttentionKernels& attention_kernels(Isa isa);

struct AttentionParams {
  int32_t n_head = 0;                   // query heads, a multiple of the cache's n_head_kv
  float scale = 0.0f;                   // on q·k; 0 means 1/sqrt(head_dim)
  float softcap = 0.0f;                 // > 0: scores become softcap·tanh(s / softcap) (Gemma 2)
  int32_t window = 0;                   // > 0: a row at pos sees [pos - window + 1, pos] (sliding window)
  const float* alibi_slopes = nullptr;  // [n_head] or nullptr: adds slope·(j - pos) to score j
  // Split-K: 0 decides (split only when rows × kv heads cannot keep the threads busy); < 0 never
  // splits; > 0 splits every range longer than this many tokens (rounded up to whole blocks).
  int32_t split_tokens = 0;
};

// Everything attention() needs besides its arguments, sized up front for at most `max_rows` rows
// per call and `n_threads` workers; attention() itself never allocates. One per engine (or per
// layer shape); not shared by concurrent calls.
class AttentionScratch {
 public:
  AttentionScratch(int64_t max_rows, int32_t n_head, int32_t n_head_kv, int32_t head_dim, int n_threads);

  int64_t max_rows() const noexcept { return max_rows_; }
  int32_t n_head() const noexcept { return n_head_; }
  int32_t n_head_kv() const noexcept { return n_head_kv_; }
  int32_t head_dim() const noexcept { return head_dim_; }
  int n_threads() const noexcept { return n_threads_; }

 private:
  friend class AttentionRun;  // attention.cpp: plans and runs one call in this scratch

  // Consecutive rows of one sequence at consecutive positions, attending to [begin, end) together.
  struct Tile {
    int32_t row = 0;  // first batch row
    int32_t n_rows = 0;
    int32_t begin = 0;
    int32_t end = 0;
  };
  // One task per kv head: a tile over [begin, end), its state in partial slot `partial` (split) or
  // finished into the output (partial < 0).
  struct Entry {
    int32_t tile = 0;
    int32_t begin = 0;
    int32_t end = 0;
    int32_t partial = -1;
  };
  // A split tile: chunks' states in partial slots [first, first + n).
  struct Merge {
    int32_t tile = 0;
    int32_t first = 0;
    int32_t n = 0;
  };

  int64_t max_rows_;
  int32_t n_head_, n_head_kv_, head_dim_, head_dim_pad_;
  int n_threads_;
  int32_t tile_rows_;    // rows per tile: 32 queries (kTileQueries) / group size, at least 1
  int32_t max_queries_;  // queries per tile: tile_rows_ · group
  int32_t max_partials_;
  size_t worker_floats_;
  size_t partial_floats_;
  std::vector<Tile> tiles_;
  std::vector<Entry> entries_;
  std::vector<Merge> merges_;
  AlignedBuffer workers_;   // per worker: q tile, lo/hi/pos, slopes, m, l, acc, K/V block tile
  AlignedBuffer partials_;  // per (chunk, kv head): m, l, acc of a tile's queries
  std::atomic<int64_t> next_task_{0};
};

// out[r][h][:] = softmax over j in [lo, pos] of (scale · q[r][h] · k_j (+ soft-cap, ALiBi)) · v_j,
// for each row r of the batch (rows[r] = its sequence and position), with lo = 0 or
// max(0, pos - window + 1), k_j and v_j of kv head h / (n_head / n_head_kv). q and out are
// [rows.size()][n_head][head_dim] floats. Every row's position must be stored (pos < n_tokens).
void attention(const AttentionKernels& kernels, ThreadPool& pool, const PagedKvView& kv, std::span<const KvSeq> seqs,
               std::span<const KvRow> rows, const float* q, const AttentionParams& params, float* out,
               AttentionScratch& scratch);

}  // namespace ember
