// The sampling and stop flags of `ember run` / `ember chat`, their checks, and the panel's
// summary of the sampler chain.
#include "cli/sampling_flags.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <random>

#include <fmt/format.h>

#include "core/check.h"
#include "ember/error.h"
#include "engine/sampler_chain.h"

namespace ember::cli {
namespace {

// SamplingParams fields as the flags that set them: validate()'s messages start with the field.
struct FieldFlag {
  std::string_view field;
  std::string_view flag;
};
constexpr FieldFlag kFieldFlags[] = {
    {"temperature", "--temp"},
    {"dynatemp_range", "--dynatemp-range"},
    {"dynatemp_exponent", "--dynatemp-exp"},
    {"top_k", "--top-k"},
    {"top_p", "--top-p"},
    {"min_p", "--min-p"},
    {"typical_p", "--typical"},
    {"top_n_sigma", "--top-nsigma"},
    {"xtc_probability", "--xtc-probability"},
    {"xtc_threshold", "--xtc-threshold"},
    {"penalty_last_n", "--repeat-last-n"},
    {"repeat_penalty", "--repeat-penalty"},
    {"presence_penalty", "--presence-penalty"},
    {"frequency_penalty", "--frequency-penalty"},
    {"dry_multiplier", "--dry-multiplier"},
    {"dry_base", "--dry-base"},
    {"dry_allowed_length", "--dry-allowed-length"},
    {"dry_penalty_last_n", "--dry-penalty-last-n"},
    {"dry_sequence_breakers", "--dry-sequence-breaker"},
    {"mirostat_tau", "--mirostat-ent"},
    {"mirostat_eta", "--mirostat-lr"},
    {"mirostat", "--mirostat"},
    {"logit_bias", "--logit-bias"},
};

// llama.cpp's escapes for texts typed on a command line (sequence breakers, stop strings): \n \t \r \\ \" \'.
std::string unescape(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    const char c = text[++i];
    switch (c) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '\\':
      case '"':
      case '\'': out += c; break;
      default: out += '\\', out += c;
    }
  }
  return out;
}

// "TOKEN+BIAS" or "TOKEN-BIAS" (llama.cpp's -l): "15043+1", "2-inf".
std::pair<int32_t, float> parse_logit_bias(const std::string& text) {
  const auto bad = [&text] {
    return CLI::ValidationError("--logit-bias",
                                fmt::format("'{}' is not TOKEN+BIAS or TOKEN-BIAS (e.g. 15043+1, 2-inf)", text));
  };
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0) ++digits;
  if (digits == 0 || digits > 9 || digits + 1 >= text.size() || (text[digits] != '+' && text[digits] != '-')) {
    throw bad();
  }
  const char* number = text.c_str() + digits + 1;
  if (*number == '+' || *number == '-' || std::isspace(static_cast<unsigned char>(*number)) != 0) throw bad();
  char* end = nullptr;
  errno = 0;
  const float magnitude = std::strtof(number, &end);
  if (end == number || *end != '\0' || errno == ERANGE || std::isnan(magnitude)) throw bad();
  return {std::stoi(text.substr(0, digits)), text[digits] == '-' ? -magnitude : magnitude};
}

std::string fixed2(float v) { return fmt::format("{:.2f}", v); }

uint64_t random_seed() {
  std::random_device device;
  return (uint64_t{device()} << 32) ^ device();
}

// 0 to 2^64 - 1, or -1 (llama.cpp's "random").
uint64_t parse_seed(const std::string& text) {
  if (text == "-1") return random_seed();
  uint64_t seed = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, seed);
  if (text.empty() || error != std::errc() || stop != end) {
    throw CLI::ValidationError("--seed",
                               fmt::format("'{}' is not a seed (0 to 2^64 - 1, or -1 for a random one)", text));
  }
  return seed;
}

}  // namespace

