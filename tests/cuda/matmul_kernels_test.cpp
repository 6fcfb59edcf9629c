// The CUDA matmul kernels (gemv, dequantize_f16, f32_to_f16) against the CPU reference
// dequantization on random data: every supported type, 1..kGemvMaxRows rows, odd shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "cpu/cpu_test_util.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_kernels.h"
#include "cuda/cuda_test_util.h"
#include "cuda/device_buffer.h"
#include "quant/fp16.h"
#include "quant/quant_traits.h"

namespace ember {
namespace {

using cpu_test::dot64;
using cpu_test::quantized;
using cpu_test::random_values;
using cuda::DeviceBuffer;
using cuda::DeviceMatrix;
using cuda::kGemvMaxRows;
using cuda_test::poisoned_floats;
using cuda_test::relative_error;

const DType kTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ4_0,   DType::kQ4_1,
                        DType::kQ5_0, DType::kQ5_1, DType::kQ8_0, DType::kQ2_K,   DType::kQ3_K,
                        DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kIQ4_NL, DType::kIQ4_XS};
const int64_t kOutSizes[] = {1, 3, 31, 33, 257};

// Row lengths: 1, 2, 3 and 7 blocks and a large k; plain types also odd and 4/8-aligned lengths
// (the kernels' scalar and vector paths).
std::vector<int64_t> k_values(DType type) {
  const int64_t block = dtype_traits(type).block_size;
  if (block == 1) return {1, 5, 8, 33, 64, 1001, 4096};
  if (block == 256) return {256, 512, 768, 1792, 2048 + 256, 17 * 256};  // 17 blocks: 136 units, past 128 threads
  return {32, 64, 96, 224, 11008};
}

std::string shape(DType type, int64_t n_out, int64_t k, int64_t m) {
  return std::string(dtype_name(type)) + " n_out=" + std::to_string(n_out) + " k=" + std::to_string(k) +
         " m=" + std::to_string(m);
}

// A random n_out x k matrix of `type`: its blocks and their CPU dequantization.
struct Matrix {
  std::vector<std::byte> blocks;
  std::vector<float> values;
};
Matrix random_matrix(DType type, int64_t n_out, int64_t k, unsigned seed) {
  Matrix w;
  w.blocks = quantized(type, random_values(static_cast<size_t>(n_out * k), seed, 1.0f));
  w.values.resize(static_cast<size_t>(n_out * k));
  dequantize(type, w.blocks.data(), w.values.data(), n_out * k);
  return w;
}

// gemv of every row count 1..kGemvMaxRows (x_offset floats into the x buffer) against the float64
// reference on the dequantized weights.
void check_gemv(DType type, int64_t n_out, int64_t k, unsigned seed, int64_t x_offset = 0) {
  const Matrix w = random_matrix(type, n_out, k, seed);
  const std::vector<float> x = random_values(static_cast<size_t>(kGemvMaxRows * k + x_offset), seed + 1, 1.0f);
  std::vector<float> want(static_cast<size_t>(kGemvMaxRows * n_out));
  std::vector<double> magnitude(want.size());
  for (int64_t m = 0; m < kGemvMaxRows; ++m) {
    for (int64_t o = 0; o < n_out; ++o) {
      const cpu_test::Dot64 d = dot64(&w.values[o * k], &x[x_offset + m * k], k);
      want[m * n_out + o] = static_cast<float>(d.value);
      magnitude[m * n_out + o] = d.magnitude;
    }
  }
  const DeviceBuffer dw = DeviceBuffer::from(w.blocks);
  const DeviceBuffer dx = DeviceBuffer::from(x);
  const DeviceMatrix matrix{.data = dw.data(), .dtype = type, .n_out = n_out, .k = k};
  for (int64_t m = 1; m <= kGemvMaxRows; ++m) {
    const DeviceBuffer dy = poisoned_floats(static_cast<size_t>(m * n_out));
    cuda::gemv(matrix, dx.as<float>() + x_offset, m, dy.as<float>(), nullptr);
    EMBER_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> got = dy.to_vector<float>(static_cast<size_t>(m * n_out));
    const std::vector<float> want_m(want.begin(), want.begin() + m * n_out);
    EXPECT_LE(relative_error(got, want_m), 1e-5) << shape(type, n_out, k, m);
    // Elementwise too, so one wrong output among many cannot hide: float accumulation of the exact
    // products errs by far less than 1e-5 of Σ|w·x| at these lengths.
    int bad = 0;
    for (size_t i = 0; i < got.size() && bad < 5; ++i) {
      if (!(std::fabs(static_cast<double>(got[i]) - want_m[i]) <= 1e-5 * magnitude[i] + 1e-30)) {
        ADD_FAILURE() << shape(type, n_out, k, m) << " output " << i << ": got " << got[i] << ", want " << want_m[i];
        ++bad;
      }
    }
  }
}

class CudaMatmulTest : public ::testing::TestWithParam<DType> {};

TEST_P(CudaMatmulTest, GemvMatchesReference) {
  EMBER_REQUIRE_GPU();
  const DType type = GetParam();
  unsigned seed = 100;
  for (const int64_t n_out : kOutSizes) {
    for (const int64_t k : k_values(type)) check_gemv(type, n_out, k, seed += 2);
  }
}

TEST_P(CudaMatmulTest, DequantizeF16EqualsRoundedReference) {
  EMBER_REQUIRE_GPU();
  const DType type = GetParam();
  unsigned seed = 500;
  for (const int64_t n_out : {int64_t{1}, int64_t{3}, int64_t{33}}) {
    for (const int64_t k : k_values(type)) {
      const Matrix w = random_matrix(type, n_out, k, seed += 2);
      const size_t n = w.values.size();
      const DeviceBuffer dw = DeviceBuffer::from(w.blocks);
      const DeviceBuffer out = DeviceBuffer::from(std::vector<uint16_t>(n, 0x7E00));  // NaN: unwritten shows
      cuda::dequantize_f16({.data = dw.data(), .dtype = type, .n_out = n_out, .k = k}, out.as<__half>(), nullptr);
      EMBER_CUDA_CHECK(cudaDeviceSynchronize());
      const std::vector<uint16_t> got = out.to_vector<uint16_t>(n);
      int bad = 0;
      for (size_t i = 0; i < n && bad < 5; ++i) {
        const uint16_t want = fp32_to_fp16(w.values[i]);
        if (got[i] != want) {
          ADD_FAILURE() << shape(type, n_out, k, 0) << " element " << i << ": got f16 bits " << got[i] << ", want "
                        << want << " (" << w.values[i] << ")";
          ++bad;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, CudaMatmulTest, ::testing::ValuesIn(kTypes), cuda_test::dtype_param_name);

TEST(CudaMatmul, F32ToF16RoundsLikeTheReference) {
  EMBER_REQUIRE_GPU();
  for (const size_t n : {size_t{1}, size_t{7}, size_t{33}, size_t{1000}, size_t{100003}}) {
    // Normal, subnormal-range and near-overflow magnitudes, then exact ties and the overflow edge.
    std::vector<float> x;
    for (const float scale : {1.0f, 1e-6f, 3e4f}) {
      const std::vector<float> part = random_values(n, static_cast<unsigned>(n) + 3, scale);
      x.insert(x.end(), part.begin(), part.end());
    }
    for (const float special : {65504.0f, 65519.0f, 65520.0f, -65520.0f, 1e10f, 2.98023224e-8f, 8.9406967e-8f, -1e-8f,
                                1.00048828125f, 1.00146484375f, -0.0f}) {
      x.push_back(special);
    }
    const DeviceBuffer dx = DeviceBuffer::from(x);
    const DeviceBuffer out = DeviceBuffer::from(std::vector<uint16_t>(x.size(), 0x7E00));
    cuda::f32_to_f16(dx.as<float>(), out.as<__half>(), static_cast<int64_t>(x.size()), nullptr);
    EMBER_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<uint16_t> got = out.to_vector<uint16_t>(x.size());
    int bad = 0;
    for (size_t i = 0; i < x.size() && bad < 5; ++i) {
      if (got[i] != fp32_to_fp16(x[i])) {
        ADD_FAILURE() << "n=" << n << " x[" << i << "] = " << x[i] << ": got " << got[i] << ", want "
                      << fp32_to_fp16(x[i]);
        ++bad;
      }
    }
  }
}

// gemv_many (q, k, v in one launch: odd and unequal n_out, an empty part; with biases on two of the
// parts, Qwen2's q/k/v biases) and gemv_accumulate (the residual add) give exactly gemv()'s bits,
// and gemv + add's, for every type and row count.
TEST_P(CudaMatmulTest, GemvManyAndAccumulateEqualSeparateLaunches) {
  EMBER_REQUIRE_GPU();
  const DType type = GetParam();
  const std::vector<int64_t> ks = k_values(type);
  for (const int64_t k : {ks[1], ks[2], ks[4]}) {  // plain types: the scalar and the vector path
    const int64_t n_outs[] = {33, 0, 5};
    std::vector<Matrix> ws;
    std::vector<DeviceBuffer> dws;
    std::vector<DeviceMatrix> matrices;
    for (size_t i = 0; i < std::size(n_outs); ++i) {
      ws.push_back(random_matrix(type, n_outs[i], k, 300 + static_cast<unsigned>(i)));
      dws.push_back(DeviceBuffer::from(ws.back().blocks.empty() ? std::vector<std::byte>(64) : ws.back().blocks));
      matrices.push_back({.data = dws.back().data(), .dtype = type, .n_out = n_outs[i], .k = k});
    }
    const DeviceBuffer dx = DeviceBuffer::from(random_values(static_cast<size_t>(kGemvMaxRows * k), 310, 1.0f));
    const std::vector<float> residual = random_values(static_cast<size_t>(kGemvMaxRows * 33), 311, 1.0f);
    const DeviceBuffer bias0 = DeviceBuffer::from(random_values(33, 312, 1.0f));
    const DeviceBuffer bias2 = DeviceBuffer::from(random_values(5, 313, 1.0f));
    const float* const biases[] = {bias0.as<float>(), nullptr, bias2.as<float>()};
    for (int64_t m : {int64_t{1}, int64_t{2}, int64_t{5}, kGemvMaxRows}) {
      SCOPED_TRACE(shape(type, 33, k, m));
      std::vector<DeviceBuffer> separate, together, biased, separate_biased;
      std::vector<float*> ys, biased_ys;
      for (size_t i = 0; i < matrices.size(); ++i) {
        const DeviceMatrix& w = matrices[i];
        const auto size = static_cast<size_t>(std::max<int64_t>(1, m * w.n_out));
        separate.push_back(poisoned_floats(size));
        together.push_back(poisoned_floats(size));
        biased.push_back(poisoned_floats(size));
        separate_biased.push_back(poisoned_floats(size));
        cuda::gemv(w, dx.as<float>(), m, separate.back().as<float>(), nullptr);
        if (biases[i] != nullptr) {
          cuda::add(separate.back().as<float>(), biases[i], separate_biased.back().as<float>(), m, w.n_out, 0, nullptr);
        }
        ys.push_back(together.back().as<float>());
        biased_ys.push_back(biased.back().as<float>());
      }
      cuda::gemv_many(matrices, dx.as<float>(), m, ys, {}, nullptr);
      cuda::gemv_many(matrices, dx.as<float>(), m, biased_ys, biases, nullptr);
      // y += W·x against gemv into a scratch, then add.
      const DeviceBuffer acc = DeviceBuffer::from(residual), sum = DeviceBuffer::from(residual);
      cuda::gemv_accumulate(matrices[0], dx.as<float>(), m, acc.as<float>(), nullptr);
      cuda::add(sum.as<float>(), separate[0].as<float>(), sum.as<float>(), m, 33, 33, nullptr);
      EMBER_CUDA_CHECK(cudaDeviceSynchronize());
      for (size_t i = 0; i < matrices.size(); ++i) {
        const auto n = static_cast<size_t>(m * matrices[i].n_out);
        EXPECT_EQ(together[i].to_vector<float>(n), separate[i].to_vector<float>(n)) << "part " << i;
        const DeviceBuffer& want_biased = biases[i] != nullptr ? separate_biased[i] : separate[i];
        EXPECT_EQ(biased[i].to_vector<float>(n), want_biased.to_vector<float>(n)) << "biased part " << i;
      }
      EXPECT_TRUE(std::isnan(together[1].to_vector<float>(1)[0]));  // the empty part's buffer: untouched
      const std::vector<float> got = acc.to_vector<float>(residual.size());
      EXPECT_EQ(got, sum.to_vector<float>(residual.size()));
      // Rows past m keep the residual as it was.
      EXPECT_TRUE(std::equal(got.begin() + m * 33, got.end(), residual.begin() + m * 33));
    }
  }
}

// gemv_glu: gate and up in one launch with the activation in the store, exactly gemv() of each
// then swiglu() / geglu(); odd n_out (a block's second row past the end).
TEST_P(CudaMatmulTest, GemvGluEqualsGemvsThenGlu) {
  EMBER_REQUIRE_GPU();
  const DType type = GetParam();
  const std::vector<int64_t> ks = k_values(type);
  for (const int64_t k : {ks[1], ks[2], ks[4]}) {  // plain types: the scalar and the vector path
    const int64_t n = 37;
    const Matrix gate = random_matrix(type, n, k, 320), up = random_matrix(type, n, k, 321);
    const DeviceBuffer dgate = DeviceBuffer::from(gate.blocks), dup = DeviceBuffer::from(up.blocks);
    const DeviceMatrix g{.data = dgate.data(), .dtype = type, .n_out = n, .k = k};
    const DeviceMatrix u{.data = dup.data(), .dtype = type, .n_out = n, .k = k};
    // sigma 3: gate values well into SiLU's and GELU's curved parts, negative ones included.
    const DeviceBuffer dx = DeviceBuffer::from(random_values(static_cast<size_t>(kGemvMaxRows * k), 322, 3.0f));
    for (cuda::Glu act : {cuda::Glu::kSilu, cuda::Glu::kGeluTanh}) {
      for (int64_t m : {int64_t{1}, int64_t{3}, kGemvMaxRows}) {
        SCOPED_TRACE(shape(type, n, k, m) + (act == cuda::Glu::kSilu ? " silu" : " gelu"));
        const size_t size = static_cast<size_t>(m * n);
        const DeviceBuffer yg = poisoned_floats(size), yu = poisoned_floats(size), want = poisoned_floats(size),
                           got = poisoned_floats(size);
        cuda::gemv(g, dx.as<float>(), m, yg.as<float>(), nullptr);
        cuda::gemv(u, dx.as<float>(), m, yu.as<float>(), nullptr);
        if (act == cuda::Glu::kSilu) {
          cuda::swiglu(yg.as<float>(), yu.as<float>(), n, want.as<float>(), m, n, nullptr);
        } else {
          cuda::geglu(yg.as<float>(), yu.as<float>(), n, want.as<float>(), m, n, nullptr);
        }
        cuda::gemv_glu(g, u, act, dx.as<float>(), m, got.as<float>(), nullptr);
        EMBER_CUDA_CHECK(cudaDeviceSynchronize());
        const std::vector<float> expected = want.to_vector<float>(size);
        EXPECT_EQ(got.to_vector<float>(size), expected);
        EXPECT_TRUE(std::none_of(expected.begin(), expected.end(), [](float v) { return std::isnan(v); }));
      }
    }
  }
}

// x one float past an aligned address with a k that would take the vector path: the plain types
// fall back to their scalar path (the quantized ones require a 16-byte-aligned x).
TEST(CudaMatmul, GemvTakesAnUnalignedXForPlainTypes) {
  EMBER_REQUIRE_GPU();
  for (const DType type : {DType::kF32, DType::kF16, DType::kBF16}) check_gemv(type, 33, 64, 7, /*x_offset=*/1);
}

// Null pointers everywhere: a launch would fault, and the synchronize below would report it.
TEST(CudaMatmul, ZeroSizesLaunchNothing) {
  EMBER_REQUIRE_GPU();
  EMBER_CUDA_CHECK(cudaDeviceSynchronize());
  cuda::gemv({.data = nullptr, .dtype = DType::kQ4_0, .n_out = 0, .k = 64}, nullptr, 3, nullptr, nullptr);
  cuda::gemv({.data = nullptr, .dtype = DType::kQ4_K, .n_out = 5, .k = 256}, nullptr, 0, nullptr, nullptr);
  cuda::gemv({.data = nullptr, .dtype = DType::kF32, .n_out = 0, .k = 7}, nullptr, 1, nullptr, nullptr);
  cuda::dequantize_f16({.data = nullptr, .dtype = DType::kQ6_K, .n_out = 0, .k = 256}, nullptr, nullptr);
  cuda::dequantize_f16({.data = nullptr, .dtype = DType::kF16, .n_out = 4, .k = 0}, nullptr, nullptr);
  cuda::f32_to_f16(nullptr, nullptr, 0, nullptr);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST(CudaMatmul, SupportsTheGemvTypesOnly) {
  for (const DType type : kTypes) EXPECT_TRUE(cuda::matmul_supports(type)) << dtype_name(type);
  // The activation formats (no weights come in them) and non-float types.
  for (const DType type : {DType::kQ8_1, DType::kQ8_K, DType::kI32, DType::kI8}) {
    EXPECT_FALSE(cuda::matmul_supports(type)) << dtype_name(type);
  }
}

}  // namespace
}  // namespace ember
