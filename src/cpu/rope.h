// RoPE frequency tables, built once per model (per distinct rope config), and the per-token cos/sin
// rows the `rope` op of the ops table reads. Scaling: linear (freq_scale), YaRN (ggml_rope_yarn
// semantics, mscale included), llama3 and Phi-3 longrope (per-dim frequency factors).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ember {

// A model's rope traits (names and meaning as llama.cpp's ggml_rope_ext arguments).
struct RopeParams {
  int64_t n_rot = 0;           // rotated dims per head: even, > 0 (partial rotary: < head_dim)
  bool neox = false;           // pairs (i, i + n_rot/2) instead of (2i, 2i+1)
  float freq_base = 10000.0f;  // θ_i = freq_base^(-2i/n_rot)
  float freq_scale = 1.0f;     // linear scaling (position interpolation): 1 / factor
  // YaRN: ext_factor = 0 turns the ramp and its mscale boost off; llama.cpp passes 1 for yarn models
  // (its default -1 means "1 if the GGUF's scaling type is yarn, else 0": the caller resolves it).
  float ext_factor = 0.0f;
  float attn_factor = 1.0f;  // magnitude multiplier of cos and sin (ggml's mscale argument)
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
  int64_t n_ctx_orig = 0;  // training context length; needed when ext_factor != 0
  // Empty or n_rot/2 positive divisors of the frequencies (θ_i / f_i): GGUF `rope_freqs` (llama3),
  // Phi-3 longrope's rope_factors_short/long, or llama3_freq_factors().
  std::vector<float> freq_factors;
};

// Llama 3.1 rope scaling (HF rope_scaling {rope_type: llama3, ...}).
struct Llama3Scaling {
  float factor = 8.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int64_t n_ctx_orig = 8192;  // original_max_position_embeddings
};

// The n_rot/2 frequency divisors of llama3 scaling, as convert_hf_to_gguf writes `rope_freqs`:
// 1 for wavelengths below n_ctx_orig/high_freq_factor, `factor` above n_ctx_orig/low_freq_factor,
// smoothly interpolated between. For models whose GGUF lacks the rope_freqs tensor.
std::vector<float> llama3_freq_factors(int64_t n_rot, float freq_base, const Llama3Scaling& scaling);

// ggml_rope_yarn_corr_dims: the dims [low, high] between which YaRN ramps from extrapolation to
// interpolation; computed in float exactly as ggml does, since they are floored / ceiled.
std::array<float, 2> rope_yarn_corr_dims(int64_t n_rot, int64_t n_ctx_orig, float freq_base, float beta_fast,
                                         float beta_slow);

class RopeTable {
 public:
  // Throws Error(kInvalidArgument) naming the field for an impossible config (they come from GGUF).
  explicit RopeTable(RopeParams params);

  const RopeParams& params() const noexcept { return params_; }
  int64_t n_rot() const noexcept { return params_.n_rot; }
  bool neox() const noexcept { return params_.neox; }
  // Radians per position of pair i < n_rot/2 (frequency factor, linear and YaRN scaling applied).
  double theta(int64_t i) const noexcept { return theta_[static_cast<size_t>(i)]; }
  // The magnitude of cos and sin: attn_factor, times 1 + 0.1·ln(1/freq_scale) when YaRN is on.
  double mscale() const noexcept { return mscale_; }

  // The rope op's cos_sin argument: [n_tokens][n_rot] floats, row t = cos and sin of
  // positions[t]·θ_i times mscale, in this table's layout (see RopeFn in cpu/ops_isa.h).
  // Angles and sin/cos are computed in double (no float θ rounding at long positions). Call once per
  // step and table: every layer and head of the step shares the rows. Does not allocate.
  void cos_sin(const int32_t* positions, int64_t n_tokens, float* out) const;

 private:
  RopeParams params_;
  std::vector<double> theta_;  // [n_rot/2]
  double mscale_ = 1.0;
};

}  // namespace ember
