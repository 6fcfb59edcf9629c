// The scalar ops table: the reference every SIMD op is tested against (the spec). Plain loops;
// sums and transcendental functions in double with std:: functions, results rounded to float once.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>

#include "cpu/ops_isa.h"
#include "quant/block_legacy.h"
#include "quant/quantize.h"

namespace ember {
namespace {

// 1 / sqrt(mean(x²) + eps), rounded to float once.
float rms_scale(const float* x, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
}

// The normalized element: (x·scale)·w, two float products in that order.
inline float rms_elem(float x, float scale, const float* w, int64_t i) { return w ? x * scale * w[i] : x * scale; }

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  if (n == 0) return;
  const float scale = rms_scale(x, n, eps);
  for (int64_t i = 0; i < n; ++i) y[i] = rms_elem(x[i], scale, w, i);
}

// One block at a time through the reference quantizer: byte-identical to rms_norm + quantize_row.
void rms_norm_q8_0(const float* x, const float* w, void* dst, int64_t n, float eps) {
  EMBER_OPS_CHECK(n >= 0 && n % kQK8_0 == 0);
  if (n == 0) return;
  const float scale = rms_scale(x, n, eps);
  auto* blocks = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    float y[kQK8_0];
    for (int j = 0; j < kQK8_0; ++j) y[j] = rms_elem(x[b * kQK8_0 + j], scale, w, b * kQK8_0 + j);
    quantize_row_q8_0(y, blocks + b, kQK8_0, nullptr);
  }
}

void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  if (n == 0) return;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  double var = 0.0;
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const double rstd = 1.0 / std::sqrt(var / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i) {
    float v = static_cast<float>((x[i] - mean) * rstd);
    if (w) v *= w[i];
    if (b) v += b[i];
    y[i] = v;
  }
}

// (a, b) -> (a·c - b·s, a·s + b·c) in float.
inline void rotate(float& a, float& b, float c, float s) {
  const float a0 = a, b0 = b;
  a = a0 * c - b0 * s;
  b = a0 * s + b0 * c;
}

void rope(float* x, int64_t n_tokens, int64_t token_stride, int64_t n_head, int64_t head_dim, int64_t n_rot, bool neox,
          const float* cos_sin) {
  EMBER_OPS_CHECK(n_rot >= 0 && n_rot % 2 == 0 && n_rot <= head_dim);
  EMBER_OPS_CHECK(n_tokens <= 1 || token_stride >= n_head * head_dim);
  const int64_t half = n_rot / 2;
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* cs = cos_sin + t * n_rot;
    for (int64_t h = 0; h < n_head; ++h) {
      float* v = x + t * token_stride + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        if (neox) {
          rotate(v[i], v[i + half], cs[i], cs[half + i]);
        } else {
          rotate(v[2 * i], v[2 * i + 1], cs[2 * i], cs[2 * i + 1]);
        }
      }
    }
  }
}

// scale·x, soft-capped when softcap > 0; a masked -inf stays -inf.
inline double softmax_logit(float x, float scale, float softcap) {
  const float z = scale * x;
  if (softcap <= 0.0f || x == -INFINITY) return z;
  return softcap * std::tanh(static_cast<double>(z) / softcap);
}

void softmax(const float* x, float* y, int64_t n, float scale, float softcap) {
  if (n == 0) return;
  double max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = std::max(max, softmax_logit(x[i], scale, softcap));
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(softmax_logit(x[i], scale, softcap) - max);
  // y may be x: each y[i] is written after its own x[i] was read for the last time.
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(std::exp(softmax_logit(x[i], scale, softcap) - max) / sum);
}

double silu_d(double x) { return x / (1.0 + std::exp(-x)); }

// 0.5·x·(1 + tanh(u)) with u = √(2/π)(x + 0.044715x³), written as x·sigmoid(2u) (the same function;
// 1 + tanh(u) would cancel for negative x).
double gelu_d(double x) {
  const double u = std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x);
  return x / (1.0 + std::exp(-2.0 * u));
}

double gelu_erf_d(double x) { return 0.5 * x * std::erfc(-x / std::numbers::sqrt2); }

