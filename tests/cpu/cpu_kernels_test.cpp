// Every SIMD kernel table the machine supports against the scalar reference, on fresh random data
// over sizes 0..2·lanes+1 blocks and large odd sizes, with unaligned starts.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <random>

#include "cpu/cpu_kernels.h"
#include "ember/error.h"
#include "support/scoped_env.h"

namespace ember {
namespace {

std::vector<float> random_row(int64_t n, unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng) * (u(rng) < 0.01f ? 8.0f : 1.0f);  // heavy tail
  return x;
}

// Block counts: 0..2*lanes+1 (lanes: 16 floats of a zmm register) and a large odd count.
std::vector<int64_t> block_counts() {
  std::vector<int64_t> counts;
  for (int64_t b = 0; b <= 33; ++b) counts.push_back(b);
  counts.push_back(257);
  return counts;
}

TEST(CpuKernels, SelectionAndTables) {
  const std::vector<Isa> isas = supported_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::kScalar);
  std::printf("kernel tables on this machine:");
  for (Isa isa : isas) std::printf(" %s", std::string(isa_name(isa)).c_str());
  std::printf("\n");
  for (Isa isa : isas) {
    const CpuKernels& k = cpu_kernels(isa);
    EXPECT_EQ(k.isa, isa);
    for (const QuantTraits& t : quant_traits_table()) {  // every table covers every type
      EXPECT_EQ(k.vec_dot_for(t.dtype) == nullptr, t.vec_dot == nullptr) << dtype_name(t.dtype);
      EXPECT_EQ(k.quantize_row_for(t.dtype) == nullptr, t.from_float == nullptr) << dtype_name(t.dtype);
    }
  }
  test::ScopedEnv env("EMBER_ISA", "scalar");
  EXPECT_EQ(select_isa(), Isa::kScalar);
  env.set("AVX9");
  EXPECT_THROW(select_isa(), Error);
  env.set(nullptr);
  EXPECT_EQ(select_isa(), isas.back());
}

// Activation quantizers are bit-identical to the reference (same scale, same rounding).
TEST(CpuKernels, ActivationQuantizersMatchTheReferenceExactly) {
  const CpuKernels& ref = cpu_kernels(Isa::kScalar);
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    for (const QuantTraits& t : quant_traits_table()) {
      if (t.vec_dot == nullptr || t.from_float == nullptr) continue;
      const DType dot = t.vec_dot_type;
      const int64_t block = dtype_traits(dot).block_size;
      for (int64_t blocks : block_counts()) {
        const int64_t n = blocks * block;
        std::vector<float> storage = random_row(n + 1, static_cast<unsigned>(n) + 3, 1.0f);
        const float* x = storage.data() + 1;  // not aligned to any vector width
        // Blocks at their type's own alignment only (as in GGUF files), not at a vector width.
        const size_t offset = dtype_alignment(dot);
        std::vector<std::byte> want(*dtype_bytes_for(dot, static_cast<uint64_t>(n)) + offset), got(want.size());
        ref.quantize_row_for(dot)(x, want.data() + offset, n, nullptr);
        cpu_kernels(isa).quantize_row_for(dot)(x, got.data() + offset, n, nullptr);
        ASSERT_EQ(want, got) << dtype_name(dot) << " n=" << n;
      }
    }
  }
}

// The same on rows built to hit the quantizers' corner cases: the largest |x| twice with opposite
// signs (the first one sets the sign of Q8_K's scale), values exactly half-way between two levels
// (round half away from zero for Q8_0/Q8_1, half to even for Q8_K), a block of zeros between
// non-zero ones, subnormal and huge magnitudes.
TEST(CpuKernels, ActivationQuantizersMatchTheReferenceOnCornerCases) {
  const CpuKernels& ref = cpu_kernels(Isa::kScalar);
  constexpr int64_t kN = 4 * 256;
  std::vector<float> rows[4];
  rows[0] = random_row(kN, 5, 1.0f);
  for (int64_t b = 0; b < kN / 32; ++b) {  // ±max ties, first sign alternating per block
    rows[0][static_cast<size_t>(32 * b + 3)] = b % 2 == 0 ? 9.0f : -9.0f;
    rows[0][static_cast<size_t>(32 * b + 20)] = b % 2 == 0 ? -9.0f : 9.0f;
  }
  rows[1].resize(kN);  // max 127 in every block, so the others (k + 0.5) fall half-way between levels
  for (int64_t i = 0; i < kN; ++i) {
    rows[1][static_cast<size_t>(i)] = i % 32 == 0 ? 127.0f : static_cast<float>((i * 37) % 254 - 127) + 0.5f;
  }
  rows[2] = random_row(kN, 6, 3.0f);  // zero blocks (32 and 256 wide) among non-zero ones
  std::fill(rows[2].begin() + 256, rows[2].begin() + 512, 0.0f);
  std::fill(rows[2].begin() + 32, rows[2].begin() + 64, 0.0f);
  rows[3] = random_row(kN, 7, 1.0f);  // tiny and huge blocks
  for (int64_t i = 0; i < kN; ++i) rows[3][static_cast<size_t>(i)] *= (i / 256) % 2 == 0 ? 1e-40f : 1e30f;
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    for (DType dot : {DType::kQ8_0, DType::kQ8_1, DType::kQ8_K, DType::kF16, DType::kBF16}) {
      for (size_t r = 0; r < 4; ++r) {
        std::vector<std::byte> want(*dtype_bytes_for(dot, kN)), got(want.size());
        ref.quantize_row_for(dot)(rows[r].data(), want.data(), kN, nullptr);
        cpu_kernels(isa).quantize_row_for(dot)(rows[r].data(), got.data(), kN, nullptr);
        EXPECT_EQ(want, got) << dtype_name(dot) << " row " << r;
      }
    }
  }
}

