// The repacked GEMM: integer form of every served type vs dequantize, SIMD quantizers and
// microkernels vs the scalar references bit for bit, gemm() vs float64 and vs the GEMV path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>

#include "cpu/gemm.h"
#include "cpu_test_util.h"
#include "ember/error.h"
#include "quant/fp16.h"

namespace ember {
namespace {

using namespace cpu_test;

// Every weight type the GEMM serves.
std::vector<DType> packed_types() {
  std::vector<DType> types;
  for (const QuantTraits& t : quant_traits_table()) {
    if (panel_format(t.dtype)) types.push_back(t.dtype);
  }
  return types;
}

GemmIsaKernels isa_kernels(Isa isa) { return isa == Isa::kAvx2 ? gemm_avx2_kernels() : gemm_avx512_kernels(); }

TEST(Gemm, ServesTheQuantizedWeightTypes) {
  const std::vector<DType> types = packed_types();
  EXPECT_EQ(types.size(), 12u);
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_K, DType::kQ8_1}) EXPECT_FALSE(panel_format(t));
}

TEST(Gemm, IntegerFormEqualsDequantize) {
  constexpr int64_t kK = 512;
  for (DType type : packed_types()) {
    SCOPED_TRACE(std::string(dtype_name(type)));
    const PanelFormat f = *panel_format(type);
    const std::vector<float> w = random_values(kK, 3, 0.05f);
    const std::vector<std::byte> blocks = quantized(type, w);
    std::vector<float> want(kK);
    dequantize(type, blocks.data(), want.data(), kK);
    std::vector<uint8_t> q(kK);
    std::vector<float> scale(kK / f.sub), min(kK / f.sub);
    decode_row_ints(type, blocks.data(), kK, q.data(), scale.data(), min.data());
    float max_abs = 0;
    for (float v : want) max_abs = std::max(max_abs, std::fabs(v));
    for (int64_t j = 0; j < kK; ++j) {
      const int64_t s = j / f.sub;
      const float got = scale[s] * static_cast<float>(q[j] - f.offset) + min[s];
      ASSERT_NEAR(got, want[j], 1e-6f * max_abs) << "element " << j;
      if (!f.has_min) {
        ASSERT_EQ(min[s], 0.0f);
      }
    }
  }
}

// Quantized activations in one ISA's layout.
struct QuantizedActs {
  GemmScratch scratch;
  GemmActivations acts;
  ActLayout layout;
};

QuantizedActs quantize_acts(Isa isa, bool reference, const PanelFormat& f, const std::vector<float>& x, int64_t m,
                            int64_t k) {
  QuantizedActs a;
  a.layout = gemm_act_layout(isa);
  a.acts = a.scratch.prepare(f, a.layout, m, k);
  if (reference) {
    gemm_quantize_scalar(a.layout, f, x.data(), k, 0, m, a.acts);
  } else {
    isa_kernels(isa).quantize(f, x.data(), k, 0, m, a.acts);
  }
  return a;
}

// Row r, element j of the activations (any layout), and the per-(row, sub-block) values.
int32_t act_value(const QuantizedActs& a, const PanelFormat& f, int64_t r, int64_t j) {
  const int64_t t = r / a.layout.tile_rows, lane = r % a.layout.tile_rows, s = j / f.sub, i = j % f.sub;
  const int64_t cell = (t * a.acts.n_sub + s) * a.layout.tile_rows;
  const int64_t at =
      cell * f.sub + ((i / a.layout.k_group) * a.layout.tile_rows + lane) * a.layout.k_group + i % a.layout.k_group;
  const auto* q = static_cast<const std::byte*>(a.acts.q);
  if (a.layout.elem_bytes == 1) return static_cast<int8_t>(q[at]);
  int16_t v;
  std::memcpy(&v, q + 2 * at, sizeof v);
  return v;
}

int64_t cell_of(const QuantizedActs& a, int64_t r, int64_t s) {
  return (r / a.layout.tile_rows * a.acts.n_sub + s) * a.layout.tile_rows + r % a.layout.tile_rows;
}

// Every value, scale and sum of m rows of k equal (two quantizers of one layout).
void expect_same_acts(const QuantizedActs& got, const QuantizedActs& want, const PanelFormat& f, int64_t m, int64_t k) {
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t j = 0; j < k; ++j) ASSERT_EQ(act_value(got, f, r, j), act_value(want, f, r, j)) << r << "," << j;
    for (int64_t s = 0; s < k / f.sub; ++s) {
      const int64_t c = cell_of(want, r, s);
      ASSERT_EQ(got.acts.scale[c], want.acts.scale[c]) << r << "," << s;
      ASSERT_EQ(got.acts.corr[c], want.acts.corr[c]) << r << "," << s;
      if (f.has_min) {
        ASSERT_EQ(got.acts.min_scale[c], want.acts.min_scale[c]) << r << "," << s;
      }
    }
  }
}

