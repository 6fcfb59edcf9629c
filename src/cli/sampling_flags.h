// The sampling and stop flags shared by `ember run` and `ember chat` (llama.cpp's names), their
// checks, and the one-line summary of the sampler chain the stats panels show.
#pragma once

#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "ember/sampling.h"

namespace ember::cli {

// Adds --temp --dynatemp-range --dynatemp-exp --top-k --top-p --min-p --typical --top-nsigma
// --xtc-probability --xtc-threshold --repeat-penalty --repeat-last-n --presence-penalty
// --frequency-penalty --dry-multiplier --dry-base --dry-allowed-length --dry-penalty-last-n
// --dry-sequence-breaker --mirostat --mirostat-lr --mirostat-ent -l/--logit-bias --samplers
// --seed --stop --max-time --ignore-eos, writing into `params` and `stop` (which must outlive
// the parse). Malformed --logit-bias / --samplers / --seed values fail the parse (exit 2).
// params.seed starts as a random seed (so does --seed -1, llama.cpp's "random"); the stats show
// the seed used, so any run can be repeated.
void add_sampling_flags(CLI::App* cmd, SamplingParams& params, StopConditions& stop);

// Throws Error(kInvalidArgument) naming --logit-bias for a token outside the model's vocabulary
// (known only once the model is loaded: exit 1).
void check_logit_bias_tokens(const SamplingParams& params, int32_t n_vocab);

// Throws CLI::ValidationError (exit 2) naming the flag for an impossible value: validate()'s
// checks, an empty --stop, a negative --max-time.
void check_sampling_flags(const SamplingParams& params, const StopConditions& stop);

// The active steps in the order they run, e.g. "top-k 40 · top-p 0.95 · min-p 0.05 · temp 0.80 ·
// seed 42" (the seed last); "greedy (--temp 0)" for greedy. `sep` joins the parts.
std::string sampler_summary(const SamplingParams& params, std::string_view sep);

// The --samplers / llama.cpp help text: the default order.
std::string default_sampler_order_text();

}  // namespace ember::cli
