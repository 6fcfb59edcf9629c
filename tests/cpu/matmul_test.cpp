// matmul (GEMV path) on every supported kernel table against a float64 product of the
// dequantized weights and the dequantized quantized activations, for every weight type.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>

#include "cpu/matmul.h"
#include "cpu_test_util.h"
#include "ember/error.h"

namespace ember {
namespace {

using namespace cpu_test;

TEST(Matmul, EveryTypeEveryIsaMatchesFloat64) {
  ThreadPool pool(3);
  constexpr int64_t kK = 512, kOut = 37;  // 37 output rows: tiles do not divide it
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    for (const QuantTraits& t : quant_traits_table()) {
      if (t.vec_dot == nullptr) continue;
      SCOPED_TRACE(std::string(dtype_name(t.dtype)));
      const std::vector<float> w_float = random_values(kOut * kK, 11, 0.02f);
      std::vector<std::byte> w(*dtype_bytes_for(t.dtype, kOut * kK));
      quantize(t.dtype, w_float.data(), w.data(), kOut * kK);
      std::vector<float> w_deq(kOut * kK);
      dequantize(t.dtype, w.data(), w_deq.data(), kOut * kK);
      // Float rounding only, except with Q8_1 activations: their per-block sum is stored as f16 and
      // the dot uses it for the min term (as in ggml), an extra relative error up to 2^-11.
      const double tolerance = t.vec_dot_type == DType::kQ8_1 ? 1e-3 : 2e-5;
      for (int64_t m : {1, 2, 3, 8}) {
        const std::vector<float> x = random_values(static_cast<size_t>(m * kK), 100 + static_cast<unsigned>(m), 1.0f);
        // What the kernels see of the activations: quantized to the dot type, then dequantized.
        std::vector<float> x_deq(x.size());
        std::vector<std::byte> xq(*dtype_bytes_for(t.vec_dot_type, kK));
        for (int64_t i = 0; i < m; ++i) {
          quantize(t.vec_dot_type, x.data() + i * kK, xq.data(), kK);
          dequantize(t.vec_dot_type, xq.data(), x_deq.data() + i * kK, kK);
        }
        std::vector<float> y(static_cast<size_t>(m * kOut), NAN);
        MatmulScratch scratch;
        matmul(cpu_kernels(isa), pool, {w.data(), t.dtype, kOut, kK}, x.data(), m, y.data(), scratch);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t r = 0; r < kOut; ++r) {
            const Dot64 want = dot64(&w_deq[r * kK], &x_deq[i * kK], kK);
            ASSERT_NEAR(y[i * kOut + r], want.value, tolerance * want.magnitude + 1e-30) << "row " << r << " of " << i;
          }
        }
      }
    }
  }
}

