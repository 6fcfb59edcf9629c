// CpuBackend: the CPU implementation of the backend's coarse ops (DESIGN.md §4) — matmul on
// quantized weights (GEMV for a few rows, the repacked GEMM for more), norms, RoPE, GLUs,
// elementwise ops, get_rows, KV stores and paged attention — over one kernel table per ISA and the
// engine's thread pool, with all step scratch sized up front by reserve().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "cpu/attention.h"
#include "cpu/cpu_kernels.h"
#include "cpu/gemm.h"
#include "cpu/kv_layout.h"
#include "cpu/matmul.h"
#include "cpu/ops.h"
#include "cpu/rope.h"

namespace ember {

struct CpuBackendOptions {
  int n_threads = 0;       // 0: every usable CPU
  std::optional<Isa> isa;  // unset: select_isa() (the best, or EMBER_ISA)
  // Repack weights at load time for the prefill GEMM (costs CpuBackend::packed_bytes() of memory
  // beside the mapped weights). Off: every matmul runs the GEMV path.
  bool repack_weights = true;
  // Activation rows from which a matmul on packed weights takes the GEMM: below it the GEMV path
  // reads the original blocks. Unset: EMBER_GEMM_MIN_ROWS when set (A/B runs), else
  // default_gemm_min_rows(isa, type), per matrix.
  std::optional<int64_t> gemm_min_rows = std::nullopt;
  // On avx512, matmuls of any row count on integer-packed weights take the GEMM (one-row kernel
  // for decode) instead of the GEMV on the original blocks below gemm_min_rows: a fifth of the
  // instructions per block for 5-33 % more bytes, and one kernel family for every row count, so a
  // sequence's logits do not depend on what else is in its batch. Unset: EMBER_DECODE_ON_PACKED=0
  // or 1 when set (A/B runs), else default_decode_on_packed() (which path decodes faster depends
  // on the CPU; docs/benchmarks.md). prepare(w, repack, invariant_rows = true) takes the panels
  // for such a matrix whatever this says.
  std::optional<bool> decode_on_packed = std::nullopt;
  // Steps of 16+ rows on AMX tiles where the CPU and OS allow it (gemm_takes_amx): integer panels
  // bit-identical to the VNNI kernels, F16 panels within 2^-17 per product of exact. Off: A/B runs.
  bool amx = true;
};

// Whether decode rows take the packed panels by default on this CPU: yes except on AMD. Measured
// (docs/benchmarks.md): on Sapphire Rapids the one-row GEMM kernel decoded from parity to 31 %
// faster than the GEMV; on Zen 5 the GEMV reads the blocks at the full memory bandwidth and the
// one-row kernel reached 0.47-0.95x its speed (gemv_bench), 6-30 % fewer tokens/s end to end.
// Other AMD generations (and Hygon's Zen-based CPUs) were not measured: assumed alike.
bool default_decode_on_packed(const CpuFeatures& cpu);

// Activation rows from which a matmul on a `type` matrix packed for `isa` runs faster on the GEMM
// than on the GEMV (measured with `gemv_bench THREADS all ROWS`, docs/benchmarks.md): 2 for the
// 32-element block types (Q4_0 ... Q8_0) and BF16 on avx512, whose GEMV decodes each block again
// for every row while the GEMM reads the panels once; 3 or 4 for the K-quants and IQ4, whose panels
// hold 1.3-3x the file's bytes; 4 wherever it was not measured to be earlier.
int64_t default_gemm_min_rows(Isa isa, DType type);

// The most one step asks of the backend: reserve() sizes every scratch buffer for it, so no op
// allocates while a step runs.
struct StepLimits {
  int64_t max_rows = 1;   // activation rows (tokens) per step
  int64_t max_k = 0;      // the widest matmul input row (n_embd, n_ff, ...)
  int64_t max_n_rot = 0;  // rotary dims per head (0: no RoPE)
  int32_t n_head = 0;     // attention shape (n_head = 0: no attention)
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
};

// A weight matrix as the backend uses it: the original blocks (GEMV) and, when repacking is on and
// the ISA has a GEMM kernel for the type, its packed panels. Shapes: w.n_out rows of w.k.
struct Linear {
  WeightMatrix w{};
  std::optional<PackedWeights> packed;
  // Rows below gemm_min_rows take the packed panels too (avx512 integer panels, decode_on_packed or
  // prepare's invariant_rows): every row count then runs one kernel family.
  bool rows_on_packed = false;
  // Activation rows from which matmuls on `packed` take the GEMM (CpuBackendOptions::gemm_min_rows).
  int64_t gemm_min_rows = 4;
};

// One caller at a time (the engine's step thread): the pool and the scratch are not shared.
class CpuBackend {
 public:
  // Throws Error for an unusable option (unknown / unsupported EMBER_ISA, bad thread count, a
  // gemm_min_rows below 1, an EMBER_GEMM_MIN_ROWS not in [1, 2^20], an EMBER_DECODE_ON_PACKED other
  // than 0 or 1).
  explicit CpuBackend(const CpuBackendOptions& options = {});
  ~CpuBackend();
  CpuBackend(const CpuBackend&) = delete;
  CpuBackend& operator=(const CpuBackend&) = delete;

