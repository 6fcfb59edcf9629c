// The speculative decoding flags of `ember run`, `ember chat` and `ember serve` (see speculative_flags.h).
#include "cli/speculative_flags.h"
#include "cli/number_range.h"

#include <fmt/format.h>

namespace ember::cli {

void add_speculative_flags(CLI::App* cmd, GenerateOptions::Speculative& spec, std::string& draft_model_path,
                           bool server) {
  cmd->add_option("--model-draft", draft_model_path,
                  "Speculative decoding with a draft model: a smaller GGUF model of the same vocabulary proposes "
                  "the next tokens (--draft-max defaults to 8 with it)")
      ->type_name("FILE");
  cmd->add_option("--draft-max", spec.draft_max,
                  server ? "Speculative decoding by default: up to N draft tokens per step, from the draft model or "
                           "else by prompt lookup (0: off unless a request asks with \"speculative\")"
                         : "Speculative decoding: up to N draft tokens per step, from the draft model or else by "
                           "prompt lookup, from an earlier occurrence of the text's last words (0: off; not with "
                           "--mirostat)")
      ->check(NumberRange(0, 64))
      ->type_name("N");
  cmd->add_option("--draft-min", spec.draft_min,
                  "The draft length adapts to the acceptance rate, down to N; shorter prompt-lookup drafts are not "
                  "checked (default 1)")
      ->check(NumberRange(1, 64))
      ->type_name("N");
  cmd->add_option("--draft-p-min", spec.p_min,
                  "A draft model's draft ends where it is less sure of its next token than P (its probability at "
                  "temperature 1; default 0.75, 0: off)")
      ->check(NumberRange(0.0, 1.0))
      ->type_name("P");
  cmd->add_option("--spec-ngram", spec.ngram_max,
                  "Prompt lookup matches the last N tokens first, then fewer down to 1 (default 3)")
      ->check(NumberRange(1, 16))
      ->type_name("N");
  if (!server) {
    cmd->add_flag(
        "--draft-always", [&spec](int64_t) { spec.pause_when_slower = false; },
        "Greedy speculation keeps speculating when it measures slower than plain steps (it pauses by default)");
  }
}

void resolve_speculative_flags(const CLI::App& cmd, GenerateOptions::Speculative& spec,
                               const std::string& draft_model_path) {
  if (!draft_model_path.empty() && cmd.count("--draft-max") == 0) spec.draft_max = 8;
  if (spec.draft_max > 0 && spec.draft_min > spec.draft_max) {
    throw CLI::ValidationError(
        fmt::format("--draft-min {} is more than --draft-max {}", spec.draft_min, spec.draft_max));
  }
}

void check_speculative_sampling(const GenerateOptions::Speculative& spec, const SamplingParams& sampling) {
  if (spec.draft_max > 0 && sampling.mirostat != 0) {
    throw CLI::ValidationError(
        "speculative decoding (--draft-max, --model-draft) does not work with --mirostat (its state follows every "
        "draw)");
  }
}

}  // namespace ember::cli
