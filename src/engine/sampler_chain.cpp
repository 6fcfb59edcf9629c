// SamplerChain: parameters checked, the history the penalties and DRY read, the candidate set,
// logit bias / penalties / DRY, the order of the steps, and the seeded draw.
#include "engine/sampler_chain.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "tokenizer/tokenizer.h"

namespace ember {
namespace {

using sampling::kNegInf;
constexpr float kInf = std::numeric_limits<float>::infinity();

// History reserved up front when a look-back is the whole context (-1): a typical context.
constexpr size_t kUnboundedHistoryReserve = 4096;

constexpr SamplerStep kDefaultOrder[] = {SamplerStep::kDry,      SamplerStep::kTopNSigma,  SamplerStep::kTopK,
                                         SamplerStep::kTypicalP, SamplerStep::kTopP,       SamplerStep::kMinP,
                                         SamplerStep::kXtc,      SamplerStep::kTemperature};

void require(bool ok, const char* field, const char* rule, double got) {
  if (!ok) fail(ErrorCode::kInvalidArgument, "{} must be {} (got {})", field, rule, got);
}

// Everything the chain's members are built from is checked before any of them is.
const SamplingParams& checked(const SamplingParams& params, int32_t n_vocab) {
  validate(params);
  if (n_vocab <= 0) fail(ErrorCode::kInvalidArgument, "n_vocab must be > 0 (got {})", n_vocab);
  for (const auto& [token, bias] : params.logit_bias) {
    if (token < 0 || token >= n_vocab) {
      fail(ErrorCode::kInvalidArgument, "logit_bias token {} is outside the vocabulary [0, {})", token, n_vocab);
    }
  }
  return params;
}

// Whether DRY runs at all: on, in the order, and not replaced by mirostat (the constructor's dry_on_,
// before the chain exists: it gates the vocabulary scan for the breakers).
bool dry_runs(const SamplingParams& params) {
  const std::vector<SamplerStep> order = effective_order(params);
  return params.dry_multiplier != 0.0f && params.dry_penalty_last_n != 0 && params.mirostat == 0 &&
         std::ranges::find(order, SamplerStep::kDry) != order.end();
}

std::vector<std::vector<int32_t>> breakers_of(const SamplingParams& params, const Tokenizer* tokenizer) {
  validate(params);  // before the vocabulary scan below
  if (tokenizer == nullptr || !dry_runs(params)) return {};
  return dry_breaker_sequences(*tokenizer, params.dry_sequence_breakers);
}

}  // namespace

void validate(const SamplingParams& p) {
  require(std::isfinite(p.temperature), "temperature", "a finite number", p.temperature);
  require(std::isfinite(p.dynatemp_range) && p.dynatemp_range >= 0.0f, "dynatemp_range", ">= 0", p.dynatemp_range);
  require(std::isfinite(p.dynatemp_exponent) && p.dynatemp_exponent >= 0.0f, "dynatemp_exponent", ">= 0",
          p.dynatemp_exponent);
  require(p.top_k >= 0, "top_k", ">= 0", p.top_k);
  require(p.top_p > 0.0f && p.top_p <= 1.0f, "top_p", "in (0, 1]", p.top_p);
  require(p.min_p >= 0.0f && p.min_p <= 1.0f, "min_p", "in [0, 1]", p.min_p);
  require(p.typical_p > 0.0f && p.typical_p <= 1.0f, "typical_p", "in (0, 1]", p.typical_p);
  require(!std::isnan(p.top_n_sigma) && p.top_n_sigma < kInf, "top_n_sigma", "a finite number", p.top_n_sigma);
  require(p.xtc_probability >= 0.0f && p.xtc_probability <= 1.0f, "xtc_probability", "in [0, 1]", p.xtc_probability);
  require(p.xtc_threshold >= 0.0f && p.xtc_threshold <= 1.0f, "xtc_threshold", "in [0, 1]", p.xtc_threshold);
  require(p.penalty_last_n >= -1, "penalty_last_n", ">= -1", p.penalty_last_n);
  require(std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0.0f, "repeat_penalty", "> 0", p.repeat_penalty);
  require(std::isfinite(p.presence_penalty), "presence_penalty", "a finite number", p.presence_penalty);
  require(std::isfinite(p.frequency_penalty), "frequency_penalty", "a finite number", p.frequency_penalty);
  require(std::isfinite(p.dry_multiplier) && p.dry_multiplier >= 0.0f, "dry_multiplier", ">= 0", p.dry_multiplier);
  require(std::isfinite(p.dry_base) && p.dry_base >= 1.0f, "dry_base", ">= 1", p.dry_base);
  require(p.dry_allowed_length >= 0, "dry_allowed_length", ">= 0", p.dry_allowed_length);
  require(p.dry_penalty_last_n >= -1, "dry_penalty_last_n", ">= -1", p.dry_penalty_last_n);
  for (size_t i = 0; i < p.dry_sequence_breakers.size(); ++i) {
    if (p.dry_sequence_breakers[i].empty()) {
      fail(ErrorCode::kInvalidArgument, "dry_sequence_breakers[{}] must not be empty", i);
    }
  }
  if (p.mirostat != 0 && p.mirostat != 2) {
    fail(ErrorCode::kInvalidArgument, "mirostat must be 0 (off) or 2 (mirostat v2; v1 is not supported) (got {})",
         p.mirostat);
  }
  require(std::isfinite(p.mirostat_tau) && p.mirostat_tau >= 0.0f, "mirostat_tau", ">= 0", p.mirostat_tau);
  require(std::isfinite(p.mirostat_eta) && p.mirostat_eta >= 0.0f, "mirostat_eta", ">= 0", p.mirostat_eta);
  for (const auto& [token, bias] : p.logit_bias) {
    if (std::isnan(bias) || bias == kInf) {
      fail(ErrorCode::kInvalidArgument, "logit_bias of token {} must be finite or -infinity (got {})", token, bias);
    }
  }
  for (const SamplerStep step : p.order) {
    if (static_cast<uint8_t>(step) > static_cast<uint8_t>(SamplerStep::kInfill)) {
      fail(ErrorCode::kInvalidArgument, "order holds an unknown step ({})", static_cast<int>(step));
    }
  }
}

std::vector<SamplerStep> effective_order(const SamplingParams& params) {
  if (!params.order.empty()) return params.order;
  return {std::begin(kDefaultOrder), std::end(kDefaultOrder)};
}

std::string_view sampler_step_name(SamplerStep step) noexcept {
  switch (step) {
    case SamplerStep::kDry: return "dry";
    case SamplerStep::kTopNSigma: return "top_n_sigma";
    case SamplerStep::kTopK: return "top_k";
    case SamplerStep::kTypicalP: return "typ_p";
    case SamplerStep::kTopP: return "top_p";
    case SamplerStep::kMinP: return "min_p";
    case SamplerStep::kXtc: return "xtc";
    case SamplerStep::kTemperature: return "temperature";
    case SamplerStep::kInfill: return "infill";
  }
  return "?";
}

std::vector<SamplerStep> parse_sampler_order(std::string_view text) {
  struct Alias {
    std::string_view name;
    SamplerStep step;
  };
  static constexpr Alias kAliases[] = {
      {"dry", SamplerStep::kDry},
      {"top_n_sigma", SamplerStep::kTopNSigma},
      {"top-n-sigma", SamplerStep::kTopNSigma},
      {"top_k", SamplerStep::kTopK},
      {"top-k", SamplerStep::kTopK},
      {"typ_p", SamplerStep::kTypicalP},
      {"typical_p", SamplerStep::kTypicalP},
      {"typical", SamplerStep::kTypicalP},
      {"typ-p", SamplerStep::kTypicalP},
      {"typical-p", SamplerStep::kTypicalP},
      {"typ", SamplerStep::kTypicalP},
      {"top_p", SamplerStep::kTopP},
      {"top-p", SamplerStep::kTopP},
      {"nucleus", SamplerStep::kTopP},
      {"min_p", SamplerStep::kMinP},
      {"min-p", SamplerStep::kMinP},
      {"xtc", SamplerStep::kXtc},
      {"temperature", SamplerStep::kTemperature},
      {"temp", SamplerStep::kTemperature},
      {"infill", SamplerStep::kInfill},
  };
  std::vector<SamplerStep> order;
  bool penalties = false;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find_first_of(";,", at);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view name = text.substr(at, end - at);
    at = end + 1;
    if (name == "penalties") penalties = true;
    if (name.empty() || name == "penalties") continue;
    const auto* alias =
        std::find_if(std::begin(kAliases), std::end(kAliases), [&](const Alias& a) { return a.name == name; });
    if (alias == std::end(kAliases)) {
      fail(ErrorCode::kInvalidArgument,
           "unknown sampler '{}' (known: dry, top_n_sigma, top_k, typ_p, top_p, min_p, xtc, temperature, infill)",
           name);
    }
    order.push_back(alias->step);
  }
  // "penalties" alone: no truncation step. An empty order means the default one, so it is the
  // temperature alone (llama.cpp would skip the temperature too: a draw at temperature 1).
  if (order.empty() && penalties) order.push_back(SamplerStep::kTemperature);
  if (order.empty()) fail(ErrorCode::kInvalidArgument, "the sampler order names no sampler");
  return order;
}

