// The `ember` subcommands: each registers itself on the CLI11 app and leaves an action to run.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace ember::cli {

// Exit codes of the `ember` binary.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // an ember::Error or other failure while running a command
inline constexpr int kExitUsage = 2;  // bad command line

// What the parsed subcommand does; set by the subcommand's parse callback, run after parsing.
using CommandAction = std::function<int()>;

// `ember bench -m MODEL [-p 512] [-n 128] [-r 5] [-t N] [-o md|csv|json]`.
void add_bench_command(CLI::App& app, CommandAction& action);
// `ember chat -m MODEL [--system TEXT] [--chat-template FILE|NAME] [sampling flags]`.
void add_chat_command(CLI::App& app, CommandAction& action);
// `ember inspect FILE [--json] [--all]`.
void add_inspect_command(CLI::App& app, CommandAction& action);
// `ember perplexity -m MODEL -f TEXT [--ctx 256] [--stride S] [--batch N] [--chunks N] [--json] ...`.
void add_perplexity_command(CLI::App& app, CommandAction& action);
// `ember quantize IN OUT TYPE [--pure] [--output-type T] [--token-embedding-type T] [--dry-run] ...`.
void add_quantize_command(CLI::App& app, CommandAction& action);
// `ember run -m FILE (-p TEXT | -f FILE) [-n N] [--temp T] [--top-k K] [--top-p P] [--seed S] ...`.
void add_run_command(CLI::App& app, CommandAction& action);
// `ember serve -m MODEL [--host H] [--port P] [--parallel N] [--ctx-size N] [--api-key KEY] ...`.
void add_serve_command(CLI::App& app, CommandAction& action);
// `ember synth --preset NAME [--type TYPE] -o FILE [--seed N] [--vocab FILE] ...`.
void add_synth_command(CLI::App& app, CommandAction& action);
// `ember template [TEMPLATE.jinja] CONTEXT.json [-m MODEL] [--chat-template FILE|NAME] [--now TIME]`.
void add_template_command(CLI::App& app, CommandAction& action);
// `ember tokenize -m FILE [TEXT | -f FILE] [--ids | --pieces] [--no-bos] [--parse-special]`.
void add_tokenize_command(CLI::App& app, CommandAction& action);

}  // namespace ember::cli
