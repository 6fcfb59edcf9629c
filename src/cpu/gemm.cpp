// The GEMM driver (activation quantization, cache blocking, threads) and the scalar reference
// microkernel and quantizer the SIMD ones must match bit for bit.
#include "cpu/gemm.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>

#include "core/check.h"
#include "cpu/gemm_simd.h"
#include "quant/fp16.h"

#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace ember {
namespace {

// Cache blocking: the activations of kChunkRows rows × a k-chunk stay in L2 while each pair of
// row groups streams its panel slice through L1 past every row tile: the slice (2 groups × chunk)
// plus one activation tile must fit L1 (48 KiB here): int8 panels of 512 k are 18-20 KiB, f16 /
// bf16 panels of 256 k 16 KiB (with a 12 KiB float activation tile).
constexpr int64_t kChunkRows = 256;
constexpr int64_t kChunkKInt8 = 512;
constexpr int64_t kChunkKFloat = 256;
// The AMX F16 kernel splits each call's weights into bf16 tiles once for all its rows: taller row
// chunks split less often (1024 rows × 256 k of hi / lo activations: 1 MiB, in L2).
constexpr int64_t kChunkRowsAmxF16 = 1024;

// The scalar table has no microkernel of its own: the reference runs on avx512's layouts.
GemmIsaKernels isa_gemm_kernels(Isa isa) {
  EMBER_CHECK(isa_supported(isa, cpu_features()));
  switch (isa) {
    case Isa::kAvx512: return gemm_avx512_kernels();
    case Isa::kAvx2: return gemm_avx2_kernels();
    case Isa::kScalar: break;
  }
  return GemmIsaKernels{nullptr, nullptr, nullptr, nullptr};
}

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// Asks Linux for the AMX tile data state (XFEATURE_XTILEDATA, 18): without the grant the first
// tile instruction faults. The grant is per process.
bool request_amx_permission() {
#if defined(__linux__) && defined(__x86_64__)
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

}  // namespace

bool amx_usable() {
  static const bool usable = [] {
    const char* env = std::getenv("EMBER_AMX");  // EMBER_AMX=0: the VNNI kernels only (A/B runs)
    if (env != nullptr && std::string_view(env) == "0") return false;
    const CpuFeatures& f = cpu_features();
    return f.amx_tile && f.amx_int8 && isa_supported(Isa::kAvx512, f) && request_amx_permission();
  }();
  return usable;
}

// (Every AMX CPU so far has both AMX-INT8 and AMX-BF16; the tile-state grant is one for both.)
bool amx_bf16_usable() { return amx_usable() && cpu_features().amx_bf16; }

ActLayout amx_act_layout(const PanelFormat& format) { return ActLayout{kAmxTileRows, format.sub, 1}; }

bool amx_serves(Isa isa, const PackedWeights& w) {
  // AMX reads the avx512 panels as they are (the scalar table keeps its reference kernels). Formats
  // of 16-element sub-blocks stay on VNNI: a tile product of 16 k per fold of 16 vectors measured
  // 0.72-1.17× the VNNI kernel (docs/benchmarks.md).
  if (isa != Isa::kAvx512) return false;
  if (w.kind() == PanelKind::kInt8) return w.format().sub == 32 && amx_usable();
  return w.kind() == PanelKind::kF16 && amx_bf16_usable();
}

bool gemm_takes_amx(Isa isa, const PackedWeights& w, int64_t m, const GemmOptions& options) {
  return options.amx && m >= kAmxMinRows && amx_serves(isa, w);
}

PanelLayout gemm_layout(Isa isa) { return isa == Isa::kAvx2 ? kAvx2Panels : kAvx512Panels; }

ActLayout gemm_act_layout(Isa isa) { return isa == Isa::kAvx2 ? kAvx2Acts : kAvx512Acts; }

GemmActivations GemmScratch::prepare(const PanelFormat& format, const ActLayout& layout, int64_t m, int64_t k,
                                     bool zero_padding) {
  const int64_t n_sub = k / format.sub;
  const int64_t padded_rows = round_up(m, layout.tile_rows);
  const auto cells = static_cast<size_t>(padded_rows * n_sub);
  const auto q_bytes = static_cast<size_t>(padded_rows * k * layout.elem_bytes);
  if (q.size() < q_bytes) q.resize(q_bytes);
  if (scale.size() < cells) scale.resize(cells);
  if (corr.size() < cells) corr.resize(cells);
  if (min_scale.size() < cells) min_scale.resize(cells);
  // The padding rows of the last tile go through the AMX kernels' arithmetic (whole 16-row tiles;
  // their results are not stored): zero the tile so they stay finite; the quantizer overwrites the
  // real rows. The VNNI / avx2 / scalar kernels compute only the rows a tile holds.
  if (zero_padding && m % layout.tile_rows != 0) {
    const int64_t last_tile = padded_rows - layout.tile_rows;
    std::fill(q.begin() + static_cast<std::ptrdiff_t>(last_tile * k * layout.elem_bytes),
              q.begin() + static_cast<std::ptrdiff_t>(q_bytes), std::byte{0});
    const auto first_cell = static_cast<std::ptrdiff_t>(last_tile * n_sub);
    const auto end_cell = static_cast<std::ptrdiff_t>(cells);
    std::fill(scale.begin() + first_cell, scale.begin() + end_cell, 0.0f);
    std::fill(corr.begin() + first_cell, corr.begin() + end_cell, 0);
    std::fill(min_scale.begin() + first_cell, min_scale.begin() + end_cell, 0.0f);
  }
  return GemmActivations{q.data(), scale.data(), corr.data(), format.has_min ? min_scale.data() : nullptr, n_sub};
}

void GemmScratch::reserve(int64_t max_rows, int64_t max_k, bool float_weights) {
  // The largest layout: rows padded to the tallest tile (kFloatTileRows or AMX's), 2-byte (avx2)
  // or 4-byte (F16 panels) elements; per-sub-block arrays for 16-element sub-blocks.
  const int64_t rows = std::max(round_up(std::max<int64_t>(max_rows, 1), kFloatTileRows),
                                round_up(std::max<int64_t>(max_rows, 1), kAmxTileRows));
  const auto q_bytes = static_cast<size_t>(rows * max_k * (float_weights ? 4 : 2));
  const auto cells = static_cast<size_t>(rows * (max_k / 16 + 1));
  if (q.size() < q_bytes) q.resize(q_bytes);
  if (scale.size() < cells) scale.resize(cells);
  if (corr.size() < cells) corr.resize(cells);
  if (min_scale.size() < cells) min_scale.resize(cells);
}

void gemm_quantize_scalar(const ActLayout& layout, const PanelFormat& format, const float* x, int64_t k, int64_t r0,
                          int64_t r1, const GemmActivations& acts) {
  const int64_t n_sub = k / format.sub;
  const int64_t elem = layout.elem_bytes;
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * k;
    const int64_t t = r / layout.tile_rows, lane = r % layout.tile_rows;
    for (int64_t s = 0; s < n_sub; ++s) {
      const float* xs = xr + s * format.sub;
      float amax = 0.0f;
      for (int j = 0; j < format.sub; ++j) amax = std::max(amax, std::fabs(xs[j]));
      const float d = amax / 127.0f;
      const float id = inverse_scale(d);
      const int64_t cell = (t * n_sub + s) * layout.tile_rows;
      auto* q = static_cast<std::byte*>(acts.q) + cell * format.sub * elem;
      int32_t sum = 0;
      for (int j = 0; j < format.sub; ++j) {
        const auto v = static_cast<int32_t>(std::nearbyint(xs[j] * id));
        sum += v;
        const int64_t at = ((j / layout.k_group) * layout.tile_rows + lane) * layout.k_group + j % layout.k_group;
        if (elem == 1) {
          q[at] = static_cast<std::byte>(static_cast<int8_t>(v));
        } else {
          const auto v16 = static_cast<int16_t>(v);
          std::memcpy(q + 2 * at, &v16, sizeof v16);
        }
      }
      acts.scale[cell + lane] = d;
      acts.corr[cell + lane] = -format.offset * sum;
      if (acts.min_scale != nullptr) acts.min_scale[cell + lane] = d * static_cast<float>(sum);
    }
  }
}

