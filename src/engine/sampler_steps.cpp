// The truncation steps of the sampler chain (top-n-sigma, top-k, typical-p, top-p, min-p, XTC),
// temperature (plain and dynamic) and mirostat v2. None sorts a large set: top-k is a heap (or, for
// a large k, a histogram count), top-p and typical find where their mass crosses the target with a
// histogram and order only inside that bucket, the rest are thresholds found in one pass.
//
// The order the candidates are left in decides which token a seed draws, so it never depends on
// the standard library: every kept set is either sorted by a total order or built by this file's
// own loops (std::partition's and std::nth_element's arrangements differ between libraries).
#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/sampler_chain.h"
#include "tokenizer/tokenizer.h"

namespace ember {
namespace {

using sampling::Candidate;
using sampling::kNegInf;

// The infill step compares every pair of candidates: it runs on at most this many (llama.cpp's
// clients put it after top-k 40; on a whole vocabulary it would take seconds per token).
constexpr size_t kInfillMost = 512;
// ... and keeps a text token with at least this probability, after merging.
constexpr double kInfillKeep = 0.2;

// top-p over the whole vocabulary first tries the best this many by heap (real models put the
// mass on a few dozen tokens).
constexpr size_t kFirstSlice = 64;
// top-k up to this many is a heap over the vocabulary (ordered best first), larger k a histogram.
constexpr size_t kHeapTopK = 2048;

// Histograms: kBuckets per level. The first level over the whole vocabulary has a fixed range,
// kFirstPerUnit buckets per logit from the best (or from the mean, for typical), the last bucket
// taking everything beyond; deeper levels span their segment's own keys.
constexpr size_t kBuckets = 2048;
constexpr double kFirstPerUnit = 32.0;
constexpr size_t kSortAtMost = 64;  // a segment this small is sorted
constexpr int kMaxLevels = 8;       // then the sorted slices (only for pathological key spacings)

// The bucket of x >= 0 (scaled key); beyond the last bucket (and inf): the last.
inline size_t bucket_of(double x) noexcept {
  constexpr double kLast = static_cast<double>(kBuckets - 1);
  if (!(x > 0.0)) return 0;
  return x < kLast ? static_cast<size_t>(static_cast<int32_t>(x)) : kBuckets - 1;
}

// The first bucket where the running mass, from `held`, reaches `target` (passes it when
// `strict`); kBuckets when none does (rounding). `held` becomes the mass of the buckets below it.
size_t crossing_bucket(const double* mass, double& held, double target, bool strict) {
  for (size_t b = 0; b < kBuckets; ++b) {
    const double next = held + mass[b];
    if (strict ? next > target : next >= target) return b;
    held = next;
  }
  return kBuckets;
}

// Moves the candidates for which `pred` holds to the front; returns their count. The loop is ours:
// the resulting arrangement is the same with every standard library.
template <typename Pred>
size_t partition_front(std::span<Candidate> c, Pred pred) {
  size_t lo = 0, hi = c.size();
  while (true) {
    while (lo < hi && pred(c[lo])) ++lo;
    while (lo < hi && !pred(c[hi - 1])) --hi;
    if (lo >= hi) return lo;
    std::swap(c[lo++], c[--hi]);
  }
}

// The length of the shortest prefix of `c`, in the order `less` (a total order), whose weights,
// added to `held`, reach `target` (pass it when `strict`); all of `c` when none does. Orders only
// that prefix (left sorted at the front): growing slices, each an nth_element over the rest and a
// sort of the slice. For small or pathological sets; prefix_by_mass narrows large ones first.
template <typename Less, typename Weight>
size_t sorted_prefix_by_mass(std::span<Candidate> c, Less less, Weight weight, double held, double target,
                             bool strict) {
  const size_t n = c.size();
  size_t done = 0;
  size_t m = std::min(n, kFirstSlice);
  while (done < n) {
    const auto first = c.begin() + static_cast<ptrdiff_t>(done);
    const auto middle = c.begin() + static_cast<ptrdiff_t>(m);
    if (m < n) std::nth_element(first, middle, c.end(), less);
    std::sort(first, middle, less);
    for (size_t i = done; i < m; ++i) {
      held += weight(c[i]);
      if (strict ? held > target : held >= target) return i + 1;
    }
    done = m;
    m = std::min(n, m * 8);
  }
  return n;
}

// The same set as sorted_prefix_by_mass, moved to the front of `c` (not sorted), without ordering
// more than a small bucket: a histogram of the weights by key finds the bucket where the mass
// crosses the target, the buckets below are in, and only that bucket is narrowed further (its own
// histogram, until it is small enough to sort). `key` >= 0 is monotone in `less` (less(a, b)
// implies key(a) <= key(b)), so the buckets follow the order.
template <typename Key, typename Weight, typename Less>
size_t prefix_by_mass(std::span<Candidate> c, Key key, Weight weight, Less less, double held, double target,
                      bool strict) {
  size_t kept = 0;  // c[0, kept) are in; c[kept, end) is the bucket being narrowed
  for (int level = 0;; ++level) {
    const std::span<Candidate> rest = c.subspan(kept);
    if (rest.size() <= kSortAtMost || level == kMaxLevels) {
      return kept + sorted_prefix_by_mass(rest, less, weight, held, target, strict);
    }
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const Candidate& x : rest) {
      const double k = key(x);
      lo = k < lo ? k : lo;
      hi = k > hi ? k : hi;
    }
    const double per_key = static_cast<double>(kBuckets) / (hi - lo);
    if (!(hi > lo) || !std::isfinite(per_key)) {  // every key equal: only `less` orders them
      return kept + sorted_prefix_by_mass(rest, less, weight, held, target, strict);
    }
    const auto bucket = [&](const Candidate& x) { return bucket_of((key(x) - lo) * per_key); };
    double mass[kBuckets] = {};
    for (const Candidate& x : rest) mass[bucket(x)] += weight(x);
    const size_t b = crossing_bucket(mass, held, target, strict);
    if (b == kBuckets) return c.size();
    const size_t below = partition_front(rest, [&](const Candidate& x) { return bucket(x) < b; });
    const size_t at = partition_front(rest.subspan(below), [&](const Candidate& x) { return bucket(x) == b; });
    kept += below;
    c = c.first(kept + at);
  }
}

// A first-level key (in buckets: kFirstPerUnit per logit) as its bucket; NaN: the last.
inline uint16_t first_bucket(float x) noexcept {
  constexpr float kLast = static_cast<float>(kBuckets - 1);
  x = x < kLast ? x : kLast;
  x = x > 0.0f ? x : 0.0f;
  return static_cast<uint16_t>(static_cast<int32_t>(x));
}
constexpr uint16_t kDead = kBuckets;  // a token that is no candidate

// The first level of prefix_by_mass over the whole vocabulary, where the candidates do not exist
// yet. bucket[i]: token i's bucket (monotone in the order), or kDead. `out` becomes the tokens of
// the buckets below the crossing one (in id order), then those of the crossing bucket (every live
// token when the mass never crosses). Returns the count below; `held` becomes their mass.
template <typename Weight, typename Make>
size_t narrow_vocabulary(std::span<const uint16_t> bucket, Weight weight, Make make, std::vector<Candidate>& out,
                         double& held, double target, bool strict) {
  double mass[kBuckets + 1] = {};
  uint32_t count[kBuckets + 1] = {};
  const size_t n = bucket.size();
  for (size_t i = 0; i < n; ++i) {
    mass[bucket[i]] += weight(i);
    ++count[bucket[i]];
  }
  const size_t edge = crossing_bucket(mass, held, target, strict);
  size_t below = 0;
  for (size_t b = 0; b < edge && b < kBuckets; ++b) below += count[b];
  const size_t at = edge < kBuckets ? count[edge] : 0;
  // Branch-free (which side a token falls is a coin flip on a flat row): every token is written at
  // the cursor, which moves only for the kept ones; one spare slot takes the last write.
  out.resize(below + at + 1);  // <= n_vocab + 1: the capacity reserved, never a reallocation
  Candidate* o = out.data();
  size_t sure = 0;
  for (size_t i = 0; i < n; ++i) {
    o[sure] = make(i);
    sure += bucket[i] < edge ? 1 : 0;
  }
  size_t next = below;
  if (at > 0) {
    for (size_t i = 0; i < n; ++i) {
      o[next] = make(i);
      next += bucket[i] == edge ? 1 : 0;
    }
  }
  out.resize(below + at);
  return below;
}

// Mean and standard deviation (population) of the live values (not -inf, not NaN).
template <typename Get>
void live_moments(size_t n, Get get, double& mean, double& stddev, size_t& count) {
  double sum = 0.0;
  count = 0;
  for (size_t i = 0; i < n; ++i) {
    const float v = get(i);
    if (v > kNegInf) sum += v, ++count;
  }
  mean = count > 0 ? sum / static_cast<double>(count) : 0.0;
  double squares = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const float v = get(i);
    if (v > kNegInf) squares += (v - mean) * (v - mean);
  }
  stddev = count > 0 ? std::sqrt(squares / static_cast<double>(count)) : 0.0;
}

}  // namespace

