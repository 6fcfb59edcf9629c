// The ops tables: every op of every table the machine supports against the scalar reference on
// fresh random data (sizes 0..33 and large odd ones, unaligned starts, error bounds from
// ops_test_util.h), and the scalar reference itself against float64 formulas.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <numeric>
#include <utility>

#include "cpu/ops.h"
#include "ops_test_util.h"
#include "quant/quant_traits.h"

namespace ember {
namespace {

using ops_test::random_floats;
using ops_test::Row;
using ops_test::row_sizes;

std::string label(Isa isa, int64_t n) { return std::string(isa_name(isa)) + " n=" + std::to_string(n); }

TEST(CpuOps, TablesAreCompleteForEverySupportedIsa) {
  for (Isa isa : supported_isas()) {
    const CpuOps& ops = cpu_ops(isa);
    EXPECT_EQ(ops.isa, isa);
    for (const QuantTraits& t : quant_traits_table()) {
      EXPECT_EQ(ops.to_float_for(t.dtype) == nullptr, t.to_float == nullptr) << dtype_name(t.dtype);
    }
    // cpu_ops checks every single-function entry is set; spot-check one of each kind here.
    EXPECT_NE(ops.rope, nullptr);
    EXPECT_NE(ops.top_k, nullptr);
  }
}

TEST(CpuOps, RmsNormMatchesTheReference) {
  const CpuOps& ref = cpu_ops(Isa::kScalar);
  for (Isa isa : supported_isas()) {
    for (int64_t n : row_sizes()) {
      const Row x(random_floats(n, static_cast<unsigned>(n) + 1, 0.3f, 2.0f));
      const Row w(random_floats(n, static_cast<unsigned>(n) + 2));
      for (const float* weight : {w.data(), static_cast<const float*>(nullptr)}) {
        Row want(n), got(n);
        ref.rms_norm(x.data(), weight, want.data(), n, 1e-6f);
        cpu_ops(isa).rms_norm(x.data(), weight, got.data(), n, 1e-6f);
        ops_test::expect_within("rms_norm", got.data(), want.data(), nullptr, n, label(isa, n));
        EXPECT_EQ(got.storage.back(), -7.0f) << "wrote past the row";
      }
    }
  }
}

// The fused op equals the same table's rms_norm followed by its Q8_0 activation quantizer.
TEST(CpuOps, FusedRmsNormQ8_0EqualsRmsNormThenQuantizeByteForByte) {
  for (Isa isa : supported_isas()) {
    const CpuOps& ops = cpu_ops(isa);
    const QuantizeRowFn quantize = cpu_kernels(isa).quantize_row_for(DType::kQ8_0);
    for (int64_t blocks = 0; blocks <= 34; ++blocks) {
      const int64_t n = blocks == 34 ? 32 * 129 : blocks * 32;
      const Row x(random_floats(n, static_cast<unsigned>(n) + 3, 0.0f, 3.0f));
      const Row w(random_floats(n, static_cast<unsigned>(n) + 4));
      // A block scaled so small that its scale's inverse overflows: the reference writes zeros.
      Row tiny = w;
      for (int64_t j = 32; j < std::min<int64_t>(n, 64); ++j) tiny.data()[j] *= 1e-39f;
      for (const float* weight : {w.data(), static_cast<const float*>(nullptr), std::as_const(tiny).data()}) {
        Row y(n);
        ops.rms_norm(x.data(), weight, y.data(), n, 1e-5f);
        // Blocks at their 2-byte alignment only.
        std::vector<std::byte> want(static_cast<size_t>(n / 32 * 34 + 2)), got(want.size());
        quantize(y.data(), want.data() + 2, n, nullptr);
        ops.rms_norm_q8_0(x.data(), weight, got.data() + 2, n, 1e-5f);
        ASSERT_EQ(want, got) << label(isa, n);
      }
    }
  }
}

TEST(CpuOps, LayerNormMatchesTheReference) {
  const CpuOps& ref = cpu_ops(Isa::kScalar);
  for (Isa isa : supported_isas()) {
    for (int64_t n : row_sizes()) {
      const Row x(random_floats(n, static_cast<unsigned>(n) + 5, 1.5f, 2.0f));
      const Row w(random_floats(n, static_cast<unsigned>(n) + 6)), b(random_floats(n, static_cast<unsigned>(n) + 7));
      double mean = 0, var = 0;
      for (int64_t i = 0; i < n; ++i) mean += x[i] / static_cast<double>(n);
      for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean) / static_cast<double>(n);
      const double rstd = 1 / std::sqrt(var + 1e-5);
      for (bool with_w : {true, false}) {
        for (bool with_b : {true, false}) {
          Row want(n), got(n);
          const float* wp = with_w ? w.data() : nullptr;
          const float* bp = with_b ? b.data() : nullptr;
          ref.layer_norm(x.data(), wp, bp, want.data(), n, 1e-5f);
          cpu_ops(isa).layer_norm(x.data(), wp, bp, got.data(), n, 1e-5f);
          std::vector<double> mag(static_cast<size_t>(n));
          for (int64_t i = 0; i < n; ++i) {
            mag[i] = (std::fabs(x[i]) + std::fabs(mean)) * rstd * (wp ? std::fabs(w[i]) : 1.0) +
                     (bp ? std::fabs(b[i]) : 0.0);
          }
          ops_test::expect_within("layer_norm", got.data(), want.data(), mag.data(), n, label(isa, n));
        }
      }
    }
  }
}

double logit(float x, float scale, float softcap) {
  const double z = static_cast<double>(scale) * x;
  return softcap > 0 ? softcap * std::tanh(z / softcap) : z;
}

TEST(CpuOps, SoftmaxMatchesTheReference) {
  const CpuOps& ref = cpu_ops(Isa::kScalar);
  std::vector<int64_t> sizes = row_sizes();
  sizes.push_back(151936);  // a Qwen vocabulary row
  struct Mode {
    float scale, softcap;
  };
  for (Isa isa : supported_isas()) {
    for (int64_t n : sizes) {
      const Row x(random_floats(n, static_cast<unsigned>(n) + 8, 0.0f, 6.0f));
      for (Mode m : {Mode{1.0f, 0.0f}, Mode{0.125f, 0.0f}, Mode{1.0f, 30.0f}, Mode{0.5f, 5.0f}}) {
        Row want(n), got(n);
        ref.softmax(x.data(), want.data(), n, m.scale, m.softcap);
        cpu_ops(isa).softmax(x.data(), got.data(), n, m.scale, m.softcap);
        std::vector<double> mag(static_cast<size_t>(n));
        double max_z = -INFINITY;
        for (int64_t i = 0; i < n; ++i) max_z = std::max(max_z, logit(x[i], m.scale, m.softcap));
        for (int64_t i = 0; i < n; ++i) {
          mag[i] = std::fabs(want[i]) * (std::fabs(logit(x[i], m.scale, m.softcap)) + std::fabs(max_z)) + 1e-37;
        }
        ops_test::expect_within(
            "softmax", got.data(), want.data(), mag.data(), n,
            label(isa, n) + " scale " + std::to_string(m.scale) + " cap " + std::to_string(m.softcap));
        Row in_place(std::vector<float>(x.storage.begin() + 1, x.storage.begin() + 1 + n));
        cpu_ops(isa).softmax(in_place.data(), in_place.data(), n, m.scale, m.softcap);
        EXPECT_EQ(0, std::memcmp(in_place.data(), got.data(), static_cast<size_t>(n) * 4)) << "in place";
      }
    }
  }
}

// Attention masks write -inf: those entries get probability 0 (soft-capped too), the rest are as
// without them.
TEST(CpuOps, SoftmaxTakesMaskedEntries) {
  for (Isa isa : supported_isas()) {
    for (int64_t n : {int64_t{1}, int64_t{17}, int64_t{4099}}) {
      std::vector<float> v = random_floats(n, static_cast<unsigned>(n) + 14);
      for (int64_t i = 1; i < n; i += 3) v[i] = -INFINITY;
      const Row x(v);
      for (float cap : {0.0f, 20.0f}) {
        Row want(n), got(n);
        cpu_ops(Isa::kScalar).softmax(x.data(), want.data(), n, 0.7f, cap);
        cpu_ops(isa).softmax(x.data(), got.data(), n, 0.7f, cap);
        for (int64_t i = 0; i < n; ++i) {
          if (i % 3 == 1) {
            ASSERT_EQ(got[i], 0.0f) << label(isa, n);
          } else {
            ASSERT_NEAR(got[i], want[i], 1e-5 * want[i]) << label(isa, n) << " i=" << i;
          }
        }
      }
    }
  }
}

// Impossible shapes are caller bugs: EMBER_CHECK aborts with the condition, in every table.
TEST(CpuOpsDeathTest, BadShapesAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (Isa isa : supported_isas()) {
    const CpuOps& ops = cpu_ops(isa);
    std::vector<float> x(64, 1.0f), values(8);
    std::vector<int32_t> indices(8);
    std::vector<std::byte> q(64);
    EXPECT_DEATH(ops.rms_norm_q8_0(x.data(), nullptr, q.data(), 33, 1e-6f), "kQK8_0");
    EXPECT_DEATH(ops.top_k(x.data(), 4, 5, values.data(), indices.data()), "k <= n");
    EXPECT_DEATH(ops.rope(x.data(), 1, 8, 1, 8, 7, false, x.data()), "n_rot % 2 == 0");
  }
}

// Unary and GLU ops over inputs spanning the activations' interesting range.
TEST(CpuOps, ActivationsMatchTheReference) {
  const CpuOps& ref = cpu_ops(Isa::kScalar);
  struct Unary {
    const char* op;
    UnaryFn CpuOps::*fn;
  };
  struct Glu {
    const char* op;
    GluFn CpuOps::*fn;
  };
  const Unary unaries[] = {{"exp", &CpuOps::exp},
                           {"tanh", &CpuOps::tanh},
                           {"silu", &CpuOps::silu},
                           {"gelu", &CpuOps::gelu},
                           {"gelu_erf", &CpuOps::gelu_erf}};
  const Glu glus[] = {{"swiglu", &CpuOps::swiglu}, {"geglu", &CpuOps::geglu}, {"geglu_erf", &CpuOps::geglu_erf}};
  for (Isa isa : supported_isas()) {
    const CpuOps& ops = cpu_ops(isa);
    for (int64_t n : row_sizes()) {
      const Row x(random_floats(n, static_cast<unsigned>(n) + 9, 0.0f, 4.0f));
      const Row u(random_floats(n, static_cast<unsigned>(n) + 10));
      std::vector<double> mag_x(static_cast<size_t>(n)), mag_gu(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        mag_x[i] = std::fabs(x[i]);
        mag_gu[i] = std::fabs(x[i] * u[i]);
      }
      for (const Unary& f : unaries) {
        Row want(n), got(n);
        (ref.*f.fn)(x.data(), want.data(), n);
        (ops.*f.fn)(x.data(), got.data(), n);
        ops_test::expect_within(f.op, got.data(), want.data(), mag_x.data(), n, label(isa, n));
      }
      for (const Glu& f : glus) {
        Row want(n), got(n);
        (ref.*f.fn)(x.data(), u.data(), want.data(), n);
        (ops.*f.fn)(x.data(), u.data(), got.data(), n);
        ops_test::expect_within(f.op, got.data(), want.data(), mag_gu.data(), n, label(isa, n));
        Row gate = x;  // in place over the gate
        (ops.*f.fn)(gate.data(), u.data(), gate.data(), n);
        EXPECT_EQ(0, std::memcmp(gate.data(), got.data(), static_cast<size_t>(n) * 4)) << f.op << " in place";
      }
    }
  }
}

// exp, tanh and the activations over dense sweeps (exp over its whole float range, denormal and
// overflowing results included): the max error in ulps against float64, printed and bounded.
TEST(CpuOps, ExpAndTanhErrorInUlps) {
  struct Sweep {
    const char* op;
    UnaryFn CpuOps::*fn;
    double lo, hi;
    double (*exact)(double);
    double max_ulp;
  };
  const Sweep sweeps[] = {
      {"exp", &CpuOps::exp, -110.0, 90.0, [](double v) { return std::exp(v); }, 1.5},
      {"tanh", &CpuOps::tanh, -12.0, 12.0, [](double v) { return std::tanh(v); }, 1.5},
      {"silu", &CpuOps::silu, -20.0, 20.0, [](double v) { return v / (1 + std::exp(-v)); }, 3.5},
      // gelu's exponent 2u(x) rounds in float: its error grows with |u| for negative x.
      {"gelu", &CpuOps::gelu, -3.0, 10.0,
       [](double v) { return v / (1 + std::exp(-2 * std::sqrt(2 / std::numbers::pi) * (v + 0.044715 * v * v * v))); },
       16.0},
      {"gelu_erf", &CpuOps::gelu_erf, -5.0, 12.0,
       [](double v) { return 0.5 * v * std::erfc(-v / std::numbers::sqrt2); }, 8.0},
  };
  const int64_t n = 1 << 20;
  for (Isa isa : supported_isas()) {
    for (const Sweep& s : sweeps) {
      std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i)
        x[i] = static_cast<float>(s.lo + (s.hi - s.lo) * static_cast<double>(i) / (n - 1));
      (cpu_ops(isa).*s.fn)(x.data(), y.data(), n);
      double worst = 0;
      float worst_x = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double want = s.exact(x[i]);
        const auto wf = static_cast<float>(want);
        if (std::isinf(wf)) {
          EXPECT_TRUE(std::isinf(y[i])) << s.op << " x=" << x[i];
          continue;
        }
        // ulp of the float nearest the exact value (denormal spacing below FLT_MIN).
        const double ulp = std::max<double>(std::fabs(std::nextafter(wf, INFINITY) - wf), 1.4e-45);
        const double e = std::fabs(y[i] - want) / ulp;
        if (e > worst) worst = e, worst_x = x[i];
      }
      std::printf("%-7s %-9s max error %.2f ulp (at x=%g)\n", std::string(isa_name(isa)).c_str(), s.op, worst,
                  static_cast<double>(worst_x));
      EXPECT_LE(worst, s.max_ulp) << isa_name(isa) << " " << s.op;
    }
  }
}

