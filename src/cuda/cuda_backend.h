// CudaBackend: the CUDA implementation of the backend's coarse ops (DESIGN.md §4) — the same ops
// and shapes as CpuBackend, on device pointers, enqueued in order on one stream. Matmuls of up to
// kGemvMaxRows rows run the quantized GEMV on the GGUF blocks; more rows dequantize the weight to
// f16 and run a cuBLAS tensor-core GEMM (an F32 weight: cuBLAS's FP32 GEMM).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "cpu/attention.h"
#include "cpu/cpu_backend.h"
#include "cpu/kv_layout.h"
#include "cuda/cuda_kernels.h"
#include "cuda/device_buffer.h"

namespace ember::cuda {

struct CublasLibrary;  // cublas_library.h

struct CudaBackendOptions {
  int device = 0;
  // Every row's result independent of the step's row count (--deterministic): matmuls of any row
  // count run the GEMV, in chunks of kGemvMaxRows, never the f16 GEMM.
  bool rows_invariant = false;
  // Past kGemvMaxRows rows, the types of int8_gemm_supports run int8_gemm on activations quantized
  // to Q8_1 (the CPU's numerics for the 32-value formats) instead of the dequantized f16 weights
  // through cuBLAS.
  bool int8_gemm = false;
};

// A weight matrix uploaded to the device (its GGUF blocks, unchanged).
struct CudaLinear {
  DeviceMatrix w{};
  DeviceBuffer storage;
};

// A merged expert tensor (ffn_*_exps) uploaded whole: n_expert matrices of one shape, expert_bytes
// apart, their GGUF blocks unchanged; w is expert 0.
struct CudaExperts {
  DeviceMatrix w{};
  int64_t expert_bytes = 0;
  int32_t n_expert = 0;
  DeviceBuffer storage;
  // Expert e as a matrix: a view into the storage (its own storage empty).
  CudaLinear expert(int32_t e) const {
    CudaLinear l;
    l.w = w;
    l.w.data = static_cast<const std::byte*>(w.data) + static_cast<size_t>(e) * static_cast<size_t>(expert_bytes);
    return l;
  }
};

// A step's sequences and rows on the device (uploaded once per step, read by every layer).
struct CudaStepKv {
  DeviceKvSeqs seqs{};
  const KvRow* rows = nullptr;
  int32_t n_rows = 0;
  int32_t max_context = 0;  // bounds every sequence's n_tokens (sized the attention workspace)
  // The rows split by plan_query_tiles: attention runs the tiles on tensor cores and the lone rows
  // row by row. Set only for pools tiled_attention_supports and steps that are not
  // batch-invariant (the GPU layers decide); tiles null: every row row by row.
  const QueryTile* tiles = nullptr;
  int32_t n_tiles = 0;
  const int32_t* lone_rows = nullptr;
  int32_t n_lone = 0;
};

// The device's name and memory, for the stats panel and `ember inspect`.
struct DeviceInfo {
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  size_t total_bytes = 0;
  size_t free_bytes = 0;
};

// The device's measured limits.
struct Roofline {
  double copy_gbs = 0;    // a 1 GiB device-to-device copy: bytes read + written per second / 1e9
  double f16_tflops = 0;  // a cuBLAS f16 GEMM (8192³, f32 accumulation)
};

// A captured sequence of the backend's work (a CUDA graph, instantiated), replayed by
// CudaBackend::replay(): a decode step's dozens of small kernels in one launch. Move-only.
class CudaGraph {
 public:
  CudaGraph() = default;
  ~CudaGraph();
  CudaGraph(CudaGraph&& other) noexcept;
  CudaGraph& operator=(CudaGraph&& other) noexcept;
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  bool valid() const noexcept { return exec_ != nullptr; }

 private:
  friend class CudaBackend;
  void* exec_ = nullptr;  // cudaGraphExec_t
};

// One caller at a time (the engine's step thread).
class CudaBackend {
 public:
  // Throws Error(kUnsupported) when no CUDA device is usable (naming why: no driver, no GPU, a
  // device index out of range, a GPU this build has no code for).
  explicit CudaBackend(const CudaBackendOptions& options = {});
  ~CudaBackend();
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  DeviceInfo info() const;
  // Makes this backend's device the calling thread's current one (CUDA's current device is per
  // thread: the engine steps on its own). Every entry point of a caller's thread calls it first.
  void make_current() const;
  // Median of several timed runs each (after a warm-up); allocates ~1.5 GiB while it runs.
  Roofline measure_roofline();
  cudaStream_t stream() const noexcept { return stream_; }