void SamplerChain::top_n_sigma(float n) {
  if (n <= 0.0f || set_size() <= 1) return;
  double mean = 0.0, stddev = 0.0;
  size_t count = 0;
  if (full_) {
    // On the raw logits: the threshold max - n sigma scales with the values.
    live_moments(
        logits_.size(), [&](size_t i) { return logits_[i]; }, mean, stddev, count);
    keep_at_least(sampling::saturate_to_float(full_max() - n * stddev));
    return;
  }
  live_moments(
      cands_.size(), [&](size_t i) { return cands_[i].logit; }, mean, stddev, count);
  const float threshold = sampling::saturate_to_float(candidates_max() - n * stddev);
  std::erase_if(cands_, [threshold](const Candidate& c) { return !(c.logit >= threshold); });
}

void SamplerChain::top_k(int32_t k) {
  if (k <= 0 || static_cast<size_t>(k) >= set_size()) return;
  const auto kept = static_cast<size_t>(k);
  const auto one = [](const Candidate&) { return 1.0; };
  if (full_) {
    if (kept <= kHeapTopK) {
      sampling::select_top_k(logits_, kept, cands_);                                  // best first
      while (cands_.size() > 1 && cands_.back().logit == kNegInf) cands_.pop_back();  // no weight: never drawn
      sorted_ = true;
    } else {
      // A count by raw logit finds the bucket holding the k-th best; only that bucket is ordered.
      const float max = full_max();
      const float* x = logits_.data();
      for (size_t i = 0; i < logits_.size(); ++i) {
        bucket_[i] = x[i] > kNegInf ? first_bucket((max - x[i]) * static_cast<float>(kFirstPerUnit)) : kDead;
      }
      double held = 0.0;
      const size_t below = narrow_vocabulary(
          bucket_, [](size_t) { return 1.0; },
          [x](size_t i) {
            return Candidate{x[i], static_cast<int32_t>(i)};
          },
          cands_, held, static_cast<double>(kept), false);
      const auto key = [max](const Candidate& c) { return static_cast<double>(max) - c.logit; };
      cands_.resize(below + prefix_by_mass(std::span(cands_).subspan(below), key, one, sampling::better, held,
                                           static_cast<double>(kept), false));
      sorted_ = false;
    }
    for (Candidate& c : cands_) c.logit = (c.logit - shift_) * scale_;
    full_ = false;
    return;
  }
  if (sorted_) {
    cands_.resize(kept);
  } else if (kept <= kHeapTopK) {
    std::partial_sort(cands_.begin(), cands_.begin() + k, cands_.end(), sampling::better);
    cands_.resize(kept);
    sorted_ = true;
  } else {
    const float best = candidates_max();
    const auto key = [best](const Candidate& c) { return static_cast<double>(best) - c.logit; };
    cands_.resize(prefix_by_mass(std::span(cands_), key, one, sampling::better, 0.0, static_cast<double>(kept), false));
  }
}

