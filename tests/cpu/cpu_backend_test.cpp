// CpuBackend: weight preparation (repacking and its memory), the GEMV / GEMM choice, the row ops'
// dispatch, and the reserve() contract (the no-allocation proof is cpu_step_alloc_test.cpp).
#include "cpu/cpu_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>

#include "cpu/gemm.h"
#include "cpu/matmul.h"
#include "cpu_test_util.h"
#include "ember/error.h"
#include "quant/fp16.h"
#include "support/scoped_env.h"

namespace ember {
namespace {

using namespace cpu_test;

TEST(CpuBackend, RepacksServedTypesAndAccountsTheMemory) {
  CpuBackend backend(backend_options(2));
  const std::vector<std::byte> q4k = quantized(DType::kQ4_K, random_values(64 * 512, 1, 0.05f));
  const Linear linear = backend.prepare({q4k.data(), DType::kQ4_K, 64, 512});
  EXPECT_EQ(linear.packed.has_value(), gemm_serves(backend.isa(), DType::kQ4_K));
  EXPECT_EQ(backend.packed_bytes(), linear.packed ? linear.packed->bytes() : 0u);

  CpuBackend no_repack(backend_options(1, std::nullopt, false));
  EXPECT_FALSE(no_repack.prepare({q4k.data(), DType::kQ4_K, 64, 512}).packed);
  EXPECT_EQ(no_repack.packed_bytes(), 0u);
}

// "+amx" in the kernel table's name (ember run / bench) only once a prepared matrix will use AMX.
TEST(CpuBackend, KernelsNameSaysAmxOnlyWhenAMatrixUsesIt) {
  if (!isa_supported(Isa::kAvx512, cpu_features())) GTEST_SKIP() << "this CPU has no AVX-512";
  const std::vector<std::byte> q6 = quantized(DType::kQ6_K, random_values(4 * 256, 1, 0.05f));
  const std::vector<std::byte> q8 = quantized(DType::kQ8_0, random_values(4 * 256, 2, 0.05f));
  for (bool amx : {true, false}) {
    CpuBackendOptions options;
    options.isa = Isa::kAvx512;
    options.n_threads = 1;
    options.amx = amx;
    CpuBackend backend(options);
    EXPECT_EQ(backend.kernels_name(), "avx512");
    (void)backend.prepare({q6.data(), DType::kQ6_K, 4, 256});  // 16-element sub-blocks: VNNI only
    EXPECT_EQ(backend.kernels_name(), "avx512");
    (void)backend.prepare({q8.data(), DType::kQ8_0, 4, 256});
    EXPECT_EQ(backend.kernels_name(), amx && amx_usable() ? "avx512+amx" : "avx512") << "amx option " << amx;
  }
}

TEST(CpuBackend, RejectsWeightsWithoutKernelsOrWholeBlocks) {
  CpuBackend backend(backend_options(1));
  std::vector<std::byte> w(1 << 16);
  EXPECT_THROW(backend.prepare({w.data(), DType::kQ8_K, 4, 256}), Error);
  EXPECT_THROW(backend.prepare({w.data(), DType::kQ4_K, 4, 100}), Error);
  EXPECT_THROW(backend.prepare({w.data(), DType::kQ4_0, 0, 64}), Error);
  EXPECT_THROW(CpuBackend(backend_options(-1)), Error);
}

// Decode on the packed panels by default except on AMD (measured faster there on the GEMV), and
// the default follows this machine's vendor unless the option says otherwise.
TEST(CpuBackend, DecodeOnPackedDefaultsByVendor) {
  CpuFeatures cpu;
  cpu.vendor = "AuthenticAMD";
  EXPECT_FALSE(default_decode_on_packed(cpu));
  cpu.vendor = "GenuineIntel";
  EXPECT_TRUE(default_decode_on_packed(cpu));
  if (!isa_supported(Isa::kAvx512, cpu_features())) GTEST_SKIP() << "no avx512: decode never takes the panels";
  for (const std::optional<bool> option :
       {std::optional<bool>{}, std::optional<bool>{true}, std::optional<bool>{false}}) {
    CpuBackendOptions options;
    options.n_threads = 1;
    options.isa = Isa::kAvx512;
    options.decode_on_packed = option;
    CpuBackend backend(options);
    const char* env = std::getenv("EMBER_DECODE_ON_PACKED");  // A/B runs override the vendor default
    const bool by_default = option.value_or(env != nullptr && *env != '\0' ? std::string_view(env) == "1"
                                                                           : default_decode_on_packed(cpu_features()));
    EXPECT_EQ(backend.rows_invariant(DType::kQ8_0, false), by_default);
    EXPECT_TRUE(backend.rows_invariant(DType::kQ8_0, true));  // asked for: panels for every row count
    EXPECT_FALSE(backend.rows_invariant(DType::kF16, true));  // float panels switch kernels at gemm_min_rows
    const std::vector<std::byte> blocks = quantized(DType::kQ8_0, random_values(64 * 256, 3, 0.05f));
    EXPECT_EQ(backend.prepare({blocks.data(), DType::kQ8_0, 64, 256}).rows_on_packed, by_default);
    EXPECT_TRUE(backend.prepare({blocks.data(), DType::kQ8_0, 64, 256}, true, true).rows_on_packed);
  }
}

// EMBER_DECODE_ON_PACKED overrides the vendor default (A/B runs), the option overrides both, an
// empty value is unset and anything but 0 / 1 is refused.
TEST(CpuBackend, DecodeOnPackedEnvironmentOverride) {
  if (!isa_supported(Isa::kAvx512, cpu_features())) GTEST_SKIP() << "no avx512: decode never takes the panels";
  test::ScopedEnv env("EMBER_DECODE_ON_PACKED", nullptr);
  const auto decodes_on_panels = [](std::optional<bool> option) {
    CpuBackendOptions options;
    options.n_threads = 1;
    options.isa = Isa::kAvx512;
    options.decode_on_packed = option;
    return CpuBackend(options).rows_invariant(DType::kQ8_0, false);
  };
  for (const bool value : {false, true}) {
    env.set(value ? "1" : "0");
    EXPECT_EQ(decodes_on_panels(std::nullopt), value);
    EXPECT_EQ(decodes_on_panels(!value), !value);
  }
  env.set("");
  EXPECT_EQ(decodes_on_panels(std::nullopt), default_decode_on_packed(cpu_features()));
  env.set("yes");
  EXPECT_THROW(decodes_on_panels(std::nullopt), Error);
}

// Both matmul paths (GEMV below gemm_min_rows, GEMM from it; one row on the packed weights with
// decode_on_packed) against float64.
TEST(CpuBackend, MatmulPathsMatchFloat64) {
  constexpr int64_t kK = 512, kOut = 40;
  for (const auto& [isa, decode_on_packed] : [] {
         std::vector<std::pair<Isa, bool>> runs;
         for (Isa i : supported_isas()) runs.emplace_back(i, false);
         if (isa_supported(Isa::kAvx512, cpu_features())) runs.emplace_back(Isa::kAvx512, true);
         return runs;
       }()) {
    SCOPED_TRACE(std::string(isa_name(isa)) + (decode_on_packed ? " decode on packed" : ""));
    CpuBackendOptions options = backend_options(2, isa);
    options.decode_on_packed = decode_on_packed;
    CpuBackend backend(options);
    backend.reserve(step_limits(16, kK));
    for (DType type : {DType::kQ4_K, DType::kQ8_0, DType::kF16}) {
      SCOPED_TRACE(std::string(dtype_name(type)));
      const std::vector<std::byte> blocks = quantized(type, random_values(kOut * kK, 2, 0.05f));
      std::vector<float> w_deq(kOut * kK);
      dequantize(type, blocks.data(), w_deq.data(), kOut * kK);
      const Linear linear = backend.prepare({blocks.data(), type, kOut, kK});
      for (int64_t m : {1, 2, 3, 4, 16}) {
        const std::vector<float> x = random_values(static_cast<size_t>(m * kK), 3, 1.0f);
        std::vector<float> y(static_cast<size_t>(m * kOut), NAN);
        backend.matmul(linear, x.data(), m, y.data());
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t r = 0; r < kOut; ++r) {
            const Dot64 want = dot64(&w_deq[r * kK], &x[i * kK], kK);
            // Activation quantization (8 bits per element): half a step of 1/127 of a block's max.
            ASSERT_NEAR(y[i * kOut + r], want.value, 1e-2 * want.magnitude)
                << "m " << m << " row " << i << " output " << r;
          }
        }
      }
    }
  }
}

