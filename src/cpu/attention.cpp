// attention(): validates the batch, groups rows into query tiles, plans tasks (tile × kv head,
// long ranges split into chunks when the threads would otherwise idle), runs the ISA tile kernel
// on a dynamically scheduled task list, then merges the split chunks' softmax states.
#include "cpu/attention.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "core/check.h"

namespace ember {
namespace {

constexpr int32_t kTileQueries = 32;  // queries that share each K/V block load in a tile (docs/cpu.md)
constexpr int kTasksPerThread = 4;    // split-K target: enough tasks to balance the threads
constexpr int32_t kMinSplitTokens = 256;
constexpr int32_t kMinPartials = 32;

constexpr int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace

const AttentionKernels& attention_kernels(Isa isa) {
  static const std::array<AttentionKernels, 3> tables = [] {
    std::array<AttentionKernels, 3> t;
    const Isa isas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};
    const AttentionIsaKernel units[] = {attention_scalar_kernel(), attention_avx2_kernel(), attention_avx512_kernel()};
    for (size_t i = 0; i < t.size(); ++i) t[i] = {isas[i], units[i].tile, units[i].exp, units[i].head_dim_multiple};
    return t;
  }();
  const auto i = static_cast<size_t>(isa);
  EMBER_CHECK_MSG(i < tables.size() && isa_supported(isa, cpu_features()), "attention kernels of an unsupported ISA");
  return tables[i];
}

AttentionScratch::AttentionScratch(int64_t max_rows, int32_t n_head, int32_t n_head_kv, int32_t head_dim, int n_threads)
    : max_rows_(max_rows), n_head_(n_head), n_head_kv_(n_head_kv), head_dim_(head_dim), n_threads_(n_threads) {
  EMBER_CHECK(max_rows >= 1 && max_rows <= std::numeric_limits<int32_t>::max());
  EMBER_CHECK(n_head_kv > 0 && n_head > 0 && n_head % n_head_kv == 0 && head_dim > 0 && n_threads >= 1);
  const int32_t group = n_head / n_head_kv;
  head_dim_pad_ = static_cast<int32_t>(round_up(head_dim, 16));
  tile_rows_ = std::max(1, kTileQueries / group);
  max_queries_ = tile_rows_ * group;
  max_partials_ = std::max(kMinPartials, 2 * kTasksPerThread * n_threads);
  const auto nq = static_cast<size_t>(round_up(max_queries_, 16)), dp = static_cast<size_t>(head_dim_pad_);
  // Per worker: q, acc (nq × dp each), m, l, lo, hi, pos, slope (nq each), K/V tile (2 × 16 × dp).
  worker_floats_ = 2 * nq * dp + 6 * nq + 2 * 16 * dp;
  // Per partial slot: m, l (nq each), acc (nq × dp).
  partial_floats_ = 2 * nq + nq * dp;
  tiles_.resize(static_cast<size_t>(max_rows));
  entries_.resize(static_cast<size_t>(max_rows + max_partials_));
  merges_.resize(static_cast<size_t>(max_rows));
  workers_ = AlignedBuffer(static_cast<size_t>(n_threads) * worker_floats_ * sizeof(float));
  partials_ = AlignedBuffer(static_cast<size_t>(max_partials_) * static_cast<size_t>(n_head_kv) * partial_floats_ *
                            sizeof(float));
}

// One call of attention() on a scratch: the plan lives in the scratch, the rest is arguments.
class AttentionRun {
 public:
  AttentionRun(const AttentionKernels& kernels, const PagedKvView& kv, std::span<const KvSeq> seqs,
               std::span<const KvRow> rows, const float* q, const AttentionParams& params, float* out,
               AttentionScratch& s)
      : kv_(kv), seqs_(seqs), rows_(rows), q_(q), params_(params), out_(out), s_(s) {
    group_ = params.n_head / kv.n_head_kv;
    k_row_bytes_ = static_cast<int64_t>(kv.k_layout().row_bytes());  // (KvLayout::offset, precomputed)
    v_row_bytes_ = static_cast<int64_t>(kv.v_layout().row_bytes());
    tile_ = kv.head_dim % kernels.head_dim_multiple == 0 ? kernels.tile : attention_scalar_kernel().tile;
    scale_ = params.scale > 0.0f ? params.scale : 1.0f / std::sqrt(static_cast<float>(kv.head_dim));
  }

