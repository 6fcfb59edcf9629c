// The CUDA mixture-of-experts kernels against the CPU on random data: route_experts against the
// CPU softmax or sigmoid and select_experts (the same experts, ties and -inf included; biases,
// groups and scales), gemv_experts and
// gemv_experts_glu against gemv / gemv_glu of each entry's expert (the same bits), combine_experts
// against the CPU's sum in increasing expert order, and an F32 weight's GEMM (cuBLAS FP32).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_test_util.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_kernels.h"
#include "cuda/device_buffer.h"
#include "cuda_test_util.h"
#include "model/moe.h"
#include "quant/quant_traits.h"

namespace ember {
namespace {

using cpu_test::quantized;
using cpu_test::random_values;
using cuda::DeviceBuffer;
using cuda::DeviceMatrix;
using cuda_test::poisoned_floats;
using cuda_test::relative_error;
using cuda_test::scalar_cpu;
using cuda_test::sync_device;

// Random logits with ties (every fourth value repeats the one before) and, optionally, -inf
// entries (a steering hook's masked experts); the last two rows hold a +inf and a NaN logit (a
// steering hook's forcing, a broken model), whose probabilities are all NaN.
std::vector<float> router_logits(int64_t n_rows, int32_t n_expert, unsigned seed, bool masked) {
  std::vector<float> x = random_values(static_cast<size_t>(n_rows * n_expert), seed, 3.0f);
  for (size_t i = 0; i < x.size(); ++i) {
    if (i % 4 == 3) x[i] = x[i - 1];
    if (masked && i % 5 == 1) x[i] = -INFINITY;
  }
  x[static_cast<size_t>((n_rows - 2) * n_expert + n_expert / 2)] = INFINITY;
  x[static_cast<size_t>((n_rows - 1) * n_expert + n_expert / 3)] = NAN;
  return x;
}

// Equal, NaN in the same places counting as equal.
bool same_values(const std::vector<float>& a, const std::vector<float>& b, double tolerance) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i])) return false;
    if (!std::isnan(a[i]) && std::fabs(a[i] - b[i]) > tolerance * std::max(1.0f, std::fabs(b[i]))) return false;
  }
  return true;
}

TEST(CudaMoe, RouteExpertsMatchesTheCpu) {
  EMBER_REQUIRE_GPU();
  for (const int32_t n_expert : {1, 4, 7, 33, 64, 130}) {
    for (const int32_t k : {1, 2, 3, 8, cuda::kMaxExpertsUsed}) {
      if (k > n_expert) continue;
      for (const bool normalize : {false, true}) {
        for (const bool masked : {false, true}) {
          if (masked && n_expert < 8) continue;  // keep k finite entries
          const int64_t n_rows = 9;
          SCOPED_TRACE("n_expert " + std::to_string(n_expert) + " k " + std::to_string(k) + " normalize " +
                       std::to_string(normalize) + " masked " + std::to_string(masked));
          const std::vector<float> logits =
              router_logits(n_rows, n_expert, 7u + static_cast<unsigned>(n_expert), masked);
          std::vector<float> probs(logits.size());
          scalar_cpu().softmax(logits.data(), probs.data(), n_rows, n_expert, 1.0f, 0.0f);
          std::vector<int32_t> want_experts(static_cast<size_t>(n_rows * k));
          std::vector<float> want_weights(want_experts.size());
          select_experts(probs.data(), n_rows, n_expert, k, normalize, want_experts.data(), want_weights.data());

          const DeviceBuffer d_logits = DeviceBuffer::from(logits);
          const DeviceBuffer d_probs = poisoned_floats(logits.size());
          // Out of place, then in place (as the GPU layers run it) into other outputs.
          DeviceBuffer d_experts[2], d_weights[2];
          for (int in_place = 0; in_place < 2; ++in_place) {
            d_experts[in_place] = DeviceBuffer(sizeof(int32_t) * want_experts.size());
            d_weights[in_place] = poisoned_floats(want_weights.size());
            float* out_probs = in_place != 0 ? d_logits.as<float>() : d_probs.as<float>();
            cuda::route_experts(d_logits.as<float>(), n_rows, {.n_expert = n_expert, .k = k, .normalize = normalize},
                                out_probs, d_experts[in_place].as<int32_t>(), d_weights[in_place].as<float>(), nullptr);
          }
          sync_device();
          for (int in_place = 0; in_place < 2; ++in_place) {
            SCOPED_TRACE(in_place != 0 ? "in place" : "out of place");
            EXPECT_EQ(d_experts[in_place].to_vector<int32_t>(want_experts.size()), want_experts);
            EXPECT_TRUE(same_values(d_weights[in_place].to_vector<float>(want_weights.size()), want_weights, 1e-6));
          }
          EXPECT_TRUE(same_values(d_probs.to_vector<float>(probs.size()), probs, 1e-6));
          EXPECT_TRUE(same_values(d_logits.to_vector<float>(probs.size()), probs, 1e-6));
        }
      }
    }
  }
}