TEST(Gemm, SimdQuantizersMatchScalarExactly) {
  constexpr int64_t kM = 7, kK = 256;
  std::vector<float> x = random_values(kM * kK, 7, 2.0f);
  for (int j = 0; j < 32; ++j) x[static_cast<size_t>(kK + j)] = 0.0f;  // an all-zero block: scale 0
  // Blocks so small that 1/d overflows (d = amax/127 subnormal): they quantize to zeros.
  for (int j = 0; j < 32; ++j) x[static_cast<size_t>(2 * kK + j)] = (j % 2 ? 1e-38f : -3e-39f) * static_cast<float>(j);
  for (Isa isa : supported_isas()) {
    if (isa == Isa::kScalar) continue;
    SCOPED_TRACE(std::string(isa_name(isa)));
    for (const PanelFormat f : {PanelFormat{32, 8, false, false}, PanelFormat{16, 32, true, false}}) {
      const QuantizedActs want = quantize_acts(isa, true, f, x, kM, kK);
      const QuantizedActs got = quantize_acts(isa, false, f, x, kM, kK);
      for (int j = 0; j < 32; ++j) EXPECT_EQ(act_value(want, f, 2, j), 0) << "tiny block, element " << j;
      expect_same_acts(got, want, f, kM, kK);
    }
  }
}

// Runs one kernel over every pair of groups of a packed matrix the way gemm() does, with sub-block
// chunks of `chunk` so the accumulate path is taken.
std::vector<float> run_tiles(const PackedWeights& w, int64_t m, int64_t chunk,
                             const std::function<void(const GemmTile&)>& kernel) {
  // A sentinel tail catches stores past the last row.
  std::vector<float> y(static_cast<size_t>(m * w.n_out() + 64), NAN);
  std::fill(y.end() - 64, y.end(), 12345.0f);
  const int64_t rows = w.layout().rows;
  for (int64_t sb0 = 0; sb0 < w.n_sub(); sb0 += chunk) {
    for (int64_t g = 0; g < w.n_groups(); g += 2) {
      kernel(GemmTile{w.group(g) + sb0 * w.sub_bytes(), w.n_sub() * w.sub_bytes(),
                      std::min<int64_t>(2, w.n_groups() - g), sb0, std::min(chunk, w.n_sub() - sb0), m,
                      y.data() + g * rows, w.n_out(), std::min(2 * rows, w.n_out() - g * rows), sb0 > 0, nullptr, 0,
                      0});
    }
  }
  for (auto it = y.end() - 64; it != y.end(); ++it) EXPECT_EQ(*it, 12345.0f) << "store past the output";
  y.resize(y.size() - 64);
  return y;
}

TEST(Gemm, SimdMicrokernelsMatchScalarBitForBit) {
  ThreadPool pool(2);
  constexpr int64_t kK = 768, kOut = 37;  // 37 rows: a partial last group on both layouts
  for (Isa isa : supported_isas()) {
    if (isa == Isa::kScalar) continue;
    SCOPED_TRACE(std::string(isa_name(isa)));
    for (DType type : packed_types()) {
      SCOPED_TRACE(std::string(dtype_name(type)));
      const std::vector<std::byte> blocks = quantized(type, random_values(kOut * kK, 5, 0.05f));
      const PackedWeights w = PackedWeights::pack({blocks.data(), type, kOut, kK}, isa, pool);
      for (int64_t m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 17}) {  // every height of a last tile
        const std::vector<float> x = random_values(static_cast<size_t>(m * kK), 40 + static_cast<unsigned>(m), 1.0f);
        const QuantizedActs a_ref = quantize_acts(isa, true, w.format(), x, m, kK);
        const QuantizedActs a_isa = quantize_acts(isa, false, w.format(), x, m, kK);
        const int64_t chunk = w.n_sub() / 3 + 1;
        const std::vector<float> want = run_tiles(w, m, chunk, [&](const GemmTile& tile) {
          gemm_kernel_scalar(w.format(), w.layout(), a_ref.layout, a_ref.acts, tile);
        });
        const std::vector<float> got = run_tiles(
            w, m, chunk, [&](const GemmTile& tile) { isa_kernels(isa).kernel(w.format(), a_isa.acts, tile); });
        for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "m " << m << " output " << i;
      }
    }
  }
}

// gemm() end to end against float64 of the dequantized weights and the quantized activations the
// kernels see, on every ISA, with more rows than a row chunk and more k than a k chunk.
void expect_gemm_matches_float64(Isa isa, DType type, int64_t m, int64_t k, int64_t n_out, ThreadPool& pool,
                                 const GemmOptions& options = {}) {
  const std::vector<std::byte> blocks = quantized(type, random_values(static_cast<size_t>(n_out * k), 9, 0.05f));
  std::vector<float> w_deq(static_cast<size_t>(n_out * k));
  dequantize(type, blocks.data(), w_deq.data(), n_out * k);
  const PackedWeights w = PackedWeights::pack({blocks.data(), type, n_out, k}, isa, pool);
  const std::vector<float> x = random_values(static_cast<size_t>(m * k), 21, 1.0f);
  const QuantizedActs a = quantize_acts(isa, true, w.format(), x, m, k);
  std::vector<float> y(static_cast<size_t>(m * n_out), NAN);
  GemmScratch scratch;
  gemm(isa, pool, w, x.data(), m, y.data(), scratch, options);
  const int sub = w.format().sub;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t r = 0; r < n_out; ++r) {
      double want = 0, magnitude = 0;
      for (int64_t j = 0; j < k; ++j) {
        const double a_deq = static_cast<double>(a.acts.scale[cell_of(a, i, j / sub)]) * act_value(a, w.format(), i, j);
        const double p = static_cast<double>(w_deq[static_cast<size_t>(r * k + j)]) * a_deq;
        want += p;
        magnitude += std::fabs(p);
      }
      ASSERT_NEAR(y[static_cast<size_t>(i * n_out + r)], want, 2e-5 * magnitude) << "row " << i << " output " << r;
    }
  }
}