  void run(ThreadPool& pool) {
    plan(pool.n_threads());
    const int64_t n_kv = s_.n_head_kv_;
    const int64_t n_tasks = n_entries_ * n_kv;
    // Tasks differ in cost (prefill tiles see more positions than decode rows): each worker takes
    // the next task from a shared counter, longest first (the plan sorted them).
    s_.next_task_.store(0, std::memory_order_relaxed);
    pool.parallel_for(std::min<int64_t>(pool.n_threads(), n_tasks), [&](int64_t, int worker) {
      for (int64_t t = s_.next_task_.fetch_add(1, std::memory_order_relaxed); t < n_tasks;
           t = s_.next_task_.fetch_add(1, std::memory_order_relaxed)) {
        run_task(s_.entries_[static_cast<size_t>(t / n_kv)], static_cast<int32_t>(t % n_kv), worker);
      }
    });
    if (n_merges_ > 0) {
      pool.parallel_for(n_merges_ * n_kv, [&](int64_t t, int) {
        merge(s_.merges_[static_cast<size_t>(t / n_kv)], static_cast<int32_t>(t % n_kv));
      });
    }
  }

 private:
  int32_t lo_of(int32_t pos) const { return params_.window > 0 ? std::max(0, pos - params_.window + 1) : 0; }

  // Tiles, then one entry per tile or per chunk of a split tile, longest first.
  void plan(int n_threads) {
    int32_t n_tiles = 0;
    for (size_t r = 0; r < rows_.size(); ++r) {
      const KvRow& row = rows_[r];
      AttentionScratch::Tile* t = n_tiles > 0 ? &s_.tiles_[static_cast<size_t>(n_tiles - 1)] : nullptr;
      if (t != nullptr && t->n_rows < s_.tile_rows_ && rows_[r - 1].seq == row.seq && rows_[r - 1].pos + 1 == row.pos) {
        ++t->n_rows;
        t->end = row.pos + 1;
        continue;
      }
      s_.tiles_[static_cast<size_t>(n_tiles++)] = {static_cast<int32_t>(r), 1, lo_of(row.pos), row.pos + 1};
    }

    // Split-K: a tile with more than an even share of the work (positions × rows; the share is
    // 1/kTasksPerThread of a thread's, counting every kv head) is cut into chunks of about that
    // share, so one long decode row next to short ones, or few rows on many threads, still
    // spreads over the threads. At most 2·kTasksPerThread·n_threads chunks result.
    int64_t forced = 0, share = 0;
    if (params_.split_tokens > 0) {
      forced = round_up(params_.split_tokens, kKvBlockTokens);
    } else if (params_.split_tokens == 0 && n_threads > 1) {
      int64_t total = 0;
      for (int32_t i = 0; i < n_tiles; ++i) {
        const AttentionScratch::Tile& t = s_.tiles_[static_cast<size_t>(i)];
        total += static_cast<int64_t>(t.end - t.begin) * t.n_rows;
      }
      const int64_t target = kTasksPerThread * n_threads;
      share = (total * s_.n_head_kv_ + target - 1) / target;
    }

    n_entries_ = 0;
    n_merges_ = 0;
    int32_t n_partials = 0;
    for (int32_t i = 0; i < n_tiles; ++i) {
      const AttentionScratch::Tile& t = s_.tiles_[static_cast<size_t>(i)];
      // Chunk boundaries on whole blocks: [base + c·chunk, base + (c+1)·chunk) ∩ [begin, end).
      const int64_t base = t.begin / kKvBlockTokens * kKvBlockTokens;
      const int64_t chunk =
          forced > 0  ? forced
          : share > 0 ? std::max<int64_t>(kMinSplitTokens, round_up((share + t.n_rows - 1) / t.n_rows, kKvBlockTokens))
                      : 0;
      const int64_t n_chunks = chunk > 0 ? (t.end - base + chunk - 1) / chunk : 1;
      if (n_chunks <= 1 || n_partials + n_chunks > s_.max_partials_) {
        s_.entries_[static_cast<size_t>(n_entries_++)] = {i, t.begin, t.end, -1};
        continue;
      }
      s_.merges_[static_cast<size_t>(n_merges_++)] = {i, n_partials, static_cast<int32_t>(n_chunks)};
      for (int64_t c = 0; c < n_chunks; ++c) {
        const auto b = static_cast<int32_t>(std::max<int64_t>(t.begin, base + c * chunk));
        const auto e = static_cast<int32_t>(std::min<int64_t>(t.end, base + (c + 1) * chunk));
        s_.entries_[static_cast<size_t>(n_entries_++)] = {i, b, e, n_partials++};
      }
    }
    const auto cost = [&](const AttentionScratch::Entry& e) {
      return static_cast<int64_t>(e.end - e.begin) * s_.tiles_[static_cast<size_t>(e.tile)].n_rows;
    };
    std::sort(s_.entries_.begin(), s_.entries_.begin() + n_entries_,
              [&](const auto& a, const auto& b) { return cost(a) > cost(b); });
  }