void SamplerChain::top_p(float p) {
  if (p >= 1.0f) return;
  if (full_) {
    const float max = full_max();
    const float scale = scale_;
    const double target = static_cast<double>(p) * set_weights();  // weights_[i]: token i's
    // The best kFirstSlice by a heap scan: enough unless the distribution is flat.
    const size_t m = std::min(logits_.size(), kFirstSlice);
    sampling::select_top_k(logits_, m, cands_);
    double held = 0.0;
    for (size_t i = 0; i < m; ++i) {
      held += sampling::fast_exp((cands_[i].logit - max) * scale);
      cands_[i].logit = (cands_[i].logit - shift_) * scale_;
      if (held >= target) {
        cands_.resize(i + 1);
        full_ = false;
        sorted_ = true;
        return;
      }
    }
    // Flat: a histogram of the mass by raw logit (the order by value, as scale > 0).
    held = 0.0;
    const float* x = logits_.data();
    const float* w = weights_.data();
    const float per_unit = scale * static_cast<float>(kFirstPerUnit);
    for (size_t i = 0; i < logits_.size(); ++i) {
      bucket_[i] = x[i] > kNegInf ? first_bucket((max - x[i]) * per_unit) : kDead;
    }
    const size_t below = narrow_vocabulary(
        bucket_, [w](size_t i) { return static_cast<double>(w[i]); },
        [x](size_t i) {
          return Candidate{x[i], static_cast<int32_t>(i)};
        },
        cands_, held, target, false);
    // Deeper levels: the distance below the best value, in float64.
    const auto key = [max, scale](float raw) { return (static_cast<double>(max) - raw) * scale; };
    const size_t edge = prefix_by_mass(
        std::span(cands_).subspan(below), [key](const Candidate& c) { return key(c.logit); },
        [w](const Candidate& c) { return static_cast<double>(w[c.id]); }, sampling::better, held, target, false);
    cands_.resize(below + edge);
    for (Candidate& c : cands_) c.logit = (c.logit - shift_) * scale_;
    full_ = false;
    sorted_ = false;
    return;
  }
  const float best = candidates_max();
  const auto weight = [best](const Candidate& c) { return static_cast<double>(sampling::fast_exp(c.logit - best)); };
  double total = 0.0;
  for (const Candidate& c : cands_) total += weight(c);
  const double target = static_cast<double>(p) * total;
  if (sorted_) {
    double held = 0.0;
    for (size_t i = 0; i < cands_.size(); ++i) {
      held += weight(cands_[i]);
      if (held >= target) {
        cands_.resize(i + 1);
        break;
      }
    }
    return;
  }
  const auto key = [best](const Candidate& c) { return static_cast<double>(best) - c.logit; };
  cands_.resize(prefix_by_mass(std::span(cands_), key, weight, sampling::better, 0.0, target, false));
}