template <double (*F)(double)>
void unary(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(F(x[i]));
}

template <double (*F)(double)>
void glu(const float* g, const float* u, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(F(g[i]) * u[i]);
}

double exp_d(double x) { return std::exp(x); }
double tanh_d(double x) { return std::tanh(x); }

template <bool kMul>
void binary(const float* a, const float* b, float* y, int64_t n_rows, int64_t n_cols, int64_t b_stride) {
  EMBER_OPS_CHECK(n_rows >= 0 && n_cols >= 0 && b_stride >= 0);
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* br = b + r * b_stride;
    for (int64_t i = 0; i < n_cols; ++i)
      y[r * n_cols + i] = kMul ? a[r * n_cols + i] * br[i] : a[r * n_cols + i] + br[i];
  }
}

void scale(const float* x, float* y, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) y[i] = s * x[i];
}

int64_t argmax(const float* x, int64_t n) {
  int64_t best = n > 0 ? 0 : -1;
  for (int64_t i = 1; i < n; ++i) {
    const bool best_is_nan = x[best] != x[best];  // NaNs are never chosen unless all are NaN
    if (x[i] > x[best] || (best_is_nan && x[i] == x[i])) best = i;
  }
  return best;
}

// Top-k order: a larger value is better; equal values, the lower index.
inline bool better(float va, int32_t ia, float vb, int32_t ib) { return va > vb || (va == vb && ia < ib); }

// Restores the heap below `i` in a k-heap whose root is its worst element.
void sift_down(float* v, int32_t* idx, int64_t k, int64_t i) {
  for (;;) {
    const int64_t l = 2 * i + 1, r = l + 1;
    int64_t worst = i;
    if (l < k && better(v[worst], idx[worst], v[l], idx[l])) worst = l;
    if (r < k && better(v[worst], idx[worst], v[r], idx[r])) worst = r;
    if (worst == i) return;
    std::swap(v[i], v[worst]);
    std::swap(idx[i], idx[worst]);
    i = worst;
  }
}

// The plain algorithm: a heap of the first k elements, every later one that beats its root
// replaces it, then a heap sort (the worst goes last each time).
void top_k(const float* x, int64_t n, int64_t k, float* values, int32_t* indices) {
  EMBER_OPS_CHECK(0 <= k && k <= n && n <= INT32_MAX);
  if (k == 0) return;
  for (int64_t i = 0; i < k; ++i) {
    values[i] = x[i];
    indices[i] = static_cast<int32_t>(i);
  }
  for (int64_t i = k / 2; i-- > 0;) sift_down(values, indices, k, i);
  for (int64_t i = k; i < n; ++i) {
    if (!better(x[i], static_cast<int32_t>(i), values[0], indices[0])) continue;
    values[0] = x[i];
    indices[0] = static_cast<int32_t>(i);
    sift_down(values, indices, k, 0);
  }
  for (int64_t end = k - 1; end > 0; --end) {
    std::swap(values[0], values[end]);
    std::swap(indices[0], indices[end]);
    sift_down(values, indices, end, 0);
  }
}

}  // namespace

const OpsTable& scalar_ops() {
  static constexpr OpsTable kTable = {
      .fns =
          {
              .rms_norm = rms_norm,
              .rms_norm_q8_0 = rms_norm_q8_0,
              .layer_norm = layer_norm,
              .rope = rope,
              .softmax = softmax,
              .exp = unary<exp_d>,
              .tanh = unary<tanh_d>,
              .silu = unary<silu_d>,
              .gelu = unary<gelu_d>,
              .gelu_erf = unary<gelu_erf_d>,
              .swiglu = glu<silu_d>,
              .geglu = glu<gelu_d>,
              .geglu_erf = glu<gelu_erf_d>,
              .add = binary<false>,
              .mul = binary<true>,
              .scale = scale,
              .argmax = argmax,
              .top_k = top_k,
          },
      .to_float = nullptr,  // QuantTraits::to_float is the scalar converter
      .n_to_float = 0,
  };
  return kTable;
}

}  // namespace ember
