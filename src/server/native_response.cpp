// llama.cpp's completion JSON (native_response.h).
#include "server/native_response.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>

#include <fmt/format.h>

#include "engine/sampler_chain.h"

namespace ember::server {

using nlohmann::json;

std::string_view native_stop_type(std::optional<FinishReason> finish, bool limited) noexcept {
  if (limited) return "limit";
  if (!finish) return "none";
  switch (*finish) {
    case FinishReason::kEndOfGeneration: return "eos";
    case FinishReason::kStopString: return "word";
    case FinishReason::kMaxTokens:
    case FinishReason::kMaxTime:
    case FinishReason::kContextFull: return "limit";
    case FinishReason::kNone:
    case FinishReason::kCancelled:
    case FinishReason::kError: return "none";
  }
  return "none";
}

namespace {

json bytes_of(std::string_view text) {
  json out = json::array();
  for (const char c : text) out.push_back(static_cast<uint8_t>(c));
  return out;
}

double finite_logprob(float logprob) {
  return std::isfinite(logprob) ? double{logprob} : double{std::numeric_limits<float>::lowest()};
}

}  // namespace

json native_token_probs(const NativeTokenProbs& probs) {
  json top = json::array();
  for (const NativeTokenProbs::Alternative& a : probs.top) {
    top.push_back(
        {{"id", a.id}, {"token", a.text}, {"bytes", bytes_of(a.text)}, {"logprob", finite_logprob(a.logprob)}});
  }
  return {{"id", probs.id},
          {"token", probs.text},
          {"bytes", bytes_of(probs.text)},
          {"logprob", finite_logprob(probs.logprob)},
          {"top_logprobs", std::move(top)}};
}

json native_timings(const GenerationStats& stats, int32_t prompt_tokens, int32_t predicted) {
  const int32_t computed = prompt_tokens - stats.cached_tokens;
  const double prompt_ms = stats.first_token_ms;
  const double predicted_ms = std::max(0.0, stats.total_ms - stats.first_token_ms);
  const auto per_token = [](double ms, int32_t n) { return n > 0 ? ms / n : 0.0; };
  const auto per_second = [](double ms, int32_t n) { return ms > 0 && n > 0 ? n * 1e3 / ms : 0.0; };
  json out = {{"cache_n", stats.cached_tokens},
              {"prompt_n", computed},
              {"prompt_ms", prompt_ms},
              {"prompt_per_token_ms", per_token(prompt_ms, computed)},
              {"prompt_per_second", per_second(prompt_ms, computed)},
              {"predicted_n", predicted},
              {"predicted_ms", predicted_ms},
              {"predicted_per_token_ms", per_token(predicted_ms, predicted)},
              {"predicted_per_second", per_second(predicted_ms, predicted)}};
  if (stats.draft_tokens > 0) {
    out["draft_n"] = stats.draft_tokens;
    out["draft_n_accepted"] = stats.accepted_tokens;
  }
  return out;
}

namespace {

// A float as the decimal it was written as (0.05, not 0.05000000074505806): the shortest text
// that reads back as the same float, read as a double (from_chars: no locale).
double float_value(float x) {
  if (!std::isfinite(x)) return x;
  const std::string text = fmt::format("{}", x);
  double out = x;
  std::from_chars(text.data(), text.data() + text.size(), out);
  return out;
}

}  // namespace

json native_generation_settings(const CompletionRequest& req, uint64_t seed, int32_t context) {
  const SamplingParams& s = req.sampling;
  const auto f = float_value;
  json samplers = json::array();
  for (const SamplerStep step : effective_order(s)) samplers.push_back(sampler_step_name(step));
  return {{"n_ctx", context},
          {"n_predict", req.max_tokens},
          {"seed", seed},
          {"temperature", f(s.temperature)},
          {"dynatemp_range", f(s.dynatemp_range)},
          {"dynatemp_exponent", f(s.dynatemp_exponent)},
          {"top_k", s.top_k},
          {"top_p", f(s.top_p)},
          {"min_p", f(s.min_p)},
          {"typical_p", f(s.typical_p)},
          {"top_n_sigma", f(s.top_n_sigma)},
          {"xtc_probability", f(s.xtc_probability)},
          {"xtc_threshold", f(s.xtc_threshold)},
          {"repeat_last_n", s.penalty_last_n},
          {"repeat_penalty", f(s.repeat_penalty)},
          {"presence_penalty", f(s.presence_penalty)},
          {"frequency_penalty", f(s.frequency_penalty)},
          {"dry_multiplier", f(s.dry_multiplier)},
          {"dry_base", f(s.dry_base)},
          {"dry_allowed_length", s.dry_allowed_length},
          {"dry_penalty_last_n", s.dry_penalty_last_n},
          {"mirostat", s.mirostat},
          {"mirostat_tau", f(s.mirostat_tau)},
          {"mirostat_eta", f(s.mirostat_eta)},
          {"stop", req.stop},
          {"max_tokens", req.max_tokens},
          {"n_probs", std::max(req.logprobs, 0)},
          {"ignore_eos", req.ignore_eos},
          {"stream", req.stream},
          {"samplers", std::move(samplers)},
          {"t_max_predict_ms", req.native.t_max_predict_ms},
          {"n_indent", req.native.n_indent}};
}

json select_response_fields(const json& reply, const std::vector<std::string>& fields) {
  if (fields.empty()) return reply;
  json out = json::object();
  for (const std::string& name : fields) {
    const json* at = &reply;
    bool found = true;
    for (size_t start = 0; found && start <= name.size();) {
      const size_t slash = std::min(name.find('/', start), name.size());
      const std::string key = name.substr(start, slash - start);
      found = at->is_object() && at->contains(key);
      if (found) at = &(*at)[key];
      start = slash + 1;
    }
    if (found) out[name] = *at;
  }
  return out;
}

}  // namespace ember::server
