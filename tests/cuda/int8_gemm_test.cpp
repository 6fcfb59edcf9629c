// The int8 prefill GEMM (quantize_q8_1_rows, int8_gemm) against the CPU's own Q8_1 activation
// quantizer and its vec_dot_*_q8_0 / vec_dot_*_q8_1 reference dot products, on random data, and for
// the super-block formats (whose CPU dots take Q8_K) against the same per-32 sums written out here
// from the block layouts; shapes that fill and that cut the 64×64 tiles and the 128-value steps.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <cuda_runtime_api.h>

#include "cpu/cpu_test_util.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_kernels.h"
#include "cuda/cuda_test_util.h"
#include "cuda/device_buffer.h"
#include "quant/block_iq4.h"
#include "quant/block_k.h"
#include "quant/block_legacy.h"
#include "quant/fp16.h"
#include "quant/quant_traits.h"

namespace ember {
namespace {

using cpu_test::quantized;
using cpu_test::random_values;
using cuda::DeviceBuffer;
using cuda_test::poisoned_floats;

constexpr int64_t kBlock = cuda::kInt8GemmBlock;

// x [m][k] through quantize_q8_1_rows: the int8 values, the scales and the sums.
struct DeviceQ8Rows {
  DeviceBuffer q, d, s, sum_d;
  cuda::Q8_1Rows rows() const { return {q.as<int8_t>(), d.as<float>(), s.as<float>(), sum_d.as<float>()}; }
};
DeviceQ8Rows quantize_on_device(const std::vector<float>& x, int64_t m, int64_t k) {
  const DeviceBuffer dx = DeviceBuffer::from(x);
  DeviceQ8Rows out{DeviceBuffer::from(std::vector<int8_t>(static_cast<size_t>(m * k), 0x5A)),
                   poisoned_floats(static_cast<size_t>(m * k / kBlock)),
                   poisoned_floats(static_cast<size_t>(m * k / kBlock)),
                   poisoned_floats(static_cast<size_t>(m * k / kBlock))};
  cuda::quantize_q8_1_rows(dx.as<float>(), m, k, out.rows(), nullptr);
  EMBER_CUDA_CHECK(cudaDeviceSynchronize());
  return out;
}

TEST(CudaInt8Gemm, QuantizedActivationsEqualTheCpusQ8_1) {
  EMBER_REQUIRE_GPU();
  const int64_t m = 5, k = 7 * kBlock;
  std::vector<float> x = random_values(static_cast<size_t>(m * k), 3, 2.0f);
  for (int64_t j = 0; j < kBlock; ++j) x[static_cast<size_t>(kBlock + j)] = 0.0f;  // a zero block: d = 0
  x[70] = std::numeric_limits<float>::quiet_NaN();                                 // skipped by absmax, q = 0
  x[100] = 1e30f;                                                                  // one huge value
  // A block of absmax 127 (d = 1) with ties: ±2.5 rounds away from zero to ±3.
  for (int64_t j = 0; j < kBlock; ++j) x[static_cast<size_t>(3 * kBlock + j)] = static_cast<float>(j % 7) - 3.0f;
  x[3 * kBlock] = 127.0f;
  x[3 * kBlock + 1] = 2.5f;
  x[3 * kBlock + 2] = -2.5f;
  x[4 * kBlock + 5] = INFINITY;  // d = inf, every q 0 (inf · 0 is NaN: 0)
  const DeviceQ8Rows got = quantize_on_device(x, m, k);
  const std::vector<int8_t> q = got.q.to_vector<int8_t>(static_cast<size_t>(m * k));
  const std::vector<float> d = got.d.to_vector<float>(static_cast<size_t>(m * k / kBlock));
  const std::vector<float> s = got.s.to_vector<float>(static_cast<size_t>(m * k / kBlock));
  const std::vector<float> sum_d = got.sum_d.to_vector<float>(static_cast<size_t>(m * k / kBlock));
  const std::vector<std::byte> want = quantized(DType::kQ8_1, x);
  // The cases are what they claim (the CPU's side of them).
  BlockQ8_1 ties;
  std::memcpy(&ties, want.data() + 3 * sizeof(BlockQ8_1), sizeof(ties));
  ASSERT_EQ(fp16_to_fp32(ties.d), 1.0f);
  ASSERT_EQ(ties.qs[1], 3);
  ASSERT_EQ(ties.qs[2], -3);
  ASSERT_NE(fp16_to_fp32(ties.s), 0.0f);
  // Q8_0's values and d are Q8_1's.
  const std::vector<std::byte> q8_0 = quantized(DType::kQ8_0, x);
  for (int64_t b = 0; b < m * k / kBlock; ++b) {
    BlockQ8_0 plain;
    std::memcpy(&plain, q8_0.data() + b * sizeof(BlockQ8_0), sizeof(plain));
    BlockQ8_1 block;
    std::memcpy(&block, want.data() + b * sizeof(BlockQ8_1), sizeof(block));
    ASSERT_EQ(plain.d, block.d);
    ASSERT_EQ(std::memcmp(plain.qs, block.qs, sizeof(plain.qs)), 0);
    EXPECT_EQ(d[static_cast<size_t>(b)], fp16_to_fp32(block.d)) << "block " << b;
    // The infinite block's s is 0 · inf: a NaN on both sides (its sign and payload may differ).
    const float want_s = fp16_to_fp32(block.s), got_s = s[static_cast<size_t>(b)];
    EXPECT_TRUE(std::isnan(want_s) ? std::isnan(got_s) : got_s == want_s)
        << "block " << b << ": s " << got_s << ", want " << want_s;
    int sum = 0;
    for (const int8_t v : block.qs) sum += v;
    const float want_sum = fp16_to_fp32(block.d) * static_cast<float>(sum), got_sum = sum_d[static_cast<size_t>(b)];
    EXPECT_TRUE(std::isnan(want_sum) ? std::isnan(got_sum) : got_sum == want_sum)
        << "block " << b << ": sum_d " << got_sum << ", want " << want_sum;
    for (int64_t j = 0; j < kBlock; ++j) {
      EXPECT_EQ(q[static_cast<size_t>(b * kBlock + j)], block.qs[j]) << "block " << b << " value " << j;
    }
  }
}

// A super-block format's sub-block `sub` (32 values) as int8 values v and scales, value = d·v + m,
// with per16 (Q3_K, Q6_K) (d·scale[l / 16])·v, with mins16 (Q2_K) d·v + m·min[l / 16]; written
// out from the block layouts (quant/block_k.h, block_iq4.h) as int8_gemm decodes them.
struct SubBlock {
  int v[kBlock];
  float d, m;
  bool per16, mins16;
  int scale[2], min[2];
};

// Q2_K sub-block 4h + p: value l is bits 2p of qs[32h + l] times the low nibble of scales[2 sub]
// (l < 16) or scales[2 sub + 1]; their high nibbles are the mins, times -dmin.
SubBlock q2_k_sub_block(const std::byte* bytes, int sub) {
  BlockQ2_K b;
  std::memcpy(&b, bytes, sizeof(b));
  SubBlock out{};
  out.d = fp16_to_fp32(b.d);
  out.m = -fp16_to_fp32(b.dmin);
  out.mins16 = true;
  for (int half = 0; half < 2; ++half) out.min[half] = b.scales[2 * sub + half] >> 4;
  for (int l = 0; l < kBlock; ++l) {
    out.v[l] = ((b.qs[32 * (sub / 4) + l] >> (2 * (sub % 4))) & 3) * (b.scales[2 * sub + l / 16] & 0x0F);
  }
  return out;
}

template <class Block>  // BlockQ4_K or BlockQ5_K: value l is nibble sub % 2 of qs[32 (sub / 2) + l]
SubBlock k4_sub_block(const std::byte* bytes, int sub) {
  Block b;
  std::memcpy(&b, bytes, sizeof(b));
  uint8_t scale, min;
  scale_min_k4(sub, b.scales, &scale, &min);
  SubBlock out{};
  out.d = fp16_to_fp32(b.d) * static_cast<float>(scale);
  out.m = -(fp16_to_fp32(b.dmin) * static_cast<float>(min));
  for (int l = 0; l < kBlock; ++l) {
    out.v[l] = (b.qs[32 * (sub / 2) + l] >> (4 * (sub % 2))) & 0x0F;
    if constexpr (std::is_same_v<Block, BlockQ5_K>) out.v[l] |= ((b.qh[l] >> sub) & 1) << 4;
  }
  return out;
}

SubBlock iq4_xs_sub_block(const std::byte* bytes, int sub) {
  BlockIQ4_XS b;
  std::memcpy(&b, bytes, sizeof(b));
  const int ls = ((b.scales_l[sub / 2] >> (4 * (sub % 2))) & 0x0F) | (((b.scales_h >> (2 * sub)) & 3) << 4);
  SubBlock out{};
  out.d = fp16_to_fp32(b.d) * static_cast<float>(ls - 32);
  for (int l = 0; l < kBlock; ++l) out.v[l] = kIQ4Values[(b.qs[16 * sub + l % 16] >> (l < 16 ? 0 : 4)) & 0x0F];
  return out;
}

// Q6_K sub-block 4h + qq: value l is nibble qq / 2 of ql[64h + 32 (qq % 2) + l] with bits 2qq of
// qh[32h + l] above it, minus 32; scales 8h + 2qq and the next.
SubBlock q6_k_sub_block(const std::byte* bytes, int sub) {
  BlockQ6_K b;
  std::memcpy(&b, bytes, sizeof(b));
  const int h = sub / 4, qq = sub % 4;
  SubBlock out{};
  out.d = fp16_to_fp32(b.d);
  out.per16 = true;
  out.scale[0] = b.scales[8 * h + 2 * qq];
  out.scale[1] = b.scales[8 * h + 2 * qq + 1];
  for (int l = 0; l < kBlock; ++l) {
    const int low = (b.ql[64 * h + 32 * (qq % 2) + l] >> (4 * (qq / 2))) & 0x0F;
    out.v[l] = (low | ((b.qh[32 * h + l] >> (2 * qq)) & 3) << 4) - 32;
  }
  return out;
}

// Q3_K sub-block 4h + p: value l is bits 2p of qs[32h + l], minus 4 unless bit 4h + p of hmask[l]
// is set; scale i (16 of 6 bits, minus 32) has its low nibble in byte i % 8 (the high nibble for
// i >= 8) and its top 2 bits at bit 2 (i / 4) of byte 8 + i % 4.
SubBlock q3_k_sub_block(const std::byte* bytes, int sub) {
  BlockQ3_K b;
  std::memcpy(&b, bytes, sizeof(b));
  const auto scale = [&](int i) {
    return (((b.scales[i % 8] >> (4 * (i / 8))) & 0x0F) | (((b.scales[8 + i % 4] >> (2 * (i / 4))) & 3) << 4)) - 32;
  };
  SubBlock out{};
  out.d = fp16_to_fp32(b.d);
  out.per16 = true;
  out.scale[0] = scale(2 * sub);
  out.scale[1] = scale(2 * sub + 1);
  for (int l = 0; l < kBlock; ++l) {
    out.v[l] = ((b.qs[32 * (sub / 4) + l] >> (2 * (sub % 4))) & 3) - (((b.hmask[l] >> sub) & 1) != 0 ? 0 : 4);
  }
  return out;
}

SubBlock sub_block(DType type, const std::byte* block, int sub) {
  switch (type) {
    case DType::kQ4_K: return k4_sub_block<BlockQ4_K>(block, sub);
    case DType::kQ5_K: return k4_sub_block<BlockQ5_K>(block, sub);
    case DType::kQ6_K: return q6_k_sub_block(block, sub);
    case DType::kQ3_K: return q3_k_sub_block(block, sub);
    case DType::kQ2_K: return q2_k_sub_block(block, sub);
    default: return iq4_xs_sub_block(block, sub);
  }
}

// Row `row` (k values) of a super-block format's matrix as sub-blocks; each value must be the CPU
// dequantizer's, bit for bit (which checks these decoders against it).
std::vector<SubBlock> sub_blocks(DType type, const std::byte* row, int64_t k) {
  std::vector<SubBlock> out;
  const size_t block_bytes = *dtype_bytes_for(type, kQK_K);
  for (int64_t b = 0; b < k / kQK_K; ++b) {
    for (int sub = 0; sub < kQK_K / kBlock; ++sub) {
      out.push_back(sub_block(type, row + b * block_bytes, sub));
    }
  }
  std::vector<float> values(static_cast<size_t>(k));
  dequantize(type, row, values.data(), k);
  for (size_t i = 0; i < values.size(); ++i) {
    const SubBlock& sb = out[i / kBlock];
    const int l = static_cast<int>(i % kBlock);
    const float value = sb.per16    ? (sb.d * static_cast<float>(sb.scale[l / 16])) * static_cast<float>(sb.v[l])
                        : sb.mins16 ? sb.d * static_cast<float>(sb.v[l]) + sb.m * static_cast<float>(sb.min[l / 16])
                                    : sb.d * static_cast<float>(sb.v[l]) + sb.m;
    EXPECT_EQ(value, values[i]) << dtype_name(type) << " value " << i;
  }
  return out;
}

// What int8_gemm computes for one output of a super-block format: over the 32-value blocks in k
// order, float(Σ v·q) · (d_w · d_x) + m_w · (d_x · Σq) (vec_dot_*_q8_1's formula, but the exact sum
// of x's block rather than Q8_1's f16 s; Q8_1 activations x); with per16, Σ v·q is
// scale[0] · Σ_{l<16} v·q + scale[1] · Σ_{l>=16} v·q (exact as a float); with mins16, the min term
// is float(Σ min[l / 16]·q) · (m_w · d_x).
float super_block_dot(DType type, const std::vector<SubBlock>& w, const std::byte* x_row) {
  float sum = 0;
  for (size_t b = 0; b < w.size(); ++b) {
    BlockQ8_1 x;
    std::memcpy(&x, x_row + b * sizeof(BlockQ8_1), sizeof(x));
    int half_dots[2] = {0, 0}, x_sum = 0, min_dot = 0;
    for (int l = 0; l < kBlock; ++l) {
      half_dots[l / 16] += w[b].v[l] * x.qs[l];
      x_sum += x.qs[l];
      min_dot += w[b].min[l / 16] * x.qs[l];
    }
    const int dot =
        w[b].per16 ? w[b].scale[0] * half_dots[0] + w[b].scale[1] * half_dots[1] : half_dots[0] + half_dots[1];
    float term = static_cast<float>(dot) * (w[b].d * fp16_to_fp32(x.d));
    if (type == DType::kQ4_K || type == DType::kQ5_K) term += w[b].m * (fp16_to_fp32(x.d) * static_cast<float>(x_sum));
    if (w[b].mins16) term += static_cast<float>(min_dot) * (w[b].m * fp16_to_fp32(x.d));
    sum += term;
  }
  return sum;
}

// y = int8_gemm(w, quantize_q8_1_rows(x)) for every output, bit for bit (the kernel runs the
// reference's float operations, unfused, in its order) against: vec_dot(w row, the CPU's Q8_0 or
// Q8_1 x row) for the 32-value formats; super_block_dot for the others.
// x is random in ±1.5, plus x_shift.
void check_int8_gemm(DType type, int64_t m, int64_t n_out, int64_t k, unsigned seed, float x_shift = 0.0f) {
  const std::string shape = std::string(dtype_name(type)) + " m=" + std::to_string(m) +
                            " n_out=" + std::to_string(n_out) + " k=" + std::to_string(k);
  const QuantTraits* found = find_quant_traits(type);
  ASSERT_NE(found, nullptr);
  const QuantTraits& traits = *found;
  const bool super_blocks = traits.vec_dot_type == DType::kQ8_K;
  ASSERT_TRUE(super_blocks || traits.vec_dot_type == DType::kQ8_0 || traits.vec_dot_type == DType::kQ8_1);
  const DType x_type = super_blocks ? DType::kQ8_1 : traits.vec_dot_type;
  const std::vector<std::byte> w = quantized(type, random_values(static_cast<size_t>(n_out * k), seed, 1.0f));
  std::vector<float> x = random_values(static_cast<size_t>(m * k), seed + 1, 1.5f);
  for (float& v : x) v += x_shift;
  const std::vector<std::byte> xq = quantized(x_type, x);
  const size_t w_row = *dtype_bytes_for(type, static_cast<uint64_t>(k));
  const size_t x_row = *dtype_bytes_for(x_type, static_cast<uint64_t>(k));

  const DeviceQ8Rows q8 = quantize_on_device(x, m, k);
  const DeviceBuffer dw = DeviceBuffer::from(w);
  constexpr int64_t kGuard = 64;  // NaNs after y that must stay unwritten
  const DeviceBuffer dy = poisoned_floats(static_cast<size_t>(m * n_out + kGuard));
  cuda::int8_gemm({.data = dw.data(), .dtype = type, .n_out = n_out, .k = k}, q8.rows(), m, dy.as<float>(), nullptr);
  EMBER_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> got = dy.to_vector<float>(static_cast<size_t>(m * n_out + kGuard));
  for (int64_t i = m * n_out; i < m * n_out + kGuard; ++i) {
    EXPECT_TRUE(std::isnan(got[static_cast<size_t>(i)])) << shape << ": wrote " << i - m * n_out << " past y";
  }

  std::vector<std::vector<SubBlock>> w_sub_blocks;
  for (int64_t o = 0; super_blocks && o < n_out; ++o) w_sub_blocks.push_back(sub_blocks(type, w.data() + o * w_row, k));
  int bad = 0;
  for (int64_t r = 0; r < m && bad < 5; ++r) {
    for (int64_t o = 0; o < n_out && bad < 5; ++o) {
      const std::byte* x_r = xq.data() + r * x_row;
      const float want = super_blocks ? super_block_dot(type, w_sub_blocks[static_cast<size_t>(o)], x_r)
                                      : traits.vec_dot(k, w.data() + o * w_row, x_r);
      const float g = got[static_cast<size_t>(r * n_out + o)];
      if (!std::isfinite(want)) {
        ADD_FAILURE() << shape << " y[" << r << "][" << o << "]: the expected value is " << want;
        ++bad;
      } else if (g != want) {
        ADD_FAILURE() << shape << " y[" << r << "][" << o << "]: got " << g << ", want " << want;
        ++bad;
      }
    }
  }
}

class CudaInt8GemmTest : public ::testing::TestWithParam<DType> {};

TEST_P(CudaInt8GemmTest, EqualsTheCpuDotProductsOfQ8_1Activations) {
  EMBER_REQUIRE_GPU();
  const DType type = GetParam();
  ASSERT_TRUE(cuda::int8_gemm_supports(type));
  unsigned seed = 40;
  if (find_quant_traits(type)->vec_dot_type == DType::kQ8_K) {
    // Whole tiles and steps; rows and columns past a tile; 1, 2 and 3 super-blocks (a step is half of one).
    check_int8_gemm(type, 64, 64, 256, seed += 2);
    check_int8_gemm(type, 9, 65, 256, seed += 2);
    check_int8_gemm(type, 130, 63, 512, seed += 2);
    check_int8_gemm(type, 17, 130, 768, seed += 2);
    // Activations near 3000: a block's d·Σq (~96000) is past f16's 65504, where Q8_1's s is inf
    // (Q4_K / Q5_K's min term; for the others, the largest integer sums).
    check_int8_gemm(type, 9, 20, 256, seed += 2, 3000.0f);
    return;
  }
  // Whole tiles and steps; rows and columns past a tile; k of 1, 3, 5 and 9 blocks (steps cut short).
  check_int8_gemm(type, 64, 64, 128, seed += 2);
  check_int8_gemm(type, 9, 65, 32, seed += 2);
  check_int8_gemm(type, 130, 63, 160, seed += 2);
  check_int8_gemm(type, 65, 130, 96, seed += 2);
  check_int8_gemm(type, 17, 200, 288, seed += 2);
}

INSTANTIATE_TEST_SUITE_P(Int8Types, CudaInt8GemmTest,
                         ::testing::Values(DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0,
                                           DType::kIQ4_NL, DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K,
                                           DType::kQ6_K, DType::kIQ4_XS),
                         cuda_test::dtype_param_name);

// CudaBackend with the int8 GEMM on: matmul_many quantizes x once for consecutive int8 matrices and
// again after a cuBLAS one (BF16, dequantized to f16: it overwrites the shared scratch): every output equals its own
// matmul()'s, and the int8 ones int8_gemm's.
TEST(CudaInt8Gemm, BackendMatmulManySharesTheQuantizedActivations) {
  EMBER_REQUIRE_GPU();
  const int64_t m = 20, n_out = 40, k = 256;
  const DType types[] = {DType::kQ4_K, DType::kQ4_1, DType::kBF16, DType::kQ2_K, DType::kQ6_K};
  cuda::CudaBackend backend(cuda::CudaBackendOptions{.int8_gemm = true});
  backend.reserve({.max_rows = m, .max_k = k}, n_out * k, 0);
  std::vector<std::vector<std::byte>> blocks;
  std::vector<cuda::CudaLinear> linears;
  for (size_t i = 0; i < std::size(types); ++i) {
    blocks.push_back(quantized(types[i], random_values(static_cast<size_t>(n_out * k), 70 + i, 1.0f)));
    linears.push_back(backend.upload({blocks.back().data(), types[i], n_out, k}, "w"));
  }
  const DeviceBuffer x = DeviceBuffer::from(random_values(static_cast<size_t>(m * k), 80, 1.0f));
  std::vector<DeviceBuffer> together, alone;
  std::vector<const cuda::CudaLinear*> ws;
  std::vector<float*> ys;
  for (const cuda::CudaLinear& l : linears) {
    together.push_back(poisoned_floats(static_cast<size_t>(m * n_out)));
    alone.push_back(poisoned_floats(static_cast<size_t>(m * n_out)));
    ws.push_back(&l);
    ys.push_back(together.back().as<float>());
  }
  // x and the y buffers came by cudaMemcpy on the legacy stream, which the backend's non-blocking
  // stream does not wait for.
  EMBER_CUDA_CHECK(cudaDeviceSynchronize());
  backend.matmul_many(ws, x.as<float>(), m, ys);
  for (size_t i = 0; i < linears.size(); ++i) backend.matmul(linears[i], x.as<float>(), m, alone[i].as<float>());
  backend.synchronize();
  for (size_t i = 0; i < linears.size(); ++i) {
    SCOPED_TRACE(dtype_name(types[i]));
    const std::vector<float> a = together[i].to_vector<float>(static_cast<size_t>(m * n_out));
    EXPECT_EQ(a, alone[i].to_vector<float>(static_cast<size_t>(m * n_out)));
    if (types[i] == DType::kBF16) continue;
    const DeviceQ8Rows q8 = quantize_on_device(x.to_vector<float>(static_cast<size_t>(m * k)), m, k);
    const DeviceBuffer y = poisoned_floats(static_cast<size_t>(m * n_out));
    cuda::int8_gemm(linears[i].w, q8.rows(), m, y.as<float>(), nullptr);
    EMBER_CUDA_CHECK(cudaDeviceSynchronize());
    EXPECT_EQ(a, y.to_vector<float>(static_cast<size_t>(m * n_out)));
  }
}

TEST(CudaInt8Gemm, SupportsTheBlockTypes) {
  for (const DType type : {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0, DType::kIQ4_NL,
                           DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kIQ4_XS}) {
    EXPECT_TRUE(cuda::int8_gemm_supports(type)) << dtype_name(type);
  }
  for (const DType type : {DType::kF32, DType::kF16, DType::kBF16}) {
    EXPECT_FALSE(cuda::int8_gemm_supports(type)) << dtype_name(type);
  }
}

}  // namespace
}  // namespace ember