// Dot products: the SIMD sum differs from the sequential reference only by float rounding of
// the per-block terms (the integer block sums are exact), so the error is bounded by a few ulp of
// the sum of |term|.
TEST(CpuKernels, DotProductsMatchTheReference) {
  const CpuKernels& ref = cpu_kernels(Isa::kScalar);
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    for (const QuantTraits& t : quant_traits_table()) {
      if (t.vec_dot == nullptr) continue;
      const int64_t block = std::max(dtype_traits(t.dtype).block_size, dtype_traits(t.vec_dot_type).block_size);
      for (int64_t blocks : block_counts()) {
        const int64_t n = blocks * block;
        const std::vector<float> w = random_row(n, static_cast<unsigned>(n) * 7 + 1, 0.02f);
        const std::vector<float> a = random_row(n, static_cast<unsigned>(n) * 7 + 2, 1.0f);
        // Block rows at their types' own alignment only (as in GGUF files), not at a vector width.
        const size_t w_offset = dtype_alignment(t.dtype), a_offset = dtype_alignment(t.vec_dot_type);
        std::vector<std::byte> wq(*dtype_bytes_for(t.dtype, static_cast<uint64_t>(n)) + w_offset),
            aq(*dtype_bytes_for(t.vec_dot_type, static_cast<uint64_t>(n)) + a_offset);
        std::byte* wq_start = wq.data() + w_offset;
        std::byte* aq_start = aq.data() + a_offset;
        quantize(t.dtype, w.data(), wq_start, n);
        quantize(t.vec_dot_type, a.data(), aq_start, n);
        const float want = ref.vec_dot_for(t.dtype)(n, wq_start, aq_start);
        const float got = cpu_kernels(isa).vec_dot_for(t.dtype)(n, wq_start, aq_start);
        double magnitude = 0;
        for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(static_cast<double>(w[i]) * a[i]);
        EXPECT_NEAR(got, want, 1e-5 * magnitude + 1e-30) << dtype_name(t.dtype) << " n=" << n;
      }
    }
  }
}

// The two-row dot products: each output equals the same ISA's one-row vec_dot bit for bit (the
// GEMV of a 2-3 row step must give each row what decode alone gives it), over every block count
// and unaligned rows; the scalar table has none (its reference is two vec_dot calls).
TEST(CpuKernels, TwoRowDotsEqualTheOneRowKernelBitForBit) {
  for (const QuantTraits& t : quant_traits_table()) {
    EXPECT_EQ(cpu_kernels(Isa::kScalar).vec_dot_2_for(t.dtype), nullptr) << dtype_name(t.dtype);
  }
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    const CpuKernels& k = cpu_kernels(isa);
    if (isa != Isa::kScalar) {  // the kernels this test exists for are in the table
      EXPECT_NE(k.vec_dot_2_for(DType::kQ4_K), nullptr);
      EXPECT_NE(k.vec_dot_2_for(DType::kQ6_K), nullptr);
    }
    for (const QuantTraits& t : quant_traits_table()) {
      if (k.vec_dot_2_for(t.dtype) == nullptr) continue;
      ASSERT_NE(k.vec_dot_for(t.dtype), nullptr);
      const int64_t block = std::max(dtype_traits(t.dtype).block_size, dtype_traits(t.vec_dot_type).block_size);
      for (int64_t blocks : block_counts()) {
        const int64_t n = blocks * block;
        const std::vector<float> w = random_row(n, static_cast<unsigned>(n) * 5 + 1, 0.02f);
        const size_t w_offset = dtype_alignment(t.dtype), a_offset = dtype_alignment(t.vec_dot_type);
        const size_t a_bytes = *dtype_bytes_for(t.vec_dot_type, static_cast<uint64_t>(n));
        // The rows in buffers of their own: a kernel that reads row 1 at row 0 + its size fails.
        std::vector<std::byte> wq(*dtype_bytes_for(t.dtype, static_cast<uint64_t>(n)) + w_offset),
            aq0(a_bytes + a_offset), aq1(a_bytes + a_offset);
        quantize(t.dtype, w.data(), wq.data() + w_offset, n);
        std::byte* a[2] = {aq0.data() + a_offset, aq1.data() + a_offset};
        for (int r = 0; r < 2; ++r) {
          const std::vector<float> x = random_row(n, static_cast<unsigned>(n) * 5 + 2 + static_cast<unsigned>(r), 1.0f);
          quantize(t.vec_dot_type, x.data(), a[r], n);
        }
        float got[2] = {NAN, NAN};
        k.vec_dot_2_for(t.dtype)(n, wq.data() + w_offset, a[0], a[1], got);
        for (int r = 0; r < 2; ++r) {
          const float want = k.vec_dot_for(t.dtype)(n, wq.data() + w_offset, a[r]);
          ASSERT_EQ(std::bit_cast<uint32_t>(got[r]), std::bit_cast<uint32_t>(want))
              << dtype_name(t.dtype) << " n=" << n << " row " << r << ": " << got[r] << " vs " << want;
        }
      }
    }
  }
}

}  // namespace
}  // namespace ember