void SamplerChain::min_p(float p) {
  if (p <= 0.0f) return;
  // p_i >= p * p_max  <=>  value_i >= best value + log p.
  const float log_p = std::log(p);
  if (full_) {
    keep_at_least(full_max() + log_p / scale_);
    return;
  }
  const float threshold = candidates_max() + log_p;
  std::erase_if(cands_, [threshold](const Candidate& c) { return !(c.logit >= threshold); });  // stays sorted
}

void SamplerChain::typical(float p) {
  if (p >= 1.0f || set_size() <= 1) return;
  // -log p_i - H = (best + log Z - logit_i) - (log Z - E[logit - best]) = E[logit] - logit_i: the
  // typical tokens are those whose logit is closest to the mean logit under p.
  const double total = set_weights();
  double weighted = 0.0;  // sum of w_i (value_i - best)
  const size_t n = set_size();
  const float best = full_ ? full_value(static_cast<size_t>(sampling::argmax(logits_))) : candidates_max();
  for (size_t i = 0; i < n; ++i) {
    const float value = full_ ? full_value(i) : cands_[i].logit;
    if (weights_[i] > 0.0f) weighted += weights_[i] * static_cast<double>(value - best);
  }
  const double mean_logit = best + weighted / total;
  const auto distance = [mean_logit](float value) { return std::abs(mean_logit - value); };
  const auto key = [&distance](const Candidate& c) { return distance(c.logit); };
  const auto less = [&distance](const Candidate& a, const Candidate& b) {
    const double da = distance(a.logit), db = distance(b.logit);
    return da < db || (da == db && sampling::better(a, b));
  };
  const double target = static_cast<double>(p) * total;
  if (full_) {
    // The tokens with weight, by distance; weights_ stays token i's while the candidates form.
    double held = 0.0;
    const float* x = logits_.data();
    const float* w = weights_.data();
    const float shift = shift_, scale = scale_;
    const auto value = [x, shift, scale](size_t i) { return (x[i] - shift) * scale; };  // full_value
    for (size_t i = 0; i < n; ++i) {
      // distance() in buckets, rounded to float (monotone); capped first: no float overflow.
      const auto k = static_cast<float>(std::min(std::abs(mean_logit - value(i)) * kFirstPerUnit, 4096.0));
      bucket_[i] = w[i] > 0.0f ? first_bucket(k) : kDead;
    }
    const size_t below = narrow_vocabulary(
        bucket_, [w](size_t i) { return static_cast<double>(w[i]); },
        [value](size_t i) {
          return Candidate{value(i), static_cast<int32_t>(i)};
        },
        cands_, held, target, true);
    const auto weight = [w](const Candidate& c) { return static_cast<double>(w[c.id]); };
    cands_.resize(below + prefix_by_mass(std::span(cands_).subspan(below), key, weight, less, held, target, true));
    full_ = false;
  } else {
    const auto weight = [best](const Candidate& c) { return static_cast<double>(sampling::fast_exp(c.logit - best)); };
    cands_.resize(prefix_by_mass(std::span(cands_), key, weight, less, 0.0, target, true));
  }
  sorted_ = false;
}

