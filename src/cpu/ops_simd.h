// ISA-generic bodies of the SIMD ops, written once over a vector-traits type V (VecAvx2 in
// ops_avx2.cpp, VecAvx512 in ops_avx512.cpp) and instantiated by those two units only. Like
// simd_avx2.h, everything is in an anonymous namespace (each unit gets internal copies compiled with
// its own flags, nothing another unit could link to) and only intrinsics and plain types are used.
//
// V provides: F (float vector), M (lane mask), kLanes; load/store, load_partial/store_partial
// (lanes < count, zeros beyond), tail_mask(count), set1, zero, add, sub, mul, div, fmadd (a·b+c),
// fmsub (a·b-c), fnmadd (c-a·b), fmaddsub (a·b∓c: even lanes -, odd +), min/max (NaN in `b` wins),
// abs, neg, sign, or_, gt, ge, lt, eq, select(m, t, f), bits(m), reduce_add, reduce_max, round
// (nearest even), trunc, scale_pow2 (p·2^n for integral n in [-150, 129]), dup_even, dup_odd,
// swap_pairs and store_i8 (integral lanes in [-128, 127] to bytes).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "cpu/ops_isa.h"
#include "quant/block_legacy.h"

namespace ember {
namespace {
// A namespace of its own: simd_avx2.h, included by the same units, has helpers with generic names.
namespace ops_simd {

// ---- Vectorized math. Max errors against float64 (CpuOps.ExpAndTanhErrorInUlps, dense sweeps;
// docs/cpu.md): exp 1.26 ulp, tanh 1.27, silu 2.96, gelu_erf 7.4, gelu 11.9 on [-3, 10] (its
// exponent 2u rounds in float, so the error grows with |u| for negative x).

// exp(x) = 2^n · e^r, n = round(x/ln2), r = x - n·ln2 (Cody-Waite: ln2 in two parts), e^r on
// |r| <= ln2/2 by a degree-7 polynomial 1 + r + r²·P(r) (Cephes' expf coefficients). scale_pow2
// applies 2^n with one rounding, so results below FLT_MIN are correctly rounded denormals, and
// x > 88.72 gives +inf, x < -103.98 gives 0. NaN stays NaN.
template <class V>
typename V::F vexp(typename V::F x) {
  x = V::max(V::set1(-104.0f), V::min(V::set1(89.0f), x));
  const typename V::F n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
  typename V::F r = V::fnmadd(n, V::set1(0.693359375f), x);
  r = V::fnmadd(n, V::set1(-2.12194440e-4f), r);
  typename V::F p = V::set1(1.9875691500e-4f);
  p = V::fmadd(p, r, V::set1(1.3981999507e-3f));
  p = V::fmadd(p, r, V::set1(8.3334519073e-3f));
  p = V::fmadd(p, r, V::set1(4.1665795894e-2f));
  p = V::fmadd(p, r, V::set1(1.6666665459e-1f));
  p = V::fmadd(p, r, V::set1(5.0000001201e-1f));
  p = V::fmadd(p, V::mul(r, r), V::add(r, V::set1(1.0f)));
  return V::scale_pow2(p, n);
}

// tanh: x + x³·P(x²) for |x| < 0.625 (Cephes' tanhf; avoids the cancellation of the other form),
// else sign(x)·(1 - 2/(e^{2|x|} + 1)), which saturates to ±1 without overflow trouble.
template <class V>
typename V::F vtanh(typename V::F x) {
  const typename V::F ax = V::abs(x);
  const typename V::F e = vexp<V>(V::add(ax, ax));
  const typename V::F big = V::sub(V::set1(1.0f), V::div(V::set1(2.0f), V::add(e, V::set1(1.0f))));
  const typename V::F z = V::mul(x, x);
  typename V::F p = V::set1(-5.70498872745e-3f);
  p = V::fmadd(p, z, V::set1(2.06390887954e-2f));
  p = V::fmadd(p, z, V::set1(-5.37397155531e-2f));
  p = V::fmadd(p, z, V::set1(1.33314422036e-1f));
  p = V::fmadd(p, z, V::set1(-3.33332819422e-1f));
  const typename V::F small = V::fmadd(V::mul(p, z), x, x);
  return V::select(V::lt(ax, V::set1(0.625f)), small, V::or_(big, V::sign(x)));
}

// silu(x) = x / (1 + e^-x): e^-x = inf for x < -88.7 gives -0, the correct limit.
template <class V>
typename V::F vsilu(typename V::F x) {
  return V::div(x, V::add(V::set1(1.0f), vexp<V>(V::neg(x))));
}

// gelu (tanh approximation) 0.5·x·(1 + tanh(u)), u = √(2/π)(x + 0.044715x³), evaluated as
// x / (1 + e^{-2u}) (the same function without 1 + tanh's cancellation for negative x).
template <class V>
typename V::F vgelu(typename V::F x) {
  const typename V::F two_u = V::mul(
      x, V::fmadd(V::set1(2.0f * 0.7978845608028654f * 0.044715f), V::mul(x, x), V::set1(2.0f * 0.7978845608028654f)));
  return V::div(x, V::add(V::set1(1.0f), vexp<V>(V::neg(two_u))));
}

// gelu (erf) = 0.5·x·erfc(-x/√2). erfc(z), z >= 0, by Numerical Recipes' erfcc fit (fractional error
// < 1.2e-7 everywhere): t·exp(-z² + c(t)), t = 1/(1 + z/2), c a degree-9 polynomial in t. z² = x²/2
// is carried exactly as hi + lo (FMA), and -hi + c as a two-sum, so the large exponent adds no
// rounding beyond exp's own; x >= 0 uses 2 - erfc(z).
template <class V>
typename V::F vgelu_erf(typename V::F x) {
  const typename V::F ax = V::abs(x);
  const typename V::F z = V::mul(ax, V::set1(0.70710678118654752f));
  const typename V::F t = V::div(V::set1(1.0f), V::fmadd(z, V::set1(0.5f), V::set1(1.0f)));
  typename V::F c = V::set1(0.17087277f);
  c = V::fmadd(c, t, V::set1(-0.82215223f));
  c = V::fmadd(c, t, V::set1(1.48851587f));
  c = V::fmadd(c, t, V::set1(-1.13520398f));
  c = V::fmadd(c, t, V::set1(0.27886807f));
  c = V::fmadd(c, t, V::set1(-0.18628806f));
  c = V::fmadd(c, t, V::set1(0.09678418f));
  c = V::fmadd(c, t, V::set1(0.37409196f));
  c = V::fmadd(c, t, V::set1(1.00002368f));
  c = V::fmadd(c, t, V::set1(-1.26551223f));
  const typename V::F sq = V::mul(ax, ax);
  const typename V::F hi = V::mul(sq, V::set1(-0.5f));                    // -z² rounded (exact halving)
  const typename V::F lo = V::mul(V::fmsub(ax, ax, sq), V::set1(-0.5f));  // -z² - hi, exactly
  const typename V::F s = V::add(hi, c);                                  // two-sum: s + err = hi + c
  const typename V::F bb = V::sub(s, hi);
  const typename V::F err = V::add(V::sub(hi, V::sub(s, bb)), V::sub(c, bb));
  const typename V::F erfc =
      V::mul(V::mul(t, vexp<V>(s)), V::add(V::set1(1.0f), V::add(err, lo)));  // e^(err+lo) to first order
  const typename V::F half_x = V::mul(x, V::set1(0.5f));
  // x < 0: 0.5·x·erfc(|x|/√2); x >= 0: 0.5·x·(2 - erfc(x/√2)).
  return V::mul(half_x, V::select(V::lt(x, V::zero()), erfc, V::sub(V::set1(2.0f), erfc)));
}

// ---- Loop shapes.

// y[i] = op(x[i]) over full vectors, then one partial vector.
template <class V, class Op>
inline void map1(const float* x, float* y, int64_t n, Op op) {
  int64_t i = 0;
  for (; i + V::kLanes <= n; i += V::kLanes) V::store(y + i, op(V::load(x + i)));
  if (i < n) V::store_partial(y + i, op(V::load_partial(x + i, n - i)), n - i);
}

template <class V, class Op>
inline void map2(const float* a, const float* b, float* y, int64_t n, Op op) {
  int64_t i = 0;
  for (; i + V::kLanes <= n; i += V::kLanes) V::store(y + i, op(V::load(a + i), V::load(b + i)));
  if (i < n) V::store_partial(y + i, op(V::load_partial(a + i, n - i), V::load_partial(b + i, n - i)), n - i);
}

// Σ of chunk(i, count) over the row, chunk returning the vector terms of elements [i, i + count)
// (count <= kLanes, zero in lanes >= count). Float sums within blocks of 64 vectors, double across
// blocks: the rounding error stays that of a short float sum at any row length.
template <class V, class Chunk>
inline double sum_row(int64_t n, Chunk chunk) {
  constexpr int64_t kL = V::kLanes, kBlock = 64 * V::kLanes;
  double total = 0.0;
  for (int64_t i = 0; i < n;) {
    const int64_t end = n - i < kBlock ? n : i + kBlock;
    typename V::F a0 = V::zero(), a1 = V::zero();
    for (; i + 2 * kL <= end; i += 2 * kL) {
      a0 = V::add(a0, chunk(i, kL));
      a1 = V::add(a1, chunk(i + kL, kL));
    }
    for (; i < end; i += kL) a0 = V::add(a0, chunk(i, end - i < kL ? end - i : kL));
    total += V::reduce_add(V::add(a0, a1));
  }
  return total;
}

template <class V>
inline typename V::F load_n(const float* p, int64_t count) {
  return count == V::kLanes ? V::load(p) : V::load_partial(p, count);
}

template <class V>
inline void store_n(float* p, typename V::F v, int64_t count) {
  if (count == V::kLanes) {
    V::store(p, v);
  } else {
    V::store_partial(p, v, count);
  }
}

// sqrt without <cmath> (whose inline functions ISA units must not include).
inline double sqrt_d(double v) { return _mm_cvtsd_f64(_mm_sqrt_sd(_mm_setzero_pd(), _mm_set_sd(v))); }

// ---- Norms.

template <class V>
float rms_scale(const float* x, int64_t n, float eps) {
  const double sum = sum_row<V>(n, [&](int64_t i, int64_t count) {
    const typename V::F v = load_n<V>(x + i, count);
    return V::mul(v, v);
  });
  return static_cast<float>(1.0 / sqrt_d(sum / static_cast<double>(n) + eps));
}

// (x·scale)·w: the same two roundings as the reference and as rms_norm_q8_0 below.
template <class V>
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  if (n == 0) return;
  const typename V::F s = V::set1(rms_scale<V>(x, n, eps));
  if (w != nullptr) {
    map2<V>(x, w, y, n, [&](typename V::F a, typename V::F b) { return V::mul(V::mul(a, s), b); });
  } else {
    map1<V>(x, y, n, [&](typename V::F a) { return V::mul(a, s); });
  }
}

// roundf (halves away from zero): truncate, then one step away from zero when the dropped
// fraction is >= 0.5 (v - trunc(v) is exact). Matches the reference quantizer's std::round.
template <class V>
typename V::F vround_half_away(typename V::F v) {
  const typename V::F t = V::trunc(v);
  const typename V::F step = V::select(V::ge(V::abs(V::sub(v, t)), V::set1(0.5f)), V::set1(1.0f), V::zero());
  return V::add(t, V::or_(step, V::sign(v)));
}

// rms_norm's elements, 32 at a time in registers, through the reference Q8_0 block quantizer's
// exact arithmetic (amax, d = amax/127, id = 1/d, roundf(y·id), d to f16 nearest-even).
template <class V>
void rms_norm_q8_0(const float* x, const float* w, void* dst, int64_t n, float eps) {
  EMBER_OPS_CHECK(n >= 0 && n % kQK8_0 == 0);
  if (n == 0) return;
  constexpr int kVecs = kQK8_0 / V::kLanes;
  const typename V::F s = V::set1(rms_scale<V>(x, n, eps));
  auto* blocks = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    typename V::F y[kVecs];
    typename V::F amax = V::zero();
    for (int k = 0; k < kVecs; ++k) {
      const int64_t i = b * kQK8_0 + k * V::kLanes;
      y[k] = V::mul(V::load(x + i), s);
      if (w != nullptr) y[k] = V::mul(y[k], V::load(w + i));
      amax = V::max(V::abs(y[k]), amax);  // a NaN loses, as in the reference's std::max
    }
    const float d = V::reduce_max(amax) / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (!(id <= 3.40282347e+38f)) {  // subnormal d: 1/d is inf, and the reference writes zeros
      for (int k = 0; k < kQK8_0; ++k) blocks[b].qs[k] = 0;
      continue;
    }
    for (int k = 0; k < kVecs; ++k) {
      // The reference's round_or_zero: NaN or out of [-128, 127] stores 0.
      const typename V::F r = vround_half_away<V>(V::mul(y[k], V::set1(id)));
      const typename V::F low_ok = V::select(V::ge(r, V::set1(-128.0f)), r, V::zero());
      V::store_i8(blocks[b].qs + k * V::kLanes, V::select(V::ge(V::set1(127.0f), low_ok), low_ok, V::zero()));
    }
  }
}

// Two passes for mean and variance (no E[x²] - E[x]² cancellation), a third to write.
template <class V>
void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  if (n == 0) return;
  const auto mean = static_cast<float>(sum_row<V>(n, [&](int64_t i, int64_t c) { return load_n<V>(x + i, c); }) /
                                       static_cast<double>(n));
  const typename V::F m = V::set1(mean);
  const double var = sum_row<V>(n, [&](int64_t i, int64_t c) {
    // Lanes beyond c hold 0 - mean: zero them.
    const typename V::F d = V::select(V::tail_mask(c), V::sub(load_n<V>(x + i, c), m), V::zero());
    return V::mul(d, d);
  });
  const typename V::F r = V::set1(static_cast<float>(1.0 / sqrt_d(var / static_cast<double>(n) + eps)));
  for (int64_t i = 0; i < n; i += V::kLanes) {
    const int64_t c = n - i < V::kLanes ? n - i : V::kLanes;
    typename V::F v = V::mul(V::sub(load_n<V>(x + i, c), m), r);
    if (w != nullptr) v = V::mul(v, load_n<V>(w + i, c));
    if (b != nullptr) v = V::add(v, load_n<V>(b + i, c));
    store_n<V>(y + i, v, c);
  }
}