namespace {

// Element j of row `lane` in a tile's sub-block of activations.
int32_t act_value(const ActLayout& layout, const std::byte* sub_block, int64_t lane, int j) {
  const int64_t at = ((j / layout.k_group) * layout.tile_rows + lane) * layout.k_group + j % layout.k_group;
  if (layout.elem_bytes == 1) return static_cast<int8_t>(sub_block[at]);
  int16_t v;
  std::memcpy(&v, sub_block + 2 * at, sizeof v);
  return v;
}

}  // namespace

void gemm_kernel_scalar(const PanelFormat& format, const PanelLayout& layout, const ActLayout& act_layout,
                        const GemmActivations& acts, const GemmTile& tile) {
  const int64_t q_bytes = static_cast<int64_t>(layout.rows) * format.sub / (format.nibbles ? 2 : 1);
  const int64_t sub_bytes = q_bytes + 4 * layout.rows * (format.has_min ? 2 : 1);
  const int half = format.sub / (2 * layout.k_group);  // k-groups per nibble plane
  for (int64_t r = 0; r < tile.m; ++r) {
    const int64_t t = r / act_layout.tile_rows, lane = r % act_layout.tile_rows;
    for (int64_t col = 0; col < tile.n_valid; ++col) {
      const int64_t g = col / layout.rows, j = col % layout.rows;
      float acc = tile.accumulate ? tile.y[r * tile.y_stride + col] : 0.0f;
      for (int64_t b = 0; b < tile.n_sb; ++b) {
        const int64_t s = tile.sb0 + b;
        const int64_t cell = (t * acts.n_sub + s) * act_layout.tile_rows;
        const std::byte* a = static_cast<const std::byte*>(acts.q) + cell * format.sub * act_layout.elem_bytes;
        const uint8_t* p = tile.panel + g * tile.group_stride + b * sub_bytes;
        int32_t isum = acts.corr[cell + lane];
        for (int i = 0; i < format.sub; ++i) {
          const int group = i / layout.k_group;
          int32_t q;
          if (format.nibbles) {
            const uint8_t byte =
                p[(group % half) * layout.rows * layout.k_group + j * layout.k_group + i % layout.k_group];
            q = group < half ? byte & 0x0F : byte >> 4;
          } else {
            q = p[group * layout.rows * layout.k_group + j * layout.k_group + i % layout.k_group];
          }
          isum += q * act_value(act_layout, a, lane, i);
        }
        const float* scales = reinterpret_cast<const float*>(p + q_bytes);
        // The SIMD kernels' order: fma(isum, scale·ad, acc), then fma(min, ad·Σa, acc).
        acc = std::fma(static_cast<float>(isum), scales[j] * acts.scale[cell + lane], acc);
        if (format.has_min) acc = std::fma(scales[layout.rows + j], acts.min_scale[cell + lane], acc);
      }
      tile.y[r * tile.y_stride + col] = acc;
    }
  }
}