void add_sampling_flags(CLI::App* cmd, SamplingParams& params, StopConditions& stop) {
  params.seed = random_seed();  // without --seed: a random one (the stats show it, so a run repeats)
  const std::string group = "Sampling";
  const auto option = [&](const std::string& name, auto& value, const std::string& help, const std::string& type) {
    return cmd->add_option(name, value, help)->capture_default_str()->type_name(type)->group(group);
  };
  option("--temp", params.temperature, "Temperature; 0: greedy (argmax)", "T");
  option("--dynatemp-range", params.dynatemp_range,
         "Dynamic temperature: move within temp ± R with the distribution's entropy; 0: off", "R");
  option("--dynatemp-exp", params.dynatemp_exponent, "Dynamic temperature exponent on the normalized entropy", "E");
  option("--top-k", params.top_k, "Keep the K most likely tokens; 0: off", "K");
  option("--top-p", params.top_p, "Keep the fewest tokens holding probability P, in (0, 1]; 1: off", "P");
  option("--min-p", params.min_p, "Drop tokens below P x the best token's probability, in [0, 1]; 0: off", "P");
  option("--typical", params.typical_p, "Locally typical sampling with mass P, in (0, 1]; 1: off", "P");
  option("--top-nsigma", params.top_n_sigma, "Keep logits within N standard deviations of the best; <= 0: off", "N");
  option("--xtc-probability", params.xtc_probability,
         "XTC: the chance, per token, of dropping every top choice but the least likely; 0: off", "P");
  option("--xtc-threshold", params.xtc_threshold, "XTC: a top choice has at least this probability", "T");
  option("--repeat-penalty", params.repeat_penalty, "Penalize repeated tokens (divide their logits); 1: off", "X");
  option("--repeat-last-n", params.penalty_last_n,
         "Tokens the penalties look back over (prompt included); 0: off, -1: the whole context", "N");
  option("--presence-penalty", params.presence_penalty, "Subtract X from the logit of every token seen; 0: off", "X");
  option("--frequency-penalty", params.frequency_penalty, "Subtract X per occurrence of a token seen; 0: off", "X");
  option("--dry-multiplier", params.dry_multiplier, "DRY (don't repeat yourself) strength; 0: off", "X");
  option("--dry-base", params.dry_base, "DRY: the penalty grows as X^(repeat length - allowed length)", "X");
  option("--dry-allowed-length", params.dry_allowed_length, "DRY: repeats up to N tokens go unpenalized", "N");
  option("--dry-penalty-last-n", params.dry_penalty_last_n,
         "DRY: tokens to look back over; 0: off, -1: the whole context", "N");
  cmd->add_option_function<std::vector<std::string>>(
         "--dry-sequence-breaker",
         [&params](const std::vector<std::string>& values) {
           params.dry_sequence_breakers.clear();  // given at all: they replace the defaults
           for (const std::string& value : values) {
             if (value != "none") params.dry_sequence_breakers.push_back(unescape(value));
           }
         },
         "DRY: a text that ends a repeat (repeatable, escapes like \\n; replaces the defaults \\n : \" *; "
         "'none': no breakers)")
      ->type_name("TEXT")
      ->group(group);
  option("--mirostat", params.mirostat, "Mirostat: 0 off, 2 mirostat v2 (replaces the steps after the penalties)", "N");
  option("--mirostat-lr", params.mirostat_eta, "Mirostat learning rate (eta)", "ETA");
  option("--mirostat-ent", params.mirostat_tau, "Mirostat target entropy (tau, bits)", "TAU");
  cmd->add_option_function<std::vector<std::string>>(
         "-l,--logit-bias",
         [&params](const std::vector<std::string>& values) {
           for (const std::string& value : values) params.logit_bias.push_back(parse_logit_bias(value));
         },
         "Add BIAS to TOKEN's logit, as TOKEN+BIAS or TOKEN-BIAS (repeatable; TOKEN-inf bans it)")
      ->type_name("TOKEN±BIAS")
      ->group(group);
  cmd->add_option_function<std::string>(
         "--samplers",
         [&params](const std::string& value) {
           try {
             params.order = parse_sampler_order(value);
           } catch (const Error& e) {
             throw CLI::ValidationError("--samplers", e.what());
           }
         },
         "The order of the steps after the penalties, ';'-separated; 'penalties' alone: no truncation step "
         "(default " +
             default_sampler_order_text() + ")")
      ->type_name("LIST")
      ->group(group);
  cmd->add_option_function<std::string>(
         "--seed", [&params](const std::string& value) { params.seed = parse_seed(value); },
         "Sampling seed; -1 or none: a random one (the stats show the seed used)")
      ->type_name("S")
      ->group(group);
  cmd->add_option_function<std::vector<std::string>>(
         "--stop",
         [&stop](const std::vector<std::string>& values) {
           for (const std::string& value : values) stop.strings.push_back(unescape(value));
         },
         "Stop when the output would contain TEXT, which is not printed (repeatable; escapes like \\n, as "
         "--dry-sequence-breaker; \\\\ for a backslash)")
      ->type_name("TEXT")
      ->group(group);
  cmd->add_option_function<double>(
         "--max-time",
         [&stop](double seconds) {
           if (!(seconds >= 0.0) || !std::isfinite(seconds)) {
             throw CLI::ValidationError("--max-time", fmt::format("must be 0 or more seconds, not {}", seconds));
           }
           stop.max_time_ms = seconds * 1e3;
         },
         "Stop generating after this many seconds; 0: no limit")
      ->type_name("SECONDS")
      ->group(group);
  cmd->add_flag("--ignore-eos", stop.ignore_eos, "Keep generating past end-of-generation tokens")->group(group);
}