  // Load time: uploads the matrix's blocks (as upload_bytes). Throws Error(kUnsupported) for a type the kernels do
  // not take, Error(kOutOfMemory).
  CudaLinear upload(const WeightMatrix& w, std::string_view what);
  // Load time: n_expert matrices shaped as `first`, expert_bytes apart in host memory from
  // first.data (a merged ffn_*_exps tensor). Throws as upload().
  CudaExperts upload_experts(const WeightMatrix& first, int64_t expert_bytes, int32_t n_expert, std::string_view what);
  // Load time: `bytes` of host data copied to a new device buffer, on the backend's stream (its
  // later work reads them; pageable `data` may go at once, pinned must last to synchronize()).
  DeviceBuffer upload_bytes(const void* data, size_t bytes, std::string_view what);
  // Device memory shared by its owners (KV pools), freed with the last one. Throws
  // Error(kOutOfMemory).
  std::shared_ptr<void> allocate_shared(size_t bytes, std::string_view what);
  // Sizes the GEMM and attention scratch for steps within `limits` and contexts up to
  // `max_context` (load time; calling again grows). max_matrix_elements: the largest matrix the GEMM
  // dequantizes to f16 (not F16 ones, nor with int8_gemm the types it takes; 0: none).
  void reserve(const StepLimits& limits, int64_t max_matrix_elements, int32_t max_context);

  // Asynchronous copies on the stream (host memory must stay valid until the next synchronize()).
  void to_device(void* dst, const void* src, size_t bytes);
  void to_host(void* dst, const void* src, size_t bytes);
  void device_copy(void* dst, const void* src, size_t bytes);
  // dst rows [n_rows][dst_stride] ← src rows [n_rows][src_stride], n_cols floats each.
  void copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t n_rows, int64_t n_cols);
  // Waits for everything enqueued so far.
  void synchronize();

  // Stream capture: between begin_capture() and end_capture() the ops are recorded, not run (they
  // must not synchronize, allocate or copy host memory). end_capture() returns the instantiated
  // graph, or an invalid one when CUDA refused the capture (the caller then runs the ops directly).
  void begin_capture();
  CudaGraph end_capture();
  bool capturing() const noexcept { return capturing_; }
  // Enqueues one run of `graph` on the stream.
  void replay(const CudaGraph& graph);

