// `ember synth --preset NAME --type TYPE -o FILE`: writes a model with random weights at the shape
// of a real one (benchmarks and tests at real sizes without downloading anything).
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/command_checks.h"
#include "cli/commands.h"
#include "cli/console.h"
#include "cli/number_range.h"
#include "cli/quant_report.h"
#include "convert/synth_model.h"
#include "core/check.h"
#include "core/thread_pool.h"
#include "core/timer.h"

namespace ember::cli {
namespace {

struct SynthCommandOptions {
  std::string preset;
  std::string type = "F16";
  std::string out_path;
  uint64_t seed = 1;
  std::string vocab;
  bool no_vocab = false;
  std::string data_dir;
  int threads = 0;
};

const CLI::Validator kPresetName(
    [](std::string& name) -> std::string {
      if (find_synth_preset(name) != nullptr) return "";
      std::string names;
      for (const SynthPreset& p : synth_presets()) names += (names.empty() ? "" : ", ") + std::string(p.name);
      return fmt::format("unknown preset '{}' (presets: {})", name, names);
    },
    "", "preset");
const CLI::Validator kSynthType(
    [](std::string& name) -> std::string {
      if (name == "F32" || name == "f32" || find_file_type(name) != nullptr) return "";
      return fmt::format("unknown type '{}' (F32 or a quantize type: F16, Q8_0, Q4_K_M, ...)", name);
    },
    "", "type");

// The vocabulary to copy: --vocab, else the preset's vocab file in the data directory (--data-dir,
// $EMBER_DATA_DIR or ../shared/data); nullopt (a placeholder vocabulary) with a warning when absent.
std::optional<std::string> resolve_vocab(const SynthCommandOptions& o, const SynthPreset& preset) {
  if (o.no_vocab) return std::nullopt;
  if (!o.vocab.empty()) return o.vocab;
  std::string dir = o.data_dir;
  if (dir.empty()) {
    const char* env = std::getenv("EMBER_DATA_DIR");
    dir = env != nullptr && *env != '\0' ? env : "../shared/data";
  }
  const std::filesystem::path path = std::filesystem::path(dir) / preset.vocab_file;
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return path.string();
  print_warning(
      fmt::format("no vocabulary for {} at '{}' (see --vocab, --data-dir); writing a placeholder "
                  "vocabulary, so text through this model is meaningless",
                  preset.name, path.string()));
  return std::nullopt;
}

int run_synth(const SynthCommandOptions& o) {
  const SynthPreset& preset = *find_synth_preset(o.preset);  // validated while parsing
  SynthOptions options;
  options.all_f32 = o.type == "F32" || o.type == "f32";
  if (!options.all_f32) options.file_type = find_file_type(o.type)->id;
  options.seed = o.seed;
  options.vocab = resolve_vocab(o, preset);
  const int threads = resolve_threads(o.threads);
  check_output_path(o.out_path, options.vocab ? std::vector<std::string>{*options.vocab} : std::vector<std::string>{});

  const QuantPlan plan = synth_plan(preset, options);
  warn_fallbacks(plan);
  Timer timer;
  {
    ProgressBar bar("writing");
    write_synth_model(preset, options, o.out_path, threads, [&](const QuantizeProgress& s) {
      bar.update(s.elements_done, s.elements_total, plan.tensors[s.tensor_index].name);
    });
  }
  const double seconds = timer.elapsed_seconds();
  write_stdout(
      fmt::format("wrote {}: synthetic {} ({} parameters, {} layers), {}, {} ({:.2f} bits per weight), vocabulary: {}\n"
                  "  time: {:.2f} s on {} threads\n",
                  o.out_path, preset.name, human_count(synth_parameter_count(preset)), preset.n_layer,
                  options.all_f32 ? "F32" : file_type_info(options.file_type).name, human_bytes(plan.to_bytes),
                  8.0 * static_cast<double>(plan.to_bytes) / static_cast<double>(plan.n_elements),
                  options.vocab ? *options.vocab : "placeholder", seconds, threads));
  return kExitOk;
}

}  // namespace

void add_synth_command(CLI::App& app, CommandAction& action) {
  auto o = std::make_shared<SynthCommandOptions>();
  CLI::App* cmd = app.add_subcommand("synth", "Write a model with random weights at the shape of a real one");
  cmd->add_option("--preset", o->preset, "Model shape (list below)")->required()->check(kPresetName);
  cmd->add_option("--type", o->type, "F32, or a quantize type (F16, Q8_0, Q4_K_M, ...) with its per-tensor mix")
      ->check(kSynthType)
      ->capture_default_str();
  cmd->add_option("-o,--output", o->out_path, "Output GGUF file")->required();
  cmd->add_option("--seed", o->seed, "Random seed; the same seed gives the same file")
      ->capture_default_str()
      // (CLI11 alone reads "-1" as 2^64 - 1 and 2^64 or more as 2^64 - 1.)
      ->check(NumberRange(uint64_t{0}, std::numeric_limits<uint64_t>::max()).description(""));
  cmd->add_option("--vocab", o->vocab, "Vocab GGUF whose tokenizer is copied (token count must match)");
  cmd->add_flag("--no-vocab", o->no_vocab, "Write a placeholder vocabulary instead of a real one");
  cmd->add_option("--data-dir", o->data_dir,
                  "Where the presets' vocab files are (default $EMBER_DATA_DIR or ../shared/data)");
  cmd->add_option("-t,--threads", o->threads, "Worker threads (default: every usable CPU)")
      ->check(NumberRange(1, ThreadPool::kMaxThreads));
  std::string footer = "Presets (random N(0, 0.02) weights, norms 1, tied embeddings):\n";
  for (const SynthPreset& p : synth_presets()) {
    footer +=
        fmt::format("  {:<14}{:>7} parameters  {}\n", p.name, human_count(synth_parameter_count(p)), p.description);
  }
  footer += "Exit codes: 0 success, 1 error, 2 bad command line.";
  cmd->footer(footer);
  cmd->callback([&action, o] { action = [o] { return run_synth(*o); }; });
}

}  // namespace ember::cli
