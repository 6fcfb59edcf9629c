// top_k_rows (cuda_kernels.h): each row's k best values for sampling on the device (Batch::kTopK),
// in the sampler's order (engine/sampler_math.cpp select_top_k, the spec): radix selection of the
// k-th best key, then a gather in index order and a rank sort of the k candidates.
#include <climits>
#include <cmath>
#include <cstdint>

#include "cuda/cuda_check.h"
#include "cuda/cuda_kernels.h"
#include "cuda/launch.h"

namespace ember::cuda {
namespace {

// One block per row; whole warps, and at least kMaxTopK threads (one per candidate in the sort).
constexpr int kTopKThreads = 1024;
constexpr int kTopKWarps = kTopKThreads / 32;
static_assert(kTopKThreads >= kMaxTopK);
// The radix: 4-bit digits, 8 passes over the row from the most significant.
constexpr int kDigitBits = 4;
constexpr int kDigits = 1 << kDigitBits;

// The order as an unsigned key, larger is better: a NaN ranks as -inf, -0 ties +0 (they compare
// equal as floats), and the float order maps onto the unsigned one (negatives reversed).
__device__ uint32_t top_key(float v) {
  if (v != v) v = -INFINITY;
  if (v == 0.0f) v = 0.0f;
  const uint32_t bits = __float_as_uint(v);
  return (bits & 0x80000000u) != 0 ? ~bits : (bits | 0x80000000u);
}

__device__ int warp_sum_int(int v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xFFFFFFFFu, v, offset);
  return v;
}

// Block-wide exclusive prefix sum in thread order; `total` gets the sum. scratch: [kTopKWarps + 1].
__device__ int block_exclusive_scan(int v, int* scratch, int& total) {
  const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
  int inclusive = v;
#pragma unroll
  for (int offset = 1; offset < 32; offset *= 2) {
    const int below = __shfl_up_sync(0xFFFFFFFFu, inclusive, static_cast<unsigned>(offset));
    if (lane >= offset) inclusive += below;
  }
  if (lane == 31) scratch[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const int own = lane < kTopKWarps ? scratch[lane] : 0;
    int warps = own;
#pragma unroll
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

__global__ void __launch_bounds__(kTopKThreads)
    top_k_kernel(const float* x, int64_t n, int k, float* values, int32_t* ids) {
  __shared__ int warp_counts[kTopKWarps][kDigits];
  __shared__ uint32_t chosen_prefix;
  __shared__ int chosen_remaining, chosen_above;
  __shared__ int scan_scratch[kTopKWarps + 1];
  __shared__ uint32_t cand_key[kMaxTopK];
  __shared__ int32_t cand_id[kMaxTopK];
  __shared__ float cand_value[kMaxTopK];
  const float* row = x + static_cast<int64_t>(blockIdx.x) * n;
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;

  // 1. The k-th best key T, a digit per pass: of the keys matching the prefix so far, count each
  // next digit; the digit holding the remaining-th best extends the prefix. `above` counts the keys
  // known to beat T; `remaining` how many keys equal to T the k take (above + remaining = k).
  uint32_t prefix = 0, mask = 0;
  int remaining = k, above = 0;
  for (int shift = 32 - kDigitBits; shift >= 0; shift -= kDigitBits) {
    int counts[kDigits] = {};
    for (int64_t j = tid; j < n; j += kTopKThreads) {
      const uint32_t key = top_key(row[j]);
      if ((key & mask) == prefix) {
        const uint32_t digit = (key >> shift) & (kDigits - 1);
#pragma unroll
        for (int d = 0; d < kDigits; ++d) counts[d] += digit == static_cast<uint32_t>(d) ? 1 : 0;
      }
    }
#pragma unroll
    for (int d = 0; d < kDigits; ++d) {
      const int sum = warp_sum_int(counts[d]);
      if (lane == 0) warp_counts[warp][d] = sum;
    }
    __syncthreads();
    if (warp == 0) {
      // Lane d: digit d's count, and the count of digits >= d; the chosen digit is the largest
      // whose suffix still holds the remaining-th best.
      int in_digit = 0;
      if (lane < kDigits) {
        for (int w = 0; w < kTopKWarps; ++w) in_digit += warp_counts[w][lane];
      }
      int suffix = in_digit;
#pragma unroll
      for (int offset = 1; offset < kDigits; offset *= 2) {
        const int higher = __shfl_down_sync(0xFFFFFFFFu, suffix, static_cast<unsigned>(offset));
        if (lane + offset < kDigits) suffix += higher;
      }
      int digit = lane < kDigits && suffix >= remaining ? lane : 0;
#pragma unroll
      for (int offset = 16; offset > 0; offset /= 2) {
        const int other = __shfl_xor_sync(0xFFFFFFFFu, digit, offset);
        digit = other > digit ? other : digit;
      }
      const int beaten = __shfl_sync(0xFFFFFFFFu, suffix - in_digit, digit);  // the digits above it
      if (lane == 0) {
        chosen_prefix = prefix | (static_cast<uint32_t>(digit) << shift);
        chosen_remaining = remaining - beaten;
        chosen_above = above + beaten;
      }
    }
    __syncthreads();
    prefix = chosen_prefix;
    remaining = chosen_remaining;
    above = chosen_above;
    mask |= static_cast<uint32_t>(kDigits - 1) << shift;
    __syncthreads();  // read before the next pass's thread 0 writes
  }
  const uint32_t threshold = prefix;

  // 2. The candidates: every key above T and the first `remaining` equal to it by index. Each
  // thread sweeps a contiguous chunk, so thread order is index order for the equal ones' ranks.
  const int64_t chunk = (n + kTopKThreads - 1) / kTopKThreads;
  const int64_t lo = tid * chunk < n ? tid * chunk : n, hi = lo + chunk < n ? lo + chunk : n;
  int n_above = 0, n_equal = 0;
  for (int64_t j = lo; j < hi; ++j) {
    const uint32_t key = top_key(row[j]);
    n_above += key > threshold ? 1 : 0;
    n_equal += key == threshold ? 1 : 0;
  }
  int total_above = 0, total_equal = 0;
  int at_above = block_exclusive_scan(n_above, scan_scratch, total_above);
  int at_equal = block_exclusive_scan(n_equal, scan_scratch, total_equal);
  if (total_above != above || total_equal < remaining) __trap();  // the selection's own invariant
  for (int64_t j = lo; j < hi; ++j) {
    const float v = row[j];
    const uint32_t key = top_key(v);
    int slot = -1;
    if (key > threshold) {
      slot = at_above++;
    } else if (key == threshold) {
      slot = at_equal < remaining ? above + at_equal : -1;
      ++at_equal;
    }
    if (slot >= 0) {
      cand_key[slot] = key;
      cand_id[slot] = static_cast<int32_t>(j);
      cand_value[slot] = v != v ? -INFINITY : v;
    }
  }
  __syncthreads();

  // 3. Best first: a candidate's place is the number of candidates that beat it.
  if (tid < k) {
    const uint32_t key = cand_key[tid];
    const int32_t id = cand_id[tid];
    int place = 0;
    for (int i = 0; i < k; ++i) place += cand_key[i] > key || (cand_key[i] == key && cand_id[i] < id) ? 1 : 0;
    const int64_t out = static_cast<int64_t>(blockIdx.x) * k + place;
    values[out] = cand_value[tid];
    ids[out] = id;
  }
}

}  // namespace

void top_k_rows(const float* x, int64_t n_rows, int64_t n, int64_t k, float* values, int32_t* ids,
                cudaStream_t stream) {
  EMBER_CUDA_EXPECT(n_rows >= 0 && n_rows <= INT32_MAX && n >= 0 && n <= INT32_MAX);
  if (n_rows == 0) return;
  EMBER_CUDA_EXPECT_MSG(k >= 1 && k <= kMaxTopK && k <= n, "top_k_rows: k must be 1 to min(n, kMaxTopK)");
  EMBER_CUDA_LAUNCH(static_cast<unsigned>(n_rows), kTopKThreads, 0, stream, top_k_kernel)
  (x, n, static_cast<int>(k), values, ids);
  EMBER_CUDA_CHECK_LAUNCH("top_k_rows");
}

}  // namespace ember::cuda