  float* partial(int32_t slot, int32_t kv_head) const {
    return s_.partials_.as<float>() +
           (static_cast<size_t>(slot) * static_cast<size_t>(s_.n_head_kv_) + static_cast<size_t>(kv_head)) *
               s_.partial_floats_;
  }

  void run_task(const AttentionScratch::Entry& e, int32_t h, int worker) const {
    const AttentionScratch::Tile& t = s_.tiles_[static_cast<size_t>(e.tile)];
    const size_t dp = static_cast<size_t>(s_.head_dim_pad_), nq = static_cast<size_t>(round_up(s_.max_queries_, 16));
    float* w = s_.workers_.as<float>() + static_cast<size_t>(worker) * s_.worker_floats_;
    float* q = w;
    float* acc = q + nq * dp;
    float* m = acc + nq * dp;
    float* l = m + nq;
    auto* lo = reinterpret_cast<int32_t*>(l + nq);
    int32_t* hi = lo + nq;
    int32_t* pos = hi + nq;
    auto* slope = reinterpret_cast<float*>(pos + nq);
    float* kv_tile = slope + nq;
    if (e.partial >= 0) {  // a chunk of a split tile: its state goes to its partial slot
      m = partial(e.partial, h);
      l = m + nq;
      acc = l + nq;
    }

    // Queries of rows [t.row, t.row + n_rows) and heads [h·group, (h+1)·group), scaled.
    const int32_t n_q = t.n_rows * group_;
    const int64_t d = kv_.head_dim;
    for (int32_t r = 0; r < t.n_rows; ++r) {
      const KvRow& row = rows_[static_cast<size_t>(t.row + r)];
      for (int32_t g = 0; g < group_; ++g) {
        const int32_t i = r * group_ + g, head = h * group_ + g;
        const float* src = q_ + ((t.row + r) * static_cast<int64_t>(params_.n_head) + head) * d;
        float* dst = q + static_cast<size_t>(i) * dp;
        for (int64_t x = 0; x < d; ++x) dst[x] = src[x] * scale_;
        lo[i] = lo_of(row.pos);
        hi[i] = row.pos;
        pos[i] = row.pos;
        if (params_.alibi_slopes != nullptr) slope[i] = params_.alibi_slopes[head];
      }
    }

    AttnTileArgs a{};
    a.q = q;
    a.lo = lo;
    a.hi = hi;
    a.pos = pos;
    a.slope = params_.alibi_slopes != nullptr ? slope : nullptr;
    a.n_q = n_q;
    a.head_dim = kv_.head_dim;
    a.head_dim_pad = s_.head_dim_pad_;
    a.softcap = params_.softcap;
    a.k_base = static_cast<const uint8_t*>(kv_.k) + h * k_row_bytes_ * kKvBlockTokens;
    a.v_base = static_cast<const uint8_t*>(kv_.v) + h * v_row_bytes_ * kKvBlockTokens;
    a.k_block_stride = k_row_bytes_ * kKvBlockTokens * s_.n_head_kv_;
    a.v_block_stride = v_row_bytes_ * kKvBlockTokens * s_.n_head_kv_;
    a.k_row_bytes = k_row_bytes_;
    a.v_row_bytes = v_row_bytes_;
    a.k_dtype = static_cast<uint32_t>(kv_.k_dtype);
    a.v_dtype = static_cast<uint32_t>(kv_.v_dtype);
    a.block_table = seqs_[static_cast<size_t>(rows_[static_cast<size_t>(t.row)].seq)].block_table.data();
    a.begin = e.begin;
    a.end = e.end;
    a.m = m;
    a.l = l;
    a.acc = acc;
    a.scratch = kv_tile;
    tile_(a);

    if (e.partial >= 0) return;
    for (int32_t i = 0; i < n_q; ++i) {
      const float inv = 1.0f / l[i];  // l >= 1: the max-scoring position contributes exp(0)
      const float* src = acc + static_cast<size_t>(i) * dp;
      float* dst = out_ + ((t.row + i / group_) * static_cast<int64_t>(params_.n_head) + h * group_ + i % group_) * d;
      for (int64_t x = 0; x < d; ++x) dst[x] = src[x] * inv;
    }
  }