// DeepSeek V3's routing (sigmoid gating, a selection bias, group-limited choice, normalized and
// scaled weights) and its parts alone, against the CPU's gate_router_logits and select_experts.
TEST(CudaMoe, BiasedGroupedSigmoidRoutingMatchesTheCpu) {
  EMBER_REQUIRE_GPU();
  struct Case {
    int32_t n_expert, k, n_group, n_group_used;
    bool sigmoid, bias, normalize;
    float scale;
  };
  const Case cases[] = {{256, 8, 8, 4, true, true, true, 2.5f},     {64, 6, 8, 3, true, true, true, 1.0f},
                        {64, 6, 0, 0, true, false, false, 0.0f},    {64, 6, 0, 0, false, true, false, 16.0f},
                        {8, 3, 4, 2, true, true, true, 2.5f},       {96, 5, 32, 2, false, false, true, 1.0f},
                        {160, 6, 0, 0, false, false, false, 16.0f}, {16, 4, 4, 2, true, false, true, 1.0f}};
  for (const Case& cs : cases) {
    SCOPED_TRACE("n_expert " + std::to_string(cs.n_expert) + " k " + std::to_string(cs.k) + " groups " +
                 std::to_string(cs.n_group) + "/" + std::to_string(cs.n_group_used) + " sigmoid " +
                 std::to_string(cs.sigmoid) + " bias " + std::to_string(cs.bias) + " scale " +
                 std::to_string(cs.scale));
    const int64_t n_rows = 11;
    // (No +inf / NaN rows here: RouteExpertsMatchesTheCpu has them.)
    std::vector<float> logits = random_values(static_cast<size_t>(n_rows * cs.n_expert), 31u, 3.0f);
    for (size_t i = 3; i < logits.size(); i += 4) logits[i] = logits[i - 1];  // ties
    if (cs.n_group > 2 && !cs.bias) {
      // Row 0: groups 0, 1 and 2 equal and the best (the lower groups win, then the lower experts);
      // row 1: sigmoids of about 3e-7, whose sum the normalization clamps to 2^-14.
      const int32_t per_group = cs.n_expert / cs.n_group;
      for (int32_t e = 0; e < per_group; ++e) {
        logits[static_cast<size_t>(e)] += 5.0f;
        for (int32_t g = 1; g < 3; ++g) logits[static_cast<size_t>(g * per_group + e)] = logits[static_cast<size_t>(e)];
      }
      for (int32_t e = 0; e < cs.n_expert; ++e) logits[static_cast<size_t>(cs.n_expert + e)] = -15.0f - 0.01f * e;
    }
    const std::vector<float> bias = random_values(static_cast<size_t>(cs.n_expert), 32u, 0.5f);
    std::vector<float> probs = logits;
    gate_router_logits(scalar_cpu(), cs.sigmoid ? ExpertGating::kSigmoid : ExpertGating::kSoftmax, probs.data(), n_rows,
                       cs.n_expert);
    const ExpertRouting routing{.n_expert = cs.n_expert,
                                .k = cs.k,
                                .normalize = cs.normalize,
                                .scale = cs.scale,
                                .bias = cs.bias ? bias.data() : nullptr,
                                .n_group = cs.n_group,
                                .n_group_used = cs.n_group_used};
    std::vector<int32_t> want_experts(static_cast<size_t>(n_rows * cs.k));
    std::vector<float> want_weights(want_experts.size());
    select_experts(probs.data(), n_rows, routing, want_experts.data(), want_weights.data());

    const DeviceBuffer d_logits = DeviceBuffer::from(logits), d_bias = DeviceBuffer::from(bias);
    DeviceBuffer d_experts(sizeof(int32_t) * want_experts.size());
    const DeviceBuffer d_weights = poisoned_floats(want_weights.size());
    const cuda::ExpertRoute route{.n_expert = cs.n_expert,
                                  .k = cs.k,
                                  .sigmoid = cs.sigmoid,
                                  .normalize = cs.normalize,
                                  .scale = cs.scale,
                                  .bias = cs.bias ? d_bias.as<float>() : nullptr,
                                  .n_group = cs.n_group,
                                  .n_group_used = cs.n_group_used};
    cuda::route_experts(d_logits.as<float>(), n_rows, route, d_logits.as<float>(), d_experts.as<int32_t>(),
                        d_weights.as<float>(), nullptr);
    sync_device();
    EXPECT_EQ(d_experts.to_vector<int32_t>(want_experts.size()), want_experts);
    EXPECT_TRUE(same_values(d_weights.to_vector<float>(want_weights.size()), want_weights, 1e-6));
    EXPECT_TRUE(same_values(d_logits.to_vector<float>(probs.size()), probs, 1e-6));
  }
}