SamplerChain::SamplerChain(const SamplingParams& params, int32_t n_vocab, const Tokenizer* tokenizer)
    : SamplerChain(params, n_vocab, breakers_of(params, tokenizer)) {
  tokenizer_ = tokenizer;
}

SamplerChain::SamplerChain(const SamplingParams& params, int32_t n_vocab,
                           std::vector<std::vector<int32_t>> dry_breakers)
    : params_(checked(params, n_vocab)),
      n_vocab_(n_vocab),
      order_(effective_order(params)),
      rng_(params.seed),
      mu_(2.0f * params.mirostat_tau),
      dry_(params, n_vocab, std::move(dry_breakers)) {
  dry_on_ = dry_.active() && dry_runs(params_);
  penalties_on_ = params_.penalty_last_n != 0 && (params_.repeat_penalty != 1.0f || params_.presence_penalty != 0.0f ||
                                                  params_.frequency_penalty != 0.0f);
  top_k_first_ = first_step_top_k();
  const size_t n = static_cast<size_t>(n_vocab_);
  if (penalties_on_) counts_.assign(n, 0);
  if (dry_on_) dry_amount_.assign(n, 0.0f);
  if (penalties_on_ || dry_on_) {
    const bool unbounded = (penalties_on_ && params_.penalty_last_n < 0) || (dry_on_ && params_.dry_penalty_last_n < 0);
    const size_t keep = std::max(penalties_on_ ? static_cast<size_t>(std::max(params_.penalty_last_n, 0)) : 0,
                                 dry_on_ ? static_cast<size_t>(std::max(params_.dry_penalty_last_n, 0)) : 0);
    history_keep_ = unbounded ? 0 : keep;
    // Trimmed when it reaches twice the window: one move per `keep` tokens, never a reallocation.
    history_.reserve(unbounded ? kUnboundedHistoryReserve : 2 * keep + 1);
    dry_.reserve(history_.capacity());
  }
  if (!params_.logit_bias.empty() || penalties_on_ || dry_on_ || params_.xtc_probability > 0.0f) work_.resize(n);
  if (!greedy()) {
    weights_.resize(n);
    cands_.reserve(n + 1);  // + 1: the spare slot of the histogram steps' branch-free writes
    if (params_.mirostat == 0) bucket_.resize(n);
  }
}