// ---- RoPE (shapes in ops_isa.h).

// Adjacent pairs: y = x·cos ∓ swap(x)·sin with cos/sin duplicated over each pair from the
// interleaved row; fmaddsub subtracts in even lanes and adds in odd ones.
template <class V>
inline void rope_normal(float* v, int64_t n_rot, const float* cs) {
  for (int64_t j = 0; j < n_rot; j += V::kLanes) {
    const int64_t c = n_rot - j < V::kLanes ? n_rot - j : V::kLanes;  // even: pairs never split
    const typename V::F xv = load_n<V>(v + j, c), csv = load_n<V>(cs + j, c);
    store_n<V>(v + j, V::fmaddsub(xv, V::dup_even(csv), V::mul(V::swap_pairs(xv), V::dup_odd(csv))), c);
  }
}

// Halves: (a, b) = (v[i], v[i + half]) with cos at cs[i] and sin at cs[half + i].
template <class V>
inline void rope_neox(float* v, int64_t half, const float* cs) {
  for (int64_t i = 0; i < half; i += V::kLanes) {
    const int64_t c = half - i < V::kLanes ? half - i : V::kLanes;
    const typename V::F a = load_n<V>(v + i, c), b = load_n<V>(v + half + i, c);
    const typename V::F co = load_n<V>(cs + i, c), si = load_n<V>(cs + half + i, c);
    store_n<V>(v + i, V::fmsub(a, co, V::mul(b, si)), c);
    store_n<V>(v + half + i, V::fmadd(a, si, V::mul(b, co)), c);
  }
}

