// CudaBackend: device selection, the stream and cuBLAS handle, uploads, the matmul policy (GEMV on
// the blocks for a few rows, dequantize + cuBLAS GEMM for more) and the ops' launches.
#include "cuda/cuda_backend.h"

#include <cublas_v2.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/check.h"
#include "cuda/cublas_library.h"
#include "cuda/cuda_check.h"
#include "ember/error.h"

namespace ember::cuda {
namespace {

cublasHandle_t handle(void* p) { return static_cast<cublasHandle_t>(p); }

void check_cublas(const CublasLibrary& blas, cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    fail(ErrorCode::kUnsupported, "cuBLAS: {} failed: {}", what, blas.status_string(status));
  }
}

}  // namespace

CudaBackend::CudaBackend(const CudaBackendOptions& options)
    : device_(options.device), rows_invariant_(options.rows_invariant), int8_gemm_(options.int8_gemm) {
  int n = 0;
  const cudaError_t status = cudaGetDeviceCount(&n);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    fail(ErrorCode::kUnsupported, "CUDA: no usable device ({})", cudaGetErrorString(status));
  }
  if (n == 0) fail(ErrorCode::kUnsupported, "CUDA: no GPU found");
  if (device_ < 0 || device_ >= n)
    fail(ErrorCode::kInvalidArgument, "CUDA: device {} does not exist ({} found)", device_, n);
  EMBER_CUDA_CHECK(cudaSetDevice(device_));
  cudaDeviceProp prop{};
  EMBER_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
  // The build carries sm_80 and sm_90 code plus sm_90 PTX: older GPUs cannot run it.
  if (prop.major < 8) {
    fail(ErrorCode::kUnsupported, "CUDA: {} is compute capability {}.{}; ember's kernels need 8.0 or newer", prop.name,
         prop.major, prop.minor);
  }
  blas_ = &cublas();  // throws with the reason when cuBLAS cannot be loaded
  EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  cublasHandle_t h = nullptr;
  check_cublas(*blas_, blas_->create(&h), "cublasCreate");
  cublas_ = h;
  check_cublas(*blas_, blas_->set_stream(h, stream_), "cublasSetStream");
}

