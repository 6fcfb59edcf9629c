// cuBLAS opened at run time, when the first CudaBackend needs it. When ember linked it, every
// process loaded libcublasLt (540 MB), and its static initializers cost every ember process about
// 0.4 CPU-seconds, with or without a GPU (`ember --version` took 0.41 s; it takes 0.02 s now).
// The CUDA emulator's stand-ins are linked, so an emulated build calls them directly.
#pragma once

#include <cublas_v2.h>

#include <string>
#include <vector>

namespace ember::cuda {

// cublasGemmEx's exported form (the toolkit's C++ header adds an inline overload that takes the
// compute type as a cudaDataType, so decltype cannot name it).
using CublasGemmEx = cublasStatus_t (*)(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                        int m, int n, int k, const void* alpha, const void* A, cudaDataType Atype,
                                        int lda, const void* B, cudaDataType Btype, int ldb, const void* beta, void* C,
                                        cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                                        cublasGemmAlgo_t algo);

// The cuBLAS functions ember calls. cublas_v2.h maps cublasCreate, cublasDestroy and
// cublasSetStream to their _v2 symbols; these are pointers to those.
struct CublasLibrary {
  decltype(&::cublasCreate) create = nullptr;
  decltype(&::cublasDestroy) destroy = nullptr;
  decltype(&::cublasSetStream) set_stream = nullptr;
  decltype(&::cublasGetStatusString) status_string = nullptr;
  CublasGemmEx gemm_ex = nullptr;
};

// The library, opened on the first call (thread-safe, then kept open). Throws Error
// (kUnsupported) naming the library and the loader's reason when it cannot be opened; a later
// call tries again.
const CublasLibrary& cublas();

// True once the process is exiting past the point where cuBLAS tears down its own static state
// (the library was opened after anything constructed before the first backend, so it is torn down
// before such objects are destroyed): a backend destroyed then leaves its handle to the exit.
bool cublas_torn_down() noexcept;

// Opens the first of `candidates` (file names or paths, as dlopen takes them) that loads and
// resolves every function. Throws Error (kUnsupported) listing each candidate's failure.
CublasLibrary open_cublas(const std::vector<std::string>& candidates);

// Where a build against the toolkit looks for cuBLAS, in order: its soname (of the major version
// the build compiled against, found as dlopen finds any: LD_LIBRARY_PATH, the calling binary's
// run path, the loader's cache, the system directories), then that file in the directory where
// configure found cuBLAS. Empty in an emulated build.
std::vector<std::string> cublas_candidates();

}  // namespace ember::cuda