void gemm_float_acts_scalar(PanelKind kind, const float* x, int64_t k, int64_t r0, int64_t r1, void* q) {
  constexpr int64_t kTileRows = kFloatTileRows;
  const int64_t n_sub = k / 32;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t t = r / kTileRows, lane = r % kTileRows;
    for (int64_t s = 0; s < n_sub; ++s) {
      const int64_t cell = (t * n_sub + s) * kTileRows * 32;
      for (int64_t kk = 0; kk < 32; ++kk) {
        const float v = x[r * k + s * 32 + kk];
        if (kind == PanelKind::kBF16) {
          static_cast<uint16_t*>(q)[cell + ((kk / 2) * kTileRows + lane) * 2 + kk % 2] = fp32_to_bf16(v);
        } else {
          static_cast<float*>(q)[cell + kk * kTileRows + lane] = v;
        }
      }
    }
  }
}

namespace {

float flush_subnormal(float v) { return std::fabs(v) < std::numeric_limits<float>::min() ? std::copysign(0.0f, v) : v; }

}  // namespace

void gemm_float_kernel_scalar(PanelKind kind, const GemmActivations& acts, const GemmTile& tile) {
  constexpr int64_t kTileRows = kFloatTileRows, kRows = 16;
  for (int64_t r = 0; r < tile.m; ++r) {
    const int64_t t = r / kTileRows, lane = r % kTileRows;
    for (int64_t col = 0; col < tile.n_valid; ++col) {
      const int64_t g = col / kRows, j = col % kRows;
      float acc = tile.accumulate ? tile.y[r * tile.y_stride + col] : 0.0f;
      for (int64_t b = 0; b < tile.n_sb; ++b) {
        const int64_t cell = (t * acts.n_sub + tile.sb0 + b) * kTileRows * 32;
        const auto* p = reinterpret_cast<const uint16_t*>(tile.panel + g * tile.group_stride + b * kRows * 32 * 2);
        if (kind == PanelKind::kBF16) {
          // vdpbf16ps: the odd product, then the even one, each added with one rounding (the
          // products of two bf16 values are exact in f32), subnormal inputs read as zero and
          // subnormal sums flushed to zero (the instruction's fixed DAZ / FTZ). One product per
          // iteration: GCC 12 -O3 miscompiles the two-statements-per-pair form of this reduction.
          const uint16_t* a = static_cast<const uint16_t*>(acts.q) + cell;
          for (int64_t kk = 0; kk < 32; ++kk) {
            const int64_t e = kk ^ 1;
            const float wv = flush_subnormal(bf16_to_fp32(p[((e / 2) * kRows + j) * 2 + e % 2]));
            const float xv = flush_subnormal(bf16_to_fp32(a[((e / 2) * kTileRows + lane) * 2 + e % 2]));
            acc = flush_subnormal(acc + wv * xv);
          }
        } else {
          const float* a = static_cast<const float*>(acts.q) + cell;
          for (int64_t kk = 0; kk < 32; ++kk)
            acc = std::fma(fp16_to_fp32(p[kk * kRows + j]), a[kk * kTileRows + lane], acc);
        }
      }
      tile.y[r * tile.y_stride + col] = acc;
    }
  }
}

