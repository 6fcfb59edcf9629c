// Entry point of the `ember` command-line tool: parses the command line and runs one subcommand.
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "cli/value_format.h"
#include "ember/error.h"

namespace {

// "ember: error: <message>" on one line (control characters in paths or keys are escaped).
int report_error(std::string_view message) {
  const std::string line = "ember: error: " + ember::cli::escape_text(message) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  return ember::cli::kExitError;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ember::cli;
  CLI::App app{"ember: a native C++ LLM inference engine", "ember"};
  app.set_version_flag("--version", "ember " EMBER_VERSION_STRING, "Print the version and exit");
  app.require_subcommand(1);

  CommandAction action;
  add_inspect_command(app, action);

  try {
    app.parse(argc, argv);
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