  Isa isa() const noexcept { return kernels_->isa; }
  // The kernel table's name, with "+amx" once a prepared matrix will run its prefill GEMMs on AMX
  // tiles ("avx512+amx").
  std::string kernels_name() const;
  int n_threads() const noexcept { return pool_.n_threads(); }
  ThreadPool& pool() noexcept { return pool_; }
  const CpuKernels& kernels() const noexcept { return *kernels_; }
  const CpuOps& ops() const noexcept { return *ops_; }

  // Load time. Throws Error(kInvalidArgument) when the type has no matmul kernels or k does not fit
  // its blocks. repack = false keeps the matrix on the GEMV path whatever the options say (for
  // weights that only ever see a few rows, like the output matrix). invariant_rows: where the
  // matrix gets panels that can serve every row count (avx512 integer panels), use them for every
  // row count even where decode_on_packed is off (batch invariance).
  Linear prepare(const WeightMatrix& w, bool repack = true, bool invariant_rows = false);
  // Whether prepare(w, true, invariant_rows) of a `dtype` matrix computes each activation row the
  // same way bit for bit whatever the row count of the matmul: true when the matrix would stay on
  // the GEMV (one vec_dot per row and output, independent of m), or get avx512 integer panels that
  // serve every row count (decode_on_packed or invariant_rows; one kernel family for every m, AMX's
  // integer tiles equal VNNI). False for F16 / BF16 panels (GEMV below gemm_min_rows, float GEMM
  // or AMX-BF16 above) and for any packed type off avx512 (GEMV below gemm_min_rows, GEMM above).
  // A batch-invariant model repacks only the types with rows_invariant(dtype, true).
  bool rows_invariant(DType dtype, bool invariant_rows) const noexcept;
  // Memory held by repacked weights of every prepare() so far.
  size_t packed_bytes() const noexcept { return packed_bytes_; }

  // Sizes every scratch buffer for steps within `limits` (call at load time; calling again grows).
  // Ops abort (EMBER_CHECK) on a step beyond them: the hot path never allocates.
  void reserve(const StepLimits& limits);

  // y [m][w.n_out] = x [m][w.k] · wᵀ.
  void matmul(const Linear& w, const float* x, int64_t m, float* y);
  // ys[j] [m][ws[j].n_out] = x · ws[j]ᵀ (+ biases[j] on every row, when `biases` is not empty) for
  // 1-4 matrices of the same k (q / k / v, gate / up): on the GEMV path one quantization of x and one
  // parallel job for all of them. (The CUDA backend adds the biases in the GEMV's store.)
  void matmul_many(std::span<const Linear* const> ws, const float* x, int64_t m, std::span<float* const> ys,
                   std::span<const float* const> biases = {});
  // y [m][w.n_out] += x · wᵀ (the residual add after an output projection), through `scratch`
  // ([m][w.n_out]): matmul into it, then add. (The CUDA backend's GEMV adds in place.)
  void matmul_accumulate(const Linear& w, const float* x, int64_t m, float* y, float* scratch);
  // y [m][n] = act(x · gateᵀ) · (x · upᵀ), act SiLU (swiglu) or, with `gelu`, tanh-GELU (geglu),
  // through gate_up ([m][2n] scratch). up == nullptr: `gate` holds both as [gate; up] rows (Phi-3).
  void matmul_glu(const Linear& gate, const Linear* up, const float* x, int64_t m, bool gelu, float* gate_up, float* y);