namespace {

PanelLayout expected_layout(PanelKind kind, Isa isa) {
  if (kind == PanelKind::kF16) return kF16Panels;
  if (kind == PanelKind::kBF16) return kBF16Panels;
  return gemm_layout(isa);
}

ActLayout act_layout_for(PanelKind kind, Isa isa) {
  if (kind == PanelKind::kF16) return kF16Acts;
  if (kind == PanelKind::kBF16) return kBF16Acts;
  return gemm_act_layout(isa);
}

}  // namespace

namespace {

// One task's share of a gemm(): output group pairs [g0, g1) × activation row tiles [t0, t1).
struct GemmTask {
  int64_t g0, g1, t0, t1;
};

// Runs one task: its rows in L2-sized chunks, k whole for few rows or else in L1-sized chunks, every
// group pair of its range.
void run_task(const GemmTask& task, const GemmIsaKernels& kernels, const PackedWeights& w, const ActLayout& act_layout,
              const GemmActivations& acts, int64_t m, float* y, int64_t whole_k_act_bytes,
              int64_t max_chunk_rows = kChunkRows) {
  const PanelKind kind = w.kind();
  const PanelFormat& format = w.format();
  const PanelLayout& layout = w.layout();
  const int64_t tile_rows = act_layout.tile_rows;
  // Few rows (decode, speculative verification, small batches): their activations stay in L2 whole,
  // so each group pair reads its whole k range in one call, two long sequential streams the
  // prefetchers follow. k-chunks would cut them into 8-16 KiB pieces a panel apart, which the
  // prefetchers do not follow: measured 1.3-1.7x slower at 2-16 rows on a 1B Q4_K_M's weights.
  const int64_t task_act_bytes =
      round_up(std::min(m, task.t1 * tile_rows) - task.t0 * tile_rows, tile_rows) * w.k() * act_layout.elem_bytes;
  const int64_t chunk_k = m == 1 || task_act_bytes <= whole_k_act_bytes ? w.k()
                          : kind == PanelKind::kInt8                    ? kChunkKInt8
                                                                        : kChunkKFloat;
  const int64_t chunk_sub = std::max<int64_t>(1, chunk_k / format.sub);
  const int64_t group_stride = w.n_sub() * w.sub_bytes();
  // Row chunks of equal size (whole tiles), so no short last chunk re-reads the weights for a few rows.
  const int64_t r_begin = task.t0 * tile_rows, r_end = std::min(m, task.t1 * tile_rows);
  const int64_t n_chunks = (r_end - r_begin + max_chunk_rows - 1) / max_chunk_rows;
  const int64_t chunk_rows = round_up((r_end - r_begin + n_chunks - 1) / n_chunks, tile_rows);
  for (int64_t r0 = r_begin; r0 < r_end; r0 += chunk_rows) {
    GemmActivations rows_acts = acts;  // the chunk's first tile
    const int64_t first_cell = r0 / tile_rows * w.n_sub() * tile_rows;
    rows_acts.q = static_cast<std::byte*>(acts.q) + first_cell * format.sub * act_layout.elem_bytes;
    rows_acts.scale += first_cell;
    rows_acts.corr += first_cell;
    if (rows_acts.min_scale != nullptr) rows_acts.min_scale += first_cell;
    for (int64_t sb0 = 0; sb0 < w.n_sub(); sb0 += chunk_sub) {
      for (int64_t g = task.g0; g < task.g1; g += 2) {
        // The next call's slice: the next pair of this k-chunk, else the first pair of the next.
        int64_t next_g = g + 2, next_sb = sb0;
        if (next_g >= task.g1) next_g = task.g0, next_sb = sb0 + chunk_sub;
        const bool has_next = next_sb < w.n_sub();
        const GemmTile tile{w.group(g) + sb0 * w.sub_bytes(),
                            group_stride,
                            std::min<int64_t>(2, task.g1 - g),
                            sb0,
                            std::min(chunk_sub, w.n_sub() - sb0),
                            std::min(chunk_rows, r_end - r0),
                            y + r0 * w.n_out() + g * layout.rows,
                            w.n_out(),
                            std::min<int64_t>(2 * layout.rows, w.n_out() - g * layout.rows),
                            sb0 > 0,
                            has_next ? w.group(next_g) + next_sb * w.sub_bytes() : nullptr,
                            has_next ? std::min<int64_t>(2, task.g1 - next_g) : 0,
                            has_next ? std::min(chunk_sub, w.n_sub() - next_sb) * w.sub_bytes() : 0};
        if (kind != PanelKind::kInt8) {
          if (kernels.float_kernel != nullptr) {
            kernels.float_kernel(kind, rows_acts, tile);
          } else {
            gemm_float_kernel_scalar(kind, rows_acts, tile);
          }
        } else if (kernels.kernel != nullptr) {
          kernels.kernel(format, rows_acts, tile);
        } else {
          gemm_kernel_scalar(format, layout, act_layout, rows_acts, tile);
        }
      }
    }
  }
}

}  // namespace