void SamplerChain::accept(int32_t token) {
  EMBER_CHECK(token >= 0 && token < n_vocab_);
  if (!penalties_on_ && !dry_on_) return;
  // Trimmed only when full and longer than what the penalties and DRY look back at (a copied
  // chain's history has no spare capacity, so full can mean shorter than the look-back).
  if (history_keep_ > 0 && history_.size() == history_.capacity() && history_.size() > history_keep_) {
    history_.erase(history_.begin(), history_.end() - static_cast<ptrdiff_t>(history_keep_));
  }
  history_.push_back(token);
  if (penalties_on_) {
    ++counts_[static_cast<size_t>(token)];
    const auto window = static_cast<size_t>(params_.penalty_last_n);
    if (params_.penalty_last_n > 0 && history_.size() > window) {
      --counts_[static_cast<size_t>(history_[history_.size() - 1 - window])];
    }
  }
  if (dry_on_) dry_.reserve(history_.capacity());
}

void SamplerChain::reset() {
  history_.clear();
  std::fill(counts_.begin(), counts_.end(), 0);
  mu_ = 2.0f * params_.mirostat_tau;
  rng_.seed(params_.seed);
}

double SamplerChain::uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

// --- the candidate set ---------------------------------------------------------------------------

void SamplerChain::make_writable() {
  if (logits_.data() == work_.data()) return;
  std::memcpy(work_.data(), logits_.data(), logits_.size_bytes());
  logits_ = work_;
}