// n_expert matrices of n_out rows of k, `gap` bytes between one expert's end and the next's start
// (a merged tensor has none; a gap checks the kernels take expert_bytes, not n_out rows).
struct Experts {
  std::vector<std::byte> bytes;
  int64_t expert_bytes = 0;
};
Experts random_experts(DType type, int32_t n_expert, int64_t n_out, int64_t k, int64_t gap, unsigned seed) {
  Experts e;
  const std::vector<std::byte> one = quantized(type, random_values(static_cast<size_t>(n_out * k), seed, 1.0f));
  e.expert_bytes = static_cast<int64_t>(one.size()) + gap;
  for (int32_t i = 0; i < n_expert; ++i) {
    const std::vector<std::byte> blocks =
        quantized(type, random_values(static_cast<size_t>(n_out * k), seed + 1 + static_cast<unsigned>(i), 1.0f));
    e.bytes.insert(e.bytes.end(), blocks.begin(), blocks.end());
    e.bytes.resize(e.bytes.size() + static_cast<size_t>(gap), std::byte{0x5A});
  }
  return e;
}

// Every entry's GEMV against gemv() of its expert's matrix on its x row: the same bits, for the
// plain and the block types, odd n_out, several entries per x row (x_group) and repeated experts.
TEST(CudaMoe, ExpertGemvsEqualGemvOfEachEntry) {
  EMBER_REQUIRE_GPU();
  for (const DType type : {DType::kF32, DType::kF16, DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kQ6_K}) {
    const int64_t block = dtype_traits(type).block_size;
    const int64_t k = block == 256 ? 512 : block == 32 ? 96 : 40;
    for (const int64_t n_out : {1, 33}) {
      for (const int64_t gap : {0, 16}) {
        for (const int32_t x_group : {1, 3}) {
          SCOPED_TRACE(std::string(dtype_name(type)) + " n_out " + std::to_string(n_out) + " gap " +
                       std::to_string(gap) + " x_group " + std::to_string(x_group));
          const int32_t n_expert = 5;
          const Experts gate = random_experts(type, n_expert, n_out, k, gap, 11);
          const Experts up = random_experts(type, n_expert, n_out, k, gap, 23);
          const std::vector<int32_t> experts = {3, 0, 4, 3, 1, 2, 0};  // entries; expert 3 and 0 twice
          const auto n_entries = static_cast<int64_t>(experts.size());
          const int64_t n_x = (n_entries + x_group - 1) / x_group;
          const std::vector<float> x = random_values(static_cast<size_t>(n_x * k), 5, 1.0f);
          const DeviceBuffer d_gate = DeviceBuffer::from(std::span<const std::byte>(gate.bytes));
          const DeviceBuffer d_up = DeviceBuffer::from(std::span<const std::byte>(up.bytes));
          const DeviceBuffer d_experts = DeviceBuffer::from(std::span<const int32_t>(experts));
          const DeviceBuffer d_x = DeviceBuffer::from(x);
          const DeviceMatrix g0{.data = d_gate.data(), .dtype = type, .n_out = n_out, .k = k};
          const DeviceMatrix u0{.data = d_up.data(), .dtype = type, .n_out = n_out, .k = k};
          const size_t n_y = static_cast<size_t>(n_entries * n_out);
          const DeviceBuffer y = poisoned_floats(n_y), y_glu = poisoned_floats(n_y);
          cuda::gemv_experts(g0, gate.expert_bytes, n_expert, d_experts.as<int32_t>(), n_entries, d_x.as<float>(),
                             x_group, y.as<float>(), nullptr);
          cuda::gemv_experts_glu(g0, u0, gate.expert_bytes, n_expert, cuda::Glu::kSilu, d_experts.as<int32_t>(),
                                 n_entries, d_x.as<float>(), x_group, y_glu.as<float>(), nullptr);
          // Each entry alone through the plain kernels.
          const DeviceBuffer want = poisoned_floats(n_y), want_glu = poisoned_floats(n_y);
          for (int64_t i = 0; i < n_entries; ++i) {
            const size_t offset = static_cast<size_t>(experts[static_cast<size_t>(i)] * gate.expert_bytes);
            DeviceMatrix g = g0, u = u0;
            g.data = static_cast<const std::byte*>(d_gate.data()) + offset;
            u.data = static_cast<const std::byte*>(d_up.data()) + offset;
            const float* xi = d_x.as<float>() + i / x_group * k;
            cuda::gemv(g, xi, 1, want.as<float>() + i * n_out, nullptr);
            cuda::gemv_glu(g, u, cuda::Glu::kSilu, xi, 1, want_glu.as<float>() + i * n_out, nullptr);
          }
          sync_device();
          const std::vector<float> got = y.to_vector<float>(n_y), expected = want.to_vector<float>(n_y);
          const std::vector<float> got_glu = y_glu.to_vector<float>(n_y), expected_glu = want_glu.to_vector<float>(n_y);
          EXPECT_EQ(std::memcmp(got.data(), expected.data(), n_y * sizeof(float)), 0);
          EXPECT_EQ(std::memcmp(got_glu.data(), expected_glu.data(), n_y * sizeof(float)), 0);
          EXPECT_FALSE(std::any_of(got.begin(), got.end(), [](float v) { return std::isnan(v); }));
        }
      }
    }
  }
}