void gemm(Isa isa, ThreadPool& pool, const PackedWeights& w, const float* x, int64_t m, float* y, GemmScratch& scratch,
          const GemmOptions& options) {
  GemmIsaKernels kernels = isa_gemm_kernels(isa);
  const PanelKind kind = w.kind();
  const PanelLayout layout = expected_layout(kind, isa);
  EMBER_CHECK_MSG(layout.rows == w.layout().rows && layout.k_group == w.layout().k_group,
                  "gemm: weights packed for another ISA's layout");
  if (m <= 0) return;
  const PanelFormat& format = w.format();
  const bool amx = gemm_takes_amx(isa, w, m, options);
  const bool amx_int8 = amx && kind == PanelKind::kInt8, amx_f16 = amx && kind == PanelKind::kF16;
  if (amx_int8) kernels.kernel = gemm_amx_kernel, kernels.quantize = gemm_amx_quantize;
  if (amx_f16) kernels.float_kernel = gemm_amx_f16_kernel, kernels.float_acts = gemm_amx_f16_acts;
  const ActLayout act_layout = amx_int8 ? amx_act_layout(format) : amx_f16 ? kAmxF16Acts : act_layout_for(kind, isa);
  // Only the AMX kernels compute whole tiles, padding rows included; the others only the rows a
  // tile holds.
  const bool pads_computed = amx_int8 || amx_f16;
  const GemmActivations acts = scratch.prepare(format, act_layout, m, w.k(), pads_computed);
  const int64_t n_tiles = (m + act_layout.tile_rows - 1) / act_layout.tile_rows;

  // Activations, split on row-tile boundaries (a tile's rows interleave in the same cache lines).
  const int64_t quant_tasks = std::min<int64_t>(n_tiles, 8 * pool.n_threads());
  pool.parallel_for(quant_tasks, [&](int64_t t, int) {
    const int64_t r0 = t * n_tiles / quant_tasks * act_layout.tile_rows;
    const int64_t r1 = std::min(m, (t + 1) * n_tiles / quant_tasks * act_layout.tile_rows);
    if (kind != PanelKind::kInt8) {
      (kernels.float_acts != nullptr ? kernels.float_acts : gemm_float_acts_scalar)(kind, x, w.k(), r0, r1, acts.q);
    } else if (kernels.quantize != nullptr) {
      kernels.quantize(format, x, w.k(), r0, r1, acts);
    } else {
      gemm_quantize_scalar(act_layout, format, x, w.k(), r0, r1, acts);
    }
  });

  // Tasks own ranges of group pairs (the avx512 register tile spans two groups); a matrix with
  // fewer pairs than ~2 per thread also splits its rows, so narrow projections use every thread.
  const int64_t n_pairs = (w.n_groups() + 1) / 2;
  const int64_t threads = pool.n_threads();
  const int64_t pair_parts = std::min(n_pairs, threads);
  const int64_t row_parts = n_pairs >= 2 * threads ? 1 : std::min(n_tiles, (2 * threads + n_pairs - 1) / n_pairs);
  pool.parallel_for(pair_parts * row_parts, [&](int64_t task, int) {
    const int64_t p = task / row_parts, r = task % row_parts;
    const GemmTask share{2 * (p * n_pairs / pair_parts), std::min(w.n_groups(), 2 * ((p + 1) * n_pairs / pair_parts)),
                         r * n_tiles / row_parts, (r + 1) * n_tiles / row_parts};
    if (share.t0 < share.t1) {
      run_task(share, kernels, w, act_layout, acts, m, y, options.whole_k_act_bytes,
               amx_f16 ? kChunkRowsAmxF16 : kChunkRows);
    }
  });
}

