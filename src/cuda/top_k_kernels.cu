// top_k_rows (cuda_kernels.h): each row's k best values for sampling on the device (Batch::kTopK),
// in the sampler's order (model/top_candidates.cpp select_top_candidates, the spec). A row is cut into slices
// whose blocks select their own k best in parallel (a 128k vocabulary on one block would keep one SM
// busy for tens of microseconds), then one block per row selects the k best of the slices' picks.
// Each selection: radix selection of the k-th best key, a gather in index order, a rank sort.
#include <climits>
#include <cmath>
#include <cstdint>

#include "cuda/cuda_check.h"
#include "cuda/cuda_kernels.h"
#include "cuda/launch.h"
#include "cuda/unroll.h"
#include "cuda/warp_sum.h"

namespace ember::cuda {
namespace {

// Whole warps, and at least kMaxTopK threads (one per candidate in the sort).
constexpr int kTopKThreads = 256;
constexpr int kTopKWarps = kTopKThreads / 32;
static_assert(kTopKThreads >= kMaxTopK && kTopKThreads % 32 == 0);
// The radix: 4-bit digits, 8 passes from the most significant.
constexpr int kDigitBits = 4;
constexpr int kDigits = 1 << kDigitBits;
// A slice block's elements (16 per thread), and the most slices of a row: their picks (at most
// kMaxSlices · k) are what the merge block reads.
constexpr int64_t kSliceElems = 4096;
constexpr int64_t kMaxSlices = 64;
// A row of n > kSliceElems cut into s = min(ceil(n / kSliceElems), kMaxSlices) slices of
// ceil(n / s) leaves a last slice of more than n / s - s >= kSliceElems / 2 - kMaxSlices elements:
// every slice holds at least k.
static_assert(kSliceElems / 2 - kMaxSlices >= kMaxTopK);
// The scratch: the picks of at least this many rows at the largest k and slice count (smaller ones
// fit more rows per launch pair).
constexpr int64_t kScratchRows = 8;

// The order as an unsigned key, larger is better: a NaN ranks as -inf, -0 ties +0 (they compare
// equal as floats), and the float order maps onto the unsigned one (negatives reversed).
__device__ uint32_t top_key(float v) {
  if (v != v) v = -INFINITY;
  if (v == 0.0f) v = 0.0f;
  const uint32_t bits = __float_as_uint(v);
  return (bits & 0x80000000u) != 0 ? ~bits : (bits | 0x80000000u);
}

// What one selection keeps in shared memory.
struct SelectShared {
  int warp_counts[kTopKWarps][kDigits];
  uint32_t prefix;
  int remaining, above;
  int scan[kTopKWarps + 1];
  uint32_t key[kMaxTopK];
  int32_t id[kMaxTopK];
  float value[kMaxTopK];
};

// Block-wide exclusive prefix sum in thread order; `total` gets the sum.
__device__ int block_exclusive_scan(int v, int* scratch, int& total) {
  const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
  int inclusive = v;
  EMBER_UNROLL
  for (int offset = 1; offset < 32; offset *= 2) {
    const int below = __shfl_up_sync(0xFFFFFFFFu, inclusive, static_cast<unsigned>(offset));
    if (lane >= offset) inclusive += below;
  }
  if (lane == 31) scratch[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const int own = lane < kTopKWarps ? scratch[lane] : 0;
    int warps = own;
    EMBER_UNROLL
    for (int offset = 1; offset < 32; offset *= 2) {
      const int below = __shfl_up_sync(0xFFFFFFFFu, warps, static_cast<unsigned>(offset));
      if (lane >= offset) warps += below;
    }
    if (lane < kTopKWarps) scratch[lane] = warps - own;  // the warps before this one
    if (lane == 31) scratch[kTopKWarps] = warps;
  }
  __syncthreads();
  const int result = scratch[warp] + inclusive - v;
  total = scratch[kTopKWarps];
  __syncthreads();  // every read done before the scratch is reused
  return result;
}

// out [k] = the k best of v [n] (k <= n), best first; an element's id is ids[j] (id_base + its
// position j when ids is null). Equal keys are taken in position order, so position order must be id order among
// equal keys: true of a row, and of slices' picks laid out slice after slice. A NaN is written as
// -inf.
__device__ void select_best(const float* __restrict__ v, const int32_t* __restrict__ ids, int64_t id_base, int64_t n,
                            int k, float* __restrict__ out_values, int32_t* __restrict__ out_ids, SelectShared& sh) {
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;

  // 1. The k-th best key T, a digit per pass: of the keys matching the prefix so far, count each
  // next digit; the digit holding the remaining-th best extends the prefix. `above` counts the keys
  // known to beat T; `remaining` how many keys equal to T the k take (above + remaining = k).
  uint32_t prefix = 0, mask = 0;
  int remaining = k, above = 0;
  for (int shift = 32 - kDigitBits; shift >= 0; shift -= kDigitBits) {
    int counts[kDigits] = {};
    for (int64_t j = tid; j < n; j += kTopKThreads) {
      const uint32_t key = top_key(v[j]);
      if ((key & mask) == prefix) {
        const uint32_t digit = (key >> shift) & (kDigits - 1);
        EMBER_UNROLL
        for (int d = 0; d < kDigits; ++d) counts[d] += digit == static_cast<uint32_t>(d) ? 1 : 0;
      }
    }
    EMBER_UNROLL
    for (int d = 0; d < kDigits; ++d) {
      const int sum = warp_sum(counts[d]);
      if (lane == 0) sh.warp_counts[warp][d] = sum;
    }
    __syncthreads();
    if (warp == 0) {
      // Lane d: digit d's count, and the count of digits >= d; the chosen digit is the largest
      // whose suffix still holds the remaining-th best.
      int in_digit = 0;
      if (lane < kDigits) {
        for (int w = 0; w < kTopKWarps; ++w) in_digit += sh.warp_counts[w][lane];
      }
      int suffix = in_digit;
      EMBER_UNROLL
      for (int offset = 1; offset < kDigits; offset *= 2) {
        const int higher = __shfl_down_sync(0xFFFFFFFFu, suffix, static_cast<unsigned>(offset));
        if (lane + offset < kDigits) suffix += higher;
      }
      int digit = lane < kDigits && suffix >= remaining ? lane : 0;
      EMBER_UNROLL
      for (int offset = 16; offset > 0; offset /= 2) {
        const int other = __shfl_xor_sync(0xFFFFFFFFu, digit, offset);
        digit = other > digit ? other : digit;
      }
      const int beaten = __shfl_sync(0xFFFFFFFFu, suffix - in_digit, digit);  // the digits above it
      if (lane == 0) {
        sh.prefix = prefix | (static_cast<uint32_t>(digit) << shift);
        sh.remaining = remaining - beaten;
        sh.above = above + beaten;
      }
    }
    __syncthreads();
    // Read before the next pass's warp 0 writes them: that pass's first barrier comes first.
    prefix = sh.prefix;
    remaining = sh.remaining;
    above = sh.above;
    mask |= static_cast<uint32_t>(kDigits - 1) << shift;
  }
  const uint32_t threshold = prefix;

  // 2. The candidates: every key above T and the first `remaining` equal to it by position. Each
  // thread sweeps a contiguous chunk, so thread order is position order for the equal ones' ranks.
  const int64_t chunk = (n + kTopKThreads - 1) / kTopKThreads;
  const int64_t lo = tid * chunk < n ? tid * chunk : n, hi = lo + chunk < n ? lo + chunk : n;
  int n_above = 0, n_equal = 0;
  for (int64_t j = lo; j < hi; ++j) {
    const uint32_t key = top_key(v[j]);
    n_above += key > threshold ? 1 : 0;
    n_equal += key == threshold ? 1 : 0;
  }
  int total_above = 0, total_equal = 0;
  int at_above = block_exclusive_scan(n_above, sh.scan, total_above);
  int at_equal = block_exclusive_scan(n_equal, sh.scan, total_equal);
  if (total_above != above || total_equal < remaining) __trap();  // the selection's own invariant
  for (int64_t j = lo; j < hi; ++j) {
    const float value = v[j];
    const uint32_t key = top_key(value);
    int slot = -1;
    if (key > threshold) {
      slot = at_above++;
    } else if (key == threshold) {
      slot = at_equal < remaining ? above + at_equal : -1;
      ++at_equal;
    }
    if (slot >= 0) {
      sh.key[slot] = key;
      sh.id[slot] = ids != nullptr ? ids[j] : static_cast<int32_t>(id_base + j);
      sh.value[slot] = value != value ? -INFINITY : value;
    }
  }
  __syncthreads();

  // 3. Best first: a candidate's place is the number of candidates that beat it.
  if (tid < k) {
    const uint32_t key = sh.key[tid];
    const int32_t id = sh.id[tid];
    int place = 0;
    for (int i = 0; i < k; ++i) place += sh.key[i] > key || (sh.key[i] == key && sh.id[i] < id) ? 1 : 0;
    out_values[place] = sh.value[tid];
    out_ids[place] = id;
  }
  __syncthreads();  // the shared candidates are read before a caller selects again
}

// Block (slice, row): the slice's k best (every slice holds at least k) into picks [row][slice][k].
__global__ void __launch_bounds__(kTopKThreads)
    top_k_slices_kernel(const float* x, int64_t n, int k, int64_t slice_elems, float* pick_values, int32_t* pick_ids) {
  __shared__ SelectShared sh;
  const int64_t slice = blockIdx.x, row = blockIdx.y;
  const int64_t begin = slice * slice_elems;
  const int64_t count = begin + slice_elems < n ? slice_elems : n - begin;
  const int64_t picks = (row * gridDim.x + slice) * k;
  select_best(x + row * n + begin, nullptr, begin, count, k, pick_values + picks, pick_ids + picks, sh);
}

// Block row: the k best of the row's n_picks picks (or of the row itself when `ids` is null).
__global__ void __launch_bounds__(kTopKThreads)
    top_k_merge_kernel(const float* picks, const int32_t* ids, int64_t n_picks, int k, float* values,
                       int32_t* out_ids) {
  __shared__ SelectShared sh;
  const int64_t row = blockIdx.x;
  select_best(picks + row * n_picks, ids != nullptr ? ids + row * n_picks : nullptr, 0, n_picks, k, values + row * k,
              out_ids + row * k, sh);
}

// Slices of a row of n: about kSliceElems each, at most kMaxSlices; 1 for a row short enough for one
// block.
int64_t slices_for(int64_t n) {
  if (n <= kSliceElems) return 1;
  const int64_t slices = (n + kSliceElems - 1) / kSliceElems;
  return slices < kMaxSlices ? slices : kMaxSlices;
}

}  // namespace

size_t top_k_scratch_entries() { return static_cast<size_t>(kScratchRows * kMaxSlices * kMaxTopK); }

// As many rows per launch pair as the scratch holds picks for, and no more than a grid's y (65535:
// two slices of k = 1 would fit 65536).
int64_t top_k_rows_per_launch(int64_t n, int64_t k) {
  const int64_t fit = static_cast<int64_t>(top_k_scratch_entries()) / (slices_for(n) * k);
  return fit < kMaxGridY ? fit : kMaxGridY;
}

void top_k_rows(const float* x, int64_t n_rows, int64_t n, int64_t k, float* values, int32_t* ids,
                float* scratch_values, int32_t* scratch_ids, cudaStream_t stream) {
  EMBER_CUDA_EXPECT(n_rows >= 0 && n_rows <= INT32_MAX && n >= 0 && n <= INT32_MAX);
  if (n_rows == 0) return;
  EMBER_CUDA_EXPECT_MSG(k >= 1 && k <= kMaxTopK && k <= n, "top_k_rows: k must be 1 to min(n, kMaxTopK)");
  const int64_t slices = slices_for(n);
  if (slices == 1) {
    EMBER_CUDA_LAUNCH(static_cast<unsigned>(n_rows), kTopKThreads, 0, stream, top_k_merge_kernel)
    (x, nullptr, n, static_cast<int>(k), values, ids);
    EMBER_CUDA_CHECK_LAUNCH("top_k_rows");
    return;
  }
  EMBER_CUDA_EXPECT(scratch_values != nullptr && scratch_ids != nullptr);
  const int64_t slice_elems = (n + slices - 1) / slices;
  EMBER_CUDA_EXPECT(n - (slices - 1) * slice_elems >= k);  // the last slice too (the static_assert's bound)
  const int64_t chunk_rows = top_k_rows_per_launch(n, k);
  for (int64_t r0 = 0; r0 < n_rows; r0 += chunk_rows) {
    const int64_t rows = n_rows - r0 < chunk_rows ? n_rows - r0 : chunk_rows;
    EMBER_CUDA_LAUNCH(dim3(static_cast<unsigned>(slices), static_cast<unsigned>(rows)), kTopKThreads, 0, stream,
                      top_k_slices_kernel)
    (x + r0 * n, n, static_cast<int>(k), slice_elems, scratch_values, scratch_ids);
    EMBER_CUDA_CHECK_LAUNCH("top_k_rows (slices)");
    EMBER_CUDA_LAUNCH(static_cast<unsigned>(rows), kTopKThreads, 0, stream, top_k_merge_kernel)
    (scratch_values, scratch_ids, slices * k, static_cast<int>(k), values + r0 * k, ids + r0 * k);
    EMBER_CUDA_CHECK_LAUNCH("top_k_rows (merge)");
  }
}

}  // namespace ember::cuda