TEST(Gemm, EveryTypeEveryIsaMatchesFloat64) {
  ThreadPool pool(3);
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    for (DType type : packed_types()) {
      SCOPED_TRACE(std::string(dtype_name(type)));
      expect_gemm_matches_float64(isa, type, 11, 512, 37, pool);
    }
  }
}

TEST(Gemm, RowAndDepthChunksMatchFloat64) {
  ThreadPool pool(2);
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    for (DType type : {DType::kQ4_0, DType::kQ6_K, DType::kQ4_K}) {
      SCOPED_TRACE(std::string(dtype_name(type)));
      // k in chunks whatever the rows' size (the default would run this k whole).
      expect_gemm_matches_float64(isa, type, 261, 2304, 20, pool, GemmOptions{.amx = true, .whole_k_act_bytes = 0});
    }
  }
}

TEST(Gemm, AgreesWithTheGemvPath) {
  ThreadPool pool(2);
  constexpr int64_t kM = 9, kK = 1024, kOut = 45;
  const Isa isa = supported_isas().back();
  for (DType type : packed_types()) {
    SCOPED_TRACE(std::string(dtype_name(type)));
    const std::vector<std::byte> blocks = quantized(type, random_values(kOut * kK, 13, 0.05f));
    const std::vector<float> x = random_values(kM * kK, 17, 1.0f);
    const WeightMatrix wm{blocks.data(), type, kOut, kK};
    std::vector<float> gemv_y(kM * kOut), gemm_y(kM * kOut);
    MatmulScratch matmul_scratch;
    matmul(cpu_kernels(isa), pool, wm, x.data(), kM, gemv_y.data(), matmul_scratch);
    GemmScratch gemm_scratch;
    gemm(isa, pool, PackedWeights::pack(wm, isa, pool), x.data(), kM, gemm_y.data(), gemm_scratch);
    std::vector<float> w_deq(kOut * kK);
    dequantize(type, blocks.data(), w_deq.data(), kOut * kK);
    for (int64_t i = 0; i < kM; ++i) {
      for (int64_t r = 0; r < kOut; ++r) {
        const double magnitude = dot64(&w_deq[r * kK], &x[i * kK], kK).magnitude;
        // The two paths quantize activations differently (Q8_0 / Q8_K blocks vs per-sub-block
        // bytes): each element's error is at most half a step of 1/127 of its block's max.
        EXPECT_NEAR(gemm_y[i * kOut + r], gemv_y[i * kOut + r], 1e-2 * magnitude);
      }
    }
  }
}

TEST(Gemm, RejectsUnservedTypesAndForeignLayouts) {
  ThreadPool pool(1);
  std::vector<std::byte> w(4096);
  EXPECT_THROW(PackedWeights::pack({w.data(), DType::kF32, 2, 256}, Isa::kScalar, pool), Error);
  EXPECT_THROW(PackedWeights::pack({w.data(), DType::kQ4_K, 2, 100}, Isa::kScalar, pool), Error);
  EXPECT_THROW(PackedWeights::pack({w.data(), DType::kF16, 2, 100}, Isa::kScalar, pool), Error);
  EXPECT_THROW(PackedWeights::pack({w.data(), DType::kQ8_0, 2, 0}, Isa::kScalar, pool), Error);
  EXPECT_THROW(PackedWeights::pack({w.data(), DType::kQ8_0, 0, 256}, Isa::kScalar, pool), Error);
}

TEST(GemmDeathTest, WeightsPackedForAnotherLayoutAbort) {
  if (!isa_supported(Isa::kAvx512, cpu_features())) GTEST_SKIP() << "needs an AVX-512 CPU (two layouts)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ThreadPool pool(1);
  std::vector<std::byte> w(4096);
  const PackedWeights packed = PackedWeights::pack({w.data(), DType::kQ8_0, 2, 256}, Isa::kAvx2, pool);
  std::vector<float> x(256, 1.0f), y(2);
  GemmScratch scratch;
  EXPECT_DEATH(gemm(Isa::kAvx512, pool, packed, x.data(), 1, y.data(), scratch), "another ISA's layout");
}