CudaBackend::~CudaBackend() {
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  // A backend outliving cuBLAS's own teardown at exit (a static holder made before it) leaves the
  // handle to the process's end.
  if (cublas_ != nullptr && !cublas_torn_down()) blas_->destroy(handle(cublas_));
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

void CudaBackend::make_current() const { EMBER_CUDA_CHECK(cudaSetDevice(device_)); }

DeviceInfo CudaBackend::info() const {
  cudaDeviceProp prop{};
  EMBER_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
  const MemoryInfo mem = memory_info();
  return {.name = prop.name,
          .compute_major = prop.major,
          .compute_minor = prop.minor,
          .total_bytes = mem.total,
          .free_bytes = mem.free};
}

namespace {

// The median of `runs` timings (ms) of fn() on `stream`, after one warm-up.
template <class Fn>
double median_ms(cudaStream_t stream, int runs, Fn&& fn) {
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  EMBER_CUDA_CHECK(cudaEventCreate(&start));
  EMBER_CUDA_CHECK(cudaEventCreate(&stop));
  fn();
  std::vector<float> ms(static_cast<size_t>(runs));
  for (float& t : ms) {
    EMBER_CUDA_CHECK(cudaEventRecord(start, stream));
    fn();
    EMBER_CUDA_CHECK(cudaEventRecord(stop, stream));
    EMBER_CUDA_CHECK(cudaEventSynchronize(stop));
    EMBER_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

Roofline CudaBackend::measure_roofline() {
  Roofline r;
  {
    const size_t bytes = size_t{1} << 30;
    DeviceBuffer a(bytes, "the roofline's copy source");
    DeviceBuffer b(bytes, "the roofline's copy target");
    EMBER_CUDA_CHECK(cudaMemsetAsync(a.data(), 0x3c, bytes, stream_));
    const double ms = median_ms(stream_, 7, [&] { device_copy(b.data(), a.data(), bytes); });
    r.copy_gbs = 2.0 * static_cast<double>(bytes) / (ms * 1e6);
  }
  {
    const int n = 8192;
    const size_t elements = size_t{n} * n;
    DeviceBuffer a(elements * sizeof(__half), "the roofline's GEMM operand");
    DeviceBuffer c(elements * sizeof(float), "the roofline's GEMM output");
    // Bytes of 0x3c: f16 0x3c3c ≈ 1.06, finite and non-zero (zeros run faster than real data).
    EMBER_CUDA_CHECK(cudaMemsetAsync(a.data(), 0x3c, elements * sizeof(__half), stream_));
    const float alpha = 1.0f;
    const float beta = 0.0f;
    const double ms = median_ms(stream_, 5, [&] {
      EMBER_CHECK(blas_->gemm_ex(handle(cublas_), CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha, a.data(), CUDA_R_16F, n,
                                 a.data(), CUDA_R_16F, n, &beta, c.data(), CUDA_R_32F, n, CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    });
    r.f16_tflops = 2.0 * n * static_cast<double>(n) * n / (ms * 1e9);
  }
  return r;
}

CudaLinear CudaBackend::upload(const WeightMatrix& w, std::string_view what) {
  if (!matmul_supports(w.dtype)) {
    fail(ErrorCode::kUnsupported, "CUDA: {} is {}, a type without GPU matmul kernels", what, dtype_name(w.dtype));
  }
  const std::optional<size_t> bytes = dtype_bytes_for(w.dtype, static_cast<size_t>(w.n_out * w.k));
  if (!bytes || w.k % dtype_traits(w.dtype).block_size != 0) {
    fail(ErrorCode::kInvalidArgument, "CUDA: {}: rows of {} values are not whole {} blocks", what, w.k,
         dtype_name(w.dtype));
  }
  CudaLinear l;
  l.storage = upload_bytes(w.data, *bytes, what);
  l.w = {.data = l.storage.data(), .dtype = w.dtype, .n_out = w.n_out, .k = w.k};
  return l;
}

CudaExperts CudaBackend::upload_experts(const WeightMatrix& first, int64_t expert_bytes, int32_t n_expert,
                                        std::string_view what) {
  if (!matmul_supports(first.dtype)) {
    fail(ErrorCode::kUnsupported, "CUDA: {} is {}, a type without GPU matmul kernels", what, dtype_name(first.dtype));
  }
  const std::optional<size_t> bytes = dtype_bytes_for(first.dtype, static_cast<size_t>(first.n_out * first.k));
  if (!bytes || first.k % dtype_traits(first.dtype).block_size != 0 || n_expert < 1 ||
      expert_bytes < static_cast<int64_t>(*bytes)) {
    fail(ErrorCode::kInvalidArgument,
         "CUDA: {}: {} experts of {} rows of {} {} values, {} bytes apart, are not a layout "
         "the expert kernels take",
         what, n_expert, first.n_out, first.k, dtype_name(first.dtype), expert_bytes);
  }
  CudaExperts e;
  e.storage = upload_bytes(first.data, static_cast<size_t>(expert_bytes) * static_cast<size_t>(n_expert), what);
  e.w = {.data = e.storage.data(), .dtype = first.dtype, .n_out = first.n_out, .k = first.k};
  e.expert_bytes = expert_bytes;
  e.n_expert = n_expert;
  return e;
}

DeviceBuffer CudaBackend::upload_bytes(const void* data, size_t bytes, std::string_view what) {
  DeviceBuffer b(bytes, what);
  // On the backend's stream, so that its later work reads the data: a cudaMemcpy from pageable
  // memory may return before the data lands, and the backend's non-blocking stream would not wait
  // for the legacy stream's copy.
  to_device(b.data(), data, bytes);
  return b;
}

std::shared_ptr<void> CudaBackend::allocate_shared(size_t bytes, std::string_view what) {
  auto buffer = std::make_shared<DeviceBuffer>(bytes, what);
  void* p = buffer->data();
  return {p, [buffer](void*) mutable { buffer.reset(); }};
}

void CudaBackend::reserve(const StepLimits& limits, int64_t max_matrix_elements, int32_t max_context) {
  // Every buffer is sized for the largest of each limit seen, whichever calls they came from (a
  // later call with fewer rows but a wider k must not leave a buffer sized for the old k).
  limits_.max_rows = std::max(limits_.max_rows, limits.max_rows);
  limits_.max_k = std::max(limits_.max_k, limits.max_k);
  limits_.n_head = std::max(limits_.n_head, limits.n_head);
  limits_.head_dim = std::max(limits_.head_dim, limits.head_dim);
  max_context_ = std::max(max_context_, max_context);
  const bool uses_gemm = limits_.max_rows > kGemvMaxRows && !rows_invariant_;
  if (uses_gemm && max_matrix_elements > max_matrix_elements_) {
    weight_f16_ = DeviceBuffer(static_cast<size_t>(max_matrix_elements) * sizeof(__half), "the GEMM's f16 weight");
    max_matrix_elements_ = max_matrix_elements;
  }
  const auto x_bytes = static_cast<size_t>(limits_.max_rows * limits_.max_k) * sizeof(__half);
  if (uses_gemm && x_bytes > x_f16_.bytes()) {
    x_f16_ = DeviceBuffer(x_bytes, "the GEMM's f16 activations");
  }
  if (limits_.n_head > 0) {
    const size_t bytes = attention_workspace_bytes(limits_.max_rows, limits_.n_head, limits_.head_dim, max_context_);
    if (bytes > attention_workspace_.bytes()) attention_workspace_ = DeviceBuffer(bytes, "the attention workspace");
  }
  if (limits.n_head > 0 && limits.n_head != head_ids_n_head_) {
    std::vector<int32_t> ids(static_cast<size_t>(kGemvMaxRows * limits.n_head));
    for (size_t j = 0; j < ids.size(); ++j) ids[j] = static_cast<int32_t>(j % static_cast<size_t>(limits.n_head));
    head_ids_ = DeviceBuffer::from(ids);
    head_ids_n_head_ = limits.n_head;
  }
}

void CudaBackend::to_device(void* dst, const void* src, size_t bytes) {
  if (bytes != 0) EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
}

void CudaBackend::to_host(void* dst, const void* src, size_t bytes) {
  if (bytes != 0) EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
}

void CudaBackend::device_copy(void* dst, const void* src, size_t bytes) {
  if (bytes != 0) EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t n_rows,
                            int64_t n_cols) {
  if (n_rows == 0 || n_cols == 0) return;
  EMBER_CUDA_CHECK(cudaMemcpy2DAsync(
      dst, static_cast<size_t>(dst_stride) * sizeof(float), src, static_cast<size_t>(src_stride) * sizeof(float),
      static_cast<size_t>(n_cols) * sizeof(float), static_cast<size_t>(n_rows), cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::synchronize() { EMBER_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

CudaGraph::~CudaGraph() {
  if (exec_ != nullptr) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
}

CudaGraph::CudaGraph(CudaGraph&& other) noexcept : exec_(std::exchange(other.exec_, nullptr)) {}

CudaGraph& CudaGraph::operator=(CudaGraph&& other) noexcept {
  if (this != &other) {
    if (exec_ != nullptr) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
    exec_ = std::exchange(other.exec_, nullptr);
  }
  return *this;
}

void CudaBackend::begin_capture() {
  // Thread-local mode: another thread's unrelated CUDA calls (a second model) do not invalidate it.
  EMBER_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  capturing_ = true;
}

CudaGraph CudaBackend::end_capture() {
  cudaGraph_t graph = nullptr;
  CudaGraph out;
  capturing_ = false;
  if (cudaStreamEndCapture(stream_, &graph) != cudaSuccess || graph == nullptr) {
    (void)cudaGetLastError();  // an invalidated capture: not sticky, the caller runs directly
    return out;
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t status = cudaGraphInstantiateWithFlags(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    return out;
  }
  out.exec_ = exec;
  return out;
}

void CudaBackend::replay(const CudaGraph& graph) {
  EMBER_CHECK(graph.valid());
  EMBER_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph.exec_), stream_));
}

void CudaBackend::matmul(const CudaLinear& w, const float* x, int64_t m, float* y) {
  if (m <= 0) return;
  if (m <= kGemvMaxRows) {
    gemv(w.w, x, m, y, stream_);
  } else if (rows_invariant_) {
    // A GEMV row's sums do not depend on how many rows share the call.
    for (int64_t r = 0; r < m; r += kGemvMaxRows) {
      gemv(w.w, x + r * w.w.k, std::min(kGemvMaxRows, m - r), y + r * w.w.n_out, stream_);
    }
  } else {
    gemm(w, x, m, y);
  }
}

// On the GEMV path, runs of matrices of one type, k and 16-byte alignment share a launch (a decode
// step's q, k and v; gemv_many's precondition).
void CudaBackend::matmul_many(std::span<const CudaLinear* const> ws, const float* x, int64_t m,
                              std::span<float* const> ys, std::span<const float* const> biases) {
  EMBER_CHECK(ws.size() == ys.size() && (biases.empty() || biases.size() == ws.size()));
  if (m <= 0) return;
  if (m > kGemvMaxRows) {
    // Consecutive int8 GEMMs of one k (q / k / v, gate / up) share one quantization of x; a cuBLAS
    // GEMM between them overwrites it.
    int64_t quantized_k = 0;
    Q8_1Rows q8{};
    for (size_t i = 0; i < ws.size(); ++i) {
      if (!rows_invariant_ && runs_int8(*ws[i])) {
        if (quantized_k != ws[i]->w.k) q8 = quantize_rows(x, m, ws[i]->w.k);
        quantized_k = ws[i]->w.k;
        int8_gemm(ws[i]->w, q8, m, ys[i], stream_);
      } else {
        matmul(*ws[i], x, m, ys[i]);
        quantized_k = 0;
      }
      if (!biases.empty() && biases[i] != nullptr) add(ys[i], biases[i], ys[i], m, ws[i]->w.n_out, 0);
    }
    return;
  }
  for (size_t i = 0; i < ws.size();) {
    std::array<DeviceMatrix, kGemvMaxParts> group{};
    size_t n = 0;
    const auto aligned16 = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
    while (i + n < ws.size() && n < group.size() &&
           (n == 0 || (ws[i + n]->w.dtype == group[0].dtype && ws[i + n]->w.k == group[0].k &&
                       aligned16(ws[i + n]->w.data) == aligned16(group[0].data)))) {
      group[n] = ws[i + n]->w;
      ++n;
    }
    gemv_many({group.data(), n}, x, m, ys.subspan(i, n), biases.empty() ? biases : biases.subspan(i, n), stream_);
    i += n;
  }
}

// On the GEMV path one launch: each block runs the same rows of gate and up and stores act(g)·u.
void CudaBackend::matmul_glu(const CudaLinear& gate, const CudaLinear* up, const float* x, int64_t m, bool gelu,
                             float* gate_up, float* y) {
  if (m <= 0) return;
  const DeviceMatrix& g = gate.w;
  const int64_t n = up != nullptr ? g.n_out : g.n_out / 2;
  const Glu act = gelu ? Glu::kGeluTanh : Glu::kSilu;
  if (m <= kGemvMaxRows && (up == nullptr || (up->w.dtype == g.dtype && up->w.k == g.k && up->w.n_out == n))) {
    const DeviceMatrix gate_rows{.data = g.data, .dtype = g.dtype, .n_out = n, .k = g.k};
    DeviceMatrix up_rows = gate_rows;
    if (up != nullptr) {
      up_rows.data = up->w.data;
    } else {  // rows [n, 2n) of [gate; up]
      const auto row_bytes = static_cast<size_t>(*dtype_bytes_for(g.dtype, static_cast<uint64_t>(g.k)));
      up_rows.data = static_cast<const std::byte*>(g.data) + static_cast<size_t>(n) * row_bytes;
    }
    gemv_glu(gate_rows, up_rows, act, x, m, y, stream_);
    return;
  }
  const float* u = nullptr;
  int64_t stride = 0;
  if (up != nullptr) {
    const CudaLinear* const ws[] = {&gate, up};
    float* const ys[] = {gate_up, gate_up + m * n};
    matmul_many(ws, x, m, ys);
    u = gate_up + m * n;
    stride = n;
  } else {
    matmul(gate, x, m, gate_up);
    u = gate_up + n;
    stride = 2 * n;
  }
  gelu ? geglu(gate_up, u, stride, y, m, n) : swiglu(gate_up, u, stride, y, m, n);
}

// y += x·wᵀ. The GEMV adds its sums to y itself; the cuBLAS path goes through `scratch` ([m][n_out]).
void CudaBackend::matmul_accumulate(const CudaLinear& w, const float* x, int64_t m, float* y, float* scratch) {
  if (m <= 0) return;
  if (m <= kGemvMaxRows) {
    gemv_accumulate(w.w, x, m, y, stream_);
    return;
  }
  matmul(w, x, m, scratch);
  add(y, scratch, y, m, w.w.n_out, w.w.n_out);
}

// y [m][n_out] = x [m][k] · Wᵀ with W row-major [n_out][k]. In cuBLAS's column-major terms that is
// Yᵀ (n_out × m) = W' · Xᵀ where W' (n_out × k) is the transpose of the column-major k × n_out
// view of W, and Xᵀ is the column-major k × m view of x. f16 operands, f32 accumulation and output.
void CudaBackend::gemm(const CudaLinear& w, const float* x, int64_t m, float* y) {
  const int64_t n_out = w.w.n_out;
  const int64_t k = w.w.k;
  EMBER_CHECK(m <= limits_.max_rows && k <= limits_.max_k);
  if (runs_int8(w)) {
    int8_gemm(w.w, quantize_rows(x, m, k), m, y, stream_);
    return;
  }
  const float alpha = 1.0f;
  const float beta = 0.0f;
  if (w.w.dtype == DType::kF32) {
    // F32 weights stay F32 (cuBLAS's FP32 GEMM, no TF32): a file keeps a matrix F32 for its
    // precision (a mixture of experts' router, whose near-ties f16 operands would tip).
    const cublasStatus_t status = blas_->gemm_ex(
        handle(cublas_), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n_out), static_cast<int>(m), static_cast<int>(k),
        &alpha, w.w.data, CUDA_R_32F, static_cast<int>(k), x, CUDA_R_32F, static_cast<int>(k), &beta, y, CUDA_R_32F,
        static_cast<int>(n_out), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    EMBER_CHECK(status == CUBLAS_STATUS_SUCCESS);
    return;
  }
  const __half* weight = nullptr;
  if (w.w.dtype == DType::kF16) {
    weight = static_cast<const __half*>(w.w.data);
  } else {
    EMBER_CHECK(n_out * k <= max_matrix_elements_);
    dequantize_f16(w.w, weight_f16_.as<__half>(), stream_);
    weight = weight_f16_.as<__half>();
  }
  f32_to_f16(x, x_f16_.as<__half>(), m * k, stream_);
  const cublasStatus_t status = blas_->gemm_ex(
      handle(cublas_), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n_out), static_cast<int>(m), static_cast<int>(k),
      &alpha, weight, CUDA_R_16F, static_cast<int>(k), x_f16_.data(), CUDA_R_16F, static_cast<int>(k), &beta, y,
      CUDA_R_32F, static_cast<int>(n_out), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  EMBER_CHECK(status == CUBLAS_STATUS_SUCCESS);
}

bool CudaBackend::runs_int8(const CudaLinear& w) const noexcept { return int8_gemm_ && int8_gemm_supports(w.w.dtype); }

Q8_1Rows CudaBackend::quantize_rows(const float* x, int64_t m, int64_t k) {
  // m·k values, then m·k / 32 each of d, s and sum_d: 1.375 bytes per value of the scratch's 2;
  // m·k is a multiple of 32, so the floats stay aligned.
  EMBER_CHECK(m <= limits_.max_rows && k <= limits_.max_k);
  auto* q = x_f16_.as<int8_t>();
  auto* d = reinterpret_cast<float*>(q + m * k);
  const int64_t blocks = m * k / kInt8GemmBlock;
  const Q8_1Rows rows{q, d, d + blocks, d + 2 * blocks};
  quantize_q8_1_rows(x, m, k, rows, stream_);
  return rows;
}

void CudaBackend::route_experts(const float* logits, int64_t n_rows, const ExpertRoute& route, float* probs,
                                int32_t* experts, float* weights) {
  cuda::route_experts(logits, n_rows, route, probs, experts, weights, stream_);
}

void CudaBackend::matmul_experts(const CudaExperts& w, const int32_t* experts, int64_t n_entries, const float* x,
                                 int32_t x_group, float* y) {
  gemv_experts(w.w, w.expert_bytes, w.n_expert, experts, n_entries, x, x_group, y, stream_);
}

void CudaBackend::matmul_experts_glu(const CudaExperts& gate, const CudaExperts& up, bool gelu, const int32_t* experts,
                                     int64_t n_entries, const float* x, int32_t x_group, float* y) {
  EMBER_CHECK(gate.expert_bytes == up.expert_bytes && gate.n_expert == up.n_expert);
  gemv_experts_glu(gate.w, up.w, gate.expert_bytes, gate.n_expert, gelu ? Glu::kGeluTanh : Glu::kSilu, experts,
                   n_entries, x, x_group, y, stream_);
}

bool CudaBackend::matmul_heads(std::span<const CudaLinear> heads, const float* x, int64_t x_stride, int64_t n_rows,
                               float* y, int64_t y_stride) {
  const auto n_head = static_cast<int64_t>(heads.size());
  if (n_rows > kGemvMaxRows || n_head != head_ids_n_head_ || n_head < 1 || x_stride % 4 != 0 || y_stride % 4 != 0 ||
      reinterpret_cast<uintptr_t>(x) % 16 != 0 || reinterpret_cast<uintptr_t>(y) % 16 != 0) {
    return false;
  }
  const DeviceMatrix& first = heads[0].w;
  const auto* base = static_cast<const std::byte*>(first.data);
  const int64_t spacing = n_head > 1 ? static_cast<const std::byte*>(heads[1].w.data) - base : 0;
  for (int64_t h = 0; h < n_head; ++h) {
    const DeviceMatrix& w = heads[static_cast<size_t>(h)].w;
    if (w.dtype != first.dtype || w.n_out != first.n_out || w.k != first.k ||
        static_cast<const std::byte*>(w.data) != base + h * spacing) {
      return false;
    }
  }
  const int64_t row_bytes = static_cast<int64_t>(*dtype_bytes_for(first.dtype, static_cast<uint64_t>(first.k)));
  if (n_head > 1 && spacing < first.n_out * row_bytes) return false;  // (views that overlap: not heads)
  gemv_experts(first, n_head > 1 ? spacing : first.n_out * row_bytes, static_cast<int32_t>(n_head),
               head_ids_.as<int32_t>(), n_rows * n_head, x, 1, y, stream_, x_stride, y_stride);
  return true;
}

void CudaBackend::combine_experts(const float* y, const int32_t* positions, const int32_t* experts,
                                  const float* weights, int64_t n_rows, int32_t k, int64_t n_cols, const float* shared,
                                  const float* shared_gate, float* out) {
  cuda::combine_experts(y, positions, experts, weights, n_rows, k, n_cols, shared, shared_gate, out, stream_);
}

void CudaBackend::gather_rows(const float* src, int64_t n_src_rows, int64_t n_cols, const int32_t* ids, int64_t n_ids,
                              float* dst) {
  get_rows(DType::kF32, src, n_src_rows, n_cols, ids, n_ids, dst, stream_);
}

void CudaBackend::rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps) {
  cuda::rms_norm(x, weight, y, n_rows, n, eps, stream_);
}

void CudaBackend::swiglu(const float* g, const float* u, int64_t stride, float* y, int64_t n_rows, int64_t n) {
  cuda::swiglu(g, u, stride, y, n_rows, n, stream_);
}

void CudaBackend::geglu(const float* g, const float* u, int64_t stride, float* y, int64_t n_rows, int64_t n) {
  cuda::geglu(g, u, stride, y, n_rows, n, stream_);
}

void CudaBackend::add(const float* a, const float* b, float* y, int64_t n_rows, int64_t n_cols, int64_t b_stride) {
  cuda::add(a, b, y, n_rows, n_cols, b_stride, stream_);
}

void CudaBackend::scale(const float* x, float* y, int64_t n, float s) { cuda::scale(x, y, n, s, stream_); }

void CudaBackend::softcap(float* x, int64_t n, float cap) { cuda::softcap(x, n, cap, stream_); }
void CudaBackend::greedy_rows(const float* x, int64_t n_rows, int64_t n, int32_t* out) {
  cuda::greedy_rows(x, n_rows, n, out, stream_);
}
void CudaBackend::top_k_rows(const float* x, int64_t n_rows, int64_t n, int64_t k, float* values, int32_t* ids,
                             float* scratch_values, int32_t* scratch_ids) {
  cuda::top_k_rows(x, n_rows, n, k, values, ids, scratch_values, scratch_ids, stream_);
}

void CudaBackend::rope(float* x, int64_t n_tokens, int64_t token_stride, int64_t n_head, int64_t head_dim,
                       int64_t n_rot, bool neox, const float* cos_sin) {
  cuda::rope(x, n_tokens, token_stride, n_head, head_dim, n_rot, neox, cos_sin, stream_);
}

void CudaBackend::rope_qk(float* q, int64_t q_stride, int64_t n_head_q, float* k, int64_t k_stride, int64_t n_head_k,
                          int64_t n_tokens, int64_t head_dim, int64_t n_rot, bool neox, const float* cos_sin) {
  cuda::rope_qk(q, q_stride, n_head_q, k, k_stride, n_head_k, n_tokens, head_dim, n_rot, neox, cos_sin, stream_);
}

void CudaBackend::store_kv(const PagedKvView& kv, const CudaStepKv& step, const float* k, const float* v) {
  cuda::store_kv(kv, step.seqs, step.rows, step.n_rows, k, v, stream_);
}

void CudaBackend::rope_store_kv(const PagedKvView& kv, const CudaStepKv& step, float* q, int64_t n_head_q, float* k,
                                const float* v, int64_t n_rot, bool neox, const float* cos_sin) {
  cuda::rope_store_kv(kv, step.seqs, step.rows, step.n_rows, q, static_cast<int32_t>(n_head_q), k, v,
                      static_cast<int32_t>(n_rot), neox, cos_sin, stream_);
}

void CudaBackend::attention(const PagedKvView& kv, const CudaStepKv& step, const float* q,
                            const AttentionParams& params, float* out) {
  EMBER_CHECK(step.n_rows <= limits_.max_rows && step.max_context <= max_context_);
  if (step.tiles != nullptr) {  // planned where the step is built: pools it takes, no batch invariance
    EMBER_CHECK(params.split_tokens >= 0);
    cuda::tiled_attention(kv, step.seqs, step.rows, step.n_rows, step.tiles, step.n_tiles, q, params, out, stream_);
    if (step.n_lone > 0) {
      cuda::attention(kv, step.seqs, step.rows, step.n_rows, q, params, step.max_context, attention_workspace_.data(),
                      attention_workspace_.bytes(), out, stream_, step.lone_rows, step.n_lone);
    }
    return;
  }
  cuda::attention(kv, step.seqs, step.rows, step.n_rows, q, params, step.max_context, attention_workspace_.data(),
                  attention_workspace_.bytes(), out, stream_);
}

}  // namespace ember::cuda
