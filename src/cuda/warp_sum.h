// Warp butterflies (warp_sum, warp_max, warp_xor_rounds): the one reduction order every kernel
// shares, so reductions of the same values give the same bits in every kernel.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace ember::cuda {

struct WarpAdd {
  template <class T>
  __device__ __forceinline__ T operator()(T own, T partner) const {
    return own + partner;
  }
};
struct WarpMax {  // fmaxf: a NaN loses to a number
  __device__ __forceinline__ float operator()(float own, float partner) const { return fmaxf(own, partner); }
};

// Whether shuffle_xor moves T: a 4- or 8-byte number, or a struct of two to four 32-bit words.
template <class T>
inline constexpr bool kShuffles = (std::is_arithmetic_v<T> && (sizeof(T) == 4 || sizeof(T) == 8)) ||
                                  (std::is_class_v<T> && std::is_trivially_copyable_v<T> && sizeof(T) % 4 == 0 &&
                                   sizeof(T) >= 8 && sizeof(T) <= 16);

// __shfl_xor_sync over the whole warp for any value of kShuffles: a struct (a value and its index)
// moves as one 32-bit shuffle per word, as CUDA has no struct shuffles.
template <class T>
__device__ __forceinline__ T shuffle_xor(T v, int offset) {
  static_assert(kShuffles<T>, "4- or 8-byte numbers, or structs of two to four 32-bit words");
  if constexpr (std::is_class_v<T>) {
    uint32_t w[sizeof(T) / 4];
    memcpy(w, &v, sizeof w);
    for (uint32_t& word : w) word = __shfl_xor_sync(0xFFFFFFFFu, word, offset);  // (a constant count: unrolled)
    memcpy(&v, w, sizeof w);
    return v;
  } else {
    return __shfl_xor_sync(0xFFFFFFFFu, v, offset);
  }
}

// `v = op(v, shuffle_xor(v, offset))` for each offset in turn, over the whole warp (every lane
// must call it). T is one of kShuffles (a struct of a value and its index for an argmax).
// The emulator runs all the rounds in one exchange, combining in the same order, so the bits are
// the shuffles' own: its fiber switches per shuffle dominated the emulated kernels' time.
template <int... Offsets, class T, class Op>
__device__ __forceinline__ T warp_xor_rounds(T v, Op op) {
  static_assert(sizeof...(Offsets) > 0 && ((Offsets > 0 && Offsets < 32) && ...), "xor offsets are lanes 1..31");
  // What shuffle_xor moves under nvcc, checked on the emulator too.
  static_assert(kShuffles<T>, "4- or 8-byte numbers, or structs of two to four 32-bit words");
#ifdef EMBER_CUDA_EMULATED
  return ::ember::cuda_emulator::xor_rounds_in_warp<Offsets...>(v, op);
#else
  ((v = op(v, shuffle_xor(v, Offsets))), ...);
  return v;
#endif
}

// Every lane ends with op folded over the 32 lanes' values (the same in every lane), the partners
// at xor offsets 16, 8, 4, 2, 1.
template <class T, class Op>
__device__ __forceinline__ T warp_butterfly(T v, Op op) {
  return warp_xor_rounds<16, 8, 4, 2, 1>(v, op);
}

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  return warp_butterfly(v, WarpAdd{});
}

__device__ __forceinline__ float warp_max(float v) { return warp_butterfly(v, WarpMax{}); }

}  // namespace ember::cuda
