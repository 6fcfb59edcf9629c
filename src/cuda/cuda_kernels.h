// The CUDA backend's kernels (DESIGN.md §4) as host-callable launchers: each enqueues its work on
// `stream` and returns at once (no synchronization, no allocation). Pointers are device memory
// unless a comment says otherwise. Each launcher has a CPU counterpart (cpu/ops_isa.h, cpu/matmul.h,
// cpu/attention.h, cpu/kv_layout.h) that is its reference: tests/cuda compares every one of them on
// random data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include "cpu/attention.h"
#include "cpu/kv_layout.h"
#include "ember/dtype.h"

namespace ember::cuda {

// A weight matrix in device memory: n_out rows of k values, each row the file's blocks of dtype
// (GGUF layout, bit for bit), rows contiguous.
struct DeviceMatrix {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t n_out = 0;
  int64_t k = 0;
};

// ---- matmul (matmul_kernels.cu) -------------------------------------------------------------

// Whether gemv() and dequantize_f16() take `dtype`: every weight type the CPU runs (F32, F16, BF16,
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K to Q6_K, IQ4_NL, IQ4_XS), not the activation formats.
bool matmul_supports(DType dtype) noexcept;
// The most activation rows one gemv() call takes; more rows take the cuBLAS path.
inline constexpr int64_t kGemvMaxRows = 8;
// y [m][w.n_out] = x [m][w.k] · wᵀ for 1 <= m <= kGemvMaxRows, reading the weight blocks directly
// (each block read once for all m rows), float accumulation. Precondition: matmul_supports, k a
// whole number of the type's blocks.
void gemv(const DeviceMatrix& w, const float* x, int64_t m, float* y, cudaStream_t stream);
// The most matrices one gemv_many() launch takes.
inline constexpr int kGemvMaxParts = 3;
// ys[i] = gemv(ws[i], x) (+ biases[i], broadcast over the m rows) for 1 to kGemvMaxParts matrices
// of one dtype and k (q, k and v; gate and up) in one launch: the same bits as one gemv() each and
// then add(ys[i], biases[i]), fewer launches. `biases`: empty, or one per matrix (null: none).
void gemv_many(std::span<const DeviceMatrix> ws, const float* x, int64_t m, std::span<float* const> ys,
               std::span<const float* const> biases, cudaStream_t stream);
// y [m][w.n_out] += x · wᵀ: the residual add fused into the GEMV, the same bits as gemv() into a
// scratch then add(y, scratch).
void gemv_accumulate(const DeviceMatrix& w, const float* x, int64_t m, float* y, cudaStream_t stream);
// The GLU activations (swiglu, geglu's tanh GELU).
enum class Glu : int { kNone = 0, kSilu = 1, kGeluTanh = 2 };
// y [m][n] = act(x · gateᵀ) · (x · upᵀ) for gate and up of one type and shape (n = n_out): one
// launch, each block running the same rows of both; the same bits as gemv() of each then
// swiglu() / geglu().
void gemv_glu(const DeviceMatrix& gate, const DeviceMatrix& up, Glu act, const float* x, int64_t m, float* y,
              cudaStream_t stream);
// Mixture-of-experts GEMVs: w is expert 0 of n_expert matrices expert_bytes apart (a merged
// ffn_*_exps tensor). For each of the n_entries entries i: y[i] [w.n_out] = x[i / x_group] · W_eᵀ
// with e = experts[i] (device) — the same bits as gemv() of that expert's matrix on that row (the
// one path whose choice depends on alignment, the plain types' vector loads, needs k % 4 or 8 == 0,
// which makes every row, so every expert, a multiple of 16 bytes). An expert outside [0, n_expert)
// traps. (Each entry reads its expert's blocks: decode-sized steps.) x rows x_stride floats apart
// and y rows y_stride apart (0: w.k and w.n_out; an x_stride other than k a multiple of 4, so every
// row is as aligned as the first): latent attention's per-head products read and write the heads'
// slices of [row][head] rows in place.
void gemv_experts(const DeviceMatrix& w, int64_t expert_bytes, int32_t n_expert, const int32_t* experts,
                  int64_t n_entries, const float* x, int32_t x_group, float* y, cudaStream_t stream,
                  int64_t x_stride = 0, int64_t y_stride = 0);
// The same for act(x · gate_eᵀ) · (x · up_eᵀ) (as gemv_glu), gate and up of one shape and layout.
void gemv_experts_glu(const DeviceMatrix& gate, const DeviceMatrix& up, int64_t expert_bytes, int32_t n_expert, Glu act,
                      const int32_t* experts, int64_t n_entries, const float* x, int32_t x_group, float* y,
                      cudaStream_t stream);
