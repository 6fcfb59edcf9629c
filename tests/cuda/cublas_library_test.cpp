// cuBLAS opened at run time (cuda/cublas_library.h): every function resolves (from the toolkit's
// library in a real build, which needs no GPU; the emulator's stand-ins in an emulated one), a
// library that cannot be opened or is not cuBLAS is an Error naming each candidate, and `ember`
// does not load cuBLAS until a CUDA backend is made.
#include "cuda/cublas_library.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/cli_run.h"
#include "ember/error.h"

namespace ember::cuda {
namespace {

using ::testing::HasSubstr;

// The message of the Error that open_cublas(candidates) throws; fails the test when it returns.
std::string open_error(const std::vector<std::string>& candidates) {
  try {
    open_cublas(candidates);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    return e.what();
  }
  ADD_FAILURE() << "open_cublas returned";
  return "";
}

TEST(CublasLibrary, EveryFunctionResolvesOnce) {
  const CublasLibrary& l = cublas();
  EXPECT_NE(l.create, nullptr);
  EXPECT_NE(l.destroy, nullptr);
  EXPECT_NE(l.set_stream, nullptr);
  EXPECT_NE(l.gemm_ex, nullptr);
  ASSERT_NE(l.status_string, nullptr);
  // A call through a pointer reaches the library: a status has its own description (cuBLAS's
  // words differ from the emulator's).
  const std::string invalid = l.status_string(CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_FALSE(invalid.empty());
  EXPECT_NE(invalid, l.status_string(CUBLAS_STATUS_SUCCESS));
  EXPECT_EQ(&cublas(), &l);
#ifndef EMBER_CUDA_EMULATED
  // The soname of the major version this build compiled against comes first.
  ASSERT_FALSE(cublas_candidates().empty());
  EXPECT_EQ(cublas_candidates().front(), "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR));
#endif
}

TEST(CublasLibrary, AMissingLibraryIsAnErrorNamingEachCandidate) {
  const std::string message = open_error({"libember-no-such-cublas.so.1", "/nonexistent/libcublas.so.13"});
  EXPECT_THAT(message, HasSubstr("cannot load cuBLAS"));
  // Each candidate once, with the loader's reason.
  EXPECT_THAT(message, HasSubstr("(libember-no-such-cublas.so.1: cannot open shared object file"));
  EXPECT_THAT(message, HasSubstr("; /nonexistent/libcublas.so.13: cannot open shared object file"));
  EXPECT_THAT(message, ::testing::Not(HasSubstr("libember-no-such-cublas.so.1: libember")));
  EXPECT_THAT(message, HasSubstr("LD_LIBRARY_PATH"));
  EXPECT_THAT(open_error({}), HasSubstr("no library to try"));
}

TEST(CublasLibrary, ALibraryThatIsNotCublasIsRefused) {
  // libm opens, and has none of cuBLAS's functions: the first one is named.
  const std::string message = open_error({"libm.so.6"});
  EXPECT_THAT(message, HasSubstr("libm.so.6: it has no cublasCreate"));
}

TEST(CublasLibrary, TheCliDoesNotLoadItWithoutACudaBackend) {
  // The dynamic loader's trace of `ember --version` (set for that process only, on its stderr):
  // the C library is loaded (so the trace is there and the check can fail), cuBLAS is not.
  const test::RunResult r =
      test::run({"env", "-u", "LD_DEBUG_OUTPUT", "LD_DEBUG=libs", test::ember_binary(), "--version"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("libc.so.6"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("libcublas")));
}

}  // namespace
}  // namespace ember::cuda
