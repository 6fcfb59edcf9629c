// Sampling parameters of the public API: the steps of the sampler chain (DESIGN.md §7), their
// order, the seed, and what ends a generation.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ember {

// One step of the sampler chain. Logit bias and then the penalties always run first (they change
// logits, not the candidate set); `SamplingParams::order` orders the rest (llama.cpp's --samplers).
enum class SamplerStep : uint8_t {
  kDry,          // DRY: penalizes tokens that would extend a repeated sequence
  kTopNSigma,    // keep logits within n standard deviations of the best
  kTopK,         // keep the k best
  kTypicalP,     // locally typical sampling
  kTopP,         // nucleus: the fewest best tokens holding p of the probability
  kMinP,         // drop tokens below min_p × the best's probability
  kXtc,          // exclude top choices: sometimes drop every token above the threshold but the last
  kTemperature,  // divide logits by the (dynamic) temperature
  // Fill in the middle (llama.cpp's "infill", for code completion): end the answer when ending is
  // likely enough, else keep the few tokens that stand out once tokens that begin with another
  // token's text count for it. Not in the default order; needs the chain's tokenizer.
  kInfill,
};

// Every field has llama.cpp's default; a value that turns a step off makes it cost nothing.
struct SamplingParams {
  // Temperature; <= 0: greedy (argmax, lowest id on ties, after logit bias, penalties and DRY; the
  // truncation steps, XTC and dynatemp_range are skipped). Dynamic temperature: with dynatemp_range > 0 the temperature
  // moves within [temperature - range, temperature + range] with the distribution's normalized entropy raised to
  // dynatemp_exponent.
  float temperature = 0.8f;
  float dynatemp_range = 0.0f;
  float dynatemp_exponent = 1.0f;

  int32_t top_k = 40;            // 0: off
  float top_p = 0.95f;           // 1: off
  float min_p = 0.05f;           // 0: off
  float typical_p = 1.0f;        // 1: off
  float top_n_sigma = -1.0f;     // <= 0: off
  float xtc_probability = 0.0f;  // chance XTC acts on a token; 0: off
  float xtc_threshold = 0.1f;    // tokens at or above this probability are "top choices"

  // Penalties over the last `penalty_last_n` tokens (prompt included; 0: off, -1: the whole
  // context). repeat_penalty divides positive logits and multiplies negative ones (1: off);
  // presence subtracts a constant from any token seen, frequency subtracts per occurrence.
  int32_t penalty_last_n = 64;
  float repeat_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;

  // DRY ("don't repeat yourself"): multiplier 0 is off. A token that would extend a repeat of
  // length L >= allowed_length gets multiplier * base^(L - allowed_length) subtracted. Sequence
  // breakers (text) stop the match; -1 look-back: the whole context.
  float dry_multiplier = 0.0f;
  float dry_base = 1.75f;
  int32_t dry_allowed_length = 2;
  int32_t dry_penalty_last_n = -1;
  std::vector<std::string> dry_sequence_breakers = {"\n", ":", "\"", "*"};

  // Mirostat v2 (0: off, 2: on) replaces the ordered steps: after logit bias and penalties, the
  // plain temperature, then its own truncation to a target surprise tau (bits), learning at rate eta.
  int32_t mirostat = 0;
  float mirostat_tau = 5.0f;
  float mirostat_eta = 0.1f;

  // Added to a token's logit before anything else; -infinity bans it.
  std::vector<std::pair<int32_t, float>> logit_bias = {};

  // The order of the truncation steps; empty: llama.cpp's (DRY, top-n-sigma, top-k, typical-p,
  // top-p, min-p, XTC, temperature).
  std::vector<SamplerStep> order = {};

  // The same seed, prompt and parameters give the same tokens on every x86-64 machine with the same
  // libm (the thresholds use log / exp / pow; the weights' exp is the engine's own, the same bits on
  // every ISA).
  uint64_t seed = 0;
};

// Structured output: the generation is constrained to a language (DESIGN.md §7). The text is a
// GBNF grammar, a JSON Schema (JSON text) or a regular expression; JSON mode needs no text. The
// output then always parses, and the generation ends when the language is complete.
struct OutputConstraint {
  enum class Kind : uint8_t {
    kNone,        // unconstrained
    kGbnf,        // `text`: a GBNF grammar (llama.cpp's format) whose start rule is `root`
    kJsonSchema,  // `text`: a JSON Schema; the output is a JSON text valid against it
    kJsonObject,  // any JSON object (OpenAI's response_format json_object)
    kRegex,       // `text`: a regular expression (ECMAScript subset) the whole output matches
  };
  Kind kind = Kind::kNone;
  std::string text = {};
  bool strict = false;  // kJsonSchema: also enforce OpenAI's strict-mode rules on the schema
  // A lazy constraint (tool calls): the output is free until one of these texts appears in it (or,
  // for a text that is one token of the vocabulary, control tokens included, until that token is
  // drawn); from there on the language applies. With trigger_in_grammar the language starts with
  // the trigger text itself, else right after it. Empty: the constraint applies from the start.
  std::vector<std::string> triggers = {};
  bool trigger_in_grammar = true;
  // The triggers count only at the very start of the output (Llama 3.x tool calls: the call is the
  // whole reply); output that cannot begin with one leaves the constraint idle for good.
  bool triggers_at_start = false;
  // Texts in the language that the vocabulary has as control tokens ("[TOOL_CALLS]"): those tokens
  // may advance the grammar by these texts (control tokens are otherwise never allowed), and they
  // print as these texts in the output, as do control-token triggers, so a caller can parse it.
  std::vector<std::string> control_tokens = {};
};

// What ends a generation besides the model's end-of-generation token. The session enforces
// tokens, time and end-of-generation; the stop strings are matched across token boundaries on the
// output text and are never part of it.
struct StopConditions {
  int32_t max_tokens = -1;                // -1: until another condition (or a full context)
  std::vector<std::string> strings = {};  // non-empty strings
  double max_time_ms = 0;                 // from the start, prefill included; 0: no limit
  bool ignore_eos = false;                // keep generating past end-of-generation tokens
};

// A token's log-probability under the model's distribution (log-softmax of the raw logits, before
// any sampling step). engine/logprobs.h computes them; the session returns them.
struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

}  // namespace ember
