// Roofline probe loops, one set per ISA translation unit (compiled with that ISA's flags; plain
// functions only, see src/cpu/isa_kernel.h for why). Each returns a value the caller keeps, so the
// work cannot be optimized away.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ember::roofline {

// Sums n floats (n a multiple of 64) with wide loads: read bandwidth.
float read_sum_avx512(const float* p, size_t n);
float read_sum_avx2(const float* p, size_t n);
// `iters` iterations of 16 independent FMA chains: 2 x 16 x 16 FLOP per iteration (avx512),
// 2 x 8 x 16 (avx2).
float fma_avx512(int64_t iters);
float fma_avx2(int64_t iters);
// `iters` iterations of 16 independent vpdpbusd chains on zmm: 2 x 64 x 16 int8 OP per iteration.
int32_t vnni_avx512(int64_t iters);
// `iters` iterations of 16 independent vdpbf16ps chains on zmm: 2 x 32 x 16 FLOP per iteration.
float bf16_avx512(int64_t iters);

}  // namespace ember::roofline