void SamplerChain::xtc(float probability, float threshold) {
  // A threshold above 1/2 can never hold two tokens (llama.cpp: off).
  if (probability <= 0.0f || threshold > 0.5f || set_size() < 2) return;
  if (uniform() >= probability) return;
  // Every top choice (probability >= threshold) goes but the least likely one (the last in the
  // candidate order): found in one pass, nothing sorted.
  if (full_) {
    const float max = full_max();
    const double total = sampling::exp_sum(logits_, max, scale_);
    // p_i >= threshold  <=>  raw_i >= max + log(threshold * Z) / scale.
    const float raw_threshold = sampling::saturate_to_float(max + std::log(threshold * total) / scale_);
    const auto top = [&](size_t i) { return logits_[i] >= raw_threshold && logits_[i] > kNegInf; };
    size_t count = 0;
    Candidate last{};
    for (size_t i = 0; i < logits_.size(); ++i) {
      const Candidate c{logits_[i], static_cast<int32_t>(i)};
      if (top(i) && (count++ == 0 || sampling::better(last, c))) last = c;
    }
    if (count < 2) return;
    make_writable();
    for (size_t i = 0; i < work_.size(); ++i) {
      if (top(i) && static_cast<int32_t>(i) != last.id) work_[i] = kNegInf;
    }
    max_valid_ = false;
    return;
  }
  const double total = set_weights();
  const auto top = [&](size_t i) { return weights_[i] > 0.0f && weights_[i] >= threshold * total; };
  size_t count = 0, last = 0;
  for (size_t i = 0; i < cands_.size(); ++i) {
    if (top(i) && (count++ == 0 || sampling::better(cands_[last], cands_[i]))) last = i;
  }
  if (count < 2) return;
  size_t kept = 0;  // the rest keep their order
  for (size_t i = 0; i < cands_.size(); ++i) {
    if (!top(i) || i == last) cands_[kept++] = cands_[i];
  }
  cands_.resize(kept);
}