void check_sampling_flags(const SamplingParams& params, const StopConditions& stop) {
  try {
    validate(params);
  } catch (const Error& e) {
    std::string message = e.what();
    for (const FieldFlag& f : kFieldFlags) {
      if (message.starts_with(f.field) && message.size() > f.field.size() &&
          (message[f.field.size()] == ' ' || message[f.field.size()] == '[')) {
        message = std::string(f.flag) + message.substr(f.field.size());
        break;
      }
    }
    throw CLI::ValidationError(message);
  }
  for (const std::string& s : stop.strings) {
    if (s.empty()) throw CLI::ValidationError("--stop must not be empty");
  }
}

std::string default_sampler_order_text() {
  std::string text;
  for (const SamplerStep step : effective_order(SamplingParams())) {
    if (!text.empty()) text += ';';
    text += sampler_step_name(step);
  }
  return text;
}

std::string sampler_summary(const SamplingParams& p, std::string_view sep) {
  std::vector<std::string> parts;
  if (!p.logit_bias.empty()) parts.push_back(fmt::format("logit-bias {}", p.logit_bias.size()));
  if (p.penalty_last_n != 0 &&
      (p.repeat_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f)) {
    std::string penalties = "penalties";
    if (p.repeat_penalty != 1.0f) penalties += " repeat " + fixed2(p.repeat_penalty);
    if (p.presence_penalty != 0.0f) penalties += " presence " + fixed2(p.presence_penalty);
    if (p.frequency_penalty != 0.0f) penalties += " frequency " + fixed2(p.frequency_penalty);
    penalties += p.penalty_last_n < 0 ? std::string(" (all)") : fmt::format(" (last {})", p.penalty_last_n);
    parts.push_back(std::move(penalties));
  }
  const std::vector<SamplerStep> order = effective_order(p);
  const bool dry = p.dry_multiplier != 0.0f && p.dry_penalty_last_n != 0 && p.mirostat == 0 &&
                   std::ranges::find(order, SamplerStep::kDry) != order.end();
  if (p.temperature <= 0.0f) {
    if (dry)
      parts.push_back(
          fmt::format("dry {} base {} allowed {}", fixed2(p.dry_multiplier), fixed2(p.dry_base), p.dry_allowed_length));
    parts.push_back("greedy (--temp 0)");
  } else if (p.mirostat == 2) {
    parts.push_back("temp " + fixed2(p.temperature));
    parts.push_back(fmt::format("mirostat v2 tau {} eta {}", fixed2(p.mirostat_tau), fixed2(p.mirostat_eta)));
  } else {
    for (const SamplerStep step : order) {
      switch (step) {
        case SamplerStep::kDry:
          if (dry) {
            parts.push_back(fmt::format("dry {} base {} allowed {}", fixed2(p.dry_multiplier), fixed2(p.dry_base),
                                        p.dry_allowed_length));
          }
          break;
        case SamplerStep::kTopNSigma:
          if (p.top_n_sigma > 0.0f) parts.push_back("top-n-sigma " + fixed2(p.top_n_sigma));
          break;
        case SamplerStep::kTopK:
          if (p.top_k > 0) parts.push_back(fmt::format("top-k {}", p.top_k));
          break;
        case SamplerStep::kTypicalP:
          if (p.typical_p < 1.0f) parts.push_back("typical " + fixed2(p.typical_p));
          break;
        case SamplerStep::kTopP:
          if (p.top_p < 1.0f) parts.push_back("top-p " + fixed2(p.top_p));
          break;
        case SamplerStep::kMinP:
          if (p.min_p > 0.0f) parts.push_back("min-p " + fixed2(p.min_p));
          break;
        case SamplerStep::kXtc:
          if (p.xtc_probability > 0.0f && p.xtc_threshold <= 0.5f) {
            parts.push_back(fmt::format("xtc {} >= {}", fixed2(p.xtc_probability), fixed2(p.xtc_threshold)));
          }
          break;
        case SamplerStep::kTemperature:
          parts.push_back(p.dynatemp_range > 0.0f ? fmt::format("temp {} ± {} exp {}", fixed2(p.temperature),
                                                                fixed2(p.dynatemp_range), fixed2(p.dynatemp_exponent))
                                                  : "temp " + fixed2(p.temperature));
          break;
        case SamplerStep::kInfill: parts.push_back("infill"); break;
      }
    }
  }
  if (p.temperature > 0.0f) parts.push_back(fmt::format("seed {}", p.seed));
  std::string out;
  for (const std::string& part : parts) {
    if (!out.empty()) out += sep;
    out += part;
  }
  return out;
}

void check_logit_bias_tokens(const SamplingParams& params, int32_t n_vocab) {
  for (const auto& [token, bias] : params.logit_bias) {
    if (token >= n_vocab) {
      fail(ErrorCode::kInvalidArgument, "--logit-bias: token {} is outside the model's vocabulary ({} tokens)", token,
           n_vocab);
    }
  }
}

}  // namespace ember::cli