// Latent attention's per-head products (CudaBackend::matmul_heads: gemv_experts over strided rows
// [row][head][...], the heads equally spaced views of one upload): each head's slice the same bits
// as gemv() of that head on that slice, the gaps between the output slices untouched; refused
// (false, nothing written) for unaligned strides, more rows than the GEMV takes, or heads that are
// not equally spaced.
TEST(CudaMoe, HeadGemvsOnStridedRowsEqualGemvOfEachHead) {
  EMBER_REQUIRE_GPU();
  const int32_t n_head = 5;
  cuda::CudaBackend backend;
  backend.reserve({.max_rows = 16, .max_k = 96, .n_head = n_head, .n_head_kv = 1, .head_dim = 64}, 0, 16);
  for (const DType type : {DType::kF32, DType::kF16, DType::kQ8_0, DType::kQ4_0}) {
    for (const int64_t n_rows : {int64_t{1}, int64_t{3}, cuda::kGemvMaxRows}) {
      SCOPED_TRACE(std::string(dtype_name(type)) + " rows " + std::to_string(n_rows));
      const int64_t k = 64, n_out = 40, x_stride = 72, y_stride = 44;  // slices of [row][head][stride]
      const Experts heads = random_experts(type, n_head, n_out, k, 0, 41);
      const cuda::CudaExperts uploaded =
          backend.upload_experts({heads.bytes.data(), type, n_out, k}, heads.expert_bytes, n_head, "heads");
      std::vector<cuda::CudaLinear> views;
      for (int32_t h = 0; h < n_head; ++h) views.push_back(uploaded.expert(h));
      const int64_t pairs = n_rows * n_head;
      const DeviceBuffer d_x = DeviceBuffer::from(random_values(static_cast<size_t>(pairs * x_stride), 43, 1.0f));
      const size_t n_y = static_cast<size_t>(pairs * y_stride);
      const DeviceBuffer y = poisoned_floats(n_y), want = poisoned_floats(n_y);
      ASSERT_TRUE(backend.matmul_heads(views, d_x.as<float>(), x_stride, n_rows, y.as<float>(), y_stride));
      for (int64_t j = 0; j < pairs; ++j) {
        cuda::gemv(views[static_cast<size_t>(j % n_head)].w, d_x.as<float>() + j * x_stride, 1,
                   want.as<float>() + j * y_stride, backend.stream());
      }
      backend.synchronize();
      const std::vector<float> got = y.to_vector<float>(n_y), expected = want.to_vector<float>(n_y);
      EXPECT_EQ(std::memcmp(got.data(), expected.data(), n_y * sizeof(float)), 0);  // NaN gaps included
      for (int64_t j = 0; j < pairs; ++j) {
        EXPECT_FALSE(std::isnan(got[static_cast<size_t>(j * y_stride)])) << "slice " << j;
        EXPECT_TRUE(std::isnan(got[static_cast<size_t>(j * y_stride + n_out)])) << "gap after slice " << j;
      }
      // Not taken: an x stride that leaves rows unaligned, too many rows, heads out of order.
      EXPECT_FALSE(backend.matmul_heads(views, d_x.as<float>(), 70, 1, y.as<float>(), y_stride));
      EXPECT_FALSE(
          backend.matmul_heads(views, d_x.as<float>(), x_stride, cuda::kGemvMaxRows + 1, y.as<float>(), y_stride));
      std::vector<cuda::CudaLinear> shuffled;
      for (const int32_t h : {0, 2, 1, 3, 4}) shuffled.push_back(uploaded.expert(h));
      EXPECT_FALSE(backend.matmul_heads(shuffled, d_x.as<float>(), x_stride, 1, y.as<float>(), y_stride));
    }
  }
}