float SamplerChain::full_max() {
  if (!max_valid_) {
    max_raw_ = sampling::max_logit(logits_);
    max_valid_ = true;
  }
  return max_raw_;
}

void SamplerChain::keep_at_least(float raw_threshold) {
  cands_.clear();
  for (size_t i = 0; i < logits_.size(); ++i) {
    if (logits_[i] >= raw_threshold) cands_.push_back({full_value(i), static_cast<int32_t>(i)});
  }
  if (cands_.empty()) {  // a threshold above every value (rounding): the best stays
    keep_only_best();
    return;
  }
  full_ = false;
  sorted_ = false;
}

void SamplerChain::keep_only_best() {
  if (full_) {
    const int32_t best = sampling::argmax(logits_);
    cands_.clear();
    cands_.push_back({full_value(static_cast<size_t>(best)), best});
    full_ = false;
  } else if (!cands_.empty()) {
    cands_[0] = *std::min_element(cands_.begin(), cands_.end(), sampling::better);
    cands_.resize(1);
  }
  sorted_ = true;
}

void SamplerChain::materialize() {
  if (!full_) return;
  cands_.clear();
  for (size_t i = 0; i < logits_.size(); ++i) {
    if (logits_[i] > kNegInf) cands_.push_back({full_value(i), static_cast<int32_t>(i)});  // NaN fails too
  }
  full_ = false;
  sorted_ = false;
}

float SamplerChain::candidates_max() const noexcept {
  if (sorted_) return cands_.empty() ? kNegInf : cands_.front().logit;
  float m = kNegInf;
  for (const Candidate& c : cands_) m = c.logit > m ? c.logit : m;
  return m;
}

double SamplerChain::set_weights() {
  if (full_) {
    // exp(value - best) = exp((raw - max_raw) * scale_): the shift cancels.
    return sampling::exp_weights(logits_, full_max(), scale_, weights_.data());
  }
  return sampling::exp_candidate_weights(cands_, candidates_max(), weights_.data());  // fast_exp's bits
}

int32_t SamplerChain::draw() {
  const double total = set_weights();
  if (!(total > 0.0) || !std::isfinite(total)) {  // nothing left with weight: the best
    if (full_) return sampling::argmax(logits_);
    return cands_.empty() ? 0 : std::min_element(cands_.begin(), cands_.end(), sampling::better)->id;
  }
  const size_t i = sampling::draw_weighted(std::span<const float>(weights_.data(), set_size()), total, uniform());
  return full_ ? static_cast<int32_t>(i) : cands_[i].id;
}

// --- logit bias, penalties, DRY ------------------------------------------------------------------

void SamplerChain::apply_logit_bias() {
  make_writable();
  for (const auto& [token, bias] : params_.logit_bias) work_[static_cast<size_t>(token)] += bias;
}

