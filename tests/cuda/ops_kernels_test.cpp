// The CUDA row ops (cuda/ops_kernels.cu) against the CPU scalar backend's namesakes on the same
// random data: float ops within 1e-5 relative error, get_rows, argmax and top-k exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_test_util.h"
#include "cpu/rope.h"
#include "cuda/cuda_kernels.h"
#include "cuda/device_buffer.h"
#include "cuda_test_util.h"
#include "engine/sampler_math.h"
#include "model/forward_test_support.h"

namespace ember {
namespace {

using cpu_test::random_values;
using cuda::DeviceBuffer;
using cuda_test::poisoned_floats;
using cuda_test::relative_error;
using cuda_test::scalar_cpu;
using cuda_test::sync_device;

constexpr double kTolerance = 1e-5;
// Odd sizes around warp, block and vector widths.
const std::vector<int64_t> kSizes = {1, 3, 31, 33, 255, 257, 4097};
constexpr int64_t kVocab = 128256;  // Llama 3's logits row

std::vector<float> download(const DeviceBuffer& b, size_t n) { return b.to_vector<float>(n); }

TEST(CudaOps, RmsNormMatchesCpu) {
  EMBER_REQUIRE_GPU();
  const int64_t n_rows = 3;
  for (int64_t n : kSizes) {
    for (bool with_weight : {true, false}) {
      const auto x = random_values(n_rows * n, 1 + n, 2.0f);
      const auto w = random_values(n, 2 + n, 1.0f);
      const float* w_cpu = with_weight ? w.data() : nullptr;
      std::vector<float> want(x.size());
      scalar_cpu().rms_norm(x.data(), w_cpu, want.data(), n_rows, n, 1e-6f);

      const DeviceBuffer dx = DeviceBuffer::from(x), dw = DeviceBuffer::from(w);
      const float* w_gpu = with_weight ? dw.as<float>() : nullptr;
      const DeviceBuffer dy = poisoned_floats(x.size());
      cuda::rms_norm(dx.as<float>(), w_gpu, dy.as<float>(), n_rows, n, 1e-6f, nullptr);
      cuda::rms_norm(dx.as<float>(), w_gpu, dx.as<float>(), n_rows, n, 1e-6f, nullptr);  // in place
      sync_device();
      EXPECT_LE(relative_error(download(dy, x.size()), want), kTolerance) << "n " << n << " weight " << with_weight;
      EXPECT_LE(relative_error(download(dx, x.size()), want), kTolerance) << "in place, n " << n;
    }
  }
}

// Per-head QK-norm: n_tokens · n_head rows of head_dim, in place, one weight of head_dim.
TEST(CudaOps, RmsNormPerHeadInPlace) {
  EMBER_REQUIRE_GPU();
  const int64_t n_rows = 7 * 8, head_dim = 128;
  const auto x = random_values(n_rows * head_dim, 3, 1.5f);
  const auto w = random_values(head_dim, 4, 1.0f);
  std::vector<float> want(x.size());
  scalar_cpu().rms_norm(x.data(), w.data(), want.data(), n_rows, head_dim, 1e-5f);
  const DeviceBuffer dx = DeviceBuffer::from(x), dw = DeviceBuffer::from(w);
  cuda::rms_norm(dx.as<float>(), dw.as<float>(), dx.as<float>(), n_rows, head_dim, 1e-5f, nullptr);
  sync_device();
  EXPECT_LE(relative_error(download(dx, x.size()), want), kTolerance);
}

// swiglu and geglu on a fused [gate|up] output (g = row, u = row + n, stride 2n) and on separate
// contiguous g and u (stride n).
TEST(CudaOps, GlusMatchCpu) {
  EMBER_REQUIRE_GPU();
  const int64_t n_rows = 3;
  for (bool geglu : {false, true}) {
    for (int64_t n : kSizes) {
      for (bool fused : {true, false}) {
        const int64_t stride = fused ? 2 * n : n;
        // Fused: one buffer of rows [g | u]; separate: g in the first n_rows·n floats, u after.
        const auto gu = random_values(2 * n_rows * n, 5 + n, 3.0f);
        const int64_t u_offset = fused ? n : n_rows * n;
        std::vector<float> want(n_rows * n);
        if (geglu) {
          scalar_cpu().geglu(gu.data(), gu.data() + u_offset, stride, want.data(), n_rows, n);
        } else {
          scalar_cpu().swiglu(gu.data(), gu.data() + u_offset, stride, want.data(), n_rows, n);
        }
        const DeviceBuffer dgu = DeviceBuffer::from(gu);
        const DeviceBuffer dy = poisoned_floats(want.size());
        const float* g = dgu.as<float>();
        if (geglu) {
          cuda::geglu(g, g + u_offset, stride, dy.as<float>(), n_rows, n, nullptr);
        } else {
          cuda::swiglu(g, g + u_offset, stride, dy.as<float>(), n_rows, n, nullptr);
        }
        sync_device();
        EXPECT_LE(relative_error(download(dy, want.size()), want), kTolerance)
            << (geglu ? "geglu" : "swiglu") << " n " << n << " fused " << fused;
      }
    }
  }
}

// b rows b_stride apart: a full matrix (n_cols), a padded one (n_cols + 5) and one broadcast bias
// row (0), out of place and in place (y = a).
TEST(CudaOps, AddMatchesCpu) {
  EMBER_REQUIRE_GPU();
  const int64_t n_rows = 4;
  for (int64_t n_cols : kSizes) {
    for (int64_t b_stride : {n_cols, n_cols + 5, int64_t{0}}) {
      const auto a = random_values(n_rows * n_cols, 7 + n_cols, 1.0f);
      const auto b = random_values(n_rows * (n_cols + 5), 8 + n_cols, 1.0f);
      std::vector<float> want(a.size());
      scalar_cpu().add(a.data(), b.data(), want.data(), n_rows, n_cols, b_stride);
      const DeviceBuffer da = DeviceBuffer::from(a), db = DeviceBuffer::from(b);
      const DeviceBuffer dy = poisoned_floats(a.size());
      cuda::add(da.as<float>(), db.as<float>(), dy.as<float>(), n_rows, n_cols, b_stride, nullptr);
      cuda::add(da.as<float>(), db.as<float>(), da.as<float>(), n_rows, n_cols, b_stride, nullptr);
      sync_device();
      EXPECT_LE(relative_error(download(dy, a.size()), want), kTolerance)
          << "n_cols " << n_cols << " b_stride " << b_stride;
      EXPECT_LE(relative_error(download(da, a.size()), want), kTolerance) << "in place, n_cols " << n_cols;
    }
  }
}

// More rows than a grid's y dimension (65535) holds: the row loop strides.
TEST(CudaOps, AddManyRowsBroadcast) {
  EMBER_REQUIRE_GPU();
  const int64_t n_rows = 70001, n_cols = 3;
  const auto a = random_values(n_rows * n_cols, 19, 1.0f);
  const auto b = random_values(n_cols, 20, 1.0f);
  std::vector<float> want(a.size());
  scalar_cpu().add(a.data(), b.data(), want.data(), n_rows, n_cols, 0);
  const DeviceBuffer da = DeviceBuffer::from(a), db = DeviceBuffer::from(b);
  cuda::add(da.as<float>(), db.as<float>(), da.as<float>(), n_rows, n_cols, 0, nullptr);
  sync_device();
  EXPECT_LE(relative_error(download(da, a.size()), want), kTolerance);
}

TEST(CudaOps, ScaleAndSoftcapMatchCpu) {
  EMBER_REQUIRE_GPU();
  std::vector<int64_t> sizes = kSizes;
  sizes.push_back(17 * kVocab + 1);  // 17 rows of logits: more than one grid of 8192 blocks of 256
  for (int64_t n : sizes) {
    const auto x = random_values(n, 9 + n, 40.0f);  // |x| around the cap: tanh in and out of saturation
    std::vector<float> want_scale(x.size());
    scalar_cpu().scale(x.data(), want_scale.data(), n, 0.37f);
    std::vector<float> want_cap = x;
    scalar_cpu().softcap(want_cap.data(), n, 30.0f);

    const DeviceBuffer dx = DeviceBuffer::from(x);
    const DeviceBuffer dy = poisoned_floats(x.size());
    cuda::scale(dx.as<float>(), dy.as<float>(), n, 0.37f, nullptr);
    sync_device();
    EXPECT_LE(relative_error(download(dy, x.size()), want_scale), kTolerance) << "scale n " << n;
    cuda::scale(dy.as<float>(), dy.as<float>(), n, 2.0f, nullptr);  // in place, exact doubling
    cuda::softcap(dx.as<float>(), n, 30.0f, nullptr);
    sync_device();
    std::vector<float> doubled = want_scale;
    for (float& v : doubled) v *= 2.0f;
    EXPECT_LE(relative_error(download(dy, x.size()), doubled), kTolerance) << "scale in place n " << n;
    EXPECT_LE(relative_error(download(dx, x.size()), want_cap), kTolerance) << "softcap n " << n;
  }
}

// RoPE in place with RopeTable's cos_sin rows: normal and neox, full and partial rotary (the dims
// past n_rot, and the padding between token rows, must come back untouched).
TEST(CudaOps, RopeMatchesCpu) {
  EMBER_REQUIRE_GPU();
  struct Shape {
    int64_t head_dim, n_rot;
  };
  const std::vector<int32_t> positions = {0, 1, 7, 100, 4095, 31};
  const auto n_tokens = static_cast<int64_t>(positions.size());
  const int64_t n_head = 3;
  for (bool neox : {false, true}) {
    for (const Shape s : {Shape{64, 64}, Shape{128, 32}, Shape{80, 40}, Shape{6, 2}}) {
      RopeParams p;
      p.n_rot = s.n_rot;
      p.neox = neox;
      p.freq_base = 10000.0f;
      const RopeTable table(p);
      std::vector<float> cos_sin(n_tokens * s.n_rot);
      table.cos_sin(positions.data(), n_tokens, cos_sin.data());

      const int64_t token_stride = n_head * s.head_dim + 17;  // a row inside a wider fused QKV row
      const auto x = random_values(n_tokens * token_stride, 11 + s.head_dim, 1.0f);
      std::vector<float> want = x;
      scalar_cpu().rope(want.data(), n_tokens, token_stride, n_head, s.head_dim, s.n_rot, neox, cos_sin.data());

      const DeviceBuffer dx = DeviceBuffer::from(x), dcs = DeviceBuffer::from(cos_sin);
      cuda::rope(dx.as<float>(), n_tokens, token_stride, n_head, s.head_dim, s.n_rot, neox, dcs.as<float>(), nullptr);
      sync_device();
      const std::vector<float> got = download(dx, x.size());
      EXPECT_LE(relative_error(got, want), kTolerance) << "neox " << neox << " head_dim " << s.head_dim;
      // Floats past n_rot in each head and between token rows come back exactly as they went in.
      for (int64_t i = 0; i < n_tokens * token_stride; ++i) {
        const int64_t j = i % token_stride;
        if (j >= n_head * s.head_dim || j % s.head_dim >= s.n_rot) {
          ASSERT_EQ(got[i], x[i]) << "index " << i;
        }
      }
    }
  }
}

// rope_qk: q's heads and k's (different head counts and row strides) in one launch, the same bits
// as rope() on each; the floats between rows untouched.
TEST(CudaOps, RopeQkEqualsTwoRopes) {
  EMBER_REQUIRE_GPU();
  const std::vector<int32_t> positions = {3, 4, 5, 900, 17};
  const auto n_tokens = static_cast<int64_t>(positions.size());
  for (bool neox : {false, true}) {
    RopeParams p;
    p.n_rot = 32;
    p.neox = neox;
    p.freq_base = 500000.0f;
    const RopeTable table(p);
    std::vector<float> cos_sin(n_tokens * p.n_rot);
    table.cos_sin(positions.data(), n_tokens, cos_sin.data());
    const int64_t head_dim = 64, n_head_q = 6, n_head_k = 2, q_stride = n_head_q * head_dim + 3,
                  k_stride = n_head_k * head_dim;
    const auto q = random_values(n_tokens * q_stride, 21, 1.0f), k = random_values(n_tokens * k_stride, 22, 1.0f);
    const DeviceBuffer dcs = DeviceBuffer::from(cos_sin);
    const DeviceBuffer q1 = DeviceBuffer::from(q), k1 = DeviceBuffer::from(k);
    const DeviceBuffer q2 = DeviceBuffer::from(q), k2 = DeviceBuffer::from(k);
    cuda::rope(q1.as<float>(), n_tokens, q_stride, n_head_q, head_dim, p.n_rot, neox, dcs.as<float>(), nullptr);
    cuda::rope(k1.as<float>(), n_tokens, k_stride, n_head_k, head_dim, p.n_rot, neox, dcs.as<float>(), nullptr);
    cuda::rope_qk(q2.as<float>(), q_stride, n_head_q, k2.as<float>(), k_stride, n_head_k, n_tokens, head_dim, p.n_rot,
                  neox, dcs.as<float>(), nullptr);
    sync_device();
    EXPECT_EQ(download(q2, q.size()), download(q1, q.size())) << "neox " << neox;
    EXPECT_EQ(download(k2, k.size()), download(k1, k.size())) << "neox " << neox;
    EXPECT_NE(download(q2, q.size()), q);  // something rotated
  }
}

// Every matmul type, rows picked out of order and repeated; bit for bit the CPU dequantizer.
TEST(CudaOps, GetRowsExactForEveryType) {
  EMBER_REQUIRE_GPU();
  const DType types[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ4_0,   DType::kQ4_1,
                         DType::kQ5_0, DType::kQ5_1, DType::kQ8_0, DType::kQ2_K,   DType::kQ3_K,
                         DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kIQ4_NL, DType::kIQ4_XS};
  const int64_t n_src_rows = 7;
  const std::vector<int32_t> ids = {3, 0, 6, 3, 1};
  const auto n_ids = static_cast<int64_t>(ids.size());
  for (DType type : types) {
    const uint32_t block = dtype_traits(type).block_size;
    for (int64_t n_cols : {int64_t{block}, int64_t{3 * block}, int64_t{8 * 256 + block}}) {
      const auto values = random_values(n_src_rows * n_cols, 13 + n_cols, 1.0f);
      const std::vector<std::byte> src = cpu_test::quantized(type, values);
      std::vector<float> want(n_ids * n_cols);
      scalar_cpu().get_rows(type, src.data(), n_src_rows, n_cols, ids.data(), n_ids, want.data());

      const DeviceBuffer dsrc = DeviceBuffer::from(src), dids = DeviceBuffer::from(ids);
      const DeviceBuffer dy = poisoned_floats(want.size());
      cuda::get_rows(type, dsrc.data(), n_src_rows, n_cols, dids.as<int32_t>(), n_ids, dy.as<float>(), nullptr);
      sync_device();
      const std::vector<float> got = download(dy, want.size());
      int64_t mismatches = 0, first = -1;
      for (size_t i = 0; i < want.size(); ++i) {
        if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0 && mismatches++ == 0) first = static_cast<int64_t>(i);
      }
      EXPECT_EQ(mismatches, 0) << dtype_name(type) << " n_cols " << n_cols << ": first at " << first << " got "
                               << (first >= 0 ? got[first] : 0.0f) << " want " << (first >= 0 ? want[first] : 0.0f);
    }
  }
}

// Rows per n: random, the max as the last element, a tie (the first wins), a constant row (index
// 0), and a NaN at 0 (never chosen while a number exists). Exact against cpu argmax and by hand.
TEST(CudaOps, ArgmaxRowsMatchesCpu) {
  EMBER_REQUIRE_GPU();
  std::vector<int64_t> sizes = kSizes;
  sizes.push_back(kVocab);
  for (int64_t n : sizes) {
    const int64_t n_rows = 5;
    std::vector<float> x = random_values(n_rows * n, 17 + n, 3.0f);
    float* last = x.data() + n;
    last[n - 1] = 100.0f;
    float* tie = x.data() + 2 * n;
    const int64_t tie_at = n / 3;
    tie[tie_at] = 50.0f;
    tie[n - 1] = 50.0f;
    float* constant = x.data() + 3 * n;
    for (int64_t i = 0; i < n; ++i) constant[i] = 1.25f;
    x[4 * n] = NAN;
    std::vector<int32_t> want(n_rows);
    for (int64_t r = 0; r < n_rows; ++r) want[r] = static_cast<int32_t>(scalar_cpu().argmax(x.data() + r * n, n));
    EXPECT_EQ(want[1], n - 1);
    EXPECT_EQ(want[2], tie_at);
    EXPECT_EQ(want[3], 0);

    const DeviceBuffer dx = DeviceBuffer::from(x);
    const DeviceBuffer dout = DeviceBuffer::from(std::vector<int32_t>(n_rows, -7));
    cuda::argmax_rows(dx.as<float>(), n_rows, n, dout.as<int32_t>(), nullptr);
    sync_device();
    EXPECT_EQ(dout.to_vector<int32_t>(n_rows), want) << "n " << n;
  }
}

// greedy_rows differs from argmax_rows only on rows without a number above -inf: random rows, a
// tie, a NaN before the max, all -inf, NaN then -inf (argmax: the -inf; greedy: -1), all NaN, and
// +inf after a NaN.
TEST(CudaOps, GreedyRowsFollowTheTokenRowRule) {
  EMBER_REQUIRE_GPU();
  std::vector<int64_t> sizes = kSizes;
  sizes.push_back(kVocab);
  for (int64_t n : sizes) {
    if (n < 3) continue;
    const int64_t n_rows = 7;
    std::vector<float> x = random_values(n_rows * n, 29 + n, 3.0f);
    float* row = x.data() + n;  // a tie: the first wins
    row[n / 2] = 40.0f;
    row[n - 1] = 40.0f;
    row = x.data() + 2 * n;  // NaN before the max
    row[0] = NAN;
    row[n - 1] = 60.0f;
    row = x.data() + 3 * n;
    std::fill(row, row + n, -INFINITY);
    row = x.data() + 4 * n;
    std::fill(row, row + n, -INFINITY);
    row[0] = NAN;
    row = x.data() + 5 * n;
    std::fill(row, row + n, NAN);
    row = x.data() + 6 * n;
    row[1] = NAN;
    row[2] = INFINITY;
    std::vector<int32_t> want(n_rows);
    for (int64_t r = 0; r < n_rows; ++r) want[r] = test::greedy_of(x.data() + r * n, n);
    EXPECT_EQ(want[1], n / 2);
    EXPECT_EQ(want[2], n - 1);
    EXPECT_EQ(want[3], -1);
    EXPECT_EQ(want[4], -1);
    EXPECT_EQ(scalar_cpu().argmax(x.data() + 4 * n, n), 1);  // where the rules part
    EXPECT_EQ(want[5], -1);
    EXPECT_EQ(want[6], 2);

    const DeviceBuffer dx = DeviceBuffer::from(x);
    const DeviceBuffer dout = DeviceBuffer::from(std::vector<int32_t>(n_rows, -7));
    cuda::greedy_rows(dx.as<float>(), n_rows, n, dout.as<int32_t>(), nullptr);
    sync_device();
    EXPECT_EQ(dout.to_vector<int32_t>(n_rows), want) << "n " << n;
  }
}

// top_k_rows against the sampler's select_top_k (the spec) on rows that stress the selection: random
// values, heavy ties at the k-th value (values on a coarse grid, a constant row), NaNs (ranked as
// -inf), infinities, -0 beside +0, all NaN, all -inf; k from 1 to kMaxTopK; rows short enough for
// one block and rows cut into slices.
TEST(CudaOps, TopKRowsEqualTheSamplersTopK) {
  EMBER_REQUIRE_GPU();
  // One block per row up to 4096; 2 slices at 4097; 32 at Llama 3's vocabulary; the most (64,
  // uneven) at 300000. 9 rows: two launch pairs at 300000 and k 256 (the scratch holds 8 rows' picks).
  std::vector<int64_t> sizes = {1, 3, 31, 257, 4096, 4097};
  sizes.push_back(kVocab);
  sizes.push_back(300000);
  for (int64_t n : sizes) {
    const int64_t n_rows = 9;
    std::vector<float> x = random_values(n_rows * n, 41 + n, 3.0f);
    float* row = x.data() + n;  // a coarse grid: many equal values at any threshold
    for (int64_t i = 0; i < n; ++i) row[i] = std::round(row[i] * 2.0f) / 2.0f;
    row = x.data() + 2 * n;  // NaNs and infinities among random values
    for (int64_t i = 0; i < n; i += 7) row[i] = NAN;
    for (int64_t i = 3; i < n; i += 11) row[i] = -INFINITY;
    if (n > 5) row[5] = INFINITY;
    row = x.data() + 3 * n;  // zeros of both signs at the top
    for (int64_t i = 0; i < n; ++i) row[i] = -std::abs(row[i]);
    for (int64_t i = 0; i < n; i += 3) row[i] = i % 2 == 0 ? 0.0f : -0.0f;
    std::fill(x.data() + 4 * n, x.data() + 5 * n, NAN);
    std::fill(x.data() + 5 * n, x.data() + 6 * n, -INFINITY);
    std::fill(x.data() + 6 * n, x.data() + 7 * n, 1.5f);
    row = x.data() + 7 * n;  // NaN then -inf, one number at the end
    std::fill(row, row + n, -INFINITY);
    for (int64_t i = 0; i < n; i += 2) row[i] = NAN;
    row[n - 1] = -7.0f;
    const DeviceBuffer dx = DeviceBuffer::from(x);
    const DeviceBuffer scratch_values(sizeof(float) * cuda::top_k_scratch_entries(), "test");
    const DeviceBuffer scratch_ids(sizeof(int32_t) * cuda::top_k_scratch_entries(), "test");
    for (int64_t k : {int64_t{1}, int64_t{3}, int64_t{40}, int64_t{cuda::kMaxTopK}}) {
      if (k > n || ((k == 3 || k == 40) && n > 4097)) continue;  // (long rows: k 1 and 256, for the emulator's time)
      SCOPED_TRACE("n " + std::to_string(n) + " k " + std::to_string(k));
      const DeviceBuffer values = DeviceBuffer::from(std::vector<float>(n_rows * k, 1234.0f));
      const DeviceBuffer ids = DeviceBuffer::from(std::vector<int32_t>(n_rows * k, -7));
      cuda::top_k_rows(dx.as<float>(), n_rows, n, k, values.as<float>(), ids.as<int32_t>(), scratch_values.as<float>(),
                       scratch_ids.as<int32_t>(), nullptr);
      sync_device();
      const std::vector<float> got_values = values.to_vector<float>(n_rows * k);
      const std::vector<int32_t> got_ids = ids.to_vector<int32_t>(n_rows * k);
      std::vector<sampling::Candidate> want;
      for (int64_t r = 0; r < n_rows; ++r) {
        sampling::select_top_k(std::span<const float>(x.data() + r * n, n), static_cast<size_t>(k), want);
        for (int64_t i = 0; i < k; ++i) {
          const size_t at = static_cast<size_t>(r * k + i);
          ASSERT_EQ(got_ids[at], want[static_cast<size_t>(i)].id) << "row " << r << " place " << i;
          ASSERT_EQ(std::memcmp(&got_values[at], &want[static_cast<size_t>(i)].logit, sizeof(float)), 0)
              << "row " << r << " place " << i << ": " << got_values[at] << " vs "
              << want[static_cast<size_t>(i)].logit;
        }
      }
    }
  }
}

// A launch pair's rows fit the scratch and a grid's y (65535; two slices of k = 1 would fit 65536 in
// the scratch: 65536 rows or more of 4097 to 8192 values asked for an invalid launch). Row counts
// that large take too long on the emulator to run the kernels themselves.
TEST(CudaOps, TopKRowsPerLaunchFitTheScratchAndTheGrid) {
  for (const int64_t n : {int64_t{4097}, int64_t{8192}, int64_t{8193}, int64_t{kVocab}, int64_t{300000}}) {
    for (int64_t k = 1; k <= cuda::kMaxTopK; ++k) {
      const int64_t rows = cuda::top_k_rows_per_launch(n, k);
      const int64_t slices = std::min<int64_t>((n + 4095) / 4096, 64);  // top_k_kernels.cu's slicing
      ASSERT_GE(rows, 1) << "n " << n << " k " << k;
      ASSERT_LE(rows, 65535) << "n " << n << " k " << k;
      ASSERT_LE(static_cast<size_t>(rows * slices * k), cuda::top_k_scratch_entries()) << "n " << n << " k " << k;
    }
  }
  EXPECT_EQ(cuda::top_k_rows_per_launch(4097, 1), 65535);
}

// Zero-size calls launch nothing and touch nothing (null pointers would fault otherwise).
TEST(CudaOps, ZeroSizesAreNoOps) {
  EMBER_REQUIRE_GPU();
  cuda::rms_norm(nullptr, nullptr, nullptr, 0, 64, 1e-6f, nullptr);
  cuda::rms_norm(nullptr, nullptr, nullptr, 4, 0, 1e-6f, nullptr);
  cuda::swiglu(nullptr, nullptr, 0, nullptr, 0, 64, nullptr);
  cuda::geglu(nullptr, nullptr, 64, nullptr, 3, 0, nullptr);
  cuda::add(nullptr, nullptr, nullptr, 0, 64, 0, nullptr);
  cuda::scale(nullptr, nullptr, 0, 2.0f, nullptr);
  cuda::softcap(nullptr, 0, 30.0f, nullptr);
  cuda::rope(nullptr, 0, 0, 4, 64, 64, false, nullptr, nullptr);
  cuda::get_rows(DType::kQ4_K, nullptr, 4, 256, nullptr, 0, nullptr, nullptr);
  cuda::argmax_rows(nullptr, 0, 10, nullptr, nullptr);
  cuda::greedy_rows(nullptr, 0, 10, nullptr, nullptr);
  cuda::top_k_rows(nullptr, 0, 10, 40, nullptr, nullptr, nullptr, nullptr, nullptr);
  sync_device();
}

}  // namespace
}  // namespace ember