  // The ops, as CpuBackend's namesakes (device pointers).
  void matmul(const CudaLinear& w, const float* x, int64_t m, float* y);
  void matmul_many(std::span<const CudaLinear* const> ws, const float* x, int64_t m, std::span<float* const> ys,
                   std::span<const float* const> biases = {});
  void matmul_accumulate(const CudaLinear& w, const float* x, int64_t m, float* y, float* scratch);
  void matmul_glu(const CudaLinear& gate, const CudaLinear* up, const float* x, int64_t m, bool gelu, float* gate_up,
                  float* y);
  // Mixture of experts (cuda_kernels.h's namesakes): the router's choice, the experts' GEMVs of a
  // decode-sized step (entry i: x row i / x_group by expert experts[i]), the weighted sum.
  void route_experts(const float* logits, int64_t n_rows, const ExpertRoute& route, float* probs, int32_t* experts,
                     float* weights);
  void matmul_experts(const CudaExperts& w, const int32_t* experts, int64_t n_entries, const float* x, int32_t x_group,
                      float* y);
  void matmul_experts_glu(const CudaExperts& gate, const CudaExperts& up, bool gelu, const int32_t* experts,
                          int64_t n_entries, const float* x, int32_t x_group, float* y);
  // Latent attention's per-head products in one GEMV launch: y row j (y_stride floats apart) =
  // heads[j % n_head] · x row j (x_stride floats apart) for j < n_rows · n_head, when the step is
  // GEMV-sized (n_rows <= kGemvMaxRows), the heads are one type, equally spaced in one allocation
  // (upload_experts' views), and the rows 16-byte aligned. False, with nothing done, otherwise.
  bool matmul_heads(std::span<const CudaLinear> heads, const float* x, int64_t x_stride, int64_t n_rows, float* y,
                    int64_t y_stride);
  void combine_experts(const float* y, const int32_t* positions, const int32_t* experts, const float* weights,
                       int64_t n_rows, int32_t k, int64_t n_cols, const float* shared, const float* shared_gate,
                       float* out);
  // dst [n_ids][n_cols] = rows ids (device) of src [n_src_rows][n_cols].
  void gather_rows(const float* src, int64_t n_src_rows, int64_t n_cols, const int32_t* ids, int64_t n_ids, float* dst);
  void rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps);
  void swiglu(const float* g, const float* u, int64_t stride, float* y, int64_t n_rows, int64_t n);
  void geglu(const float* g, const float* u, int64_t stride, float* y, int64_t n_rows, int64_t n);
  void add(const float* a, const float* b, float* y, int64_t n_rows, int64_t n_cols, int64_t b_stride);
  void scale(const float* x, float* y, int64_t n, float s);
  void softcap(float* x, int64_t n, float cap);
  // out[r] = row r's greedy token (Batch::kToken's rule; cuda::greedy_rows).
  void greedy_rows(const float* x, int64_t n_rows, int64_t n, int32_t* out);
  // values / ids [n_rows][k] = each row's k best (cuda::top_k_rows, with its scratch).
  void top_k_rows(const float* x, int64_t n_rows, int64_t n, int64_t k, float* values, int32_t* ids,
                  float* scratch_values, int32_t* scratch_ids);
  void rope(float* x, int64_t n_tokens, int64_t token_stride, int64_t n_head, int64_t head_dim, int64_t n_rot,
            bool neox, const float* cos_sin);
  void rope_qk(float* q, int64_t q_stride, int64_t n_head_q, float* k, int64_t k_stride, int64_t n_head_k,
               int64_t n_tokens, int64_t head_dim, int64_t n_rot, bool neox, const float* cos_sin);
  void store_kv(const PagedKvView& kv, const CudaStepKv& step, const float* k, const float* v);
  // rope_qk over the step's rows (q rows of n_head_q heads, k rows of kv.n_head_kv) then store_kv,
  // in one launch (cuda::rope_store_kv).
  void rope_store_kv(const PagedKvView& kv, const CudaStepKv& step, float* q, int64_t n_head_q, float* k,
                     const float* v, int64_t n_rot, bool neox, const float* cos_sin);
  void attention(const PagedKvView& kv, const CudaStepKv& step, const float* q, const AttentionParams& params,
                 float* out);

 private:
  // Past kGemvMaxRows rows (not rows-invariant): the int8 GEMM or f16 cuBLAS.
  void gemm(const CudaLinear& w, const float* x, int64_t m, float* y);
  // Whether gemm() takes `w` through int8_gemm.
  bool runs_int8(const CudaLinear& w) const noexcept;
  // x [m][k] through quantize_q8_1_rows, in the f16 activations' scratch (which the cuBLAS path
  // overwrites): q [m][k], then d, s and sum_d [m][k / 32].
  Q8_1Rows quantize_rows(const float* x, int64_t m, int64_t k);

  int device_ = 0;
  bool rows_invariant_ = false;
  bool int8_gemm_ = false;
  cudaStream_t stream_ = nullptr;
  void* cublas_ = nullptr;               // cublasHandle_t
  const CublasLibrary* blas_ = nullptr;  // its functions (cublas_library.h)
  DeviceBuffer weight_f16_;              // [max_matrix_elements] the GEMM's dequantized weight
  DeviceBuffer x_f16_;                   // [max_rows][max_k] the GEMM's activations (int8_gemm: q, then d, s, sum_d)
  DeviceBuffer attention_workspace_;
  DeviceBuffer head_ids_;  // [kGemvMaxRows · n_head]: j % n_head, matmul_heads' entry → head
  int64_t head_ids_n_head_ = 0;
  StepLimits limits_{};
  int64_t max_matrix_elements_ = 0;
  int32_t max_context_ = 0;
  bool capturing_ = false;
};

}  // namespace ember::cuda
