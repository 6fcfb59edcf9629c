// The CUDA emulator's stand-in for cuda_fp16.h: __half and __half2 as 16-bit IEEE halves with the
// toolkit's conversion intrinsics (round to nearest even, as the hardware's cvt.rn.f16.f32).
#pragma once

#include <cstdint>

#include <vector_types.h>

#include "quant/fp16.h"

struct __half {
  unsigned short __x;
  __half() = default;
  __half(float f) : __x(ember::fp32_to_fp16(f)) {}  // NOLINT(google-explicit-constructor): as CUDA's host __half
  operator float() const { return ember::fp16_to_fp32(__x); }  // NOLINT(google-explicit-constructor)
};

struct alignas(4) __half2 {
  __half x, y;
};

inline __half __ushort_as_half(unsigned short bits) {
  __half h;
  h.__x = bits;
  return h;
}
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline float __half2float(__half h) { return ember::fp16_to_fp32(h.__x); }
inline __half __float2half_rn(float f) { return __ushort_as_half(ember::fp32_to_fp16(f)); }
inline __half __float2half(float f) { return __float2half_rn(f); }
inline __half2 __floats2half2_rn(float a, float b) { return {__float2half_rn(a), __float2half_rn(b)}; }
inline float __low2float(__half2 h) { return __half2float(h.x); }
inline float __high2float(__half2 h) { return __half2float(h.y); }
inline float2 __half22float2(__half2 h) { return {__half2float(h.x), __half2float(h.y)}; }
