// Shared by the ops tests: random rows, the sizes every op is run at, and the one table of error
// bounds of the SIMD ops against the scalar reference.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "cpu/ops.h"

namespace ember::ops_test {

// n normal(mean, sigma) floats with a heavy tail (1% times 8); never exactly zero in practice.
inline std::vector<float> random_floats(int64_t n, unsigned seed, float mean = 0.0f, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(mean, sigma);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng) * (u(rng) < 0.01f ? 8.0f : 1.0f);
  return x;
}

// Row lengths: 0..2·lanes+1 of the widest table (16 floats per zmm) and a large odd size.
inline std::vector<int64_t> row_sizes() {
  std::vector<int64_t> sizes;
  for (int64_t n = 0; n <= 33; ++n) sizes.push_back(n);
  sizes.push_back(4099);
  return sizes;
}

// A row with a start one float past a 64-byte boundary (unaligned for every vector width).
struct Row {
  explicit Row(std::vector<float> values) : storage(values.size() + 16) {
    std::copy(values.begin(), values.end(), storage.begin() + 1);
  }
  explicit Row(int64_t n) : storage(static_cast<size_t>(n) + 16, -7.0f) {}
  float* data() { return storage.data() + 1; }
  const float* data() const { return storage.data() + 1; }
  float operator[](int64_t i) const { return storage[static_cast<size_t>(i) + 1]; }
  std::vector<float> storage;
};

// |simd - reference| <= rel·|reference| + rel_mag·magnitude, the magnitude being per op (below).
struct Bound {
  std::string_view op;
  double rel;      // of |reference|: the op's own rounding (in float ulps, 1 ulp = 1.19e-7)
  double rel_mag;  // of the op's magnitude: errors that scale with inputs rather than the output
};

// clang-format off
inline constexpr Bound kBounds[] = {
    // op           rel      rel_mag   magnitude
    {"rms_norm",    6e-7,    0},       // sums in float blocks vs double (measured 2.3e-7)
    {"layer_norm",  0,       6e-7},    // (|x| + |mean|)·rstd·|w| + |b| (measured 2.2e-7)
    {"rope",        0,       2.5e-7},  // (|a| + |b|)·(|cos| + |sin|) per pair (measured 1.2e-7)
    {"softmax",     2e-6,    3e-7},    // |y|·(|z| + |max z|) + 1e-37: exp's argument z - max rounds
    {"exp",         2.4e-7,  1.5e-45}, // 1 (2 ulp; denormals rounded once)
    {"tanh",        2.4e-7,  0},       // 2 ulp
    {"silu",        6e-7,    1e-8},    // |x|: exp's input error at large |x|
    {"gelu",        6e-7,    1e-8},    // |x|
    {"gelu_erf",    1e-6,    1e-8},    // |x|
    {"swiglu",      6e-7,    1e-8},    // |g·u|
    {"geglu",       6e-7,    1e-8},    // |g·u|
    {"geglu_erf",   1e-6,    1e-8},    // |g·u|
    {"add",         0,       0},       // bit-identical
    {"mul",         0,       0},
    {"scale",       0,       0},
};
// clang-format on

inline const Bound& bound(std::string_view op) {
  for (const Bound& b : kBounds) {
    if (b.op == op) return b;
  }
  ADD_FAILURE() << "no bound for " << op;
  return kBounds[0];
}

// Expects got ≈ want under the op's bound; `magnitude` is nullptr when the bound's magnitude is 1.
inline void expect_within(std::string_view op, const float* got, const float* want, const double* magnitude, int64_t n,
                          const std::string& what) {
  const Bound& b = bound(op);
  for (int64_t i = 0; i < n; ++i) {
    const double tol = b.rel * std::fabs(want[i]) + b.rel_mag * (magnitude ? magnitude[i] : 1.0);
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(err <= tol)) {
      ADD_FAILURE() << op << " " << what << " i=" << i << " got " << got[i] << " want " << want[i] << " err " << err
                    << " > " << tol;
      return;
    }
  }
}

}  // namespace ember::ops_test
