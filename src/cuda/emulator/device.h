// The CUDA emulator's device side: CUDA C++'s qualifiers, built-in variables and intrinsics for
// kernels compiled as host C++, and the launch that runs a grid on fibers (scheduler.cpp). Every
// CUDA thread of a block is a fiber; __syncthreads and the warp shuffles are real barriers among
// them, so a kernel's indexing, reductions and barrier discipline are exercised exactly, and
// AddressSanitizer sees every out-of-bounds access to device memory (not to __shared__ arrays,
// which are thread_local variables ASan does not instrument). Force-included into the .cu files of
// an EMBER_CUDA=EMULATE build (docs/cuda.md).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <type_traits>

#include "cuda/emulator/state.h"

// ---- qualifiers ----------------------------------------------------------------------------------

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Shared memory: one instance per OS thread; the fibers of a block run on one OS thread, one block
// at a time, so they share it. Unlike a GPU's it starts zeroed and keeps the previous block's
// values: a kernel that reads shared slots no thread of its block wrote is not caught.
#define __shared__ static thread_local

namespace ember::cuda_emulator {

// The built-in variables of the running CUDA thread (set by the scheduler on every switch).
struct Builtins {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};
// constinit: the kernels read it directly instead of through a TLS wrapper call that checks for a
// dynamic initializer.
extern constinit thread_local Builtins t_builtins;

// The block barrier, and a warp's exchange: every thread of the calling thread's warp passes a
// value and gets the one lane `source` passed (scheduler.cpp). A source lane that exited, or a mask
// that leaves out a live thread of the warp, aborts with the kernel's name: ember's kernels only
// shuffle whole warps.
void sync_block();
uint64_t exchange_in_warp(unsigned mask, uint64_t value, int source);
// The calling thread's lane (threadIdx.x % 32 for 1-D blocks: lanes number the linear thread id).
int lane_id();
[[noreturn]] void trap();

// A kernel launch: the grid's blocks run one after another on this thread, each block's threads as
// fibers (or, on a capturing stream, the launch is recorded with its arguments' values and runs at
// each graph launch). A bad configuration sets the last error (as cudaErrorInvalidConfiguration)
// and runs nothing; pointer arguments must be device memory (or null), else the launch aborts.
bool launch_configuration_ok(dim3 grid, dim3 block, size_t shared_bytes, const char* kernel);
void run_grid(dim3 grid, dim3 block, const std::function<void()>& body, const char* kernel);
void check_kernel_pointer(const void* p, int index, const char* kernel);

template <class... Params>
class KernelLaunch {
 public:
  KernelLaunch(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream, void (*kernel)(Params...),
               const char* name)
      : grid_(grid), block_(block), shared_bytes_(shared_bytes), stream_(stream), kernel_(kernel), name_(name) {}

  void operator()(Params... args) const {
    if (!launch_configuration_ok(grid_, block_, shared_bytes_, name_)) return;
    int index = 0;
    (check_pointer(args, index++), ...);
    // The arguments by value, as CUDA snapshots them at launch (and at capture).
    auto run = [grid = grid_, block = block_, kernel = kernel_, name = name_, ... values = args] {
      const std::function<void()> body = [&] { kernel(values...); };
      run_grid(grid, block, body, name);
    };
    if (!record_if_capturing(stream_, run, name_)) run();
  }

 private:
  template <class T>
  void check_pointer(const T& arg, int index) const {
    if constexpr (std::is_pointer_v<T>) check_kernel_pointer(static_cast<const void*>(arg), index, name_);
  }

  dim3 grid_, block_;
  size_t shared_bytes_;
  cudaStream_t stream_;
  void (*kernel_)(Params...);
  const char* name_;
};

template <class... Params>
KernelLaunch<Params...> launch(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                               void (*kernel)(Params...), const char* name) {
  return KernelLaunch<Params...>(grid, block, shared_bytes, stream, kernel, name);
}

}  // namespace ember::cuda_emulator

#define threadIdx (::ember::cuda_emulator::t_builtins.thread_idx)
#define blockIdx (::ember::cuda_emulator::t_builtins.block_idx)
#define blockDim (::ember::cuda_emulator::t_builtins.block_dim)
#define gridDim (::ember::cuda_emulator::t_builtins.grid_dim)
inline constexpr int warpSize = 32;

// ---- synchronization and warp intrinsics ---------------------------------------------------------

inline void __syncthreads() { ::ember::cuda_emulator::sync_block(); }
[[noreturn]] inline void __trap() { ::ember::cuda_emulator::trap(); }