void SamplerChain::apply_penalties() {
  const size_t window = params_.penalty_last_n < 0
                            ? history_.size()
                            : std::min(history_.size(), static_cast<size_t>(params_.penalty_last_n));
  if (window == 0) return;
  make_writable();
  const std::span<const int32_t> tokens = std::span(history_).last(window);
  // Each distinct token once: its count is negated once applied, restored after.
  for (const int32_t token : tokens) {
    int32_t& count = counts_[static_cast<size_t>(token)];
    if (count <= 0) continue;
    float& logit = work_[static_cast<size_t>(token)];
    // Dividing a negative logit would raise it: multiply those (llama.cpp, CTRL's fix).
    logit = logit <= 0.0f ? logit * params_.repeat_penalty : logit / params_.repeat_penalty;
    logit -= static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
    count = -count;
  }
  for (const int32_t token : tokens) {
    int32_t& count = counts_[static_cast<size_t>(token)];
    if (count < 0) count = -count;
  }
}

void SamplerChain::apply_dry() {
  const std::span<const std::pair<int32_t, float>> penalties = dry_.compute(history_);
  if (penalties.empty()) return;
  if (full_) {
    make_writable();
    for (const auto& [token, amount] : penalties) work_[static_cast<size_t>(token)] -= amount / scale_;
    max_valid_ = false;
    return;
  }
  for (const auto& [token, amount] : penalties) dry_amount_[static_cast<size_t>(token)] = amount;
  for (Candidate& c : cands_) c.logit -= dry_amount_[static_cast<size_t>(c.id)];
  for (const auto& [token, amount] : penalties) dry_amount_[static_cast<size_t>(token)] = 0.0f;
  sorted_ = false;
}

// --- the chain -----------------------------------------------------------------------------------

int32_t SamplerChain::run_steps(std::span<const float> logits, std::span<const uint64_t> allowed) {
  EMBER_CHECK(logits.size() == static_cast<size_t>(n_vocab_));
  logits_ = logits;
  full_ = true;
  sorted_ = false;
  max_valid_ = false;
  shift_ = 0.0f;
  scale_ = 1.0f;
  if (!params_.logit_bias.empty()) apply_logit_bias();
  if (penalties_on_) apply_penalties();
  if (!allowed.empty()) apply_mask(allowed);
  if (greedy()) {
    if (dry_on_) apply_dry();
    return sampling::argmax(logits_);
  }
  const float max = full_max();
  if (!(max > kNegInf && max < kInf)) return sampling::argmax(logits_);  // +inf is certain; nothing finite: id 0
  if (params_.mirostat == 2) return -1;

  return run_order(0);
}

int32_t SamplerChain::run_order(size_t first) {
  for (size_t i = first; i < order_.size(); ++i) {
    switch (order_[i]) {
      case SamplerStep::kDry:
        if (dry_on_) apply_dry();
        break;
      case SamplerStep::kTopNSigma: top_n_sigma(params_.top_n_sigma); break;
      case SamplerStep::kTopK: top_k(params_.top_k); break;
      case SamplerStep::kTypicalP: typical(params_.typical_p); break;
      case SamplerStep::kTopP: top_p(params_.top_p); break;
      case SamplerStep::kMinP: min_p(params_.min_p); break;
      case SamplerStep::kXtc: xtc(params_.xtc_probability, params_.xtc_threshold); break;
      case SamplerStep::kTemperature:
        if (params_.dynatemp_range > 0.0f) {
          dynamic_temperature();
        } else {
          temperature(params_.temperature);
        }
        break;
      case SamplerStep::kInfill: infill(); break;
    }
    if (!full_ && cands_.size() == 1) return cands_.front().id;  // nothing left to choose
  }
  return -1;
}