bool same_activations(const PackedWeights& a, const PackedWeights& b) noexcept {
  return a.kind() == PanelKind::kInt8 && b.kind() == PanelKind::kInt8 && a.k() == b.k() &&
         a.format().sub == b.format().sub && a.format().offset == b.format().offset &&
         a.format().has_min == b.format().has_min;
}

// One activation row against several matrices of one integer format (decode's q / k / v, gate /
// up): the row quantized once, and the group pairs of all the matrices, concatenated, split evenly
// over the threads in one job.
void gemm_row_many(Isa isa, ThreadPool& pool, std::span<const PackedWeights* const> ws, const float* x,
                   std::span<float* const> ys, GemmScratch& scratch) {
  const GemmIsaKernels kernels = isa_gemm_kernels(isa);
  const PackedWeights& w0 = *ws[0];
  const ActLayout act_layout = act_layout_for(w0.kind(), isa);
  std::array<int64_t, 5> first_pair{};  // pair index where matrix j starts in the concatenation
  for (size_t j = 0; j < ws.size(); ++j) {
    const PackedWeights& w = *ws[j];
    EMBER_CHECK_MSG(same_activations(w, w0), "gemm_row_many: matrices of different formats");
    first_pair[j + 1] = first_pair[j] + (w.n_groups() + 1) / 2;
  }
  const GemmActivations acts = scratch.prepare(w0.format(), act_layout, 1, w0.k(), false);  // row_kernel: lane 0
  if (kernels.quantize != nullptr) {
    kernels.quantize(w0.format(), x, w0.k(), 0, 1, acts);
  } else {
    gemm_quantize_scalar(act_layout, w0.format(), x, w0.k(), 0, 1, acts);
  }
  const int64_t n_pairs = first_pair[ws.size()];
  const int64_t n_tasks = std::min<int64_t>(n_pairs, pool.n_threads());
  pool.parallel_for(n_tasks, [&](int64_t task, int) {
    const int64_t p0 = task * n_pairs / n_tasks, p1 = (task + 1) * n_pairs / n_tasks;
    for (size_t j = 0; j < ws.size(); ++j) {
      const int64_t lo = std::max(p0, first_pair[j]), hi = std::min(p1, first_pair[j + 1]);
      if (lo >= hi) continue;
      const PackedWeights& w = *ws[j];
      const GemmTask share{2 * (lo - first_pair[j]), std::min(w.n_groups(), 2 * (hi - first_pair[j])), 0, 1};
      run_task(share, kernels, w, act_layout, acts, 1, ys[j], GemmOptions{}.whole_k_act_bytes);
    }
  });
}

}  // namespace ember