namespace ember::cuda_emulator {
// The source lane of each shuffle, as PTX's shfl.sync defines it: the lane argument is cut to 5
// bits; the warp is split into segments of `width` (a power of two); a source past the end of the
// caller's segment (xor, down) or before its start (up) gives the caller's own value. (An xor
// source in an earlier segment is valid: PTX only bounds it above.)
inline int segment_mask(int width) { return 32 - width; }  // c[12:8] of shfl.sync
inline int segment_last(int lane, int width) { return (lane & segment_mask(width)) | (31 & ~segment_mask(width)); }
inline int source_xor(int lane, int width, int mask) {
  const int src = lane ^ (mask & 31);
  return src <= segment_last(lane, width) ? src : lane;
}
inline int source_down(int lane, int width, int delta) {
  const int src = lane + (delta & 31);
  return src <= segment_last(lane, width) ? src : lane;
}
inline int source_up(int lane, int width, int delta) {
  const int src = lane - (delta & 31);
  return src >= (lane & segment_mask(width)) ? src : lane;
}
inline int source_index(int lane, int width, int index) {
  return (lane & segment_mask(width)) | (index & 31 & ~segment_mask(width));
}

template <class T>
T shuffle(unsigned mask, T value, int width, int (*source)(int lane, int width, int arg), int arg) {
  // CUDA's overloads: numbers and half types, never structs (code that compiles here must for nvcc).
  static_assert((std::is_arithmetic_v<T> || std::is_same_v<T, __half> || std::is_same_v<T, __half2>)&&sizeof(T) <= 8,
                "CUDA shuffles numbers and half types of 4 or 8 bytes");
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    fault("a shuffle's width %d is not a power of two <= 32", width);
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = exchange_in_warp(mask, bits, source(lane_id(), width, arg));
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}
}  // namespace ember::cuda_emulator

// Shuffles of 4- and 8-byte values; `width` is a power of two up to 32 (sources as above).
template <class T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
  return ::ember::cuda_emulator::shuffle(mask, value, width, ::ember::cuda_emulator::source_xor, lane_mask);
}
template <class T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  return ::ember::cuda_emulator::shuffle(mask, value, width, ::ember::cuda_emulator::source_down,
                                         static_cast<int>(delta));
}
template <class T>
T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  return ::ember::cuda_emulator::shuffle(mask, value, width, ::ember::cuda_emulator::source_up,
                                         static_cast<int>(delta));
}
template <class T>
T __shfl_sync(unsigned mask, T value, int src_lane, int width = 32) {
  return ::ember::cuda_emulator::shuffle(mask, value, width, ::ember::cuda_emulator::source_index, src_lane);
}
inline void __syncwarp(unsigned mask = 0xFFFFFFFFu) { (void)__shfl_xor_sync(mask, 0, 0); }

// ---- warp-level matrix multiply-accumulate -------------------------------------------------------

namespace ember::cuda_emulator {

inline constexpr int kMaxExchangeWords = 4;
// Every lane of a whole warp passes `n_words` (<= kMaxExchangeWords) words and gets all 32 lanes'
// (all[lane]); one barrier, as the warp-wide instructions it stands for (scheduler.cpp). `what`
// names the instruction in a fault: a partial warp or an exited lane aborts.
void gather_in_warp(const uint64_t* words, int n_words, uint64_t (*all)[kMaxExchangeWords], const char* what);

// Every lane of a whole warp passes n_words (<= kMaxExchangeWords) words; all see the warp's 32
// lanes' words of this exchange in place (words[lane]) with a flag, false for the first lane to
// look: that lane may rewrite the words for the others (set the flag). Valid until the calling
// lane's next exchange.
struct WarpWords {
  uint64_t (*words)[kMaxExchangeWords];
  bool* combined;
};
WarpWords share_in_warp(const uint64_t* words, int n_words, const char* what);

// The xor rounds `v = op(v, __shfl_xor_sync(~0u, v, offset))` for each of Offsets, over a whole
// warp in one exchange instead of one per round: the first lane to look replays the rounds for all
// 32 lanes, combining in the same order (op(own, partner)), so each lane gets the bits the shuffles
// give. The fiber switches of the rounds dominated the emulated kernels' time.
template <int... Offsets, class T, class Op>
EMBER_EMULATOR_NO_ASAN T xor_rounds_in_warp(T value, Op op) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 16, "warp rounds move values of up to 16 bytes");
  static_assert(std::is_empty_v<Op>, "one lane applies op for all: it must not depend on the lane");
  constexpr int kWords = (sizeof(T) + 7) / 8;
  uint64_t mine[kWords] = {};
  std::memcpy(mine, &value, sizeof(T));
  // The instantiation's own name: lanes meeting different butterflies (rounds, type or op) fault.
  const WarpWords shared = share_in_warp(mine, kWords, __PRETTY_FUNCTION__);
  if (!*shared.combined) {
    T v[32];
    for (int l = 0; l < 32; ++l) std::memcpy(&v[l], &shared.words[l][0], sizeof(T));
    // A loop, not a lambda per round: a lambda is instrumented, and clang does not inline it here.
    for (const int offset : {Offsets...}) {
      T next[32];
      for (int l = 0; l < 32; ++l) next[l] = op(v[l], v[l ^ offset]);
      for (int l = 0; l < 32; ++l) v[l] = next[l];
    }
    for (int l = 0; l < 32; ++l) std::memcpy(&shared.words[l][0], &v[l], sizeof(T));
    *shared.combined = true;
  }
  T out;
  std::memcpy(&out, &shared.words[lane_id()][0], sizeof(T));
  return out;
}