  // Row ops over n_rows rows of n floats, split across the threads (see cpu/ops_isa.h for each).
  void rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps);
  void layer_norm(const float* x, const float* weight, const float* bias, float* y, int64_t n_rows, int64_t n,
                  float eps);
  void softmax(const float* x, float* y, int64_t n_rows, int64_t n, float scale, float softcap);
  // y[r] = act(g[r]) · u[r] for rows of n; g and u rows `stride` floats apart (a fused [gate|up]
  // matmul output passes g = out, u = out + n, stride = 2n); y rows are n apart.
  void swiglu(const float* g, const float* u, int64_t stride, float* y, int64_t n_rows, int64_t n);
  void geglu(const float* g, const float* u, int64_t stride, float* y, int64_t n_rows, int64_t n);
  void add(const float* a, const float* b, float* y, int64_t n_rows, int64_t n_cols, int64_t b_stride);
  void mul(const float* a, const float* b, float* y, int64_t n_rows, int64_t n_cols, int64_t b_stride);
  void scale(const float* x, float* y, int64_t n, float s);
  // dst rows [n_rows][dst_stride] <- src rows [n_rows][src_stride], n_cols floats each (splitting a
  // fused projection's output).
  void copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t n_rows, int64_t n_cols);
  // x[i] = cap · tanh(x[i] / cap) over n floats (logit soft-capping), split across the threads.
  // Precondition: cap > 0.
  void softcap(float* x, int64_t n, float cap);

  // RoPE in place on n_tokens rows (token_stride floats apart) of n_head heads of head_dim, at
  // `positions`, with `table`'s frequencies. Needs reserve() with max_n_rot >= table.n_rot().
  void rope(float* x, int64_t n_tokens, int64_t token_stride, int64_t n_head, int64_t head_dim, const RopeTable& table,
            const int32_t* positions);
  // The same with the rows of RopeTable::cos_sin computed by the caller ([n_tokens][n_rot]): a
  // forward pass computes them once per step and table and shares them by every layer, q and k.
  void rope(float* x, int64_t n_tokens, int64_t token_stride, int64_t n_head, int64_t head_dim, int64_t n_rot,
            bool neox, const float* cos_sin);
  // q's heads then k's (rows q_stride and k_stride floats apart), as two rope() calls (the CUDA
  // backend makes them one launch).
  void rope_qk(float* q, int64_t q_stride, int64_t n_head_q, float* k, int64_t k_stride, int64_t n_head_k,
               int64_t n_tokens, int64_t head_dim, int64_t n_rot, bool neox, const float* cos_sin) {
    rope(q, n_tokens, q_stride, n_head_q, head_dim, n_rot, neox, cos_sin);
    rope(k, n_tokens, k_stride, n_head_k, head_dim, n_rot, neox, cos_sin);
  }

  // dst [n_ids][n_cols] = rows ids of an embedding matrix of `type`, dequantized.
  void get_rows(DType type, const void* src, int64_t n_src_rows, int64_t n_cols, const int32_t* ids, int64_t n_ids,
                float* dst);

  // The paged KV cache (cpu/kv_layout.h, cpu/attention.h).
  void store_kv(const PagedKvView& kv, std::span<const KvSeq> seqs, std::span<const KvRow> rows, const float* k,
                const float* v);
  void attention(const PagedKvView& kv, std::span<const KvSeq> seqs, std::span<const KvRow> rows, const float* q,
                 const AttentionParams& params, float* out);

  int64_t argmax(const float* x, int64_t n) const { return ops_->argmax(x, n); }
  void top_k(const float* x, int64_t n, int64_t k, float* values, int32_t* indices) const {
    ops_->top_k(x, n, k, values, indices);
  }

 private:
  template <typename Fn>
  void for_rows(int64_t n_rows, int64_t row_floats, Fn&& fn);
  bool uses_gemm(const Linear& w, int64_t m) const noexcept;

  CpuBackendOptions options_;
  bool uses_amx_ = false;  // a prepared matrix is one amx_serves()
  ThreadPool pool_;
  const CpuKernels* kernels_;
  const CpuOps* ops_;
  const AttentionKernels* attention_kernels_;
  size_t packed_bytes_ = 0;
  bool packed_rows_ = false;
  bool float_gemm_ = false;  // some packed weights are F16 / BF16 (4-byte GEMM activations)
  StepLimits limits_{};
  MatmulScratch matmul_scratch_;
  GemmScratch gemm_scratch_;
  std::vector<float> cos_sin_;                                          // [max_rows][max_n_rot]
  std::vector<std::unique_ptr<AttentionScratch>> attention_scratches_;  // one per attention shape
};

}  // namespace ember
