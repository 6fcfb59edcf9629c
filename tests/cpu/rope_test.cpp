// RoPE: frequency tables against values hand-computed from the formulas (plain, linear, YaRN as
// ggml_rope_yarn, llama3, frequency factors), the scalar rope op against a float64 rotation, and
// every ISA's rope op against the scalar one.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "cpu/rope.h"
#include "ember/error.h"
#include "ops_test_util.h"

namespace ember {
namespace {

using ops_test::random_floats;
using ops_test::Row;

RopeParams params(int64_t n_rot, bool neox = false, float freq_base = 10000.0f) {
  RopeParams p;
  p.n_rot = n_rot;
  p.neox = neox;
  p.freq_base = freq_base;
  return p;
}

double plain_theta(int64_t i, int64_t n_rot, double base) { return std::pow(base, -2.0 * i / n_rot); }

TEST(Rope, PlainAndLinearFrequencies) {
  RopeParams p = params(64);
  p.freq_scale = 0.25f;
  const RopeTable t(p);
  for (int64_t i = 0; i < 32; ++i) EXPECT_NEAR(t.theta(i), 0.25 * plain_theta(i, 64, 10000), 1e-15) << i;
  EXPECT_EQ(t.mscale(), 1.0);  // no YaRN: attn_factor only
}

// n_rot 128, base 10000, original context 4096, betas 32/1: corr dims floor(20.94) = 20 and
// ceil(45.03) = 46; the ramp is 1 up to dim 20, 0 from 46, (46 - i)/26 between.
TEST(Rope, YarnFollowsGgmlRopeYarn) {
  const std::array<float, 2> corr = rope_yarn_corr_dims(128, 4096, 10000.0f, 32.0f, 1.0f);
  EXPECT_EQ(corr[0], 20.0f);
  EXPECT_EQ(corr[1], 46.0f);
  RopeParams p = params(128);
  p.freq_scale = 0.25f;
  p.ext_factor = 1.0f;
  p.attn_factor = 0.9f;
  p.n_ctx_orig = 4096;
  const RopeTable t(p);
  const auto extrap = [](int64_t i) { return plain_theta(i, 128, 10000); };
  EXPECT_NEAR(t.theta(0), extrap(0), 1e-15);                 // pure extrapolation
  EXPECT_NEAR(t.theta(20), extrap(20), 1e-15 * extrap(20));  // ramp still 1 at `low`
  EXPECT_NEAR(t.theta(33), 0.625 * extrap(33), 1e-15);       // ramp 0.5: 0.25·0.5 + 0.5
  EXPECT_NEAR(t.theta(46), 0.25 * extrap(46), 1e-18);        // pure interpolation
  EXPECT_NEAR(t.theta(63), 0.25 * extrap(63), 1e-18);
  EXPECT_NEAR(t.mscale(), 0.9 * (1 + 0.1 * std::log(4.0)), 1e-7);  // 0.9·1.1386294
  p.ext_factor = 0.5f;                                             // the ramp's mix scales with ext_factor
  EXPECT_NEAR(RopeTable(p).theta(0), (0.25 * 0.5 + 0.5) * extrap(0), 1e-15);
  p.n_ctx_orig = 0;
  EXPECT_THROW(RopeTable{p}, Error);
}

// Llama 3.1 8B's scaling: base 500000, factor 8, low/high 1/4, original context 8192. Wavelengths
// below 2048 keep 1, above 8192 get 8; dim 31 (wavelength 3619.25): smooth = (8192/3619.25 - 1)/3
// = 0.42116, factor 1/((1 - 0.42116)/8 + 0.42116) = 2.026313.
TEST(Rope, Llama3FactorsMatchHandComputedValues) {
  const std::vector<float> f = llama3_freq_factors(128, 500000.0f, Llama3Scaling{});
  ASSERT_EQ(f.size(), 64u);
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_EQ(f[28], 1.0f);
  EXPECT_NEAR(f[29], 1.2074839, 1e-6);
  EXPECT_NEAR(f[31], 2.0263132, 1e-6);
  EXPECT_NEAR(f[34], 5.2573266, 1e-6);
  EXPECT_EQ(f[35], 8.0f);
  EXPECT_EQ(f[63], 8.0f);
  RopeParams p = params(128, false, 500000.0f);
  p.freq_factors = f;
  const RopeTable t(p);
  EXPECT_NEAR(t.theta(31), plain_theta(31, 128, 500000) / f[31], 1e-16);
  p.freq_factors.pop_back();
  EXPECT_THROW(RopeTable{p}, Error);
}

TEST(Rope, CosSinRowsFollowTheLayout) {
  const int32_t pos[] = {0, 7, 100000};
  for (bool neox : {false, true}) {
    RopeParams p = params(8, neox);
    p.attn_factor = 0.8f;
    const RopeTable t(p);
    std::vector<float> cs(3 * 8);
    t.cos_sin(pos, 3, cs.data());
    for (int64_t r = 0; r < 3; ++r) {
      for (int64_t i = 0; i < 4; ++i) {
        const double a = pos[r] * plain_theta(i, 8, 10000);
        const float c = cs[r * 8 + (neox ? i : 2 * i)], s = cs[r * 8 + (neox ? 4 + i : 2 * i + 1)];
        EXPECT_NEAR(c, 0.8 * std::cos(a), 6e-8) << neox << " " << r << " " << i;
        EXPECT_NEAR(s, 0.8 * std::sin(a), 6e-8) << neox << " " << r << " " << i;
      }
    }
  }
}

// The pair partner of dim j and the cos/sin offsets for it, per layout.
struct Pair {
  int64_t a, b, c, s;
};
Pair pair_of(int64_t j, int64_t n_rot, bool neox) {
  const int64_t half = n_rot / 2;
  if (neox) {
    const int64_t p = j % half;
    return {p, p + half, p, half + p};
  }
  const int64_t p = j / 2;
  return {2 * p, 2 * p + 1, 2 * p, 2 * p + 1};
}

// YaRN with Phi-3-like frequency factors, partial rotary and padded token rows, at positions up to
// 131071: the scalar op against the same rotation in double.
TEST(Rope, ScalarRopeRotatesLikeFloat64) {
  const int64_t n_tokens = 3, n_head = 4, head_dim = 80, n_rot = 64, stride = n_head * head_dim + 5;
  const int32_t pos[] = {0, 1234, 131071};
  for (bool neox : {false, true}) {
    RopeParams p = params(n_rot, neox);
    p.freq_scale = 0.5f;
    p.ext_factor = 1.0f;
    p.n_ctx_orig = 4096;
    for (int64_t i = 0; i < n_rot / 2; ++i) p.freq_factors.push_back(1.0f + static_cast<float>(i % 5) * 0.5f);
    const RopeTable t(p);
    std::vector<float> cs(n_tokens * n_rot);
    t.cos_sin(pos, n_tokens, cs.data());
    const std::vector<float> x0 = random_floats(n_tokens * stride, 21);
    std::vector<float> x = x0;
    cpu_ops(Isa::kScalar).rope(x.data(), n_tokens, stride, n_head, head_dim, n_rot, neox, cs.data());
    for (int64_t tok = 0; tok < n_tokens; ++tok) {
      for (int64_t h = 0; h < n_head; ++h) {
        const float* in = x0.data() + tok * stride + h * head_dim;
        const float* out = x.data() + tok * stride + h * head_dim;
        for (int64_t j = 0; j < n_rot; ++j) {
          const Pair q = pair_of(j, n_rot, neox);
          const int64_t pair = neox ? q.a : q.a / 2;
          const double angle = pos[tok] * t.theta(pair), c = std::cos(angle) * t.mscale(),
                       s = std::sin(angle) * t.mscale();
          const double want = j == q.a ? in[q.a] * c - in[q.b] * s : in[q.a] * s + in[q.b] * c;
          const double mag = (std::fabs(in[q.a]) + std::fabs(in[q.b])) * t.mscale();
          ASSERT_NEAR(out[j], want, 2.5e-7 * mag) << neox << " token " << tok << " head " << h << " dim " << j;
        }
        for (int64_t j = n_rot; j < head_dim; ++j) ASSERT_EQ(out[j], in[j]) << "dim beyond n_rot";
      }
      for (int64_t j = n_head * head_dim; j < stride; ++j) ASSERT_EQ(x[tok * stride + j], x0[tok * stride + j]);
    }
  }
}

TEST(Rope, EveryIsaMatchesTheScalarRope) {
  std::vector<std::pair<int64_t, int64_t>> shapes;  // (n_rot, head_dim)
  for (int64_t n_rot = 2; n_rot <= 34; n_rot += 2) shapes.emplace_back(n_rot, n_rot + (n_rot % 4 == 0 ? 0 : 3));
  shapes.emplace_back(128, 128);
  shapes.emplace_back(4098, 4099);
  const int32_t pos[] = {5, 77777};
  const int64_t n_tokens = 2, n_head = 3;
  for (Isa isa : supported_isas()) {
    for (bool neox : {false, true}) {
      for (const auto& [n_rot, head_dim] : shapes) {
        const RopeTable t(params(n_rot, neox, 1e6f));
        std::vector<float> cs(static_cast<size_t>(n_tokens * n_rot));
        t.cos_sin(pos, n_tokens, cs.data());
        const int64_t stride = n_head * head_dim + 1;
        const Row x0(random_floats(n_tokens * stride, static_cast<unsigned>(n_rot)));
        Row want = x0, got = x0;
        cpu_ops(Isa::kScalar).rope(want.data(), n_tokens, stride, n_head, head_dim, n_rot, neox, cs.data());
        cpu_ops(isa).rope(got.data(), n_tokens, stride, n_head, head_dim, n_rot, neox, cs.data());
        std::vector<double> mag(static_cast<size_t>(n_tokens * stride));
        for (int64_t tok = 0; tok < n_tokens; ++tok) {
          for (int64_t h = 0; h < n_head; ++h) {
            const int64_t base = tok * stride + h * head_dim;
            const float* c = cs.data() + tok * n_rot;
            for (int64_t j = 0; j < n_rot; ++j) {
              const Pair q = pair_of(j, n_rot, neox);
              mag[base + j] =
                  (std::fabs(x0[base + q.a]) + std::fabs(x0[base + q.b])) * (std::fabs(c[q.c]) + std::fabs(c[q.s]));
            }
          }
        }
        ops_test::expect_within(
            "rope", got.data(), want.data(), mag.data(), n_tokens * stride,
            std::string(isa_name(isa)) + (neox ? " neox" : " normal") + " n_rot=" + std::to_string(n_rot));
        EXPECT_EQ(got.storage.back(), x0.storage.back());
      }
    }
  }
}

}  // namespace
}  // namespace ember