// PTX mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32: d[16×8] += a[16×16] · b[16×8] over the
// warp, f16 operands packed two per register (the lower index in the low half), f32 accumulators.
// With g = lane / 4 and t = lane % 4, lane holds:
//   a[0] = A[g][2t, 2t+1], a[1] = A[g+8][2t, 2t+1], a[2] = A[g][2t+8, 2t+9], a[3] = A[g+8][2t+8, 2t+9];
//   b[0] = B[2t, 2t+1][g], b[1] = B[2t+8, 2t+9][g];
//   d[0], d[1] = D[g][2t, 2t+1], d[2], d[3] = D[g+8][2t, 2t+1].
// The products of halves are exact in float; the 16 are summed in k order, then added to d (a
// tensor core's order and intermediate rounding are its own: results agree to float rounding).
inline void mma_m16n8k16_f32_f16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  const uint64_t mine[3] = {a[0] | uint64_t{a[1]} << 32, a[2] | uint64_t{a[3]} << 32, b[0] | uint64_t{b[1]} << 32};
  uint64_t all[32][kMaxExchangeWords];
  gather_in_warp(mine, 3, all, "mma.sync");
  // Register r of lane l (r 0-3: a, 4-5: b), and half h of it as a float.
  const auto reg = [&](int l, int r) { return static_cast<uint32_t>(all[l][r / 2] >> (32 * (r % 2))); };
  const auto half = [&](int l, int r, int h) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(reg(l, r) >> (16 * h))));
  };
  // A[row][k]: lane 4·(row % 8) + (k % 8) / 2, register (row >= 8) + 2·(k >= 8), half k % 2.
  const auto a_at = [&](int row, int k) { return half(4 * (row % 8) + k % 8 / 2, (row >= 8) + 2 * (k >= 8), k % 2); };
  // B[k][col]: lane 4·col + (k % 8) / 2, register 4 + (k >= 8), half k % 2.
  const auto b_at = [&](int k, int col) { return half(4 * col + k % 8 / 2, 4 + (k >= 8), k % 2); };
  const int lane = lane_id(), g = lane / 4, t = lane % 4;
  for (int i = 0; i < 4; ++i) {
    const int row = g + 8 * (i / 2), col = 2 * t + i % 2;
    float sum = 0.0f;
    for (int k = 0; k < 16; ++k) sum += a_at(row, k) * b_at(k, col);
    d[i] += sum;
  }
}

// The s8 shapes' outputs: this lane's d (D[g][2t, 2t+1], D[g+8][2t, 2t+1]) += Σ over k of
// A[row][k]·B[k][col], read from the warp's registers by a_at / b_at; two's complement wrap, as the
// hardware's adder (no .satfinite).
template <class AAt, class BAt>
void add_s8_products(int32_t (&d)[4], int k_size, const AAt& a_at, const BAt& b_at) {
  const int lane = lane_id(), g = lane / 4, t = lane % 4;
  for (int i = 0; i < 4; ++i) {
    const int row = g + 8 * (i / 2), col = 2 * t + i % 2;
    uint32_t sum = static_cast<uint32_t>(d[i]);
    for (int k = 0; k < k_size; ++k) sum += static_cast<uint32_t>(int32_t{a_at(row, k)} * int32_t{b_at(k, col)});
    d[i] = static_cast<int32_t>(sum);
  }
}