TEST(CpuOps, AddMulScaleAreBitIdenticalAndBroadcast) {
  const CpuOps& ref = cpu_ops(Isa::kScalar);
  for (Isa isa : supported_isas()) {
    for (int64_t n : row_sizes()) {
      const int64_t rows = 3;
      const Row a(random_floats(rows * n, static_cast<unsigned>(n) + 11)),
          b(random_floats(rows * n, static_cast<unsigned>(n) + 12));
      for (int64_t b_stride : {n, int64_t{0}}) {
        for (BinaryFn CpuOps::*fn : {&CpuOps::add, &CpuOps::mul}) {
          Row want(rows * n), got(rows * n);
          (ref.*fn)(a.data(), b.data(), want.data(), rows, n, b_stride);
          (cpu_ops(isa).*fn)(a.data(), b.data(), got.data(), rows, n, b_stride);
          ASSERT_EQ(want.storage, got.storage) << label(isa, n) << " b_stride " << b_stride;
          for (int64_t i = 0; i < rows * n; ++i) {  // the reference against its definition
            const float bi = b[(i / std::max<int64_t>(n, 1)) * b_stride + i % n];
            ASSERT_EQ(want[i], fn == &CpuOps::add ? a[i] + bi : a[i] * bi);
          }
        }
      }
      Row want(n), got(n);
      ref.scale(a.data(), want.data(), n, 0.37f);
      cpu_ops(isa).scale(a.data(), got.data(), n, 0.37f);
      ASSERT_EQ(want.storage, got.storage) << label(isa, n);
    }
  }
}

