// The scale searches shared by the reference quantizers: ggml's make_qx_quants, make_qkx2_quants,
// make_qkx3_quants and make_qp_quants. Each fits a block of values to a grid of integer levels by
// weighted least squares; float operations in ggml's order so that results are bit-identical.
#pragma once

#include <cmath>
#include <cstdint>

namespace ember {

// Σ x², accumulated in order in float (ggml's sigma2 statistics).
inline float sum_of_squares(const float* x, int64_t n) noexcept {
  float sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += x[j] * x[j];
  return sum;
}

// ggml's per-element weight when an importance matrix is given: importance · sqrt(sigma2 + x²).
// sigma2 (a mean square of the row or super-block) keeps small values from getting zero weight.
inline void importance_weights(const float* x, const float* importance, float sigma2, int n, float* weights) noexcept {
  for (int j = 0; j < n; ++j) weights[j] = importance[j] * std::sqrt(sigma2 + x[j] * x[j]);
}

// Σ weights, accumulated in order (the weight of a sub-block when its scale is quantized).
inline float sum_of(const float* weights, int n) noexcept {
  float sum = 0;
  for (int j = 0; j < n; ++j) sum += weights[j];
  return sum;
}

// Symmetric quantization x ≈ scale · (level - nmax) to levels 0..2·nmax-1: the absmax grid, then
// 18 rescaled grids, keeping the best fit by weighted least squares. `weights` nullptr means x²
// (ggml's rmse_type 1). Returns the scale (0 for a block below kGroupMaxEps or without weight).
float make_qx_quants(int n, int nmax, const float* x, int8_t* levels, const float* weights);

// Asymmetric quantization x ≈ scale · level - neg_min to levels 0..nmax (ggml's make_qkx2_quants):
// the min/max grid, then nstep+1 grids rescaled by rmin + rdelta·is, each solved for scale and min
// in closed form; keeps the smallest weighted squared (use_mad: absolute) error. Returns the scale,
// *neg_min receives -min >= 0. levels_aux is scratch of n bytes.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* levels, float* neg_min,
                       uint8_t* levels_aux, float rmin, float rdelta, int nstep, bool use_mad);

// ggml's make_qkx3_quants, the search of the importance-weighted paths: make_qkx2_quants, except
// that a rescaled value is clamped to 0..nmax before rounding. With skewed weights the fitted min
// can end up near the max, making the rescaled values huge or non-finite; clamping first keeps
// their levels defined (0 or nmax). For finite in-range values both give the same levels.
float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* levels, float* neg_min,
                       uint8_t* levels_aux, float rmin, float rdelta, int nstep, bool use_mad);

// Quantizes non-negative values (the sub-block scales or mins of a K-quant super-block) to levels
// 0..nmax under one scale, minimizing the error weighted by `weights` (each sub-block's total
// weight): 9 grids, then up to 5 passes moving single levels. Returns the scale. A negative input
// (possible only for degenerate sub-blocks) wraps in the uint8 levels exactly as in ggml.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* levels, const float* weights);

}  // namespace ember