// top_k when it is the first step that changes anything (only DRY and top-n-sigma may come before
// it, both off), and nothing else reads the whole row first (bias, penalties, mirostat); else 0.
int32_t SamplerChain::first_step_top_k() const noexcept {
  const int32_t k = params_.top_k;
  if (greedy() || params_.mirostat != 0 || !params_.logit_bias.empty() || penalties_on_ || k <= 0 || k >= n_vocab_) {
    return 0;
  }
  for (const SamplerStep step : order_) {
    if (step == SamplerStep::kTopK) return k;
    const bool no_op =
        (step == SamplerStep::kDry && !dry_on_) || (step == SamplerStep::kTopNSigma && params_.top_n_sigma <= 0.0f);
    if (!no_op) return 0;
  }
  return 0;
}

int32_t SamplerChain::sample_top_k(std::span<const Candidate> best) {
  EMBER_CHECK(top_k_first_ > 0 && best.size() == static_cast<size_t>(top_k_first_));
  logits_ = {};
  full_ = false;
  sorted_ = true;
  max_valid_ = false;
  shift_ = 0.0f;
  scale_ = 1.0f;
  // run_steps' test of the row's largest number: the best candidate is it (-inf when none is).
  const float max = best.front().logit;
  if (!(max > kNegInf && max < kInf)) return max == kInf ? best.front().id : 0;
  // What top_k() keeps of the whole row (the steps before it change nothing here).
  cands_.assign(best.begin(), best.end());
  while (cands_.size() > 1 && cands_.back().logit == kNegInf) cands_.pop_back();
  if (cands_.size() == 1) return cands_.front().id;
  const size_t after =
      static_cast<size_t>(std::find(order_.begin(), order_.end(), SamplerStep::kTopK) - order_.begin()) + 1;
  const int32_t decided = run_order(after);
  return decided >= 0 ? decided : draw();
}

int32_t SamplerChain::sample(std::span<const float> logits) { return sample(logits, {}); }

int32_t SamplerChain::sample(std::span<const float> logits, std::span<const uint64_t> allowed) {
  EMBER_CHECK(allowed.empty() || allowed.size() == (static_cast<size_t>(n_vocab_) + 63) / 64);
  const int32_t decided = run_steps(logits, allowed);
  if (decided >= 0) return decided;
  return params_.mirostat == 2 ? mirostat_v2() : draw();
}

// Disallowed tokens get -inf (the steps never draw those). Whole words of allowed tokens are
// skipped, so a mask inside a JSON string (most of the vocabulary) costs little.
void SamplerChain::apply_mask(std::span<const uint64_t> allowed) {
  // The writable copy exists from construction only when a step needs it: once per chain here.
  if (work_.size() != static_cast<size_t>(n_vocab_)) work_.resize(static_cast<size_t>(n_vocab_));
  make_writable();
  const size_t n = work_.size();
  for (size_t w = 0; w < allowed.size(); ++w) {
    const uint64_t bits = allowed[w];
    if (bits == ~uint64_t{0}) continue;
    const size_t end = std::min(n, w * 64 + 64);
    for (size_t i = w * 64; i < end; ++i) {
      if (((bits >> (i - w * 64)) & 1) == 0) work_[i] = kNegInf;
    }
  }
  max_valid_ = false;
}

void SamplerChain::distribution(std::span<const float> logits, std::vector<std::pair<int32_t, double>>& out) {
  distribution(logits, {}, out);
}

void SamplerChain::distribution(std::span<const float> logits, std::span<const uint64_t> allowed,
                                std::vector<std::pair<int32_t, double>>& out) {
  out.clear();
  const int32_t decided = run_steps(logits, allowed);
  if (decided >= 0) {
    out.emplace_back(decided, 1.0);
    return;
  }
  size_t n = 0;
  double total = 0.0;
  if (params_.mirostat == 2) {
    n = mirostat_truncate();
    for (size_t i = 0; i < n; ++i) total += weights_[i];
  } else {
    n = set_size();
    total = set_weights();
  }
  for (size_t i = 0; i < n; ++i) {
    if (weights_[i] > 0.0f) out.emplace_back(full_ ? static_cast<int32_t>(i) : cands_[i].id, weights_[i] / total);
  }
  std::sort(out.begin(), out.end());
}

}  // namespace ember
