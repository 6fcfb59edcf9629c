// The plain-data contract between the GEMM driver (gemm.cpp) and its per-ISA microkernels
// (gemm_avx2.cpp, gemm_avx512.cpp): the packed panel layout and the kernel signatures. Like
// isa_kernel.h it holds POD types and function-pointer types only (see there for why).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ember {

// Integer form of a weight sub-block, shared by every quantized type the GEMM serves:
//   w[j] = scale · (q[j] − offset) + min,   q[j] unsigned bytes,
// with `offset` a per-type constant and `scale` / `min` floats per (row, sub-block).
// Activations are quantized per sub-block to signed bytes a[j] with scale `ad`, so
//   Σ_j w·x ≈ ad · (scale · (Σ q·a − offset·Σ a) + min · Σ a).
// The integer part is one vpdpbusd / pmaddwd stream; −offset·Σa is precomputed per activation
// sub-block and starts the integer accumulator, ad·Σa multiplies the min.
struct PanelFormat {
  int32_t sub;     // sub-block length in k: 16 or 32
  int32_t offset;  // integer offset of q
  bool has_min;    // whether the layout stores `min` (types with a per-block minimum)
  bool nibbles;    // q < 16 for every element: two k-groups share each byte (see PanelLayout)
};

// A packed weight matrix is a sequence of row groups of `rows` weight rows (16 for avx512, 8 for
// avx2; the last group zero-padded). A group holds its sub-blocks in k order, each
//   q:     [sub / k_group][rows][k_group] bytes   (k_group consecutive k of one row together:
//                                                  4 for vpdpbusd, 2 for pmaddwd)
//          or, with nibbles, [sub / (2·k_group)][rows][k_group] bytes whose low nibbles hold
//          k-group j and high nibbles k-group j + sub / (2·k_group) (half the memory; one
//          and / shift per loaded vector to unpack)
//   scale: [rows] floats
//   min:   [rows] floats                          (only when has_min)
// so one vector load yields k_group values of every row of the group (two k-groups' worth with
// nibbles).
struct PanelLayout {
  int32_t rows;
  int32_t k_group;
};
// Bytes per sub-block of a group: rows·sub (half with nibbles) + 4·rows (scales) + 4·rows (mins,
// when has_min).
// (Computed where used: an inline function here could be emitted with ISA instructions.)

// How a microkernel wants its activations: rows in tiles of `tile_rows` (the register tile's
// height), interleaved like the panels so one broadcast load yields k_group values of one row,
// stored as `elem_bytes`-byte signed integers (1 for vpdpbusd, 2 for pmaddwd).
struct ActLayout {
  int32_t tile_rows;
  int32_t k_group;
  int32_t elem_bytes;
};

// Quantized activations of m rows for one weight format, in row tiles (the last one padded with
// zero rows). Per tile and sub-block:
//   q:         [sub / k_group][tile_rows][k_group] elements
//   scale:     [tile_rows] floats        ad = amax / 127
//   corr:      [tile_rows] int32         −offset·Σa
//   min_scale: [tile_rows] floats        ad·Σa (formats with a min only)
// each array laid out [tile][sub-block][tile_rows]. The quantizer writes them, kernels only read.
struct GemmActivations {
  void* q;
  float* scale;
  int32_t* corr;
  float* min_scale;  // nullptr without min
  int64_t n_sub;     // sub-blocks per row (k / sub)
};

// One microkernel call: `n_groups` consecutive row groups of weights (`group_stride` bytes apart)
// over sub-blocks [sb0, sb0 + n_sb), times activation rows [0, m), written (or added, when
// `accumulate`) to y[r·y_stride + j] for output columns j < n_valid.
struct GemmTile {
  const uint8_t* panel;  // the first group's sub-block sb0
  int64_t group_stride;
  int64_t n_groups;
  int64_t sb0;
  int64_t n_sb;
  int64_t m;
  float* y;
  int64_t y_stride;
  int64_t n_valid;
  bool accumulate;
  // The panel slice the next call will read (next_groups groups, group_stride apart, next_bytes
  // each), prefetched into L2 while this call computes; nullptr: none.
  const uint8_t* next_panel;
  int64_t next_groups;
  int64_t next_bytes;
};

using GemmKernelFn = void (*)(const PanelFormat& format, const GemmActivations& acts, const GemmTile& tile);
// Quantizes rows [r0, r1) of x (row stride k floats) per sub-block of `format.sub` into the
// buffers behind `acts` (which the caller owns and may write), in the ISA's ActLayout. Round half
// to even; d = amax / 127, id = 1 / d (0 for an all-zero block).
using GemmQuantizeFn = void (*)(const PanelFormat& format, const float* x, int64_t k, int64_t r0, int64_t r1,
                                const GemmActivations& acts);