  // Combines the chunks' states: weights exp(m_c - M) with M the overall max (a chunk a query saw
  // nothing of has m_c = -inf and weight 0; the query's own position is in some chunk).
  void merge(const AttentionScratch::Merge& mg, int32_t h) const {
    const AttentionScratch::Tile& t = s_.tiles_[static_cast<size_t>(mg.tile)];
    const size_t dp = static_cast<size_t>(s_.head_dim_pad_), nq = static_cast<size_t>(round_up(s_.max_queries_, 16));
    const int64_t d = kv_.head_dim;
    for (int32_t i = 0; i < t.n_rows * group_; ++i) {
      float big = -std::numeric_limits<float>::infinity();
      for (int32_t c = 0; c < mg.n; ++c) big = std::max(big, partial(mg.first + c, h)[i]);
      float* dst = out_ + ((t.row + i / group_) * static_cast<int64_t>(params_.n_head) + h * group_ + i % group_) * d;
      std::fill(dst, dst + d, 0.0f);
      float sum = 0.0f;
      for (int32_t c = 0; c < mg.n; ++c) {
        const float* p = partial(mg.first + c, h);
        const float weight = std::exp(p[i] - big);  // p[i] = m, p[nq + i] = l
        if (weight == 0.0f) continue;
        sum += weight * p[nq + i];
        const float* acc = p + 2 * nq + static_cast<size_t>(i) * dp;
        for (int64_t x = 0; x < d; ++x) dst[x] += weight * acc[x];
      }
      const float inv = 1.0f / sum;
      for (int64_t x = 0; x < d; ++x) dst[x] *= inv;
    }
  }

  const PagedKvView& kv_;
  std::span<const KvSeq> seqs_;
  std::span<const KvRow> rows_;
  const float* q_;
  const AttentionParams& params_;
  float* out_;
  AttentionScratch& s_;
  AttnTileFn tile_ = nullptr;
  int64_t k_row_bytes_ = 0;
  int64_t v_row_bytes_ = 0;
  int32_t group_ = 1;
  float scale_ = 1.0f;
  int64_t n_entries_ = 0;
  int64_t n_merges_ = 0;
};

void attention(const AttentionKernels& kernels, ThreadPool& pool, const PagedKvView& kv, std::span<const KvSeq> seqs,
               std::span<const KvRow> rows, const float* q, const AttentionParams& params, float* out,
               AttentionScratch& scratch) {
  check_kv_view(kv);
  EMBER_CHECK(kernels.tile != nullptr);
  EMBER_CHECK_MSG(
      params.n_head == scratch.n_head() && kv.n_head_kv == scratch.n_head_kv() && kv.head_dim == scratch.head_dim(),
      "attention: the scratch was sized for another shape");
  EMBER_CHECK(pool.n_threads() <= scratch.n_threads());
  EMBER_CHECK(static_cast<int64_t>(rows.size()) <= scratch.max_rows());
  EMBER_CHECK(params.window >= 0 && params.softcap >= 0.0f);
  // Every block a row can read must be a block of the pools.
  for (const KvSeq& seq : seqs) {
    EMBER_CHECK(seq.n_tokens >= 0 &&
                static_cast<int64_t>(seq.n_tokens) <= static_cast<int64_t>(seq.block_table.size()) * kKvBlockTokens);
    const auto used = static_cast<size_t>((seq.n_tokens + kKvBlockTokens - 1) / kKvBlockTokens);
    for (size_t b = 0; b < used; ++b) EMBER_CHECK(seq.block_table[b] >= 0 && seq.block_table[b] < kv.n_blocks);
  }
  for (const KvRow& row : rows) {
    EMBER_CHECK(row.seq >= 0 && static_cast<size_t>(row.seq) < seqs.size());
    EMBER_CHECK(row.pos >= 0 && row.pos < seqs[static_cast<size_t>(row.seq)].n_tokens);
  }
  if (rows.empty()) return;
  AttentionRun(kernels, kv, seqs, rows, q, params, out, scratch).run(pool);
}

}  // namespace ember
