// `ember inspect`: wires the CLI11 subcommand to the report builder and its renderers.
#include "cli/inspect_command.h"

#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/console.h"
#include "cli/inspect_report.h"
#include "core/check.h"

namespace ember::cli {

std::string inspect_output(const InspectOptions& options) {
  const GgufModelFiles model = GgufModelFiles::open(options.path);
  const InspectReport report = build_inspect_report(model);
  if (options.json) {
    // GGUF strings are validated UTF-8 by the reader; replace anything else rather than throw.
    return render_inspect_json(report).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  TextLimits limits;
  if (options.all) limits = TextLimits{kUnlimited, kUnlimited};
  return render_inspect_text(report, limits);
}

void add_inspect_command(CLI::App& app, CommandAction& action) {
  auto options = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand("inspect", "Show the metadata, tensors and tokenizer of a GGUF model");
  cmd->add_option("FILE", options->path, "GGUF file (any part of a split model opens all parts)")->required();
  cmd->add_flag("--json", options->json, "Print one JSON object with the full metadata instead of text");
  cmd->add_flag("--all", options->all, "Do not shorten long arrays and strings in text output");
  cmd->footer(
      "Output: summary, metadata (every key), tensors (ggml shape order, absolute offsets), totals, tokenizer.\n"
      "Exit codes: 0 success, 1 the file could not be read, 2 bad command line.");
  cmd->callback([&action, options] {
    action = [options] {
      write_stdout(inspect_output(*options));
      return kExitOk;
    };
  });
}

}  // namespace ember::cli