TEST(CpuOps, ArgmaxIsTheFirstLargest) {
  std::vector<int64_t> sizes = row_sizes();
  sizes.push_back(151936);
  for (Isa isa : supported_isas()) {
    EXPECT_EQ(cpu_ops(isa).argmax(nullptr, 0), -1);
    for (int64_t n : sizes) {
      for (int variant = 0; variant < 3; ++variant) {
        std::vector<float> v = random_floats(n, static_cast<unsigned>(n) * 3 + variant);
        if (variant == 1) {
          for (float& f : v) f = std::round(f * 2);  // many ties
        } else if (variant == 2 && n > 0) {
          v[n - 1] = 1e9f;  // the max in the tail
        }
        const Row x(v);
        const int64_t want = n == 0 ? -1 : std::max_element(v.begin(), v.end()) - v.begin();
        EXPECT_EQ(cpu_ops(Isa::kScalar).argmax(x.data(), n), want) << label(isa, n);
        EXPECT_EQ(cpu_ops(isa).argmax(x.data(), n), want) << label(isa, n);
      }
    }
  }
}

// Top-k against std::partial_sort of the indices (value descending, then index ascending).
TEST(CpuOps, TopKMatchesPartialSortWithTies) {
  std::vector<int64_t> sizes = row_sizes();
  sizes.push_back(151936);
  for (Isa isa : supported_isas()) {
    for (int64_t n : sizes) {
      for (bool ties : {false, true}) {
        std::vector<float> v = random_floats(n, static_cast<unsigned>(n) * 5 + ties);
        if (ties) {
          for (float& f : v) f = std::round(f * 1.5f);
        }
        const Row x(v);
        for (int64_t k : {int64_t{0}, int64_t{1}, int64_t{5}, int64_t{40}, n / 2, n}) {
          if (k > n) continue;
          std::vector<int32_t> order(static_cast<size_t>(n));
          std::iota(order.begin(), order.end(), 0);
          std::partial_sort(order.begin(), order.begin() + k, order.end(),
                            [&](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
          std::vector<float> values(static_cast<size_t>(k));
          std::vector<int32_t> indices(static_cast<size_t>(k));
          cpu_ops(isa).top_k(x.data(), n, k, values.data(), indices.data());
          for (int64_t i = 0; i < k; ++i) {
            ASSERT_EQ(indices[i], order[i]) << label(isa, n) << " k=" << k << " i=" << i << " ties " << ties;
            ASSERT_EQ(values[i], v[order[i]]);
          }
        }
      }
    }
  }
}

// NaN logits (an f16 overflow upstream) are never chosen, and never hide a larger value: the
// reviewer's cases put the NaN in the same lane as the maximum, in a later vector of one group.
TEST(CpuOps, ArgmaxAndTopKSkipNaNs) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (Isa isa : supported_isas()) {
    std::vector<float> v(64, 0.0f);
    v[1] = 9.0f;
    v[9] = nan;
    v[17] = nan;
    EXPECT_EQ(cpu_ops(isa).argmax(Row(v).data(), 64), 1) << label(isa, 64);
    v[0] = nan;  // even first
    EXPECT_EQ(cpu_ops(isa).argmax(Row(v).data(), 64), 1) << label(isa, 64);
    std::vector<float> all_nan(40, nan);
    EXPECT_EQ(cpu_ops(isa).argmax(Row(all_nan).data(), 40), 0) << label(isa, 40);

    std::vector<float> t(66, 0.0f);
    t[0] = t[1] = 1.0f;
    t[2] = 100.0f;
    t[10] = nan;
    t[18] = nan;
    std::vector<float> values(2);
    std::vector<int32_t> indices(2);
    cpu_ops(isa).top_k(Row(t).data(), 66, 2, values.data(), indices.data());
    EXPECT_EQ(indices[0], 2) << label(isa, 66);
    EXPECT_EQ(values[0], 100.0f);
    EXPECT_EQ(indices[1], 0);
  }
}

// A NaN in a block: the fused op still equals rms_norm then the Q8_0 quantizer byte for byte (the
// reference keeps a finite scale and writes 0 for the NaN).
TEST(CpuOps, FusedRmsNormQ8_0WithANaNWeightMatchesTheReference) {
  for (Isa isa : supported_isas()) {
    const CpuOps& ops = cpu_ops(isa);
    const QuantizeRowFn quantize = cpu_kernels(isa).quantize_row_for(DType::kQ8_0);
    for (int64_t at : {0, 15, 24, 31, 40}) {
      const int64_t n = 64;
      const Row x(random_floats(n, 11, 0.0f, 3.0f));
      std::vector<float> w = random_floats(n, 12);
      w[static_cast<size_t>(at)] = std::numeric_limits<float>::quiet_NaN();
      const Row weight(w);
      Row y(n);
      ops.rms_norm(x.data(), weight.data(), y.data(), n, 1e-5f);
      std::vector<std::byte> want(n / 32 * 34), got(want.size());
      quantize(y.data(), want.data(), n, nullptr);
      ops.rms_norm_q8_0(x.data(), weight.data(), got.data(), n, 1e-5f);
      EXPECT_EQ(want, got) << label(isa, n) << " NaN at " << at;
      std::vector<std::byte> reference(want.size());  // the table's quantizer is the reference's
      cpu_kernels(Isa::kScalar).quantize_row_for(DType::kQ8_0)(y.data(), reference.data(), n, nullptr);
      EXPECT_EQ(reference, want) << label(isa, n) << " NaN at " << at;
    }
  }
}

// get_rows through each table's converters equals QuantTraits::to_float bit for bit, for every type
// ember can quantize, with rows gathered out of order and repeated.
TEST(CpuOps, GetRowsEqualsTheReferenceDequantizer) {
  const int64_t n_rows = 7;
  const int32_t ids[] = {3, 0, 6, 3, 1};
  for (Isa isa : supported_isas()) {
    for (const QuantTraits& t : quant_traits_table()) {
      if (t.from_float == nullptr) continue;
      for (int64_t n_cols : {int64_t{256}, int64_t{256 * 17}}) {
        const std::vector<float> w = random_floats(n_rows * n_cols, static_cast<unsigned>(n_cols) + 13);
        const uint64_t row_bytes = *dtype_bytes_for(t.dtype, static_cast<uint64_t>(n_cols));
        const size_t offset = dtype_alignment(t.dtype);  // rows at their type's own alignment only
        std::vector<std::byte> q(row_bytes * n_rows + offset);
        quantize_rows(t.dtype, w.data(), q.data() + offset, n_rows, n_cols);
        Row got(5 * n_cols);
        get_rows(cpu_ops(isa), t.dtype, q.data() + offset, n_rows, n_cols, ids, 5, got.data());
        for (int64_t i = 0; i < 5; ++i) {
          std::vector<float> want(static_cast<size_t>(n_cols));
          t.to_float(q.data() + offset + row_bytes * static_cast<uint64_t>(ids[i]), want.data(), n_cols);
          ASSERT_EQ(0, std::memcmp(want.data(), got.data() + i * n_cols, want.size() * 4))
              << isa_name(isa) << " " << dtype_name(t.dtype) << " row " << i;
        }
      }
    }
  }
}

// ---- The scalar reference against float64 formulas.

TEST(CpuOpsReference, RmsNormSoftmaxAndActivationsFollowTheirFormulas) {
  const CpuOps& ref = cpu_ops(Isa::kScalar);
  const int64_t n = 1001;
  const std::vector<float> x = random_floats(n, 99, 0.2f, 3.0f), w = random_floats(n, 98);
  std::vector<float> y(n);
  ref.rms_norm(x.data(), w.data(), y.data(), n, 1e-6f);
  double ss = 0;
  for (float v : x) ss += static_cast<double>(v) * v;
  for (int64_t i = 0; i < n; ++i) {
    const double want = x[i] / std::sqrt(ss / n + 1e-6) * w[i];
    EXPECT_NEAR(y[i], want, 2.5e-7 * std::fabs(want)) << i;
  }
  ref.softmax(x.data(), y.data(), n, 0.5f, 0.0f);
  double sum = 0, max = -INFINITY, z = 0;
  for (float v : x) max = std::max(max, 0.5 * v);
  for (float v : x) z += std::exp(0.5 * v - max);
  for (int64_t i = 0; i < n; ++i) {
    sum += y[i];
    EXPECT_NEAR(y[i], std::exp(0.5 * x[i] - max) / z, 6e-8 * y[i]) << i;
  }
  EXPECT_NEAR(sum, 1.0, 1e-6);
  ref.gelu(x.data(), y.data(), n);  // the sigmoid form equals 0.5x(1 + tanh u) where that is accurate
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    if (v < -4) continue;
    const double want = 0.5 * v * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (v + 0.044715 * v * v * v)));
    EXPECT_NEAR(y[i], want, 1.2e-7 * std::fabs(want)) << v;
  }
  ref.gelu_erf(x.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    if (v < -4) continue;
    const double want = 0.5 * v * (1 + std::erf(v / std::numbers::sqrt2));
    EXPECT_NEAR(y[i], want, 1.2e-7 * std::fabs(want)) << v;
  }
  ref.swiglu(x.data(), w.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const double want = x[i] / (1 + std::exp(-static_cast<double>(x[i]))) * w[i];
    EXPECT_NEAR(y[i], want, 6e-8 * std::fabs(want)) << i;
  }
}

}  // namespace
}  // namespace ember