template <class V>
void rope(float* x, int64_t n_tokens, int64_t token_stride, int64_t n_head, int64_t head_dim, int64_t n_rot, bool neox,
          const float* cos_sin) {
  EMBER_OPS_CHECK(n_rot >= 0 && n_rot % 2 == 0 && n_rot <= head_dim);
  EMBER_OPS_CHECK(n_tokens <= 1 || token_stride >= n_head * head_dim);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* cs = cos_sin + t * n_rot;
    for (int64_t h = 0; h < n_head; ++h) {
      float* v = x + t * token_stride + h * head_dim;
      if (neox) {
        rope_neox<V>(v, n_rot / 2, cs);
      } else {
        rope_normal<V>(v, n_rot, cs);
      }
    }
  }
}

// ---- Softmax.

template <class V>
void softmax(const float* x, float* y, int64_t n, float scale, float softcap) {
  if (n == 0) return;
  using F = typename V::F;
  const bool capped = softcap > 0.0f, plain = scale == 1.0f && !capped;
  const F vscale = V::set1(scale), vcap = V::set1(softcap), vinv = V::set1(capped ? 1.0f / softcap : 0.0f);
  const F minus_inf = V::set1(-__builtin_inff());
  // Masked (-inf) entries stay -inf through the cap (tanh would map them to -softcap).
  auto logit = [&](F v) {
    const F z = V::mul(v, vscale);
    return capped ? V::select(V::eq(v, minus_inf), minus_inf, V::mul(vcap, vtanh<V>(V::mul(z, vinv)))) : z;
  };
  // Pass 1: the logits (into y unless they are x itself) and their max.
  F vmax = minus_inf;
  for (int64_t i = 0; i < n; i += V::kLanes) {
    const int64_t c = n - i < V::kLanes ? n - i : V::kLanes;
    const F z = logit(load_n<V>(x + i, c));
    if (!plain) store_n<V>(y + i, z, c);
    vmax = V::max(vmax, c == V::kLanes ? z : V::select(V::tail_mask(c), z, minus_inf));
  }
  const F max = V::set1(V::reduce_max(vmax));
  const float* z = plain ? x : y;
  // Pass 2: e = exp(z - max) into y, summed; pass 3 normalizes.
  const double sum = sum_row<V>(n, [&](int64_t i, int64_t c) {
    const F e = vexp<V>(V::sub(load_n<V>(z + i, c), max));
    store_n<V>(y + i, e, c);
    return c == V::kLanes ? e : V::select(V::tail_mask(c), e, V::zero());
  });
  const F inv = V::set1(static_cast<float>(1.0 / sum));
  map1<V>(y, y, n, [&](F e) { return V::mul(e, inv); });
}

