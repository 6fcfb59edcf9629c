// The speculative decoding flags shared by `ember run`, `ember chat` and `ember serve` (--model-draft,
// --draft-max, --draft-min, --draft-p-min, --spec-ngram; run and chat add --draft-always) and their
// checks.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "ember/session.h"

namespace ember::cli {

// Adds the flags, writing into `spec` and `draft_model_path` (which must outlive the parse). For
// the server the --draft-max it sets is each request's default.
void add_speculative_flags(CLI::App* cmd, GenerateOptions::Speculative& spec, std::string& draft_model_path,
                           bool server);

// After the parse: --draft-max defaults to 8 with --model-draft; --draft-min above --draft-max is a
// usage error (CLI::ValidationError, exit 2).
void resolve_speculative_flags(const CLI::App& cmd, GenerateOptions::Speculative& spec,
                               const std::string& draft_model_path);

// Speculation with --mirostat is a usage error (CLI::ValidationError) for the commands that sample
// with one fixed setting (run, chat).
void check_speculative_sampling(const GenerateOptions::Speculative& spec, const SamplingParams& sampling);

}  // namespace ember::cli