void SamplerChain::temperature(float t) {
  if (t <= 0.0f) {
    keep_only_best();
    return;
  }
  if (full_) {
    const float scale = scale_ / t;
    if (!std::isfinite(scale)) {  // a denormal temperature: greedy
      keep_only_best();
      return;
    }
    // value' = (value - best value) / t = (raw - max) * scale_ / t: shifted so nothing overflows.
    shift_ = full_max();
    scale_ = scale;
    return;
  }
  const float best = candidates_max();
  for (Candidate& c : cands_) c.logit = (c.logit - best) / t;  // monotone: the order stays
}

void SamplerChain::dynamic_temperature() {
  const float t = params_.temperature, range = params_.dynatemp_range;
  const float min_t = std::max(0.0f, t - range), max_t = t + range;
  const double total = set_weights();
  size_t live = 0;
  double weighted = 0.0;  // sum of w_i (value_i - best): H = log Z - weighted / Z
  if (full_) {
    const float max = full_max();
    for (size_t i = 0; i < logits_.size(); ++i) {
      if (logits_[i] > kNegInf) ++live;
      if (weights_[i] > 0.0f) weighted += weights_[i] * static_cast<double>((logits_[i] - max) * scale_);
    }
  } else {
    const float best = candidates_max();
    for (size_t i = 0; i < cands_.size(); ++i) {
      if (cands_[i].logit > kNegInf) ++live;
      if (weights_[i] > 0.0f) weighted += weights_[i] * static_cast<double>(cands_[i].logit - best);
    }
  }
  if (live <= 1) return;  // one token: no entropy to speak of (llama.cpp leaves it alone)
  const double entropy = std::log(total) - weighted / total;
  const double normalized = std::clamp(entropy / std::log(static_cast<double>(live)), 0.0, 1.0);
  temperature(static_cast<float>(min_t + (max_t - min_t) * std::pow(normalized, params_.dynatemp_exponent)));
}

size_t SamplerChain::mirostat_truncate() {
  temperature(params_.temperature);
  // Keep the tokens whose surprise -log2 p is at most mu: weight >= Z 2^-mu. The kept weights move
  // to the front of weights_ beside their candidates (kept <= i), so nothing is computed twice.
  const double threshold = set_weights() * std::exp2(-static_cast<double>(mu_));
  size_t kept = 0;
  if (full_) {
    cands_.clear();
    for (size_t i = 0; i < logits_.size(); ++i) {
      if (weights_[i] > 0.0f && weights_[i] >= threshold) {
        cands_.push_back({full_value(i), static_cast<int32_t>(i)});
        weights_[kept++] = weights_[i];
      }
    }
  } else {
    for (size_t i = 0; i < cands_.size(); ++i) {
      if (weights_[i] > 0.0f && weights_[i] >= threshold) {
        cands_[kept] = cands_[i];
        weights_[kept++] = weights_[i];
      }
    }
    if (kept > 0) cands_.resize(kept);
  }
  if (kept == 0) {  // rounding: the best stays
    keep_only_best();
    weights_[0] = 1.0f;
    kept = 1;
  }
  full_ = false;
  sorted_ = false;
  return kept;
}