// Each packed matrix takes the GEMM from its type's measured row count, or from the option's for
// every type; the option rejects nonsense.
TEST(CpuBackend, GemmMinRowsIsPerTypeUnlessTheOptionSetsIt) {
  const test::ScopedEnv env("EMBER_GEMM_MIN_ROWS", nullptr);
  EXPECT_EQ(default_gemm_min_rows(Isa::kAvx512, DType::kQ8_0), 2);
  EXPECT_EQ(default_gemm_min_rows(Isa::kAvx512, DType::kQ4_K), 3);
  EXPECT_EQ(default_gemm_min_rows(Isa::kAvx512, DType::kQ6_K), 4);
  EXPECT_EQ(default_gemm_min_rows(Isa::kAvx2, DType::kQ4_0), 2);
  EXPECT_EQ(default_gemm_min_rows(Isa::kAvx2, DType::kQ8_0), 3);
  EXPECT_EQ(default_gemm_min_rows(Isa::kAvx2, DType::kQ4_K), 4);
  const std::vector<std::byte> q8 = quantized(DType::kQ8_0, random_values(32 * 256, 8, 0.05f));
  const std::vector<std::byte> q6 = quantized(DType::kQ6_K, random_values(32 * 256, 9, 0.05f));
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    CpuBackend by_type(backend_options(1, isa));
    CpuBackendOptions options = backend_options(1, isa);
    options.gemm_min_rows = 7;
    CpuBackend fixed(options);
    for (const auto& [type, blocks] : {std::pair{DType::kQ8_0, &q8}, std::pair{DType::kQ6_K, &q6}}) {
      const Linear linear = by_type.prepare({blocks->data(), type, 32, 256});
      if (!linear.packed) continue;  // no GEMM for this ISA: the row count is never asked
      EXPECT_EQ(linear.gemm_min_rows, default_gemm_min_rows(isa, type)) << dtype_name(type);
      EXPECT_EQ(fixed.prepare({blocks->data(), type, 32, 256}).gemm_min_rows, 7) << dtype_name(type);
    }
  }
  CpuBackendOptions zero = backend_options(1);
  zero.gemm_min_rows = 0;
  EXPECT_THROW(CpuBackend{zero}, Error);
}

