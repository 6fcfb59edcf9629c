// RoPE frequency tables and per-token cos/sin rows (see rope.h).
#include "cpu/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/check.h"

namespace ember {
namespace {

// ggml_rope_yarn_corr_dim: the dim whose wavelength makes `n_rot_turns` turns over n_ctx_orig
// positions, n_dims·ln(n_ctx_orig / (turns·2π)) / (2·ln(base)); float, like ggml.
float yarn_corr_dim(int64_t n_dims, int64_t n_ctx_orig, float turns, float base) {
  return static_cast<float>(n_dims) *
         std::log(static_cast<float>(n_ctx_orig) / (turns * 2.0f * std::numbers::pi_v<float>)) /
         (2.0f * std::log(base));
}

// YaRN's ramp over pair i (ggml's rope_yarn_ramp with i0 = 2i): 1 below `low`, 0 above `high`.
double yarn_ramp(float low, float high, int64_t i) {
  const double y = (static_cast<double>(i) - low) / std::max(0.001, static_cast<double>(high) - low);
  return 1.0 - std::min(1.0, std::max(0.0, y));
}

}  // namespace

std::vector<float> llama3_freq_factors(int64_t n_rot, float freq_base, const Llama3Scaling& s) {
  const double low_wavelen = static_cast<double>(s.n_ctx_orig) / s.low_freq_factor;
  const double high_wavelen = static_cast<double>(s.n_ctx_orig) / s.high_freq_factor;
  std::vector<float> factors;
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const double freq = std::pow(static_cast<double>(freq_base), -2.0 * static_cast<double>(i) / n_rot);
    const double wavelen = 2.0 * std::numbers::pi / freq;
    double f;
    if (wavelen < high_wavelen) {
      f = 1.0;
    } else if (wavelen > low_wavelen) {
      f = s.factor;
    } else {  // 1/f interpolates linearly in n_ctx_orig/wavelen between 1/factor and 1
      const double smooth = (s.n_ctx_orig / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      f = 1.0 / ((1.0 - smooth) / s.factor + smooth);
    }
    factors.push_back(static_cast<float>(f));
  }
  return factors;
}

std::array<float, 2> rope_yarn_corr_dims(int64_t n_rot, int64_t n_ctx_orig, float freq_base, float beta_fast,
                                         float beta_slow) {
  const float start = std::floor(yarn_corr_dim(n_rot, n_ctx_orig, beta_fast, freq_base));
  const float end = std::ceil(yarn_corr_dim(n_rot, n_ctx_orig, beta_slow, freq_base));
  return {std::max(0.0f, start), std::min(static_cast<float>(n_rot - 1), end)};
}

RopeTable::RopeTable(RopeParams params) : params_(std::move(params)) {
  const RopeParams& p = params_;
  if (p.n_rot <= 0 || p.n_rot % 2 != 0)
    fail(ErrorCode::kInvalidArgument, "rope: n_rot {} is not even and > 0", p.n_rot);
  if (!(p.freq_base > 0.0f) || !std::isfinite(p.freq_base))
    fail(ErrorCode::kInvalidArgument, "rope: freq_base {} is not positive", p.freq_base);
  if (!(p.freq_scale > 0.0f) || !std::isfinite(p.freq_scale))
    fail(ErrorCode::kInvalidArgument, "rope: freq_scale {} is not positive", p.freq_scale);
  if (!std::isfinite(p.ext_factor) || !std::isfinite(p.attn_factor))
    fail(ErrorCode::kInvalidArgument, "rope: ext_factor / attn_factor not finite");
  const auto half = static_cast<size_t>(p.n_rot / 2);
  if (!p.freq_factors.empty() && p.freq_factors.size() != half)
    fail(ErrorCode::kInvalidArgument, "rope: {} frequency factors for n_rot {} (want {})", p.freq_factors.size(),
         p.n_rot, half);
  for (float f : p.freq_factors) {
    if (!(f > 0.0f) || !std::isfinite(f))
      fail(ErrorCode::kInvalidArgument, "rope: frequency factor {} not positive", f);
  }
  std::array<float, 2> corr = {0.0f, 0.0f};
  if (p.ext_factor != 0.0f) {
    if (p.n_ctx_orig <= 0 || !(p.beta_fast > 0.0f) || !(p.beta_slow > 0.0f))
      fail(ErrorCode::kInvalidArgument, "rope: YaRN needs n_ctx_orig > 0 and beta_fast, beta_slow > 0");
    corr = rope_yarn_corr_dims(p.n_rot, p.n_ctx_orig, p.freq_base, p.beta_fast, p.beta_slow);
  }
  theta_.resize(half);
  for (size_t i = 0; i < half; ++i) {
    // θ_extrap = base^(-2i/n_rot) / f_i; θ = θ_interp·(1 - mix) + θ_extrap·mix with θ_interp =
    // freq_scale·θ_extrap, i.e. θ_extrap·(freq_scale·(1 - mix) + mix) (mix = 0 without YaRN).
    double t = std::pow(static_cast<double>(p.freq_base), -2.0 * static_cast<double>(i) / static_cast<double>(p.n_rot));
    if (!p.freq_factors.empty()) t /= p.freq_factors[i];
    const double mix = p.ext_factor != 0.0f ? yarn_ramp(corr[0], corr[1], static_cast<int64_t>(i)) * p.ext_factor : 0.0;
    theta_[i] = t * (p.freq_scale * (1.0 - mix) + mix);
  }
  mscale_ = p.attn_factor;
  if (p.ext_factor != 0.0f) mscale_ *= 1.0 + 0.1 * std::log(1.0 / p.freq_scale);
}

void RopeTable::cos_sin(const int32_t* positions, int64_t n_tokens, float* out) const {
  const int64_t n_rot = params_.n_rot, half = n_rot / 2;
  for (int64_t t = 0; t < n_tokens; ++t, out += n_rot) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = positions[t] * theta_[static_cast<size_t>(i)];
      const auto c = static_cast<float>(std::cos(angle) * mscale_);
      const auto s = static_cast<float>(std::sin(angle) * mscale_);
      if (params_.neox) {
        out[i] = c;
        out[half + i] = s;
      } else {
        out[2 * i] = c;
        out[2 * i + 1] = s;
      }
    }
  }
}

}  // namespace ember