TEST(Matmul, RejectsRowsThatDoNotFitBlocks) {
  ThreadPool pool(1);
  std::vector<std::byte> w(1024);
  std::vector<float> x(100), y(4);
  MatmulScratch scratch;
  EXPECT_THROW(
      matmul(cpu_kernels(Isa::kScalar), pool, {w.data(), DType::kQ4_K, 1, 100}, x.data(), 1, y.data(), scratch), Error);
  EXPECT_THROW(
      matmul(cpu_kernels(Isa::kScalar), pool, {w.data(), DType::kQ8_K, 1, 256}, x.data(), 1, y.data(), scratch),
      Error);  // an activation format, not a weight type
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

using namespace cpu_test;

// matmul_many equals one matmul per matrix, bit for bit: matrices of one dot type (Q4_K with
// Q6_K: both Q8_K), of different dot types (Q8_0, F16, Q4_K: three quantized copies of x) and of
// odd row counts, on every ISA and for 1..3 activation rows.
TEST(Matmul, ManyEqualsOneAtATime) {
  ThreadPool pool(2);
  constexpr int64_t kK = 256;
  const std::vector<std::vector<std::pair<DType, int64_t>>> groups = {
      {{DType::kQ4_K, 37}, {DType::kQ6_K, 9}},
      {{DType::kQ8_0, 64}, {DType::kF16, 5}, {DType::kQ4_K, 33}},
      {{DType::kQ4_0, 1}, {DType::kQ4_0, 130}, {DType::kQ4_0, 17}, {DType::kQ8_0, 3}},
  };
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    for (const auto& group : groups) {
      std::vector<std::vector<std::byte>> data;
      std::vector<WeightMatrix> ws;
      for (const auto& [type, n_out] : group) {
        const std::vector<float> w_float = random_values(static_cast<size_t>(n_out * kK), 7 + data.size(), 0.05f);
        data.emplace_back(*dtype_bytes_for(type, static_cast<uint64_t>(n_out * kK)));
        quantize(type, w_float.data(), data.back().data(), n_out * kK);
      }
      for (size_t j = 0; j < group.size(); ++j) ws.push_back({data[j].data(), group[j].first, group[j].second, kK});
      for (int64_t m : {1, 2, 3}) {
        const std::vector<float> x = random_values(static_cast<size_t>(m * kK), 50 + static_cast<unsigned>(m), 1.0f);
        std::vector<std::vector<float>> one(group.size()), many(group.size());
        std::vector<float*> ys;
        MatmulScratch scratch;
        for (size_t j = 0; j < group.size(); ++j) {
          one[j].assign(static_cast<size_t>(m * ws[j].n_out), NAN);
          many[j].assign(one[j].size(), NAN);
          matmul(cpu_kernels(isa), pool, ws[j], x.data(), m, one[j].data(), scratch);
          ys.push_back(many[j].data());
        }
        matmul_many(cpu_kernels(isa), pool, ws, x.data(), m, ys, scratch);
        for (size_t j = 0; j < group.size(); ++j) EXPECT_EQ(many[j], one[j]) << "matrix " << j << ", m " << m;
      }
    }
  }
}

// A row's outputs do not depend on how many rows share the matmul (the GEMV's promise, which
// CpuBackend::rows_invariant relies on), also where pairs of rows take a two-row dot kernel: rows
// of a 5-row call (two pairs and a single) equal 1-row calls bit for bit, for every type and ISA.
TEST(Matmul, EachRowGivesItsOneRowBits) {
  ThreadPool pool(2);
  constexpr int64_t kK = 512, kOut = 21, kRows = 5;
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    for (const QuantTraits& t : quant_traits_table()) {
      if (t.vec_dot == nullptr || t.dtype == DType::kQ8_1 || t.dtype == DType::kQ8_K) continue;
      SCOPED_TRACE(std::string(dtype_name(t.dtype)));
      const std::vector<float> w_float = random_values(static_cast<size_t>(kOut * kK), 60, 0.05f);
      std::vector<std::byte> blocks(*dtype_bytes_for(t.dtype, static_cast<uint64_t>(kOut * kK)));
      quantize(t.dtype, w_float.data(), blocks.data(), kOut * kK);
      const WeightMatrix w{blocks.data(), t.dtype, kOut, kK};
      const std::vector<float> x = random_values(static_cast<size_t>(kRows * kK), 61, 1.0f);
      MatmulScratch scratch;
      std::vector<float> all(static_cast<size_t>(kRows * kOut), NAN), one(kOut, NAN);
      matmul(cpu_kernels(isa), pool, w, x.data(), kRows, all.data(), scratch);
      for (int64_t i = 0; i < kRows; ++i) {
        matmul(cpu_kernels(isa), pool, w, x.data() + i * kK, 1, one.data(), scratch);
        for (int64_t r = 0; r < kOut; ++r) {
          ASSERT_EQ(std::bit_cast<uint32_t>(all[i * kOut + r]), std::bit_cast<uint32_t>(one[r]))
              << "row " << i << " output " << r;
        }
      }
    }
  }
}

}  // namespace
}  // namespace ember
