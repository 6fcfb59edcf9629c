// `ember quantize IN OUT TYPE`: converts a GGUF model to a file type (Q4_K_M, Q8_0, ...) with
// llama.cpp's per-tensor mixes; --dry-run prints the plan.
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "cli/command_checks.h"
#include "cli/commands.h"
#include "cli/console.h"
#include "cli/number_range.h"
#include "cli/quant_report.h"
#include "convert/model_quantizer.h"
#include "core/check.h"
#include "core/thread_pool.h"
#include "core/timer.h"

namespace ember::cli {
namespace {

struct QuantizeCommandOptions {
  std::string in_path;
  std::string out_path;
  std::string type;
  bool pure = false;
  std::string output_type;
  std::string token_embedding_type;
  bool allow_requantize = false;
  bool dry_run = false;
  int threads = 0;  // 0: every usable CPU
};

// Command-line validators: a bad name is a usage error (exit 2) that lists what is accepted.
const CLI::Validator kFileTypeName(
    [](std::string& name) -> std::string {
      if (find_file_type(name) != nullptr) return "";
      std::string names;
      for (const FileTypeInfo& t : file_types()) names += (names.empty() ? "" : ", ") + std::string(t.name);
      return fmt::format("unknown quantization type '{}' (types: {})", name, names);
    },
    "", "file type");
const CLI::Validator kTensorTypeName(
    [](std::string& name) -> std::string {
      return dtype_from_name(name) ? "" : fmt::format("unknown tensor type '{}' (e.g. q8_0, q6_K, f16)", name);
    },
    "", "tensor type");

QuantizeOptions to_quantize_options(const QuantizeCommandOptions& o) {
  QuantizeOptions q;
  q.file_type = find_file_type(o.type)->id;  // validated while parsing
  q.pure = o.pure;
  q.allow_requantize = o.allow_requantize;
  if (!o.output_type.empty()) q.output_type = dtype_from_name(o.output_type);
  if (!o.token_embedding_type.empty()) q.token_embedding_type = dtype_from_name(o.token_embedding_type);
  return q;
}

int run_quantize(const QuantizeCommandOptions& o) {
  const QuantizeOptions options = to_quantize_options(o);
  const int threads = resolve_threads(o.threads);
  const GgufModelFiles model = GgufModelFiles::open(o.in_path);
  if (model.tensors().empty()) {
    fail(ErrorCode::kInvalidArgument, "'{}' has no tensors (a vocabulary-only file?): nothing to quantize", o.in_path);
  }
  const QuantPlan plan = plan_model_quantization(model, options);
  const std::string_view type_name = file_type_info(options.file_type).name;

  if (o.dry_run) {
    write_stdout(
        fmt::format("plan for {} -> {} ({}{}):\n", o.in_path, o.out_path, type_name, options.pure ? ", pure" : ""));
    write_stdout(plan_text(plan));
    write_stdout(summary_text(plan));
    return kExitOk;
  }
  std::vector<std::string> inputs;
  for (size_t i = 0; i < model.n_files(); ++i) inputs.push_back(model.file(i).name());
  check_output_path(o.out_path, inputs);
  warn_fallbacks(plan);
  Timer timer;
  {
    ProgressBar bar("quantizing");
    write_quantized_model(model, plan, options.file_type, o.out_path, threads, [&](const QuantizeProgress& s) {
      bar.update(s.elements_done, s.elements_total, plan.tensors[s.tensor_index].name);
    });
  }
  const double seconds = timer.elapsed_seconds();
  write_stdout(fmt::format("wrote {} ({}{}):\n", o.out_path, type_name, options.pure ? ", pure" : ""));
  write_stdout(summary_text(plan));
  write_stdout(fmt::format("  time:    {:.2f} s on {} thread{} ({:.0f} MB/s of input)\n", seconds, threads,
                           threads == 1 ? "" : "s",
                           seconds > 0 ? static_cast<double>(plan.from_bytes) / seconds / 1e6 : 0.0));
  return kExitOk;
}

}  // namespace

void add_quantize_command(CLI::App& app, CommandAction& action) {
  auto o = std::make_shared<QuantizeCommandOptions>();
  CLI::App* cmd = app.add_subcommand("quantize", "Convert a GGUF model to a quantized file type (Q4_K_M, Q8_0, ...)");
  cmd->add_option("IN", o->in_path, "Input GGUF model (F32/F16/BF16; any part of a split model)")->required();
  cmd->add_option("OUT", o->out_path, "Output GGUF file (written to a temporary file, then renamed)")->required();
  cmd->add_option("TYPE", o->type, "File type, e.g. Q4_K_M (list below)")->required()->check(kFileTypeName);
  cmd->add_flag("--pure", o->pure, "Give every quantizable tensor the base type: no per-tensor mix, no Q6_K output");
  cmd->add_option("--output-type", o->output_type, "Tensor type for output.weight (e.g. q8_0)")->check(kTensorTypeName);
  cmd->add_option("--token-embedding-type", o->token_embedding_type, "Tensor type for token_embd.weight")
      ->check(kTensorTypeName);
  cmd->add_flag("--allow-requantize", o->allow_requantize, "Accept already-quantized input tensors (loses quality)");
  cmd->add_flag("--dry-run", o->dry_run, "Print the per-tensor plan and the resulting size; write nothing");
  cmd->add_option("-t,--threads", o->threads, "Worker threads (default: every usable CPU)")
      ->check(NumberRange(1, ThreadPool::kMaxThreads));
  std::string footer = "Types:\n";
  for (const FileTypeInfo& t : file_types()) footer += fmt::format("  {:<8}{}\n", t.name, t.summary);
  footer +=
      "1-D tensors (norms) stay as they are; a tensor whose rows do not fit the type's blocks falls back to a\n"
      "compatible type, with a warning. Exit codes: 0 success, 1 error, 2 bad command line.";
  cmd->footer(footer);
  cmd->callback([&action, o] { action = [o] { return run_quantize(*o); }; });
}

}  // namespace ember::cli