// out [w.n_out][w.k] = w dequantized to f16 (the cuBLAS path's operand).
void dequantize_f16(const DeviceMatrix& w, __half* out, cudaStream_t stream);
// out[i] = (half) x[i] over n floats.
void f32_to_f16(const float* x, __half* out, int64_t n, cudaStream_t stream);

// ---- mixture of experts (moe_kernels.cu) ------------------------------------------------------

// The most experts a token may use (route_experts' and combine_experts' k).
inline constexpr int32_t kMaxExpertsUsed = 32;
// The most expert groups route_experts takes (DeepSeek V3: 8).
inline constexpr int32_t kMaxExpertGroups = 32;
// How route_experts chooses and weighs: the CPU's ExpertRouting (moe.h), with its gating.
struct ExpertRoute {
  int32_t n_expert = 0;
  int32_t k = 0;                // experts per row, 1..min(n_expert, kMaxExpertsUsed)
  bool sigmoid = false;         // probabilities: a sigmoid of each logit, else the row's softmax
  bool normalize = false;       // the weights divided by their sum (at least 2^-14, as the CPU's)
  float scale = 0.0f;           // then times this; 0 or 1: none
  const float* bias = nullptr;  // device [n_expert]: added to the probabilities for the choice only
  // > 1 (at most kMaxExpertGroups): the experts are n_group equal groups, and a row chooses within
  // the n_group_used groups whose two largest biased probabilities sum highest.
  int32_t n_group = 0;
  int32_t n_group_used = 0;
};
// probs [n_rows][n_expert] = each row's probabilities (may be the logits' buffer); experts /
// weights [n_rows][k] = its k best by biased probability within the chosen groups (the larger
// first, the lower expert among equals) and their unbiased probabilities, normalized and scaled:
// the CPU's gate_router_logits then select_experts.
void route_experts(const float* logits, int64_t n_rows, const ExpertRoute& route, float* probs, int32_t* experts,
                   float* weights, cudaStream_t stream);
// out [n_rows][n_cols] = for each row r, Σ over its k entries i = r·k + j in increasing experts[i]
// of weights[i] · y[positions[i]] (positions null: y[i]), the CPU moe_experts' order; then +
// shared[r] (null: none), times sigmoid(shared_gate[r]) where shared_gate is not null.
void combine_experts(const float* y, const int32_t* positions, const int32_t* experts, const float* weights,
                     int64_t n_rows, int32_t k, int64_t n_cols, const float* shared, const float* shared_gate,
                     float* out, cudaStream_t stream);

// ---- int8 GEMM (int8_gemm_kernels.cu): prefill on the quantized blocks -------------------------

// The values per block of both operands (and per mma.sync m16n8k32 k step).
inline constexpr int64_t kInt8GemmBlock = 32;
// Whether int8_gemm() takes `dtype`: the formats whose values are int8 with a scale (and a min) per
// 32: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, the super-blocks Q4_K, Q5_K, IQ4_XS, Q3_K, Q6_K
// (an int scale per 16 values, no min) and Q2_K (an int scale and min per 16): every block type.
bool int8_gemm_supports(DType dtype) noexcept;
// Activations x [m][k] quantized per 32 values bit for bit as the CPU's quantize_row_q8_1: q [m][k]
// the int8 values (Q8_0's too), d [m][k / 32] the f16 scales, s [m][k / 32] the f16 d·Σq, as floats;
// and sum_d [m][k / 32] = d·Σq in float (the min term of the formats whose CPU dots take Q8_K: an
// f16 s overflows past 65504, for a block whose values sum past that).
struct Q8_1Rows {
  int8_t* q;
  float* d;
  float* s;
  float* sum_d;
};
void quantize_q8_1_rows(const float* x, int64_t m, int64_t k, const Q8_1Rows& out, cudaStream_t stream);
// y [m][w.n_out] = x · wᵀ from x quantized by quantize_q8_1_rows (q 16-byte aligned) and w's own
// blocks (int8_gemm_supports), on int8 tensor cores: per output and 32 values, the exact integer
// sum times w's d · x's d, plus w's min times x's s, accumulated in float in k order. That is the
// CPU's vec_dot_*_q8_0 and vec_dot_*_q8_1 bit for bit; the super-block formats, whose CPU dots take
// Q8_K activations (one scale per 256), get the same per-32 sums with Q4_K's min -dmin·min_j times
// sum_d, Q3_K / Q6_K's sums of 16 times their int scales before the float scaling, and Q2_K's
// Σ (scale·code)·q plus float(Σ min·q) · (-dmin · x's d), its mins per 16 as int8 operands.
void int8_gemm(const DeviceMatrix& w, const Q8_1Rows& x, int64_t m, float* y, cudaStream_t stream);