// F16 / BF16 weights: the avx512 float microkernels against the scalar reference bit for bit,
// and gemm() against float64 of the weights and the activations as the kernels see them.
TEST(GemmFloat, Avx512MicrokernelsMatchScalarBitForBit) {
  if (!isa_supported(Isa::kAvx512, cpu_features())) GTEST_SKIP() << "this CPU has no AVX-512";
  ThreadPool pool(2);
  constexpr int64_t kK = 320, kOut = 37;
  const GemmIsaKernels kernels = gemm_avx512_kernels();
  for (DType type : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(std::string(dtype_name(type)));
    const std::vector<std::byte> blocks = quantized(type, random_values(kOut * kK, 5, 0.05f));
    const PackedWeights w = PackedWeights::pack({blocks.data(), type, kOut, kK}, Isa::kAvx512, pool);
    // Every row count of a tile (each has its own kernel), then several tiles.
    for (int64_t m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 25}) {
      std::vector<float> x = random_values(static_cast<size_t>(m * kK), 60 + static_cast<unsigned>(m), 1.0f);
      x[0] = 1e-39f;  // subnormal activations: kept by the conversion, read as zero by vdpbf16ps
      x[3] = -2.5e-39f;
      GemmScratch ref_scratch, isa_scratch;
      const ActLayout layout = type == DType::kF16 ? kF16Acts : kBF16Acts;
      const GemmActivations a_ref = ref_scratch.prepare(w.format(), layout, m, kK);
      const GemmActivations a_isa = isa_scratch.prepare(w.format(), layout, m, kK);
      gemm_float_acts_scalar(w.kind(), x.data(), kK, 0, m, a_ref.q);
      kernels.float_acts(w.kind(), x.data(), kK, 0, m, a_isa.q);
      ASSERT_EQ(0, std::memcmp(a_ref.q, a_isa.q, static_cast<size_t>((m + 11) / 12 * 12 * kK * layout.elem_bytes)));
      const int64_t chunk = w.n_sub() / 3 + 1;
      const std::vector<float> want =
          run_tiles(w, m, chunk, [&](const GemmTile& tile) { gemm_float_kernel_scalar(w.kind(), a_ref, tile); });
      const std::vector<float> got =
          run_tiles(w, m, chunk, [&](const GemmTile& tile) { kernels.float_kernel(w.kind(), a_isa, tile); });
      for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "m " << m << " output " << i;
    }
  }
}

TEST(GemmFloat, MatchesFloat64OnEveryIsa) {
  ThreadPool pool(3);
  constexpr int64_t kM = 29, kK = 1088, kOut = 37;  // 1088: two k chunks
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    for (DType type : {DType::kF16, DType::kBF16}) {
      SCOPED_TRACE(std::string(dtype_name(type)));
      const std::vector<std::byte> blocks = quantized(type, random_values(kOut * kK, 8, 0.05f));
      std::vector<float> w_deq(kOut * kK);
      dequantize(type, blocks.data(), w_deq.data(), kOut * kK);
      const std::vector<float> x = random_values(kM * kK, 31, 1.0f);
      std::vector<float> x_seen = x;  // BF16 weights take bf16 activations
      if (type == DType::kBF16) {
        std::vector<std::byte> xb(*dtype_bytes_for(DType::kBF16, x.size()));
        quantize(DType::kBF16, x.data(), xb.data(), kM * kK);
        dequantize(DType::kBF16, xb.data(), x_seen.data(), kM * kK);
      }
      const PackedWeights w = PackedWeights::pack({blocks.data(), type, kOut, kK}, isa, pool);
      std::vector<float> y(kM * kOut, NAN);
      GemmScratch scratch;
      gemm(isa, pool, w, x.data(), kM, y.data(), scratch, GemmOptions{false});  // AMX F16: GemmAmx below
      for (int64_t i = 0; i < kM; ++i) {
        for (int64_t r = 0; r < kOut; ++r) {
          const Dot64 want = dot64(&w_deq[r * kK], &x_seen[i * kK], kK);
          ASSERT_NEAR(y[i * kOut + r], want.value, 2e-5 * want.magnitude) << "row " << i << " output " << r;
        }
      }
    }
  }
}

TEST(GemmFloat, ServedWhereAKernelExists) {
  EXPECT_FALSE(gemm_serves(Isa::kScalar, DType::kQ4_0));
  EXPECT_TRUE(gemm_serves(Isa::kAvx2, DType::kQ4_0));
  EXPECT_FALSE(gemm_serves(Isa::kAvx2, DType::kF16));
  EXPECT_TRUE(gemm_serves(Isa::kAvx512, DType::kBF16));
  EXPECT_FALSE(gemm_serves(Isa::kAvx512, DType::kF32));
}