// ---- Elementwise.

template <class V, typename V::F (*Act)(typename V::F)>
void unary(const float* x, float* y, int64_t n) {
  map1<V>(x, y, n, [](typename V::F v) { return Act(v); });
}

template <class V, typename V::F (*Act)(typename V::F)>
void glu(const float* g, const float* u, float* y, int64_t n) {
  map2<V>(g, u, y, n, [](typename V::F a, typename V::F b) { return V::mul(Act(a), b); });
}

template <class V, bool kMul>
void binary(const float* a, const float* b, float* y, int64_t n_rows, int64_t n_cols, int64_t b_stride) {
  EMBER_OPS_CHECK(n_rows >= 0 && n_cols >= 0 && b_stride >= 0);
  for (int64_t r = 0; r < n_rows; ++r) {
    map2<V>(a + r * n_cols, b + r * b_stride, y + r * n_cols, n_cols,
            [](typename V::F p, typename V::F q) { return kMul ? V::mul(p, q) : V::add(p, q); });
  }
}

template <class V>
void scale(const float* x, float* y, int64_t n, float s) {
  const typename V::F vs = V::set1(s);
  map1<V>(x, y, n, [&](typename V::F v) { return V::mul(vs, v); });
}

// ---- Argmax and top-k.

// Two passes: the max (four independent max chains), then the first lane equal to it (an early
// exit, half a pass on average); ties therefore go to the lowest index.
template <class V>
int64_t argmax(const float* x, int64_t n) {
  if (n == 0) return -1;
  using F = typename V::F;
  constexpr int64_t kL = V::kLanes;
  const F minus_inf = V::set1(-__builtin_inff());
  F m0 = minus_inf, m1 = minus_inf, m2 = minus_inf, m3 = minus_inf;
  int64_t i = 0;
  for (; i + 4 * kL <= n; i += 4 * kL) {
    // max(new, acc): the hardware max returns its second operand when either is NaN, so a NaN
    // element loses and the accumulators never become NaN (NaNs are never chosen).
    m0 = V::max(V::load(x + i), m0);
    m1 = V::max(V::load(x + i + kL), m1);
    m2 = V::max(V::load(x + i + 2 * kL), m2);
    m3 = V::max(V::load(x + i + 3 * kL), m3);
  }
  for (; i + kL <= n; i += kL) m0 = V::max(V::load(x + i), m0);
  if (i < n) m1 = V::max(V::select(V::tail_mask(n - i), V::load_partial(x + i, n - i), minus_inf), m1);
  const float max = V::reduce_max(V::max(V::max(m0, m1), V::max(m2, m3)));
  const F vmax = V::set1(max);
  for (i = 0; i + kL <= n; i += kL) {
    const unsigned bits = V::bits(V::eq(V::load(x + i), vmax));
    if (bits != 0) return i + __builtin_ctz(bits);
  }
  for (; i < n; ++i) {
    if (x[i] == max) return i;
  }
  return 0;  // every element is NaN
}