// EMBER_GEMM_MIN_ROWS sets every matrix's row count when the option does not (A/B runs); an empty
// value is unset, anything but a count from 1 to 2^20 is refused.
TEST(CpuBackend, GemmMinRowsEnvironmentOverride) {
  test::ScopedEnv env("EMBER_GEMM_MIN_ROWS", nullptr);
  const std::vector<std::byte> q8 = quantized(DType::kQ8_0, random_values(32 * 256, 10, 0.05f));
  const auto min_rows = [&](std::optional<int64_t> option) -> std::optional<int64_t> {
    CpuBackendOptions options = backend_options(1);
    options.gemm_min_rows = option;
    const Linear linear = CpuBackend(options).prepare({q8.data(), DType::kQ8_0, 32, 256});
    return linear.packed ? std::optional(linear.gemm_min_rows) : std::nullopt;
  };
  const CpuBackend probe(backend_options(1));
  if (!gemm_serves(probe.isa(), DType::kQ8_0)) GTEST_SKIP() << "no GEMM on this ISA: nothing to choose";
  env.set("9");
  EXPECT_EQ(min_rows(std::nullopt), 9);
  EXPECT_EQ(min_rows(5), 5);  // the option wins
  env.set("1048576");
  EXPECT_EQ(min_rows(std::nullopt), 1048576);
  env.set("");
  EXPECT_EQ(min_rows(std::nullopt), default_gemm_min_rows(probe.isa(), DType::kQ8_0));
  for (const char* bad : {"0", "-2", "3x", " 3", "+3", "many", "1048577", "99999999999999999999"}) {
    env.set(bad);
    EXPECT_THROW(min_rows(std::nullopt), Error) << bad;
  }
}

// The switch itself: below a matrix's gemm_min_rows, matmul gives the GEMV's bits, from it the
// GEMM's (decode on the panels off, so one row is not on them either).
TEST(CpuBackend, MatmulSwitchesToTheGemmAtTheMatrixRowCount) {
  const test::ScopedEnv env("EMBER_GEMM_MIN_ROWS", nullptr);
  constexpr int64_t kK = 512, kOut = 40;
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    CpuBackendOptions options = backend_options(2, isa);
    options.decode_on_packed = false;
    CpuBackend backend(options);
    backend.reserve(step_limits(8, kK));
    for (DType type : {DType::kQ8_0, DType::kQ4_K, DType::kQ6_K}) {
      SCOPED_TRACE(std::string(dtype_name(type)));
      const std::vector<std::byte> blocks = quantized(type, random_values(kOut * kK, 11, 0.05f));
      const WeightMatrix w{blocks.data(), type, kOut, kK};
      const Linear linear = backend.prepare(w);
      if (!linear.packed) continue;
      ASSERT_FALSE(linear.rows_on_packed);
      const int64_t from = linear.gemm_min_rows;
      EXPECT_EQ(from, default_gemm_min_rows(isa, type));
      for (int64_t m = std::max<int64_t>(1, from - 1); m <= from; ++m) {
        const std::vector<float> x = random_values(static_cast<size_t>(m * kK), 12, 1.0f);
        std::vector<float> got(static_cast<size_t>(m * kOut)), want(got.size());
        backend.matmul(linear, x.data(), m, got.data());
        if (m < from) {
          MatmulScratch scratch;
          matmul(backend.kernels(), backend.pool(), w, x.data(), m, want.data(), scratch);
        } else {
          GemmScratch scratch;
          gemm(isa, backend.pool(), *linear.packed, x.data(), m, want.data(), scratch);
        }
        EXPECT_EQ(got, want) << "m " << m << (m < from ? " (GEMV)" : " (GEMM)");
      }
    }
  }
}