// The same packed weights and activations give bit-identical outputs on every ISA and thread
// count (the kernels and the reference perform the same float operations in the same order),
// over shapes with partial tiles, groups, pairs and k chunks; m = 0 leaves y untouched.
TEST(Gemm, EveryIsaAndThreadCountGivesIdenticalBits) {
  std::mt19937 rng(77);
  const DType types[] = {DType::kQ4_0,   DType::kQ8_0, DType::kQ4_K, DType::kQ6_K,
                         DType::kIQ4_XS, DType::kQ2_K, DType::kF16,  DType::kBF16};
  for (int round = 0; round < 8; ++round) {
    const DType type = types[round];
    const int64_t k = 256 * (1 + static_cast<int64_t>(rng() % 5));
    const int64_t n_out = 1 + static_cast<int64_t>(rng() % 90), m = 1 + static_cast<int64_t>(rng() % 40);
    SCOPED_TRACE(std::string(dtype_name(type)) + " m " + std::to_string(m) + " k " + std::to_string(k) + " n " +
                 std::to_string(n_out));
    const std::vector<std::byte> blocks =
        quantized(type, random_values(static_cast<size_t>(n_out * k), 90u + round, 0.05f));
    const std::vector<float> x = random_values(static_cast<size_t>(m * k), 50u + round, 1.0f);
    std::vector<float> first;
    for (Isa isa : supported_isas()) {
      for (int threads : {1, 3}) {
        ThreadPool pool(threads);
        const PackedWeights w = PackedWeights::pack({blocks.data(), type, n_out, k}, isa, pool);
        std::vector<float> y(static_cast<size_t>(m * n_out), NAN);
        GemmScratch scratch;
        // F16 on AMX (16+ rows) splits values into bf16 pairs: close to the others, not identical.
        const GemmOptions options{type != DType::kF16};
        gemm(isa, pool, w, x.data(), 0, y.data(), scratch, options);
        ASSERT_TRUE(std::isnan(y[0])) << "m = 0 wrote output";
        gemm(isa, pool, w, x.data(), m, y.data(), scratch, options);
        if (first.empty()) first = y;
        for (size_t i = 0; i < y.size(); ++i) {
          ASSERT_EQ(y[i], first[i]) << isa_name(isa) << ", " << threads << " threads, output " << i;
        }
      }
    }
  }
}