// Top-k order: a larger value is better; for equal values, the lower index.
inline bool topk_better(float va, int32_t ia, float vb, int32_t ib) { return va > vb || (va == vb && ia < ib); }

// Restores a k-heap (root = its worst element) below node i.
inline void topk_sift_down(float* v, int32_t* idx, int64_t k, int64_t i) {
  for (;;) {
    const int64_t l = 2 * i + 1, r = l + 1;
    int64_t worst = i;
    if (l < k && topk_better(v[worst], idx[worst], v[l], idx[l])) worst = l;
    if (r < k && topk_better(v[worst], idx[worst], v[r], idx[r])) worst = r;
    if (worst == i) return;
    const float tv = v[i];
    v[i] = v[worst];
    v[worst] = tv;
    const int32_t ti = idx[i];
    idx[i] = idx[worst];
    idx[worst] = ti;
    i = worst;
  }
}

// Every element after the first k has a higher index than all of the heap, so it enters only if
// strictly greater than the root: a SIMD compare filters four vectors at once against the root's
// value, and only the rare lanes above it go through the heap.
template <class V>
void top_k(const float* x, int64_t n, int64_t k, float* values, int32_t* indices) {
  EMBER_OPS_CHECK(0 <= k && k <= n && n <= 0x7FFFFFFF);
  if (k == 0) return;
  constexpr int64_t kL = V::kLanes;
  for (int64_t i = 0; i < k; ++i) {
    values[i] = x[i];
    indices[i] = static_cast<int32_t>(i);
  }
  for (int64_t i = k / 2; i-- > 0;) topk_sift_down(values, indices, k, i);
  auto offer = [&](int64_t j) {
    if (!(x[j] > values[0])) return;
    values[0] = x[j];
    indices[0] = static_cast<int32_t>(j);
    topk_sift_down(values, indices, k, 0);
  };
  int64_t i = k;
  for (; i + 4 * kL <= n; i += 4 * kL) {
    // One compare per vector, masks ORed (a max of the four would let a NaN hide a larger lane).
    const typename V::F root = V::set1(values[0]);
    if ((V::bits(V::gt(V::load(x + i), root)) | V::bits(V::gt(V::load(x + i + kL), root)) |
         V::bits(V::gt(V::load(x + i + 2 * kL), root)) | V::bits(V::gt(V::load(x + i + 3 * kL), root))) == 0) {
      continue;
    }
    for (int64_t q = 0; q < 4 * kL; q += kL) {
      unsigned bits = V::bits(V::gt(V::load(x + i + q), V::set1(values[0])));
      for (; bits != 0; bits &= bits - 1) offer(i + q + __builtin_ctz(bits));
    }
  }
  for (; i < n; ++i) offer(i);
  for (int64_t end = k - 1; end > 0; --end) {  // heap sort: the worst goes last each time
    const float tv = values[0];
    values[0] = values[end];
    values[end] = tv;
    const int32_t ti = indices[0];
    indices[0] = indices[end];
    indices[end] = ti;
    topk_sift_down(values, indices, end, 0);
  }
}

// ---- The table of one ISA.

template <class V>
constexpr OpsFns simd_ops() {
  return OpsFns{
      .rms_norm = rms_norm<V>,
      .rms_norm_q8_0 = rms_norm_q8_0<V>,
      .layer_norm = layer_norm<V>,
      .rope = rope<V>,
      .softmax = softmax<V>,
      .exp = unary<V, vexp<V>>,
      .tanh = unary<V, vtanh<V>>,
      .silu = unary<V, vsilu<V>>,
      .gelu = unary<V, vgelu<V>>,
      .gelu_erf = unary<V, vgelu_erf<V>>,
      .swiglu = glu<V, vsilu<V>>,
      .geglu = glu<V, vgelu<V>>,
      .geglu_erf = glu<V, vgelu_erf<V>>,
      .add = binary<V, false>,
      .mul = binary<V, true>,
      .scale = scale<V>,
      .argmax = argmax<V>,
      .top_k = top_k<V>,
  };
}

}  // namespace ops_simd
}  // namespace
}  // namespace ember
