// Reference dot products agree with the dot product of the dequantized operands, for every weight
// type in the table, on heavy-tailed random data (never zeros), for several row lengths.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "quant/quant_traits.h"

namespace ember {
namespace {

std::vector<float> random_row(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng) * (u(rng) < 0.01f ? 8.0f : 1.0f) + 0.1f;  // off-centre: tests mins
  return x;
}

std::vector<std::byte> quantized(DType dtype, const std::vector<float>& x) {
  std::vector<std::byte> blocks(*dtype_bytes_for(dtype, x.size()));
  quantize(dtype, x.data(), blocks.data(), static_cast<int64_t>(x.size()));
  return blocks;
}

std::vector<float> dequantized(DType dtype, const std::vector<std::byte>& blocks, size_t n) {
  std::vector<float> y(n);
  dequantize(dtype, blocks.data(), y.data(), static_cast<int64_t>(n));
  return y;
}

TEST(VecDot, MatchesTheDotOfDequantizedOperands) {
  int tested = 0;
  for (const QuantTraits& t : quant_traits_table()) {
    if (t.vec_dot == nullptr) continue;
    SCOPED_TRACE(std::string(dtype_name(t.dtype)) + " . " + std::string(dtype_name(t.vec_dot_type)));
    ASSERT_NE(find_quant_traits(t.vec_dot_type), nullptr);
    ASSERT_NE(find_quant_traits(t.vec_dot_type)->from_float, nullptr);
    for (size_t n : {size_t{256}, size_t{1024}, size_t{256 * 7}}) {
      const auto wx = quantized(t.dtype, random_row(n, static_cast<unsigned>(n)));
      const auto ay = quantized(t.vec_dot_type, random_row(n, static_cast<unsigned>(n) + 1));
      const auto x = dequantized(t.dtype, wx, n), y = dequantized(t.vec_dot_type, ay, n);
      double expected = 0, magnitude = 0;
      for (size_t i = 0; i < n; ++i) {
        expected += static_cast<double>(x[i]) * y[i];
        magnitude += std::fabs(static_cast<double>(x[i]) * y[i]);
      }
      const double got = t.vec_dot(static_cast<int64_t>(n), wx.data(), ay.data());
      // Float accumulation: ~1e-6 of the magnitude. Q8_1 activations carry their block sum as an
      // f16 (s = d * sum q), which the 4_1/5_1 dots use for the min term: ~1e-3 of it.
      const double tolerance = (t.vec_dot_type == DType::kQ8_1 ? 2e-3 : 1e-5) * magnitude;
      EXPECT_NEAR(got, expected, tolerance) << n << " elements";
    }
    ++tested;
  }
  EXPECT_EQ(tested, 15);  // every weight type of the issue (Q8_1 and Q8_K are activation types)
}

}  // namespace
}  // namespace ember