// Whether a task runs k whole or in L1-sized chunks is a speed choice: every ISA gives the same bits
// both ways, for row counts of one partial tile to several. The scratch is filled with NaNs first
// (gemm() zeroes the padding rows only for AMX's whole tiles): stored rows must not read them. (A
// kernel that computed the padding rows without storing them would pass: their results are not
// output.)
TEST(Gemm, KChunkingAndStalePaddingLeaveTheBits) {
  constexpr int64_t kOut = 45, kK = 768;  // 3 float k-chunks, 2 int8 ones
  for (DType type : {DType::kF16, DType::kBF16, DType::kQ4_K, DType::kQ8_0}) {
    const std::vector<std::byte> blocks = quantized(type, random_values(static_cast<size_t>(kOut * kK), 31u, 0.05f));
    for (Isa isa : supported_isas()) {
      SCOPED_TRACE(std::string(dtype_name(type)) + " " + std::string(isa_name(isa)));
      ThreadPool pool(2);
      const PackedWeights w = PackedWeights::pack({blocks.data(), type, kOut, kK}, isa, pool);
      for (int64_t m : {1, 3, 5, 13, 30}) {
        const std::vector<float> x = random_values(static_cast<size_t>(m * kK), 7u + static_cast<uint32_t>(m), 1.0f);
        std::vector<float> whole(static_cast<size_t>(m * kOut), NAN), chunked = whole;
        GemmScratch scratch;
        scratch.reserve(32, kK, true);
        const auto poison = [&scratch] {
          std::memset(scratch.q.data(), 0xFF, scratch.q.size());  // NaN floats, NaN bf16 pairs, int8 255s
          std::fill(scratch.scale.begin(), scratch.scale.end(), NAN);
          std::fill(scratch.min_scale.begin(), scratch.min_scale.end(), NAN);
          std::fill(scratch.corr.begin(), scratch.corr.end(), std::numeric_limits<int32_t>::min());
        };
        poison();
        gemm(isa, pool, w, x.data(), m, chunked.data(), scratch, GemmOptions{.amx = true, .whole_k_act_bytes = 0});
        poison();
        gemm(isa, pool, w, x.data(), m, whole.data(), scratch,
             GemmOptions{.amx = true, .whole_k_act_bytes = std::numeric_limits<int64_t>::max()});
        for (size_t i = 0; i < whole.size(); ++i) {
          ASSERT_TRUE(std::isfinite(whole[i])) << "m " << m << ", output " << i;
          ASSERT_EQ(whole[i], chunked[i]) << "m " << m << ", output " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// gemm_row_many (decode's q / k / v in one job) equals gemm() per matrix bit for bit, for every
// packed type on every ISA with a GEMM, with row counts that leave odd group counts and a matrix
// smaller than one pair, over a scratch whose padding lanes hold NaNs.
TEST(Gemm, RowManyEqualsOneMatrixAtATime) {
  ThreadPool pool(2);
  constexpr int64_t kK = 512;
  for (Isa isa : supported_isas()) {
    if (isa == Isa::kScalar) continue;
    SCOPED_TRACE(std::string(isa_name(isa)));
    for (DType type : packed_types()) {
      SCOPED_TRACE(std::string(dtype_name(type)));
      std::vector<PackedWeights> ws;
      for (int64_t n_out : {70, 9, 33}) {
        const std::vector<std::byte> blocks =
            quantized(type, random_values(static_cast<size_t>(n_out * kK), static_cast<unsigned>(n_out), 0.05f));
        ws.push_back(PackedWeights::pack({blocks.data(), type, n_out, kK}, isa, pool));
      }
      const std::vector<float> x = random_values(kK, 77, 1.0f);
      GemmScratch scratch;
      std::vector<std::vector<float>> one, many;
      std::vector<const PackedWeights*> pointers;
      std::vector<float*> ys;
      for (const PackedWeights& w : ws) {
        one.emplace_back(static_cast<size_t>(w.n_out()), NAN);
        many.emplace_back(static_cast<size_t>(w.n_out()), NAN);
        gemm(isa, pool, w, x.data(), 1, one.back().data(), scratch);
      }
      for (size_t j = 0; j < ws.size(); ++j) {
        pointers.push_back(&ws[j]);
        ys.push_back(many[j].data());
      }
      // Stale padding lanes (gemm_row_many does not zero them): row_kernel reads lane 0 only.
      std::memset(scratch.q.data(), 0xFF, scratch.q.size());
      std::fill(scratch.scale.begin(), scratch.scale.end(), NAN);
      gemm_row_many(isa, pool, pointers, x.data(), ys, scratch);
      for (size_t j = 0; j < ws.size(); ++j) EXPECT_EQ(many[j], one[j]) << "matrix " << j;
    }
  }
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// Every packed type on every GEMM layout: each element of each panel, read back through the
// layout's definition (gemm_isa.h), equals decode_row_ints of its row, and so do the scales and
// mins; padding rows are zero. (Q8_0 and Q4_0 are packed by a direct copy, the rest by decoding.)
TEST(Gemm, PanelsHoldTheDecodedIntegers) {
  ThreadPool pool(2);
  constexpr int64_t kK = 512, kOut = 21;
  for (Isa isa : supported_isas()) {
    if (isa == Isa::kScalar) continue;
    SCOPED_TRACE(std::string(isa_name(isa)));
    for (DType type : packed_types()) {
      SCOPED_TRACE(std::string(dtype_name(type)));
      const std::vector<std::byte> blocks = quantized(type, random_values(kOut * kK, 13, 0.05f));
      const PackedWeights w = PackedWeights::pack({blocks.data(), type, kOut, kK}, isa, pool);
      const PanelFormat& f = w.format();
      const int rows = w.layout().rows, k_group = w.layout().k_group, sub = f.sub;
      const int64_t q_bytes = int64_t{rows} * sub / (f.nibbles ? 2 : 1);
      const size_t row_bytes = *dtype_bytes_for(type, kK);
      std::vector<uint8_t> q(kK);
      std::vector<float> scale(static_cast<size_t>(kK / sub)), min(static_cast<size_t>(kK / sub));
      for (int64_t n = 0; n < w.n_groups() * rows; ++n) {
        const bool padding = n >= kOut;
        if (!padding) decode_row_ints(type, blocks.data() + n * row_bytes, kK, q.data(), scale.data(), min.data());
        const int64_t g = n / rows, r = n % rows;
        for (int64_t s = 0; s < w.n_sub(); ++s) {
          const uint8_t* sb = w.group(g) + s * w.sub_bytes();
          for (int j = 0; j < sub; ++j) {
            const int kg = j / k_group, e = j % k_group, half = sub / (2 * k_group);
            uint8_t v;
            if (f.nibbles) {
              const uint8_t byte = sb[((kg % half) * rows + r) * k_group + e];
              v = kg < half ? byte & 0x0F : byte >> 4;
            } else {
              v = sb[(kg * rows + r) * k_group + e];
            }
            ASSERT_EQ(v, padding ? 0 : q[static_cast<size_t>(s * sub + j)])
                << "row " << n << " element " << s * sub + j;
          }
          float got_scale, got_min = 0;
          std::memcpy(&got_scale, sb + q_bytes + 4 * r, 4);
          if (f.has_min) std::memcpy(&got_min, sb + q_bytes + 4 * rows + 4 * r, 4);
          ASSERT_EQ(got_scale, padding ? 0.0f : scale[static_cast<size_t>(s)]) << "row " << n;
          if (f.has_min) {
            ASSERT_EQ(got_min, padding ? 0.0f : min[static_cast<size_t>(s)]) << "row " << n;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// The AMX-INT8 kernel (integer panels of 16+ rows where the CPU and OS allow it): its quantizer and
// microkernel against the scalar references on its layout, bit for bit, and gemm() with it against
// gemm() on the VNNI kernels, bit for bit.
QuantizedActs quantize_amx_acts(bool reference, const PanelFormat& f, const std::vector<float>& x, int64_t m,
                                int64_t k) {
  QuantizedActs a;
  a.layout = amx_act_layout(f);
  a.acts = a.scratch.prepare(f, a.layout, m, k);
  if (reference) {
    gemm_quantize_scalar(a.layout, f, x.data(), k, 0, m, a.acts);
  } else {
    gemm_amx_quantize(f, x.data(), k, 0, m, a.acts);
  }
  return a;
}

TEST(GemmAmx, QuantizerMatchesScalarExactly) {
  if (!amx_usable()) GTEST_SKIP() << "this CPU or OS offers no AMX-INT8";
  constexpr int64_t kM = 19, kK = 256;  // two row tiles, the second partial
  std::vector<float> x = random_values(kM * kK, 71, 2.0f);
  for (int j = 0; j < 32; ++j) x[static_cast<size_t>(kK + j)] = 0.0f;  // an all-zero block
  for (const PanelFormat f : {PanelFormat{32, 8, false, false}, PanelFormat{16, 32, true, false}}) {
    const QuantizedActs want = quantize_amx_acts(true, f, x, kM, kK);
    const QuantizedActs got = quantize_amx_acts(false, f, x, kM, kK);
    expect_same_acts(got, want, f, kM, kK);
  }
}

TEST(GemmAmx, MicrokernelMatchesScalarBitForBit) {
  if (!amx_usable()) GTEST_SKIP() << "this CPU or OS offers no AMX-INT8";
  ThreadPool pool(2);
  constexpr int64_t kK = 1280, kOut = 37;  // 40 sub-blocks of 32: more than one unpacked piece
  for (DType type : packed_types()) {
    SCOPED_TRACE(std::string(dtype_name(type)));
    const std::vector<std::byte> blocks = quantized(type, random_values(kOut * kK, 15, 0.05f));
    const PackedWeights w = PackedWeights::pack({blocks.data(), type, kOut, kK}, Isa::kAvx512, pool);
    for (int64_t m : {1, 16, 17, 31, 40}) {
      const std::vector<float> x = random_values(static_cast<size_t>(m * kK), 80 + static_cast<unsigned>(m), 1.0f);
      const QuantizedActs a_ref = quantize_amx_acts(true, w.format(), x, m, kK);
      const QuantizedActs a_amx = quantize_amx_acts(false, w.format(), x, m, kK);
      for (int64_t chunk : {w.n_sub() / 3 + 1, w.n_sub()}) {
        const std::vector<float> want = run_tiles(w, m, chunk, [&](const GemmTile& tile) {
          gemm_kernel_scalar(w.format(), w.layout(), a_ref.layout, a_ref.acts, tile);
        });
        const std::vector<float> got =
            run_tiles(w, m, chunk, [&](const GemmTile& tile) { gemm_amx_kernel(w.format(), a_amx.acts, tile); });
        for (size_t i = 0; i < want.size(); ++i) {
          ASSERT_EQ(got[i], want[i]) << "m " << m << " chunk " << chunk << " output " << i;
        }
      }
    }
  }
}

TEST(GemmAmx, GemmEqualsTheVnniKernelsBitForBit) {
  if (!amx_usable()) GTEST_SKIP() << "this CPU or OS offers no AMX-INT8";
  constexpr int64_t kK = 2304, kOut = 53;  // several k chunks; a partial last group pair
  int served = 0;
  for (DType type : packed_types()) {
    SCOPED_TRACE(std::string(dtype_name(type)));
    const std::vector<std::byte> blocks = quantized(type, random_values(kOut * kK, 25, 0.05f));
    for (int threads : {1, 3}) {
      ThreadPool pool(threads);
      const PackedWeights w = PackedWeights::pack({blocks.data(), type, kOut, kK}, Isa::kAvx512, pool);
      ASSERT_EQ(amx_serves(Isa::kAvx512, w), w.format().sub == 32);  // 16-element sub-blocks: VNNI
      if (!amx_serves(Isa::kAvx512, w)) continue;
      ++served;
      EXPECT_FALSE(gemm_takes_amx(Isa::kAvx512, w, kAmxMinRows - 1, GemmOptions{true}));
      EXPECT_FALSE(gemm_takes_amx(Isa::kAvx512, w, kAmxMinRows, GemmOptions{false}));
      ASSERT_TRUE(gemm_takes_amx(Isa::kAvx512, w, kAmxMinRows, GemmOptions{true}));
      for (int64_t m : {16, 45, 300}) {  // 300: more than one row chunk
        const std::vector<float> x = random_values(static_cast<size_t>(m * kK), 90 + static_cast<unsigned>(m), 1.0f);
        std::vector<float> vnni(static_cast<size_t>(m * kOut), NAN), amx(vnni.size(), NAN);
        GemmScratch scratch;
        gemm(Isa::kAvx512, pool, w, x.data(), m, vnni.data(), scratch, GemmOptions{false});
        gemm(Isa::kAvx512, pool, w, x.data(), m, amx.data(), scratch, GemmOptions{true});
        for (size_t i = 0; i < vnni.size(); ++i) {
          ASSERT_EQ(amx[i], vnni[i]) << threads << " threads, m " << m << ", output " << i;
        }
      }
    }
  }
  EXPECT_EQ(served, 2 * 9);  // Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, IQ4_NL, IQ4_XS on 1 and 3 threads
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// F16 weights on AMX-BF16: the activations' bf16 hi / lo split in its tile layout, and gemm()
// against float64 of the F16 weights and the f32 activations (each product within 2^-17 of exact:
// gemm_amx_f16.cpp), with partial row tiles, a partial group pair, partial pieces and k chunks, on
// random values and on constant ones (no averaging: the per-product bound itself).
TEST(GemmAmx, F16ActivationsSplitIntoBf16Pairs) {
  if (!amx_bf16_usable()) GTEST_SKIP() << "this CPU or OS offers no AMX-BF16";
  constexpr int64_t kM = 19, kK = 96;
  const std::vector<float> x = random_values(kM * kK, 33, 3.0f);
  GemmScratch scratch;
  const GemmActivations acts = scratch.prepare(PanelFormat{32, 0, false, false}, kAmxF16Acts, kM, kK);
  gemm_amx_f16_acts(PanelKind::kF16, x.data(), kK, 0, kM, acts.q);
  const auto* q = static_cast<const uint16_t*>(acts.q);
  for (int64_t r = 0; r < kM; ++r) {
    for (int64_t j = 0; j < kK; ++j) {
      const int64_t cell = (r / 16 * (kK / 32) + j / 32) * 2 * 16 * 32;  // in bf16 elements
      const int64_t at = cell + r % 16 * 32 + j % 32;
      const float v = x[static_cast<size_t>(r * kK + j)];
      const uint16_t hi = fp32_to_bf16(v);
      ASSERT_EQ(q[at], hi) << r << "," << j;
      ASSERT_EQ(q[at + 16 * 32], fp32_to_bf16(v - bf16_to_fp32(hi))) << r << "," << j;
    }
  }
}

TEST(GemmAmx, F16GemmMatchesFloat64) {
  if (!amx_bf16_usable()) GTEST_SKIP() << "this CPU or OS offers no AMX-BF16";
  constexpr int64_t kK = 1088, kOut = 37;  // 34 sub-blocks: two k chunks of 8 and a short one
  const std::vector<std::byte> blocks = quantized(DType::kF16, random_values(kOut * kK, 44, 0.05f));
  std::vector<float> w_deq(kOut * kK);
  dequantize(DType::kF16, blocks.data(), w_deq.data(), kOut * kK);
  for (int threads : {1, 3}) {
    ThreadPool pool(threads);
    const PackedWeights w = PackedWeights::pack({blocks.data(), DType::kF16, kOut, kK}, Isa::kAvx512, pool);
    ASSERT_TRUE(gemm_takes_amx(Isa::kAvx512, w, 16, GemmOptions{true}));
    for (int64_t m : {16, 29, 300}) {
      const std::vector<float> x = random_values(static_cast<size_t>(m * kK), 50 + static_cast<unsigned>(m), 1.0f);
      std::vector<float> y(static_cast<size_t>(m * kOut), NAN), fma_y(y.size(), NAN);
      GemmScratch scratch;
      gemm(Isa::kAvx512, pool, w, x.data(), m, y.data(), scratch, GemmOptions{true});
      gemm(Isa::kAvx512, pool, w, x.data(), m, fma_y.data(), scratch, GemmOptions{false});
      double worst = 0;
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t r = 0; r < kOut; ++r) {
          const Dot64 want = dot64(&w_deq[r * kK], &x[i * kK], kK);
          const double err = std::fabs(y[i * kOut + r] - want.value) / want.magnitude;
          ASSERT_LT(err, 2e-5) << threads << " threads, m " << m << ", row " << i << " output " << r;
          worst = std::max(worst, err);
        }
      }
      // Not the FMA kernel's arithmetic: the split must be taken (and stay close to it).
      EXPECT_NE(y, fma_y) << "m " << m;
      EXPECT_GT(worst, 0.0);
    }
  }
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// Constant inputs: every product carries the same error, so the sum shows the per-product bound
// (2^-17) undiluted. The weight 1 + 7·2^-10 has a 3-bit lo part; each activation sits where its
// split drops the most (from 1 + 2^-8 − 2^-17, a tie of the hi rounding, to random).
TEST(GemmAmx, F16ProductErrorBoundHoldsOnConstantInputs) {
  if (!amx_bf16_usable()) GTEST_SKIP() << "this CPU or OS offers no AMX-BF16";
  constexpr int64_t kK = 256, kOut = 16, kM = 16;
  ThreadPool pool(1);
  for (float wv : {1.0068359375f, -1.9990234375f, 0.0009765625f}) {
    const std::vector<float> w_float(kOut * kK, wv);
    const std::vector<std::byte> blocks = quantized(DType::kF16, w_float);
    std::vector<float> w_seen(kOut * kK);
    dequantize(DType::kF16, blocks.data(), w_seen.data(), kOut * kK);
    const PackedWeights w = PackedWeights::pack({blocks.data(), DType::kF16, kOut, kK}, Isa::kAvx512, pool);
    for (float xv : {1.00390625f, 1.0f + 0x1p-8f - 0x1p-17f, 1.0f + 0x1p-8f + 0x1p-16f + 0x1p-17f, -3.14159265f}) {
      const std::vector<float> x(kM * kK, xv);
      std::vector<float> y(kM * kOut, NAN);
      GemmScratch scratch;
      gemm(Isa::kAvx512, pool, w, x.data(), kM, y.data(), scratch, GemmOptions{true});
      const double exact = static_cast<double>(w_seen[0]) * xv * kK;
      // 2^-17 per product plus fp32 accumulation of 256 equal terms (~2^-24 · 128 ≈ 7.6e-6).
      for (float v : y) ASSERT_NEAR(v, exact, 2e-5 * std::fabs(exact)) << "w " << wv << " x " << xv;
    }
  }
}

}  // namespace
}  // namespace ember