TEST(CpuBackend, RowOpsMatchTheTableAppliedPerRow) {
  CpuBackend backend(backend_options(3));
  constexpr int64_t kRows = 37, kN = 96;
  const std::vector<float> x = random_values(kRows * kN, 4, 1.0f), w = random_values(kN, 5, 1.0f);
  std::vector<float> got(kRows * kN), want(kRows * kN);
  backend.rms_norm(x.data(), w.data(), got.data(), kRows, kN, 1e-5f);
  for (int64_t r = 0; r < kRows; ++r)
    backend.ops().rms_norm(x.data() + r * kN, w.data(), want.data() + r * kN, kN, 1e-5f);
  EXPECT_EQ(got, want);
  // A fused [gate|up] row of 2n: g at +0, u at +n, rows 2n apart.
  const std::vector<float> gate_up = random_values(kRows * 2 * kN, 6, 1.0f);
  backend.swiglu(gate_up.data(), gate_up.data() + kN, 2 * kN, got.data(), kRows, kN);
  for (int64_t r = 0; r < kRows; ++r) {
    backend.ops().swiglu(gate_up.data() + r * 2 * kN, gate_up.data() + r * 2 * kN + kN, want.data() + r * kN, kN);
  }
  EXPECT_EQ(got, want);
  backend.add(x.data(), w.data(), got.data(), kRows, kN, 0);  // broadcast w to every row
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t j = 0; j < kN; ++j) ASSERT_EQ(got[r * kN + j], x[r * kN + j] + w[j]);
  }
  // Soft-capping in 4096-float chunks across threads: the ops applied to the whole array, bit for
  // bit, over a length with a partial last chunk.
  const std::vector<float> logits = random_values(3 * 4096 + 123, 7, 40.0f);
  std::vector<float> capped = logits, want_capped = logits;
  backend.softcap(capped.data(), static_cast<int64_t>(capped.size()), 30.0f);
  const auto n = static_cast<int64_t>(want_capped.size());
  backend.ops().scale(want_capped.data(), want_capped.data(), n, 1.0f / 30.0f);
  backend.ops().tanh(want_capped.data(), want_capped.data(), n);
  backend.ops().scale(want_capped.data(), want_capped.data(), n, 30.0f);
  EXPECT_EQ(capped, want_capped);
  for (float v : capped) ASSERT_LT(std::fabs(v), 30.0f);
}

TEST(CpuBackend, FloatWeightsThatDoNotFillPanelsStayOnTheGemvPath) {
  CpuBackend backend(backend_options(2));
  backend.reserve(step_limits(8, 48));
  const std::vector<float> w = random_values(5 * 48, 14, 0.1f);
  const std::vector<std::byte> f16 = quantized(DType::kF16, w);
  const Linear linear = backend.prepare({f16.data(), DType::kF16, 5, 48});
  EXPECT_FALSE(linear.packed);
  const std::vector<float> x = random_values(8 * 48, 15, 1.0f);
  std::vector<float> y(8 * 5);
  backend.matmul(linear, x.data(), 8, y.data());
  for (int64_t i = 0; i < 8; ++i) {
    for (int64_t r = 0; r < 5; ++r) {
      double want = 0;
      for (int64_t j = 0; j < 48; ++j) {
        want +=
            static_cast<double>(fp16_to_fp32(fp32_to_fp16(w[r * 48 + j]))) * fp16_to_fp32(fp32_to_fp16(x[i * 48 + j]));
      }
      EXPECT_NEAR(y[i * 5 + r], want, 1e-4);
    }
  }
}

TEST(CpuBackendDeathTest, AStepBeyondReserveAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  CpuBackend backend(backend_options(1));
  backend.reserve(step_limits(4, 256));
  const std::vector<std::byte> q8 = quantized(DType::kQ8_0, random_values(16 * 256, 16, 0.1f));
  const Linear linear = backend.prepare({q8.data(), DType::kQ8_0, 16, 256});
  std::vector<float> x(8 * 256, 0.5f), y(8 * 16);
  EXPECT_DEATH(backend.matmul(linear, x.data(), 8, y.data()), "beyond reserve");
}

}  // namespace
}  // namespace ember
