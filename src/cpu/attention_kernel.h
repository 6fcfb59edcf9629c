// AttnTileArgs / AttentionIsaKernel: the plain data the attention ISA units (attention_avx512.cpp,
// ...) share with the rest of the tree. Like isa_kernel.h it holds POD structs and function-pointer
// types only: anything inline here could be emitted in an ISA unit with AVX instructions and picked
// by the linker for every caller.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ember {

// One pass of flash attention (online softmax) for a tile of `n_q` query vectors that share one
// kv head of one sequence, over the positions [begin, end) of that sequence, read block by block
// through its block table (16 tokens per block, layout [block][n_head_kv][16][head_dim]).
//
// Query i sees the positions [lo[i], hi[i]] (inclusive) intersected with [begin, end). Writes its
// unnormalized state: m[i] = max score, l[i] = Σ exp(s - m), acc[i] = Σ exp(s - m)·v; a query
// that sees nothing of the range (a chunk of a split range) ends with m = -inf, l = 0, acc = 0.
// Slots of a block outside [begin, end) are never used (they may hold anything, NaN included).
struct AttnTileArgs {
  const float* q;      // [n_q][head_dim_pad], already multiplied by the scale; pad lanes are 0
  const int32_t* lo;   // [n_q] first visible position
  const int32_t* hi;   // [n_q] last visible position (inclusive)
  const int32_t* pos;  // [n_q] the query's own position (ALiBi distance)
  const float* slope;  // [n_q] ALiBi slopes, or nullptr for none
  int32_t n_q;
  int32_t head_dim;
  int32_t head_dim_pad;  // head_dim rounded up to 16 (row stride of q, acc and the tile scratch)
  float softcap;         // > 0: s = softcap·tanh(s / softcap); 0: none

  // K and V of this kv head: block b of the pool starts at base + b·block_stride; within it, the
  // token in slot t at + t·row_bytes. dtype: DType id (0 = F32, 1 = F16, 8 = Q8_0: head_dim a
  // multiple of 32).
  const uint8_t* k_base;
  const uint8_t* v_base;
  int64_t k_block_stride;
  int64_t v_block_stride;
  int64_t k_row_bytes;
  int64_t v_row_bytes;
  uint32_t k_dtype;
  uint32_t v_dtype;
  const int32_t* block_table;  // the sequence's blocks, position p in block_table[p / 16] slot p % 16

  int32_t begin;  // positions [begin, end), end > begin
  int32_t end;

  float* m;        // [n_q]
  float* l;        // [n_q]
  float* acc;      // [n_q][head_dim_pad]
  float* scratch;  // 64-byte aligned, 2·16·head_dim_pad floats: one block's K and V as f32
};

using AttnTileFn = void (*)(const AttnTileArgs& args);
// y[i] = exp(x[i]) as the kernels compute it (tests measure the approximation error).
using AttnExpFn = void (*)(const float* x, float* y, int64_t n);

struct AttentionIsaKernel {
  AttnTileFn tile;
  AttnExpFn exp;
  int32_t head_dim_multiple;  // tile handles head_dim that are multiples of this (else: scalar)
};

// Each ISA unit's attention kernels.
AttentionIsaKernel attention_scalar_kernel();
AttentionIsaKernel attention_avx2_kernel();
AttentionIsaKernel attention_avx512_kernel();

}  // namespace ember