// out = Σ over a row's entries in increasing expert order of weight · y (through positions or
// not), + the shared row, gated or not: the CPU moe_experts' arithmetic written out.
TEST(CudaMoe, CombineExpertsSumsInExpertOrder) {
  EMBER_REQUIRE_GPU();
  const int64_t n_rows = 5, n_cols = 257;
  for (const int32_t k : {1, 3, 8}) {
    for (const int shared_mode : {0, 1, 2}) {  // none, ungated, gated
      for (const bool with_positions : {false, true}) {
        SCOPED_TRACE("k " + std::to_string(k) + " shared " + std::to_string(shared_mode) + " positions " +
                     std::to_string(with_positions));
        const int64_t n_entries = n_rows * k;
        std::vector<int32_t> experts(static_cast<size_t>(n_entries));
        for (int64_t i = 0; i < n_entries; ++i)
          experts[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7 + 3) % 11);
        for (int64_t r = 0; r < n_rows; ++r) {  // distinct within a row, as a router chooses
          std::sort(experts.begin() + r * k, experts.begin() + (r + 1) * k);
          for (int64_t j = 1; j < k; ++j) {
            auto& e = experts[static_cast<size_t>(r * k + j)];
            e = std::max(e, experts[static_cast<size_t>(r * k + j - 1)] + 1);
          }
          std::reverse(experts.begin() + r * k, experts.begin() + (r + 1) * k);  // most probable first: any order
        }
        const std::vector<float> weights = random_values(static_cast<size_t>(n_entries), 3, 1.0f);
        const std::vector<float> y = random_values(static_cast<size_t>(n_entries * n_cols), 4, 2.0f);
        const std::vector<float> shared = random_values(static_cast<size_t>(n_rows * n_cols), 5, 2.0f);
        const std::vector<float> gate = random_values(static_cast<size_t>(n_rows), 6, 3.0f);
        std::vector<int32_t> positions(static_cast<size_t>(n_entries));
        for (int64_t i = 0; i < n_entries; ++i)
          positions[static_cast<size_t>(i)] = static_cast<int32_t>(n_entries - 1 - i);
        std::vector<float> want(static_cast<size_t>(n_rows * n_cols), 0.0f);
        for (int64_t r = 0; r < n_rows; ++r) {
          std::vector<int32_t> order(static_cast<size_t>(k));
          for (int32_t j = 0; j < k; ++j) order[static_cast<size_t>(j)] = j;
          std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
            return experts[static_cast<size_t>(r * k + a)] < experts[static_cast<size_t>(r * k + b)];
          });
          const float g = 1.0f / (1.0f + std::exp(-gate[static_cast<size_t>(r)]));
          for (int64_t c = 0; c < n_cols; ++c) {
            float sum = 0.0f;
            for (const int32_t j : order) {
              const int64_t entry = r * k + j;
              const int64_t at = with_positions ? positions[static_cast<size_t>(entry)] : entry;
              sum += weights[static_cast<size_t>(entry)] * y[static_cast<size_t>(at * n_cols + c)];
            }
            const float s = shared[static_cast<size_t>(r * n_cols + c)];
            if (shared_mode == 1) sum = sum + s;
            if (shared_mode == 2) sum += g * s;
            want[static_cast<size_t>(r * n_cols + c)] = sum;
          }
        }
        const DeviceBuffer d_y = DeviceBuffer::from(y), d_w = DeviceBuffer::from(weights);
        const DeviceBuffer d_e = DeviceBuffer::from(std::span<const int32_t>(experts));
        const DeviceBuffer d_p = DeviceBuffer::from(std::span<const int32_t>(positions));
        const DeviceBuffer d_s = DeviceBuffer::from(shared), d_g = DeviceBuffer::from(gate);
        const DeviceBuffer out = poisoned_floats(want.size());
        cuda::combine_experts(d_y.as<float>(), with_positions ? d_p.as<int32_t>() : nullptr, d_e.as<int32_t>(),
                              d_w.as<float>(), n_rows, k, n_cols, shared_mode > 0 ? d_s.as<float>() : nullptr,
                              shared_mode == 2 ? d_g.as<float>() : nullptr, out.as<float>(), nullptr);
        sync_device();
        EXPECT_LE(relative_error(out.to_vector<float>(want.size()), want), 1e-6);
      }
    }
  }
}

