// Entry point of the `ember` command-line tool: parses the command line and runs one subcommand.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "cli/value_format.h"
#include "core/atomic_file.h"
#include "ember/error.h"

namespace {

// "ember: error: <message>" on one line (control characters in paths or keys are escaped).
int report_error(std::string_view message) {
  const std::string line = "ember: error: " + ember::one_line_text(message) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  return ember::cli::kExitError;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ember::cli;
  // Ctrl-C while a file is being written removes its temporary; the final path is never half-written.
  ember::install_interrupt_cleanup();
  CLI::App app{"ember: a native C++ LLM inference engine", "ember"};
  app.set_version_flag("--version", "ember " EMBER_VERSION_STRING, "Print the version and exit");
  app.require_subcommand(1);
  // Usage errors are one line, like every other error: "ember: error: <what> (run 'ember --help')".
  app.failure_message([argc, argv](const CLI::App* failed, const CLI::Error& e) {
    // A subcommand's usage error points at that subcommand's help.
    const auto chosen = failed->get_subcommands();
    const std::string help = chosen.empty() ? "ember --help" : "ember " + chosen.front()->get_name() + " --help";
    std::string what = e.what();
    if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
      // CLI11 lists the extra arguments last first ("2 --threads-draft"): name them as typed.
      // (Arguments after "--" are not in remaining(): then CLI11's message stays.)
      const CLI::App* parsed = chosen.empty() ? failed : chosen.front();
      const std::vector<std::string> extras = parsed->remaining();
      std::string listed;
      for (const std::string& arg : extras) {
        const bool plain = !arg.empty() && arg.find_first_of(" \t") == std::string::npos;
        listed += (listed.empty() ? "" : " ") + (plain ? arg : "'" + arg + "'");
      }
      const bool after_dashes =
          std::any_of(argv + 1, argv + argc, [](const char* arg) { return std::string_view(arg) == "--"; });
      if (!extras.empty() && !after_dashes) {
        what = (extras.size() == 1 ? "unexpected argument: " : "unexpected arguments: ") + listed;
      }
    }
    return "ember: error: " + ember::one_line_text(what) + " (run '" + help + "')\n";
  });

  CommandAction action;
  add_bench_command(app, action);
  add_chat_command(app, action);
  add_inspect_command(app, action);
  add_perplexity_command(app, action);
  add_quantize_command(app, action);
  add_run_command(app, action);
  add_serve_command(app, action);
  add_synth_command(app, action);
  add_template_command(app, action);
  add_tokenize_command(app, action);

  // CLI11 would call an unknown command word a missing subcommand; name it instead.
  if (argc > 1 && argv[1][0] != '-') {
    std::string names;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) {
      names += (names.empty() ? "" : ", ") + sub->get_name();
      known = known || sub->get_name() == argv[1];
    }
    if (!known) {
      report_error("unknown command '" + std::string(argv[1]) + "' (commands: " + names + ")");
      return kExitUsage;
    }
  }

  // llama.cpp's single-dash "-ngl" (CLI11 takes one-letter short options only) means --gpu-layers.
  std::vector<std::string> ngl_args;
  ngl_args.reserve(static_cast<size_t>(argc));  // no reallocation: args points into it
  std::vector<char*> args(argv, argv + argc);
  for (char*& arg : args) {
    const std::string_view a = arg;
    if (a == "--") break;  // the rest are values
    if (a == "-ngl" || a.starts_with("-ngl="))
      arg = ngl_args.emplace_back("--gpu-layers" + std::string(a.substr(4))).data();
  }
  try {
    app.parse(argc, args.data());
  } catch (const CLI::ParseError& e) {
    // Help and version exit 0; every usage error exits kExitUsage (CLI11 has one code per error kind).
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  try {
    return action ? action() : kExitUsage;
  } catch (const ember::Error& e) {
    return report_error(e.what());
  } catch (const std::exception& e) {
    return report_error(e.what());
  }
}