// ---- row ops (ops_kernels.cu); shapes and semantics as CpuBackend's namesakes -----------------

void rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps, cudaStream_t stream);
// y[r] = act(g[r]) · u[r] over rows of n; g and u rows `stride` floats apart, y rows n apart.
void swiglu(const float* g, const float* u, int64_t stride, float* y, int64_t n_rows, int64_t n, cudaStream_t stream);
void geglu(const float* g, const float* u, int64_t stride, float* y, int64_t n_rows, int64_t n, cudaStream_t stream);
// y = a + b over n_rows rows of n_cols; b rows b_stride floats apart (0: one row for every row).
void add(const float* a, const float* b, float* y, int64_t n_rows, int64_t n_cols, int64_t b_stride,
         cudaStream_t stream);
void scale(const float* x, float* y, int64_t n, float s, cudaStream_t stream);
// x[i] = cap · tanh(x[i] / cap); cap > 0.
void softcap(float* x, int64_t n, float cap, cudaStream_t stream);
// RoPE in place, as CpuBackend::rope with a precomputed cos_sin [n_tokens][n_rot] (device memory,
// RopeTable::cos_sin's layout).
void rope(float* x, int64_t n_tokens, int64_t token_stride, int64_t n_head, int64_t head_dim, int64_t n_rot, bool neox,
          const float* cos_sin, cudaStream_t stream);
// q's and k's heads (n_head_q and n_head_k per token, rows q_stride and k_stride floats apart) in
// one launch: the same bits as rope() on each.
void rope_qk(float* q, int64_t q_stride, int64_t n_head_q, float* k, int64_t k_stride, int64_t n_head_k,
             int64_t n_tokens, int64_t head_dim, int64_t n_rot, bool neox, const float* cos_sin, cudaStream_t stream);
// dst [n_ids][n_cols] = rows `ids` (device) of an n_src_rows x n_cols matrix of `type`,
// dequantized. Precondition: matmul_supports(type).
void get_rows(DType type, const void* src, int64_t n_src_rows, int64_t n_cols, const int32_t* ids, int64_t n_ids,
              float* dst, cudaStream_t stream);
// out[r] = the index of the largest of row r's n floats (the first on ties).
void argmax_rows(const float* x, int64_t n_rows, int64_t n, int32_t* out, cudaStream_t stream);
// out[r] = row r's greedy token (Batch::kToken's rule): argmax_rows' index, but -1 when no value is
// a number above -inf (every value -inf or NaN).
void greedy_rows(const float* x, int64_t n_rows, int64_t n, int32_t* out, cudaStream_t stream);
// The most candidates top_k_rows() selects per row.
inline constexpr int kMaxTopK = 256;
// values / ids [n_rows][k]: each row's k best values, best first — the larger value, then the lower
// index; a NaN ranks (and is written) as -inf, -0 ties +0 — the sampler's top-k
// (select_top_candidates, Batch::kTopK). 1 <= k <= min(n, kMaxTopK). Rows longer than 4096 are cut into slices selected
// in parallel: scratch_values / scratch_ids hold top_k_scratch_entries() each (unused, and may be null, for shorter
// rows) (top_k_kernels.cu).
void top_k_rows(const float* x, int64_t n_rows, int64_t n, int64_t k, float* values, int32_t* ids,
                float* scratch_values, int32_t* scratch_ids, cudaStream_t stream);
size_t top_k_scratch_entries();
// The rows of length n one pass of top_k_rows() selects in for its k (1 <= k <= kMaxTopK; all of
// them when n <= 4096).
int64_t top_k_rows_per_launch(int64_t n, int64_t k);

// ---- paged KV cache and attention (attention_kernels.cu) -------------------------------------

// A step's sequences as the kernels read them: sequence s's block table is
// block_tables[s * max_blocks, ...) and it holds n_tokens[s] positions once the step's rows are
// stored (the CPU's KvSeq list, flattened).
struct DeviceKvSeqs {
  const int32_t* block_tables = nullptr;  // [n_seqs][max_blocks]
  const int32_t* n_tokens = nullptr;      // [n_seqs]
  int32_t n_seqs = 0;
  int32_t max_blocks = 0;
};

// Whether the pools' dtypes are ones the kernels read and write for heads of head_dim values: F32,
// F16, and Q8_0 when head_dim is a multiple of 32 (the CPU's kv_dtype_supported).
bool kv_supports(DType k_dtype, DType v_dtype, int32_t head_dim) noexcept;
// As cpu store_kv: k and v [n_rows][n_head_kv][head_dim] floats into the slots of rows[i] (device
// KvRow array); kv's pools are device memory. Pools whose V is the K pool (latent attention's: the
// values are the key rows) take k alone.
void store_kv(const PagedKvView& kv, const DeviceKvSeqs& seqs, const KvRow* rows, int32_t n_rows, const float* k,
              const float* v, cudaStream_t stream);