// An F32 weight past the GEMV's rows runs cuBLAS's FP32 GEMM: float accuracy, not f16's.
TEST(CudaMoe, F32WeightsGemmInFloat) {
  EMBER_REQUIRE_GPU();
  const int64_t n_out = 37, k = 96, m = 21;
  const std::vector<float> w = random_values(static_cast<size_t>(n_out * k), 1, 1.0f);
  const std::vector<float> x = random_values(static_cast<size_t>(m * k), 2, 1.0f);
  std::vector<float> want(static_cast<size_t>(m * n_out));
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t o = 0; o < n_out; ++o) {
      double sum = 0;
      for (int64_t i = 0; i < k; ++i)
        sum += static_cast<double>(w[static_cast<size_t>(o * k + i)]) * x[static_cast<size_t>(r * k + i)];
      want[static_cast<size_t>(r * n_out + o)] = static_cast<float>(sum);
    }
  }
  cuda::CudaBackend backend;
  const cuda::CudaLinear l = backend.upload(WeightMatrix{w.data(), DType::kF32, n_out, k}, "w");
  backend.reserve({.max_rows = m, .max_k = k, .max_n_rot = 0, .n_head = 1, .n_head_kv = 1, .head_dim = 2}, 0, 16);
  const DeviceBuffer d_x = DeviceBuffer::from(x);
  const DeviceBuffer y = poisoned_floats(want.size());
  backend.matmul(l, d_x.as<float>(), m, y.as<float>());
  backend.synchronize();
  const double error = relative_error(y.to_vector<float>(want.size()), want);
  EXPECT_LE(error, 1e-6);  // f16 operands would be ~1e-3
}

}  // namespace
}  // namespace ember
