// The CUDA emulator's cuBLAS: a handle bound to a stream and cublasGemmEx (column-major, f16 / bf16 /
// f32 operands, f32 compute), on the host in float with the k sum in order. Operands are checked to
// be device memory of the extent the leading dimensions imply, as a GPU would fault on anything else.
#include <cublas_v2.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cuda/emulator/state.h"
#include "quant/fp16.h"

struct cublasContext {
  cudaStream_t stream = nullptr;
};

namespace {

bool supported_type(cudaDataType_t t) { return t == CUDA_R_32F || t == CUDA_R_16F || t == CUDA_R_16BF; }

size_t element_bytes(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : 2; }

float load(const void* base, cudaDataType_t t, int64_t i) {
  switch (t) {
    case CUDA_R_16F: return ember::fp16_to_fp32(static_cast<const uint16_t*>(base)[i]);
    case CUDA_R_16BF: return ember::bf16_to_fp32(static_cast<const uint16_t*>(base)[i]);
    default: return static_cast<const float*>(base)[i];
  }
}

void store(void* base, cudaDataType_t t, int64_t i, float v) {
  switch (t) {
    case CUDA_R_16F: static_cast<uint16_t*>(base)[i] = ember::fp32_to_fp16(v); break;
    case CUDA_R_16BF: static_cast<uint16_t*>(base)[i] = ember::fp32_to_bf16(v); break;
    default: static_cast<float*>(base)[i] = v; break;
  }
}

// A column-major operand of `rows` x `cols` with leading dimension ld: checks ld and that its whole
// extent is device memory.
bool operand_ok(const void* p, cudaDataType_t t, int rows, int cols, int ld, const char* name) {
  if (ld < std::max(1, rows)) return false;
  if (rows == 0 || cols == 0) return true;
  const size_t elements = static_cast<size_t>(cols - 1) * static_cast<size_t>(ld) + static_cast<size_t>(rows);
  if (!ember::cuda_emulator::is_device_range(p, elements * element_bytes(t))) {
    ember::cuda_emulator::fault("cublasGemmEx: operand %s %p (%d x %d, ld %d) is not inside one device allocation",
                                name, p, rows, cols, ld);
  }
  return true;
}

void gemm_on_host(bool ta, bool tb, int m, int n, int k, float a, const void* A, cudaDataType_t Atype, int lda,
                  const void* B, cudaDataType_t Btype, int ldb, float b, void* C, cudaDataType_t Ctype, int ldc);

}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType_t Atype, int lda, const void* B,
                            cudaDataType_t Btype, int ldb, const void* beta, void* C, cudaDataType_t Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t /*algo*/) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (m < 0 || n < 0 || k < 0 || alpha == nullptr || beta == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  if (transa == CUBLAS_OP_C || transb == CUBLAS_OP_C) return CUBLAS_STATUS_NOT_SUPPORTED;
  // cuBLAS's GemmEx table for 32F compute: A and B of one type; C f32, or the type of A and B.
  if (!supported_type(Atype) || Btype != Atype || (Ctype != CUDA_R_32F && Ctype != Atype)) {
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (computeType != CUBLAS_COMPUTE_32F) return CUBLAS_STATUS_NOT_SUPPORTED;  // the only one emulated
  const bool ta = transa == CUBLAS_OP_T, tb = transb == CUBLAS_OP_T;
  // op(A) is m x k: A is stored m x k (N) or k x m (T); op(B) is k x n: B is k x n (N) or n x k (T).
  if (!operand_ok(A, Atype, ta ? k : m, ta ? m : k, lda, "A") ||
      !operand_ok(B, Btype, tb ? n : k, tb ? k : n, ldb, "B") || !operand_ok(C, Ctype, m, n, ldc, "C")) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  const auto gemm = [=] {
    const ember::cuda_emulator::DeviceAccess access;
    gemm_on_host(ta, tb, m, n, k, a, A, Atype, lda, B, Btype, ldb, b, C, Ctype, ldc);
  };
  // cuBLAS may allocate its workspace on first use, which a capture cannot hold unless the program
  // gave it one (cublasSetWorkspace, not emulated): refuse, as a GPU may.
  if (ember::cuda_emulator::is_capturing(handle->stream)) {
    ember::cuda_emulator::fault("cublasGemmEx on a capturing stream (needs cublasSetWorkspace on a GPU)");
  }
  gemm();
  return CUBLAS_STATUS_SUCCESS;
}

namespace {

// A column-major matrix's rows as floats, each row's k values contiguous (rows × k out): X is
// rows × k (not transposed) or k × rows whose columns are the rows wanted (transposed), with
// leading dimension ld. Converting once rather than in the inner loop: the products and their
// order are the same.
std::vector<float> rows_as_float(const void* X, cudaDataType_t type, int ld, bool transposed, int rows, int k) {
  std::vector<float> out(static_cast<size_t>(rows) * static_cast<size_t>(k));
  for (int r = 0; r < rows; ++r) {
    for (int l = 0; l < k; ++l) {
      const int64_t at = transposed ? static_cast<int64_t>(r) * ld + l : static_cast<int64_t>(l) * ld + r;
      out[static_cast<size_t>(r) * static_cast<size_t>(k) + static_cast<size_t>(l)] = load(X, type, at);
    }
  }
  return out;
}

void gemm_on_host(bool ta, bool tb, int m, int n, int k, float a, const void* A, cudaDataType_t Atype, int lda,
                  const void* B, cudaDataType_t Btype, int ldb, float b, void* C, cudaDataType_t Ctype, int ldc) {
  // op(A)'s m rows, and op(B)'s n columns as rows: B's columns (N) or rows (T).
  const std::vector<float> a_rows = rows_as_float(A, Atype, lda, ta, m, k);
  const std::vector<float> b_cols = rows_as_float(B, Btype, ldb, !tb, n, k);
  for (int j = 0; j < n; ++j) {
    const float* y = b_cols.data() + static_cast<size_t>(j) * static_cast<size_t>(k);
    for (int i = 0; i < m; ++i) {
      const float* x = a_rows.data() + static_cast<size_t>(i) * static_cast<size_t>(k);
      float sum = 0.0f;
      for (int l = 0; l < k; ++l) sum += x[l] * y[l];
      const int64_t c = static_cast<int64_t>(j) * ldc + i;
      // beta == 0: C is written without being read, so whatever it held (NaN) does not matter.
      store(C, Ctype, c, b == 0.0f ? a * sum : a * sum + b * load(C, Ctype, c));
    }
  }
}

}  // namespace