// Float weights (F16, BF16) use the same row groups and 32-k sub-blocks, without scales:
//   F16:  [32][rows] f16          one k of every row per load, widened to f32 for FMA
//   BF16: [16][rows][2] bf16      two k of every row per load, for vdpbf16ps
// and take unquantized activations in row tiles of kFloatTileRows: floats [32][tile_rows] per
// sub-block for F16 weights, bf16 pairs [16][tile_rows][2] for BF16 weights.
enum class PanelKind : int32_t { kInt8 = 0, kF16 = 1, kBF16 = 2 };

// Converts rows [r0, r1) of x (row stride k floats) into the float tile layout of `kind` at q.
using GemmFloatActsFn = void (*)(PanelKind kind, const float* x, int64_t k, int64_t r0, int64_t r1, void* q);
// Like GemmKernelFn for float panels: acts.q holds the converted activations, the other arrays
// of `acts` are unused.
using GemmFloatKernelFn = void (*)(PanelKind kind, const GemmActivations& acts, const GemmTile& tile);

// The layouts of each ISA's microkernel (constants: the driver needs them on any CPU, and may call
// an ISA unit's functions only where the CPU supports it). avx512: 16-row groups, 4-byte k-groups
// for vpdpbusd, int8 activations in tiles of 6 rows; avx2: 8-row groups, 16-bit pairs for pmaddwd.
inline constexpr PanelLayout kAvx512Panels{16, 4};
inline constexpr ActLayout kAvx512Acts{6, 4, 1};
inline constexpr PanelLayout kAvx2Panels{8, 2};
inline constexpr ActLayout kAvx2Acts{6, 2, 2};
// Float kernels hold no int32 accumulators, so their register tile is 12 activation rows high.
inline constexpr int32_t kFloatTileRows = 12;
inline constexpr PanelLayout kF16Panels{16, 1};
inline constexpr PanelLayout kBF16Panels{16, 2};
inline constexpr ActLayout kF16Acts{kFloatTileRows, 1, 4};
inline constexpr ActLayout kBF16Acts{kFloatTileRows, 2, 2};

// AMX-INT8 (avx512 CPUs whose OS grants the tile state): the avx512 integer panels as B tiles,
// activations in 16-row tiles of whole sub-blocks: ActLayout{kAmxTileRows, sub, 1} (an A tile's
// rows). Bit-identical to the avx512 kernels; gemm() takes it for steps of kAmxMinRows rows or
// more (gemm_takes_amx: formats of 32-element sub-blocks).
inline constexpr int32_t kAmxTileRows = 16;
inline constexpr int64_t kAmxMinRows = 16;
void gemm_amx_kernel(const PanelFormat& format, const GemmActivations& acts, const GemmTile& tile);
void gemm_amx_quantize(const PanelFormat& format, const float* x, int64_t k, int64_t r0, int64_t r1,
                       const GemmActivations& acts);

// AMX-BF16 for F16 panels (gemm_amx_f16.cpp): activations as bf16 hi / lo pairs, per 16-row tile and
// 32-k sub-block the rows' hi values ([16][32] bf16) then their lo values. As an ActLayout this
// only sizes the scratch (4 bytes per element in 16-row tiles): its k_group / elem_bytes do not
// describe the hi / lo planes, so the int8 reference and act_value() cannot read it.
inline constexpr ActLayout kAmxF16Acts{kAmxTileRows, 32, 4};
void gemm_amx_f16_kernel(PanelKind kind, const GemmActivations& acts, const GemmTile& tile);
void gemm_amx_f16_acts(PanelKind kind, const float* x, int64_t k, int64_t r0, int64_t r1, void* q);

struct GemmIsaKernels {
  GemmKernelFn kernel;
  GemmQuantizeFn quantize;
  GemmFloatKernelFn float_kernel;  // nullptr: no float GEMM on this ISA
  GemmFloatActsFn float_acts;
};

// Each ISA unit's entry. Call only where the CPU supports that ISA.
GemmIsaKernels gemm_avx2_kernels();
GemmIsaKernels gemm_avx512_kernels();
// The avx512 float kernels (their own translation unit), part of gemm_avx512_kernels().
void gemm_avx512_float_kernel(PanelKind kind, const GemmActivations& acts, const GemmTile& tile);
void gemm_avx512_float_acts(PanelKind kind, const float* x, int64_t k, int64_t r0, int64_t r1, void* q);

}  // namespace ember
