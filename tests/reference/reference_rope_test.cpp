// Rope frequencies and scaling of the float64 reference: θ per rotated pair computed by hand for
// linear, rope_freqs, llama3 and YaRN scaling, llama.cpp's rope scaling keys, and YaRN's logits on a
// hand-made file against the hand computation (reference_test_util.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numbers>
#include <string>

#include "reference/reference_test_util.h"

namespace ember::reference_test {
namespace {

TEST(ReferenceModelRope, ThetasAndScaling) {
  TinySpec s;  // rope base 100, n_rot 4: θ = 1, 0.1
  const TinyWeights w = tiny_weights(s);
  const std::vector<double> thetas = reference_rope_thetas(load_tiny(s, w).config());
  ASSERT_EQ(thetas.size(), 2u);
  EXPECT_DOUBLE_EQ(thetas[0], 1.0);
  EXPECT_DOUBLE_EQ(thetas[1], 0.1);

  TinySpec linear = s;
  linear.rope_scaling_type = "linear";
  linear.rope_scaling_factor = 2.0;
  const ReferenceModel m_linear = load_tiny(linear, w);
  EXPECT_EQ(m_linear.config().rope_scaling.kind, ReferenceRopeScaling::Kind::kLinear);
  const std::vector<double> linear_thetas = reference_rope_thetas(m_linear.config());
  EXPECT_DOUBLE_EQ(linear_thetas[0], 0.5);
  EXPECT_DOUBLE_EQ(linear_thetas[1], 0.05);
  // A rope_freqs tensor of 2s divides the same frequencies: the same model.
  TinyWeights with_freqs = w;
  with_freqs["rope_freqs.weight"] = TinyTensor{{s.n_rot / 2}, {2.0f, 2.0f}};
  const ReferenceModel m_freqs = load_tiny(s, with_freqs);
  EXPECT_EQ(m_freqs.config().rope_freq_factors, (std::vector<double>{2.0, 2.0}));
  EXPECT_EQ(m_freqs.forward(kTinyTokens), m_linear.forward(kTinyTokens));
  EXPECT_GT(reference_max_abs_diff(m_freqs.forward(kTinyTokens), load_tiny(s, w).forward(kTinyTokens)), 1e-3);
}

// llama.cpp's rope scaling keys: the factor from rope.scaling.factor, else the old rope.scale_linear;
// no rope.scaling.type = linear; type "none" ignores the factor; rope.scaling.attn_factor multiplies
// cos and sin whatever the type.
TEST(ReferenceModelRope, ScalingKeysFollowLlamaCpp) {
  TinySpec s;  // rope base 100, n_rot 4: θ = 1, 0.1
  const TinyWeights w = tiny_weights(s);
  auto config = [&](const TinySpec& spec) {
    const std::vector<std::byte> bytes = tiny_gguf(spec, w);
    return reference_config_from_gguf(GgufFile::parse(bytes, "tiny.gguf"));
  };
  auto expect_linear = [&](const TinySpec& spec, double factor) {
    const ReferenceConfig c = config(spec);
    EXPECT_EQ(c.rope_scaling.kind, ReferenceRopeScaling::Kind::kLinear);
    EXPECT_EQ(c.rope_scaling.factor, factor);
    const std::vector<double> thetas = reference_rope_thetas(c);
    EXPECT_DOUBLE_EQ(thetas[0], 1.0 / factor);
    EXPECT_DOUBLE_EQ(thetas[1], 0.1 / factor);
  };
  auto expect_unscaled = [&](const TinySpec& spec) {
    const ReferenceConfig c = config(spec);
    EXPECT_EQ(c.rope_scaling.kind, ReferenceRopeScaling::Kind::kNone);
    EXPECT_EQ(reference_rope_thetas(c), (std::vector<double>{1.0, 0.1}));
  };
  {
    SCOPED_TRACE("factor without a type: linear");
    TinySpec t = s;
    t.rope_scaling_factor = 4.0;
    expect_linear(t, 4.0);
  }
  {
    SCOPED_TRACE("old key scale_linear without a type: linear");
    TinySpec t = s;
    t.rope_scale_linear = 2.0;
    expect_linear(t, 2.0);
    t.rope_scaling_type = "linear";
    expect_linear(t, 2.0);
    t.rope_scaling_factor = 8.0;  // the new key wins
    expect_linear(t, 8.0);
  }
  {
    SCOPED_TRACE("type none with a factor: no scaling");
    TinySpec t = s;
    t.rope_scaling_type = "none";
    t.rope_scaling_factor = 4.0;
    expect_unscaled(t);
    t.rope_scaling_factor = 0;
    t.rope_scale_linear = 2.0;
    expect_unscaled(t);
  }
  {
    SCOPED_TRACE("no keys at all / factor 1: no scaling");
    expect_unscaled(s);
    TinySpec t = s;
    t.rope_scaling_factor = 1.0;
    expect_unscaled(t);
    EXPECT_EQ(config(s).rope_scaling.attn_factor, 1.0);
  }
  {
    SCOPED_TRACE("longrope divides by the factor like linear; unknown types are unsupported");
    TinySpec t = s;
    t.rope_scaling_type = "longrope";
    t.rope_scaling_factor = 4.0;
    expect_linear(t, 4.0);
    t.rope_scaling_factor = 0;
    expect_unscaled(t);
    for (const char* type : {"llama3", "su", "dynamic"}) {
      t.rope_scaling_type = type;
      t.rope_scaling_factor = 4.0;
      EXPECT_THROW(config(t), Error) << type;
    }
  }
  {
    SCOPED_TRACE("attn_factor, with linear scaling and with type none");
    TinySpec t = hand_spec();
    t.rope_scaling_factor = 2.0;
    t.rope_attn_factor = 1.25;
    const TinyWeights hw = tiny_weights(t);
    for (bool none : {false, true}) {
      t.rope_scaling_type = none ? "none" : "";
      const std::vector<std::byte> bytes = tiny_gguf(t, hw);
      const GgufFile file = GgufFile::parse(bytes, "tiny.gguf");
      ReferenceConfig c = reference_config_from_gguf(file);
      EXPECT_EQ(c.rope_scaling.attn_factor, 1.25);
      EXPECT_EQ(c.rope_scaling.kind, none ? ReferenceRopeScaling::Kind::kNone : ReferenceRopeScaling::Kind::kLinear);
      c.traits.qk_norm = true;  // llama with attn_q_norm tensors: switched on by hand (biases are automatic)
      const HandOptions o{.bias = true, .qk_norm = true, .freq_scale = none ? 1.0 : 0.5, .mscale = 1.25};
      const Logits got = ReferenceModel::load(file, c).forward(kHandTokens);
      EXPECT_LE(reference_max_abs_diff(got, sequence_by_hand(t, hw, kHandTokens, o)), 1e-12);
      HandOptions no_mscale = o;
      no_mscale.mscale = 1.0;
      EXPECT_GT(reference_max_abs_diff(got, sequence_by_hand(t, hw, kHandTokens, no_mscale)), 1e-3);
    }
  }
}

TEST(ReferenceModelRope, Llama3FrequencyFactorsByHand) {
  // n_ctx_orig 64, low 1, high 4, factor 8: wavelengths under 16 keep their frequency, those over 64
  // are divided by 8, between them 1 / ((1 - smooth)/8 + smooth) with smooth = (64/wavelength - 1)/3.
  ReferenceRopeScaling s{ReferenceRopeScaling::Kind::kLlama3, 8.0, 1.0, 4.0, 64};
  // n_rot 4: θ_0 = 1 (wavelength 2π), θ_1 = base^-1/2. With base = (25.6/2π)², wavelength 25.6, smooth
  // 0.5, factor 16/9; with base 1e4, wavelength 200π > 64: the full factor.
  const double mid_base = std::pow(25.6 / (2 * std::numbers::pi), 2);
  const std::vector<double> mid = reference_llama3_freq_factors(4, mid_base, s);
  ASSERT_EQ(mid.size(), 2u);
  EXPECT_DOUBLE_EQ(mid[0], 1.0);
  EXPECT_NEAR(mid[1], 16.0 / 9.0, 1e-12);
  EXPECT_EQ(reference_llama3_freq_factors(4, 1e4, s), (std::vector<double>{1.0, 8.0}));
  // Llama 3.x's parameters: 1 for the fast dims, 32 for the slow ones, non-decreasing.
  const std::vector<double> llama3 =
      reference_llama3_freq_factors(128, 500000.0, {ReferenceRopeScaling::Kind::kLlama3, 32.0, 1.0, 4.0, 8192});
  EXPECT_EQ(llama3.front(), 1.0);
  EXPECT_EQ(llama3.back(), 32.0);
  EXPECT_TRUE(std::is_sorted(llama3.begin(), llama3.end()));
  // Without a rope_freqs tensor, a llama3 config computes them.
  TinySpec tiny;
  ReferenceConfig c = load_tiny(tiny, tiny_weights(tiny)).config();
  c.rope_scaling = s;
  const std::vector<double> thetas = reference_rope_thetas(c);
  EXPECT_DOUBLE_EQ(thetas[1], 0.1 / reference_llama3_freq_factors(4, 100.0, s)[1]);
}

// YaRN as ggml's rope_yarn with ext_factor 1: n_rot 16, base 100, original context 64 put the
// correction dims at 16·ln(64/(2πβ))/(2·ln 100) = -1.99 for β_fast 32 (floor, clamped to 0) and
// 4.03 for β_slow 1 (ceil: 5), so the ramp is r_i = 1 - i/5 up to dim 5 and 0 beyond, and with
// factor 4 each θ_i = 100^(-i/8) · (r_i + (1 - r_i)/4). cos and sin are scaled by 1 + 0.1·ln 4.
TEST(ReferenceModelRope, YarnThetasByHand) {
  ReferenceConfig c;
  c.n_rot = c.head_dim = 16;
  c.rope_base = 100.0;
  c.rope_scaling = {ReferenceRopeScaling::Kind::kYarn, 4.0, 1.0, 4.0, 64};
  const std::vector<double> mix = {1.0, 0.85, 0.7, 0.55, 0.4, 0.25, 0.25, 0.25};
  const std::vector<double> thetas = reference_rope_thetas(c);
  ASSERT_EQ(thetas.size(), mix.size());
  for (size_t i = 0; i < mix.size(); ++i) {
    EXPECT_NEAR(thetas[i], std::pow(100.0, -static_cast<double>(i) / 8.0) * mix[i], 1e-15) << "pair " << i;
  }
  EXPECT_DOUBLE_EQ(reference_rope_mscale(c), 1.0 + 0.1 * std::log(4.0));
  c.rope_scaling.attn_factor = 1.25;
  EXPECT_DOUBLE_EQ(reference_rope_mscale(c), 1.25 * (1.0 + 0.1 * std::log(4.0)));
  // A longer original context moves the ramp to dims 1 (floor of 1.62) .. 8 (ceil of 7.64):
  // r_0 = 1, r_4 = 1 - 3/7, r_7 = 1 - 6/7.
  c.rope_scaling.n_ctx_orig = 512;
  const std::vector<double> longer = reference_rope_thetas(c);
  EXPECT_NEAR(longer[0], 1.0, 1e-15);
  EXPECT_NEAR(longer[4], std::pow(100.0, -0.5) * (4.0 / 7 + 3.0 / 7 / 4), 1e-15);
  EXPECT_NEAR(longer[7], std::pow(100.0, -7.0 / 8.0) * (1.0 / 7 + 6.0 / 7 / 4), 1e-15);
  // Factor 1 changes nothing; a sliding layer with its own base is not scaled (gemma3's local layers).
  c.rope_scaling.factor = 1.0;
  EXPECT_NEAR(reference_rope_thetas(c)[3], std::pow(100.0, -3.0 / 8.0), 1e-15);
  EXPECT_DOUBLE_EQ(reference_rope_mscale(c), 1.25);
  c.rope_scaling.factor = 4.0;
  c.rope_base_swa = 10000.0;
  c.traits.sliding_window = 8;
  EXPECT_NEAR(reference_rope_thetas(c, true)[3], std::pow(10000.0, -3.0 / 8.0), 1e-15);
  EXPECT_DOUBLE_EQ(reference_rope_mscale(c, true), 1.25);
}

// The yarn keys of a file (type yarn, factor 4, original context 64) and its logits against the hand
// computation: n_rot 4 and base 100 put the correction dims at -0.50 (0) and 1.01 (ceil: 2), so
// r = 1, 1/2 and the angles are multiplied by 1 and 1/2 + 1/8.
TEST(ReferenceModelRope, YarnFileLogitsByHand) {
  TinySpec t = hand_spec();
  t.rope_scaling_type = "yarn";
  t.rope_scaling_factor = 4.0;
  t.rope_orig_ctx = 64;
  t.rope_attn_factor = 1.25;
  const TinyWeights w = tiny_weights(t);
  const ReferenceModel m = load_tiny(t, w, [](ReferenceConfig& c) {
    EXPECT_EQ(c.rope_scaling.kind, ReferenceRopeScaling::Kind::kYarn);
    EXPECT_EQ(c.rope_scaling.factor, 4.0);
    EXPECT_EQ(c.rope_scaling.n_ctx_orig, 64);
    EXPECT_EQ(c.rope_scaling.yarn_beta_fast, 32.0);
    EXPECT_EQ(c.rope_scaling.yarn_beta_slow, 1.0);
    c.traits.qk_norm = true;  // llama with attn_q_norm tensors: switched on by hand
  });
  const double mscale = 1.25 * (1.0 + 0.1 * std::log(4.0));
  const HandOptions o{.bias = true, .qk_norm = true, .mscale = mscale, .theta_mul = {1.0, 0.625}};
  const Logits got = m.forward(kHandTokens);
  EXPECT_LE(reference_max_abs_diff(got, sequence_by_hand(t, w, kHandTokens, o)), 1e-12);
  for (auto [what, change] : std::initializer_list<std::pair<const char*, std::function<void(HandOptions&)>>>{
           {"linear",
            [](HandOptions& h) {
              h.theta_mul = {0.25, 0.25};
            }},
           {"no ramp",
            [](HandOptions& h) {
              h.theta_mul = {1.0, 1.0};
            }},
           {"no yarn mscale", [](HandOptions& h) { h.mscale = 1.25; }}}) {
    HandOptions other = o;
    change(other);
    EXPECT_GT(reference_max_abs_diff(got, sequence_by_hand(t, w, kHandTokens, other)), 1e-3) << what;
  }
  // The original context defaults to context_length; yarn without either is unsupported.
  t.rope_orig_ctx = 0;
  t.n_ctx_train = 64;
  EXPECT_EQ(tiny_config(t, w).rope_scaling.n_ctx_orig, 64);
  t.n_ctx_train = 0;
  EXPECT_THROW(tiny_config(t, w), Error);
}

}  // namespace
}  // namespace ember::reference_test