// llama.cpp's infill sampler, step for step (its draw then weighs the survivors by their values,
// as ours does, so its merged probabilities only decide who survives):
//  1. when the end-of-generation tokens hold enough of the mass (3 * p_eog * n > p_text), keep
//     only them: the gap is filled;
//  2. a token whose text begins another's takes that one's probability (the likelier of the two
//     keeps the sum; the other is dropped): "re", "ret", "return" are one choice, not three;
//  3. drop text tokens below 0.2; none left: end-of-turn (else EOS) alone, where the set still
//     has it (a grammar or ignore_eos can remove it: then the likeliest token after merging); then
//     drop those below 1 / (k + 1) of the k left.
void SamplerChain::infill() {
  if (tokenizer_ == nullptr) return;
  if (set_size() > kInfillMost) top_k(static_cast<int32_t>(kInfillMost));
  materialize();
  if (!sorted_) {
    std::sort(cands_.begin(), cands_.end(), sampling::better);
    sorted_ = true;
  }
  const size_t n = cands_.size();
  if (n <= 1) return;
  const Vocab& vocab = tokenizer_->vocab();
  std::vector<double>& p = infill_p_;
  p.resize(n);
  const float best = cands_.front().logit;
  if (!(best > kNegInf)) return;
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i)
    sum += p[i] = cands_[i].logit > kNegInf ? std::exp(double{cands_[i].logit - best}) : 0.0;
  double p_eog = 0.0, p_text = 0.0;
  for (size_t i = 0; i < n; ++i) {
    p[i] /= sum;
    (vocab.is_end_of_generation(cands_[i].id) ? p_eog : p_text) += p[i];
  }
  // Keeps, in order, the candidates `keep` holds for (with their probabilities).
  const auto compact = [&](auto keep) {
    size_t kept = 0;
    for (size_t i = 0; i < cands_.size(); ++i) {
      if (!keep(i)) continue;
      cands_[kept] = cands_[i];
      p[kept++] = p[i];
    }
    cands_.resize(kept);
    p.resize(kept);
  };
  if (3.0 * p_eog * static_cast<double>(n) > p_text) {
    compact([&](size_t i) { return vocab.is_end_of_generation(cands_[i].id); });
    return;
  }
  std::vector<std::string>& pieces = infill_pieces_;
  pieces.resize(n);
  for (size_t i = 0; i < n; ++i) {
    pieces[i].clear();
    tokenizer_->append_piece(cands_[i].id, /*render_special=*/false, pieces[i]);  // control tokens: ""
  }
  for (size_t i0 = 0; i0 < n; ++i0) {
    for (size_t i1 = 0; i1 < n && cands_[i0].logit > kNegInf; ++i1) {
      if (i0 == i1 || !(cands_[i1].logit > kNegInf)) continue;
      if (pieces[i0].empty() || !pieces[i1].starts_with(pieces[i0])) continue;
      const bool second_likelier = p[i1] > p[i0];
      const size_t keep = second_likelier ? i1 : i0, drop = second_likelier ? i0 : i1;
      p[keep] += p[drop];
      p[drop] = 0.0;
      cands_[drop].logit = kNegInf;
    }
  }
  // The fallback below ends the answer only with an end token the set still has (a grammar or
  // ignore_eos may have removed it); else the likeliest token after merging stays.
  const std::optional<TokenId> end = vocab.special().eot ? vocab.special().eot : vocab.special().eos;
  bool end_live = false;
  size_t likeliest = 0;
  for (size_t i = 0; i < n; ++i) {
    end_live = end_live || (end && cands_[i].id == *end && cands_[i].logit > kNegInf);
    if (p[i] > p[likeliest]) likeliest = i;  // merged-away tokens have 0
  }
  const Candidate likeliest_token = cands_[likeliest];
  const auto text_kept = [&](double threshold) {
    compact([&](size_t i) {
      return cands_[i].logit > kNegInf && (vocab.is_end_of_generation(cands_[i].id) || p[i] >= threshold);
    });
    size_t k = 0;
    double kept_sum = 0.0;
    for (size_t i = 0; i < cands_.size(); ++i) {
      kept_sum += p[i];
      if (!vocab.is_end_of_generation(cands_[i].id)) ++k;
    }
    for (double& x : p) x /= kept_sum;
    return k;
  };
  const size_t k = text_kept(kInfillKeep);
  if (k == 0) {
    cands_.assign(1, end_live ? Candidate{0.0f, *end} : likeliest_token);
    return;
  }
  text_kept(1.0 / static_cast<double>(k + 1));
}

int32_t SamplerChain::mirostat_v2() {
  const size_t kept = mirostat_truncate();
  double total = 0.0;
  for (size_t i = 0; i < kept; ++i) total += weights_[i];
  const size_t i = sampling::draw_weighted(std::span<const float>(weights_.data(), kept), total, uniform());
  const double surprise = -std::log2(weights_[i] / total);  // in the truncated, renormalized distribution
  mu_ -= params_.mirostat_eta * static_cast<float>(surprise - params_.mirostat_tau);
  return cands_[i].id;
}

}  // namespace ember
