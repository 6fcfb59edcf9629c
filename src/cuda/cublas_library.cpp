// cuBLAS opened with dlopen on first use (see cublas_library.h).
#include "cuda/cublas_library.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/check.h"
#include "ember/error.h"

// The symbol a cuBLAS name stands for after cublas_v2.h's macros ("cublasCreate" -> "cublasCreate_v2").
#define EMBER_CUBLAS_SYMBOL_NAME(name) #name
#define EMBER_CUBLAS_SYMBOL(name) EMBER_CUBLAS_SYMBOL_NAME(name)

namespace ember::cuda {
namespace {

#ifndef EMBER_CUDA_EMULATED
// CublasGemmEx is written out by hand: the exported overload must have exactly that type.
static_assert(std::is_same_v<decltype(static_cast<CublasGemmEx>(&::cublasGemmEx)), CublasGemmEx>);
#endif

std::atomic<bool> torn_down{false};

// The library at `candidate` with every function resolved, or nullopt with `why` set.
std::optional<CublasLibrary> try_open(const std::string& candidate, std::string& why) {
  // RTLD_LOCAL: cuBLAS's symbols stay out of the global namespace; only these pointers reach them.
  void* library = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* error = dlerror();  // starts with the name it was given
    why = error != nullptr ? error : candidate + ": dlopen failed";
    return std::nullopt;
  }
  CublasLibrary l;
  const char* missing = nullptr;  // the first function the library lacks
  const auto resolve = [&](const char* symbol, auto& fn) {
    if (missing != nullptr) return;
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(library, symbol));
    if (fn == nullptr) missing = symbol;
  };
  resolve(EMBER_CUBLAS_SYMBOL(cublasCreate), l.create);
  resolve(EMBER_CUBLAS_SYMBOL(cublasDestroy), l.destroy);
  resolve(EMBER_CUBLAS_SYMBOL(cublasSetStream), l.set_stream);
  resolve(EMBER_CUBLAS_SYMBOL(cublasGetStatusString), l.status_string);
  resolve(EMBER_CUBLAS_SYMBOL(cublasGemmEx), l.gemm_ex);
  if (missing != nullptr) {
    why = candidate + ": it has no " + missing;
    dlclose(library);
    return std::nullopt;
  }
  // Never closed: handles and pointers into it live until the process ends.
  return l;
}

CublasLibrary load() {
#ifdef EMBER_CUDA_EMULATED
  return {.create = &::cublasCreate,
          .destroy = &::cublasDestroy,
          .set_stream = &::cublasSetStream,
          .status_string = &::cublasGetStatusString,
          .gemm_ex = &::cublasGemmEx};
#else
  CublasLibrary l = open_cublas(cublas_candidates());
  // Registered after cuBLAS registered its own teardown, so it runs before it at exit.
  std::atexit([] { torn_down.store(true); });
  return l;
#endif
}

}  // namespace

std::vector<std::string> cublas_candidates() {
#ifdef EMBER_CUDA_EMULATED
  return {};
#else
  const std::string soname = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  std::vector<std::string> candidates = {soname};
#ifdef EMBER_CUBLAS_DIR
  candidates.push_back(std::string(EMBER_CUBLAS_DIR) + "/" + soname);
#endif
  return candidates;
#endif
}

CublasLibrary open_cublas(const std::vector<std::string>& candidates) {
  std::string failures;
  for (const std::string& candidate : candidates) {
    std::string why;
    if (std::optional<CublasLibrary> l = try_open(candidate, why)) return *l;
    failures += (failures.empty() ? "" : "; ") + why;
  }
  if (candidates.empty()) failures = "no library to try";
  fail(ErrorCode::kUnsupported,
       "CUDA: cannot load cuBLAS ({}). Install the CUDA toolkit's cuBLAS, or put its directory on "
       "LD_LIBRARY_PATH",
       failures);
}

bool cublas_torn_down() noexcept { return torn_down.load(); }

const CublasLibrary& cublas() {
  // A function-local static: initialized once across threads; when load() throws, the next call
  // tries again.
  static const CublasLibrary library = load();
  return library;
}

}  // namespace ember::cuda