// PTX mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32: d[16×8] += a[16×32] · b[32×8] over the
// warp, s8 operands packed four per register (the lowest index in the low byte), s32 accumulators.
// With g = lane / 4 and t = lane % 4, lane holds:
//   a[0] = A[g][4t..4t+3], a[1] = A[g+8][4t..4t+3], a[2] = A[g][4t+16..4t+19], a[3] = A[g+8][4t+16..4t+19];
//   b[0] = B[4t..4t+3][g], b[1] = B[4t+16..4t+19][g];
//   d[0], d[1] = D[g][2t, 2t+1], d[2], d[3] = D[g+8][2t, 2t+1] (as the f16 shape's).
// Exact integer arithmetic; without .satfinite a sum past the s32 range wraps.
inline void mma_m16n8k32_s32_s8(int32_t (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  const uint64_t mine[3] = {a[0] | uint64_t{a[1]} << 32, a[2] | uint64_t{a[3]} << 32, b[0] | uint64_t{b[1]} << 32};
  uint64_t all[32][kMaxExchangeWords];
  gather_in_warp(mine, 3, all, "mma.sync");
  // Byte n of register r of lane l (r 0-3: a, 4-5: b) as a signed value.
  const auto byte = [&](int l, int r, int n) {
    return static_cast<int8_t>(static_cast<uint8_t>(all[l][r / 2] >> (32 * (r % 2) + 8 * n)));
  };
  // A[row][k]: lane 4·(row % 8) + (k % 16) / 4, register (row >= 8) + 2·(k >= 16), byte k % 4.
  const auto a_at = [&](int row, int k) { return byte(4 * (row % 8) + k % 16 / 4, (row >= 8) + 2 * (k >= 16), k % 4); };
  // B[k][col]: lane 4·col + (k % 16) / 4, register 4 + (k >= 16), byte k % 4.
  const auto b_at = [&](int k, int col) { return byte(4 * col + k % 16 / 4, 4 + (k >= 16), k % 4); };
  add_s8_products(d, 32, a_at, b_at);
}

// PTX mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32: d[16×8] += a[16×16] · b[16×8], the k32
// shape's first half: lane holds a[0] = A[g][4t..4t+3], a[1] = A[g+8][4t..4t+3];
// b = B[4t..4t+3][g]; d as the k32 shape's.
inline void mma_m16n8k16_s32_s8(int32_t (&d)[4], const uint32_t (&a)[2], uint32_t b) {
  const uint64_t mine[2] = {a[0] | uint64_t{a[1]} << 32, b};
  uint64_t all[32][kMaxExchangeWords];
  gather_in_warp(mine, 2, all, "mma.sync");
  // Byte n of register r of lane l (r 0-1: a, 2: b) as a signed value.
  const auto byte = [&](int l, int r, int n) {
    return static_cast<int8_t>(static_cast<uint8_t>(all[l][r / 2] >> (32 * (r % 2) + 8 * n)));
  };
  // A[row][k]: lane 4·(row % 8) + k / 4, register row >= 8, byte k % 4; B[k][col]: lane 4·col + k / 4.
  const auto a_at = [&](int row, int k) { return byte(4 * (row % 8) + k / 4, row >= 8, k % 4); };
  const auto b_at = [&](int k, int col) { return byte(4 * col + k / 4, 2, k % 4); };
  add_s8_products(d, 16, a_at, b_at);
}

}  // namespace ember::cuda_emulator

// ---- arithmetic intrinsics -----------------------------------------------------------------------

// The read-only data cache load: a plain load on the host.
template <class T>
T __ldg(const T* p) {
  return *p;
}

inline float __int_as_float(int v) { return std::bit_cast<float>(v); }
inline float __int2float_rn(int v) { return static_cast<float>(v); }  // the host rounds to nearest even
inline float __uint_as_float(unsigned v) { return std::bit_cast<float>(v); }
inline int __float_as_int(float v) { return std::bit_cast<int>(v); }
inline unsigned __float_as_uint(float v) { return std::bit_cast<unsigned>(v); }

// prmt.b32: result byte n is byte (s >> 4n) & 7 of the 8 bytes {y:x} (x the low 4); with bit 3 of
// that selector nibble set, the selected byte's sign bit replicated instead.
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  const uint64_t bytes = (static_cast<uint64_t>(y) << 32) | x;
  unsigned out = 0;
  for (int n = 0; n < 4; ++n) {
    const unsigned sel = (s >> (4 * n)) & 0xF;
    unsigned b = static_cast<unsigned>(bytes >> (8 * (sel & 7))) & 0xFF;
    if (sel & 8) b = (b & 0x80) ? 0xFF : 0;
    out |= b << (8 * n);
  }
  return out;
}

// Round-to-nearest single operations that a compiler never fuses: on the host, a plain operation
// (the emulated .cu files are compiled with -ffp-contract=off).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }

// The device's integer min/max overloads (float ones come from <cmath>'s fminf/fmaxf).
template <class A, class B>
requires std::is_integral_v<A> && std::is_integral_v<B>
constexpr std::common_type_t<A, B> min(A a, B b) { return b < a ? b : a; }
template <class A, class B>
requires std::is_integral_v<A> && std::is_integral_v<B>
constexpr std::common_type_t<A, B> max(A a, B b) { return a < b ? b : a; }

// `kernel<<<grid, block, shared_bytes, stream>>>(args)` of a real build (cuda/launch.h).
#define EMBER_CUDA_EMULATED_LAUNCH(grid, block, shared_bytes, stream, ...) \
  ::ember::cuda_emulator::launch((grid), (block), (shared_bytes), (stream), __VA_ARGS__, #__VA_ARGS__)
