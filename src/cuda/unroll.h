// EMBER_UNROLL / EMBER_NO_UNROLL: `#pragma unroll` and `#pragma unroll 1` for nvcc, nothing in an
// EMBER_CUDA=EMULATE build (or any host compile). Clang honours the pragma in host code, and fully unrolled kernels
// under AddressSanitizer made the emulated .cu files the sanitizer build's slowest to compile (tiled attention 82 s, 17
// s rolled), with nothing gained: unrolling changes no result (no reassociation, no FMA contraction: the emulated files
// build with -ffp-contract=off), and the emulator's time is in its fibers, not in loop overhead.
#pragma once

#if defined(__CUDACC__) && !defined(EMBER_CUDA_EMULATED)
#define EMBER_UNROLL _Pragma("unroll")
#define EMBER_NO_UNROLL _Pragma("unroll 1")
#else
#define EMBER_UNROLL
#define EMBER_NO_UNROLL
#endif