// rope_qk(q, k) of the rows (q and k contiguous rows of n_head_q and kv.n_head_kv heads, cos_sin
// [n_rows][n_rot]) then store_kv(k, v), in one launch: the same bits, q and k rotated in place too.
void rope_store_kv(const PagedKvView& kv, const DeviceKvSeqs& seqs, const KvRow* rows, int32_t n_rows, float* q,
                   int32_t n_head_q, float* k, const float* v, int32_t n_rot, bool neox, const float* cos_sin,
                   cudaStream_t stream);
// Bytes of workspace attention() needs for up to max_rows rows of n_head heads of head_dim over
// contexts of up to max_context tokens.
size_t attention_workspace_bytes(int64_t max_rows, int32_t n_head, int32_t head_dim, int32_t max_context) noexcept;
// The widest heads attention() takes (latent attention's cached row of 512 + 64).
inline constexpr int32_t kAttentionMaxHeadDim = 576;
// As cpu attention: out [n_rows][n_head * head_dim] from q [n_rows][n_head * head_dim], row i
// attending causally to positions [0, rows[i].pos] of its sequence (within params.window when set).
// params.alibi_slopes must be nullptr; params.split_tokens < 0 forbids splitting one row's context
// across blocks (batch invariance), otherwise the kernel decides. `max_context` bounds every
// sequence's n_tokens and sized `workspace`. `row_ids` (device, optional): the call computes only
// rows row_ids[0..n_row_ids) of the n_rows (the rows a step's query tiles leave, tiled_attention
// taking the others); an id outside [0, n_rows) traps.
void attention(const PagedKvView& kv, const DeviceKvSeqs& seqs, const KvRow* rows, int32_t n_rows, const float* q,
               const AttentionParams& params, int32_t max_context, void* workspace, size_t workspace_bytes, float* out,
               cudaStream_t stream, const int32_t* row_ids = nullptr, int32_t n_row_ids = 0);

// ---- tiled attention on tensor cores (tiled_attention_kernels.cu) ----------------------------

// A run of consecutive rows of one sequence, at most kQueryTileRows: tiled_attention()'s unit.
struct QueryTile {
  int32_t first_row = 0;
  int32_t n_rows = 0;
};
inline constexpr int32_t kQueryTileRows = 64;
inline constexpr int32_t kMaxTiledHeadDim = 128;
// Runs shorter than this (decode rows, short runs of a mixed step) go row by row: a tile computes
// 16 rows per warp whatever it holds.
inline constexpr int32_t kMinTileRows = 16;
// Fewer (tile, head) blocks than this and the whole step goes row by row: a short chunk at a long
// context would walk it in a few blocks, where the per-row kernel splits it over the GPU. (About
// one per SM of an H200; plan_query_tiles' min_blocks.)
inline constexpr int64_t kMinTiledBlocks = 128;
// Whether tiled_attention() takes these pools and heads: kv_supports, head_dim even, 2 to 128.
bool tiled_attention_supports(DType k_dtype, DType v_dtype, int32_t head_dim) noexcept;
// A step's rows split for attention (host side): runs of at least kMinTileRows consecutive rows of
// one sequence, cut into tiles of at most kQueryTileRows, for tiled_attention(); the other rows'
// indices in lone_rows, for attention()'s row_ids. False, with both lists empty, when there are no
// tiles or they would make fewer than min_blocks blocks over n_head heads: attention() takes every
// row.
bool plan_query_tiles(std::span<const KvRow> rows, int32_t n_head, int64_t min_blocks, std::vector<QueryTile>& tiles,
                      std::vector<int32_t>& lone_rows);
// As attention() (never split), for the rows of `tiles` (device memory: n_tiles tiles within the
// n_rows rows), on tensor cores: each K and V value is read once per tile rather than once per row.
// q·scale, K, V and the softmax weights are rounded to f16 for the products (f32 accumulation and
// softmax): within ~1e-3 relative error of the CPU's rather than float rounding (and values past
// f16's ±65504 overflow), bits that differ from attention()'s (so never for batch-invariant steps).
void tiled_attention(const PagedKvView& kv, const DeviceKvSeqs& seqs, const KvRow* rows, int32_t n_rows,
                     const QueryTile* tiles, int32_t n_tiles, const float* q, const AttentionParams& params, float* out,
                     cudaStream_t stream);

}  // namespace ember::cuda
