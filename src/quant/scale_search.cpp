// ggml's scale searches (make_qx_quants, make_qkx2_quants, make_qkx3_quants, make_qp_quants) with
// the float operations in ggml's order; ember_quant is built with -ffp-contract=off.
#include "quant/scale_search.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/rounding.h"

namespace ember {

float make_qx_quants(int n, int nmax, const float* x, int8_t* levels, const float* weights) {
  const float max = signed_absmax(x, n);
  if (std::fabs(max) < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) levels[i] = 0;
    return 0.0f;
  }
  // The weighted sums Σw·x·l and Σw·l² for the grid `iscale`; stores the levels when asked.
  const auto fit = [&](float iscale, float* sumlx, float* suml2, int8_t* out) {
    *sumlx = *suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
      if (out != nullptr) out[i] = static_cast<int8_t>(l + nmax);
      const float w = weights != nullptr ? weights[i] : x[i] * x[i];
      *sumlx += w * x[i] * static_cast<float>(l);
      *suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
  };
  float sumlx, suml2;
  fit(-static_cast<float>(nmax) / max, &sumlx, &suml2, levels);
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const float iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    fit(iscale, &sumlx, &suml2, nullptr);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      fit(iscale, &sumlx, &suml2, levels);  // same grid: same sums, now keeping the levels
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

namespace {

// The search shared by make_qkx2_quants and make_qkx3_quants; `clamp_then_round` selects how a
// rescaled value becomes a level on the rescaled grids (see make_qkx3_quants in the header).
float make_qkx_quants(int n, int nmax, const float* x, const float* weights, uint8_t* levels, float* neg_min,
                      uint8_t* levels_aux, float rmin, float rdelta, int nstep, bool use_mad, bool clamp_then_round) {
  const auto loss = [use_mad](float diff) { return use_mad ? std::fabs(diff) : diff * diff; };
  const auto fmax = static_cast<float>(nmax);
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {  // ggml's make_qkx3 writes max <= min: the same, as min <= max here
    for (int i = 0; i < n; ++i) levels[i] = 0;
    *neg_min = -min;
    return 0.0f;
  }
  float iscale = fmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    levels[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    const float diff = scale * static_cast<float>(levels[i]) + min - x[i];
    best_error += weights[i] * loss(diff);
  }
  for (int is = 0; is <= nstep; ++is) {
    // `min` is the best fit so far: the grids after an improvement start from it.
    iscale = (rmin + rdelta * static_cast<float>(is) + fmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const float v = iscale * (x[i] - min);
      int l;
      if (clamp_then_round) {
        l = v > 0 ? nearest_int(std::min(v, fmax)) : 0;
      } else {
        l = std::max(0, std::min(nmax, nearest_int(v)));
      }
      levels_aux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      sum_l += w * static_cast<float>(l);
      sum_l2 += w * static_cast<float>(l) * static_cast<float>(l);
      sum_xl += w * static_cast<float>(l) * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * static_cast<float>(levels_aux[i]) + this_min - x[i];
        cur_error += weights[i] * loss(diff);
      }
      if (cur_error < best_error) {
        std::memcpy(levels, levels_aux, static_cast<size_t>(n));
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *neg_min = -min;
  return scale;
}

}  // namespace

float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* levels, float* neg_min,
                       uint8_t* levels_aux, float rmin, float rdelta, int nstep, bool use_mad) {
  return make_qkx_quants(n, nmax, x, weights, levels, neg_min, levels_aux, rmin, rdelta, nstep, use_mad, false);
}

float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* levels, float* neg_min,
                       uint8_t* levels_aux, float rmin, float rdelta, int nstep, bool use_mad) {
  return make_qkx_quants(n, nmax, x, weights, levels, neg_min, levels_aux, rmin, rdelta, nstep, use_mad, true);
}

float make_qp_quants(int n, int nmax, const float* x, uint8_t* levels, const float* weights) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = std::max(max, x[i]);
  if (max < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) levels[i] = 0;
    return 0.0f;
  }
  const auto fmax = static_cast<float>(nmax);
  // The absmax grid first; its levels are not clamped (the largest value maps to nmax exactly).
  float iscale = fmax / max;
  for (int i = 0; i < n; ++i) levels[i] = static_cast<uint8_t>(nearest_int(iscale * x[i]));
  const float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * static_cast<float>(levels[i]);
    best_mse += weights[i] * diff * diff;
  }
  // 8 rescaled grids; only the best iscale is kept.
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * static_cast<float>(is) + fmax) / max;
    const float scale_is = 1 / iscale_is;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::min(nmax, nearest_int(iscale_is * x[i]));
      const float diff = x[i] - scale_is * static_cast<float>(l);
      mse += weights[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  // Least-squares sums of the chosen grid (from the unwrapped levels, as ggml does).
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::min(nmax, nearest_int(iscale * x[i]));
    levels[i] = static_cast<uint8_t>(l);
    const float w = weights[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  // Move single levels to the value the rest of the fit predicts while that improves it.
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = weights[i];
      const auto level = static_cast<float>(levels[i]);
      float slx = sumlx - w * x[i] * level;
      float sl2 = suml2 - w * level * level;
      if (slx > 0 && sl2 > 0) {
        const int new_l = std::min(nmax, nearest_int(x[i] * sl2 / slx));
        if (new_l != levels[i]) {
          slx += w * x[i] * static_cast<float>(new_l);
          sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            levels[i] = static_cast<uint8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (n_changed == 0) break;
  }
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

}  // namespace ember
