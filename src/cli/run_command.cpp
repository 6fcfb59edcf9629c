// `ember run -m MODEL -p PROMPT`: generates text on the CPU — the prompt as one batch, then one
// token per step, streamed to stdout as it comes — and ends with a stats panel on stderr.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "cli/command_checks.h"
#include "cli/commands.h"
#include "cli/console.h"
#include "cli/constraint_flags.h"
#include "cli/device_flags.h"
#include "cli/inspect_report.h"
#include "cli/interrupt.h"
#include "cli/number_range.h"
#include "cli/sampling_flags.h"
#include "cli/speculative_flags.h"
#include "cli/text_input.h"
#include "cli/text_table.h"
#include "cli/value_format.h"
#include "core/check.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "engine/draft_model.h"
#include "engine/generator.h"
#include "engine/model_files.h"
#include "model/model.h"
#include "tokenizer/fill_in_middle.h"
#include "tokenizer/tokenizer.h"

namespace ember::cli {
namespace {

using Align = TextTable::Align;

struct RunCommandOptions {
  std::string model_path;
  std::optional<std::string> prompt;
  std::optional<std::string> prompt_file;  // "-": standard input
  std::optional<std::string> suffix;       // fill in the middle: the text after the gap
  int32_t n_predict = 128;                 // -1: until end of generation or a full context
  int threads = 0;
  SamplingParams sampling;
  StopConditions stop;   // --stop, --max-time, --ignore-eos (the token limit is -n)
  int32_t ctx_size = 0;  // 0: the model's context, at most kDefaultMaxContext
  bool mlock = false;
  bool batch_invariant = false;  // --deterministic
  DeviceFlags device;
  DType kv_type = DType::kF16;
  bool no_bos = false;
  ConstraintFlags constraint_flags;
  OutputConstraint constraint;  // resolved from constraint_flags once the command line is parsed
  GenerateOptions::Speculative speculative;
  std::string draft_model_path;  // empty: prompt lookup
};

// What the panel shows besides the generation's own stats.
struct RunStats {
  double load_ms = 0;
  const Model* draft = nullptr;  // --model-draft
  int32_t context = 0;
  GenerationStats generation;
};

// --- Input -------------------------------------------------------------------------------------

// --- The stats panel ---------------------------------------------------------------------------

std::string stop_text(const RunStats& s, const RunCommandOptions& o) {
  switch (s.generation.finish) {
    case FinishReason::kNone: break;
    case FinishReason::kEndOfGeneration:
      return o.constraint.kind == OutputConstraint::Kind::kNone
                 ? "end-of-generation token"
                 : "end-of-generation token or the constrained output complete";
    case FinishReason::kMaxTokens: return fmt::format("token limit (-n {})", o.n_predict);
    case FinishReason::kContextFull: return fmt::format("context full ({} tokens, --ctx-size)", s.context);
    case FinishReason::kCancelled: return "interrupted (Ctrl-C)";
    case FinishReason::kStopString:
      return fmt::format("stop string \"{}\" (--stop)", escape_text(s.generation.stop_string));
    case FinishReason::kMaxTime: return fmt::format("time limit (--max-time {:g})", o.stop.max_time_ms / 1e3);
    case FinishReason::kError: return "error";
  }
  return "";
}

std::string rate(int32_t n, double ms) {
  return n > 0 && ms > 0 ? fmt::format("{:.1f} tok/s", n * 1e3 / ms) : std::string("-");
}

// The panel's lines, without borders. `sep` joins the parts of a line (" · " on a terminal).
std::vector<std::string> panel_lines(const Model& model, const KvCache& kv, const SamplingParams& sampling,
                                     const RunStats& s, const RunCommandOptions& o, std::string_view sep,
                                     size_t* section_break) {
  const GenerationStats& g = s.generation;
  // Every sampled token was printed, or ended the generation as its end-of-generation token.
  const int32_t n_sampled = g.generated_tokens + (g.finish == FinishReason::kEndOfGeneration ? 1 : 0);
  const ModelConfig& c = model.config();
  const CpuBackend& backend = model.backend();
  const auto label = [](std::string_view name) { return fmt::format("{:<10}", name); };
  // (general.name is the file's text: escaped, so that no control character reaches the terminal)
  const std::string name = c.name.empty() ? std::string(arch_name(c.arch)) : one_line_text(c.name);
  std::vector<std::string> lines;
  lines.push_back(label("model") + fmt::format("{}{}{}{}{}{}{} params", name, sep, arch_name(c.arch), sep,
                                               model_type_label(model.files()), sep,
                                               human_count(model.parameter_count())));
  if (s.draft != nullptr) {
    const ModelConfig& d = s.draft->config();
    lines.push_back(label("draft") + fmt::format("{}{}{}{}{} params", d.name.empty() ? "-" : one_line_text(d.name), sep,
                                                 model_type_label(s.draft->files()), sep,
                                                 human_count(s.draft->parameter_count())));
  }
  lines.push_back(label("backend") + fmt::format("cpu {}{}{} thread{}", backend.kernels_name(), sep,
                                                 backend.n_threads(), backend.n_threads() == 1 ? "" : "s"));
  if (const std::string gpu = gpu_summary(model, sep); !gpu.empty()) lines.push_back(label("gpu") + gpu);
  section_break[0] = lines.size();

  TextTable table({Align::kLeft, Align::kRight, Align::kLeft, Align::kRight, Align::kRight}, 0);
  const auto ms = [](double v) { return fmt::format("{:.2f} ms", v); };
  table.add_row({label("prefill"), fmt::format("{}", g.prompt_tokens), "tokens", ms(g.prefill_ms),
                 rate(g.prompt_tokens, g.prefill_ms)});
  // With speculation a decode step stores several tokens: the rate counts tokens, not steps (the
  // first generated token comes from the prompt's step).
  const int32_t n_decoded = g.draft_tokens > 0 ? std::max(g.generated_tokens - 1, 0) : g.decode_steps;
  table.add_row(
      {label("decode"), fmt::format("{}", n_decoded), "tokens", ms(g.decode_ms), rate(n_decoded, g.decode_ms)});
  if (g.draft_tokens > 0) {
    table.add_row({label("drafts"), fmt::format("{}", g.accepted_tokens), "accepted",
                   fmt::format("of {} in {} steps", g.draft_tokens, g.decode_steps),
                   fmt::format("{:.0f}%", 100.0 * g.accepted_tokens / g.draft_tokens)});
  }
  table.add_row({label("sampling"), fmt::format("{}", n_sampled), "tokens", ms(g.sample_ms),
                 n_sampled > 0 ? fmt::format("{:.1f} µs/token", g.sample_ms * 1e3 / n_sampled) : "-"});
  table.add_row({label("total"), fmt::format("{}", g.generated_tokens), "generated", ms(g.total_ms),
                 rate(g.generated_tokens, g.total_ms)});
  std::string rendered;
  table.render(rendered);
  if (!g.drafted_at.empty()) {
    // Acceptance by position in the draft: how often the i-th proposed token was kept.
    std::string by_position;
    for (size_t i = 0; i < g.drafted_at.size() && i < 8; ++i) {
      by_position += fmt::format("{}{}: {:.0f}%", i == 0 ? "" : sep, i + 1,
                                 100.0 * g.accepted_at[i] / std::max(g.drafted_at[i], 1));
    }
    rendered += label("kept at") + by_position + "\n";
  }
  for (size_t at = 0; at < rendered.size();) {
    const size_t end = rendered.find('\n', at);
    lines.push_back(rendered.substr(at, end - at));
    at = end + 1;
  }
  section_break[1] = lines.size();

  lines.push_back(label("load") + ms(s.load_ms));
  // (An older DeepSeek file's transposed k_b copies: "made at load", only where there are some.)
  const uint64_t derived = model.derived_weight_bytes();
  const std::string made = derived > 0 ? fmt::format("{}{} made at load", sep, human_bytes(derived)) : "";
  lines.push_back(label("weights") + fmt::format("{} mapped{}{}{} repacked", human_bytes(model.weight_bytes()), made,
                                                 sep, human_bytes(backend.packed_bytes())));
  lines.push_back(label("KV cache") +
                  fmt::format("{} ({} tokens, {})", human_bytes(kv.bytes()), s.context, dtype_name(kv.k_dtype())));
  lines.push_back(label("sampler") + sampler_summary(sampling, sep));
  lines.push_back(label("stopped") + stop_text(s, o));
  return lines;
}

// On a terminal: a rounded box with rules between the sections. Piped: the lines, indented
// under a title (nothing but ASCII and "µ", easy to grep).
std::string render_panel(const std::vector<std::string>& lines, const size_t* section_break, bool boxed) {
  std::string out;
  if (!boxed) {
    out += "ember run stats:\n";
    for (const std::string& line : lines) out += "  " + line + "\n";
    return out;
  }
  size_t width = 0;
  for (const std::string& line : lines) width = std::max(width, text_width(line));
  const auto rule = [width](std::string_view left, std::string_view right) {
    std::string r(left);
    for (size_t i = 0; i < width + 2; ++i) r += "─";
    return r + std::string(right) + "\n";
  };
  const std::string title = "╭─ ember run ";
  out += title;
  for (size_t i = text_width(title) - 1; i < width + 2; ++i) out += "─";
  out += "╮\n";
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i == section_break[0] || i == section_break[1]) out += rule("├", "┤");
    out += "│ " + lines[i] + std::string(width - text_width(lines[i]), ' ') + " │\n";
  }
  out += rule("╰", "╯");
  return out;
}

// --- The run -----------------------------------------------------------------------------------

int run_generate(const RunCommandOptions& o) {
  const std::string prompt = o.prompt ? *o.prompt : read_text_input(*o.prompt_file, "the prompt");
  // A gap may be filled at the very start of a text: then the prompt (its prefix) is empty.
  if (prompt.empty() && !o.suffix) fail(ErrorCode::kInvalidArgument, "the prompt is empty (give text with -p or -f)");

  const bool stderr_tty = ::isatty(STDERR_FILENO) == 1;
  RunStats s;
  Timer load_timer;
  StatusLine status(stderr_tty, fmt::format("ember: loading {} ...", escape_text(o.model_path)));
  MapOptions map;
  map.mlock = o.mlock;
  ModelWithTokenizer opened = open_model_with_tokenizer(o.model_path, map);
  const ModelConfig& config = opened.config;
  const Tokenizer& tokenizer = opened.tokenizer;
  // Control tokens written in the prompt (a chat template typed by hand) are parsed, as llama.cpp
  // does; not in the code around a gap to fill.
  std::vector<TokenId> tokens;
  if (o.suffix) {
    tokens = fill_in_middle_prompt(tokenizer, prompt, *o.suffix);
    const std::optional<TokenId> bos = tokenizer.vocab().special().bos;
    if (o.no_bos && tokenizer.vocab().add_bos() && bos && tokens.front() == *bos) tokens.erase(tokens.begin());
  } else {
    tokens = tokenizer.encode(prompt, EncodeOptions{.add_special = !o.no_bos, .parse_special = true});
  }
  if (tokens.empty()) fail(ErrorCode::kInvalidArgument, "the prompt has no tokens");

  const int32_t trained = config.context_length;
  s.context = resolve_context(o.ctx_size, trained);
  const auto n_prompt = static_cast<int32_t>(tokens.size());
  if (n_prompt >= s.context) {
    fail(ErrorCode::kInvalidArgument,
         "the prompt is {} tokens, which leaves no room to generate in a context of {} (raise --ctx-size)", n_prompt,
         s.context);
  }

  CpuBackendOptions backend_options;
  backend_options.n_threads = resolve_threads(o.threads);
  CpuBackend backend(backend_options);
  ModelOptions model_options;
  model_options.max_step_tokens = std::min(s.context, model_options.max_step_tokens);
  model_options.context_size = s.context;
  model_options.gpu_layers = resolve_gpu_layers(o.device);
  model_options.batch_invariant = o.batch_invariant;
  const std::unique_ptr<Model> model = Model::from_files(std::move(opened.files), backend, model_options);
  s.load_ms = load_timer.elapsed_ms();
  status.clear();
  if (trained > 0 && s.context > trained) {
    print_warning(fmt::format("--ctx-size {} exceeds the {} tokens the model was trained on: expect degraded text",
                              s.context, trained));
  }

  check_logit_bias_tokens(o.sampling, model->config().n_vocab);
  GenerateOptions generate;
  generate.sampling = o.sampling;
  generate.stop = o.stop;
  generate.stop.max_tokens = o.n_predict;
  generate.constraint = o.constraint;
  generate.speculative = o.speculative;
  std::unique_ptr<Model> draft_model;
  if (!o.draft_model_path.empty()) {
    StatusLine draft_status(stderr_tty, fmt::format("ember: loading {} ...", escape_text(o.draft_model_path)));
    // Greedy exactness rests on the target's rows alone: the draft keeps its fastest paths.
    ModelOptions draft_options = model_options;
    draft_options.batch_invariant = false;
    draft_model = Model::from_files(GgufModelFiles::open(o.draft_model_path, map), backend, draft_options);
    check_draft_vocabulary(*model, *draft_model);
    s.draft = draft_model.get();
    s.load_ms = load_timer.elapsed_ms();
  }
  Generator generator(*model, tokenizer,
                      GeneratorOptions{.context = s.context,
                                       .kv_type = o.kv_type,
                                       .reuse_prefix = false,
                                       .draft_model = draft_model.get(),
                                       .draft_mutex = nullptr},
                      nullptr);
  generator.start(tokens, generate);

  {
    // From the first byte out (output is what tells a user it is running): the first Ctrl-C stops
    // before the next forward step (prefill chunks included), the stats still print.
    const CancelOnInterrupt interrupt([](void* g) noexcept { static_cast<Generator*>(g)->cancel(); }, &generator);
    write_stdout(prompt);
    GeneratedToken token;
    try {
      while (generator.next(token)) write_stdout(token.text);  // stop strings never reach the output
    } catch (...) {
      end_stdout_line();  // (the prompt at least is on it)
      throw;
    }
    if (o.suffix) write_stdout(*o.suffix);  // the text with its gap filled
    write_stdout("\n");
  }
  s.generation = generator.stats();

  size_t section_break[2] = {0, 0};
  const std::vector<std::string> lines =
      panel_lines(*model, generator.kv(), o.sampling, s, o, stderr_tty ? " · " : ", ", section_break);
  write_stderr(render_panel(lines, section_break, stderr_tty));
  return kExitOk;
}

}  // namespace

void add_run_command(CLI::App& app, CommandAction& action) {
  auto o = std::make_shared<RunCommandOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Generate text from a prompt, streamed as it comes");
  cmd->add_option("-m,--model", o->model_path, "GGUF model file")->required()->type_name("FILE");
  cmd->add_option("-p,--prompt", o->prompt, "The prompt (one argument: quote it)")->type_name("TEXT");
  cmd->add_option("-f,--file", o->prompt_file, "Read the prompt from FILE ('-': standard input)")->type_name("FILE");
  cmd->add_option("--suffix", o->suffix,
                  "Fill in the middle: the text after the gap, the prompt being the text before it (code models "
                  "with fill-in-the-middle tokens)")
      ->type_name("TEXT");
  cmd->add_option("-n,--n-predict", o->n_predict,
                  "Tokens to generate; -1: until an end-of-generation token or a full context")
      ->capture_default_str()
      ->type_name("N");
  cmd->add_option("-t,--threads", o->threads, "Worker threads (default 0: every CPU the process may use)")
      ->check(NumberRange(0, ThreadPool::kMaxThreads))
      ->type_name("N");
  cmd->add_option("-c,--ctx-size", o->ctx_size,
                  fmt::format("Context size in tokens, prompt included (default or 0: the model's, at most {})",
                              kDefaultMaxContext))
      ->check(NumberRange(0, 1 << 30))
      ->type_name("N");
  add_device_flags(cmd, &o->device);
  add_kv_type_flag(cmd, &o->kv_type);
  cmd->add_flag("--mlock", o->mlock, "Lock the model's pages in RAM (a warning when the limit forbids it)");
  cmd->add_flag("--deterministic", o->batch_invariant,
                "Logits independent of how tokens are grouped into forward steps, so greedy speculative decoding "
                "gives bit-identical output to plain decoding (slower prefill of F16 / BF16 weights, and of every type "
                "without AVX-512; on AMD AVX-512 CPUs slower decode of quantized weights)");
  cmd->add_flag("--no-bos", o->no_bos, "Do not add BOS (nor the EOS / SEP the vocabulary adds) to the prompt");
  add_sampling_flags(cmd, o->sampling, o->stop);
  add_constraint_flags(cmd, o->constraint_flags);
  add_speculative_flags(cmd, o->speculative, o->draft_model_path, /*server=*/false);
  cmd->footer(
      "Output: the prompt, then the generated text as it is generated (with --suffix, then the suffix: the\n"
      "text with its gap filled; stdout, a newline at the end), then\n"
      "the stats (stderr): prefill and decode tokens, time and tok/s, sampling time, total generation time,\n"
      "load time, weight / repacked / KV cache memory, the sampler settings with the seed, why it stopped.\n"
      "Generation stops at an end-of-generation token (unless --ignore-eos), after N tokens, when the\n"
      "context is full, at a --stop string (never printed), after --max-time seconds, or at Ctrl-C (once:\n"
      "stops after the current token and prints the stats; twice: quits at once).\n"
      "Sampling (docs/engine.md): logit bias, then the penalties over the last --repeat-last-n tokens\n"
      "(prompt included), then the --samplers steps in order, by default\n"
      "  " +
      default_sampler_order_text() +
      "\n"
      "then a seeded draw; a step at its off value costs nothing. --temp 0 is greedy; --mirostat 2\n"
      "replaces the ordered steps by temperature and mirostat v2.\n"
      "Structured output (docs/structured-output.md): with --grammar, --json-schema, --json or --regex only\n"
      "tokens that keep the output in the language are drawn, and generation ends when it is complete.\n"
      "Speculative decoding (--model-draft, --draft-max): a draft model's proposals, or else tokens from an\n"
      "earlier occurrence of the text's last words, are checked in one forward pass; the output is what\n"
      "plain decoding gives (greedy: the same tokens, sampling: the same distribution), faster when the\n"
      "draft is often right (a draft model) or the text repeats itself (summaries, code edits, quotes).\n"
      "Exit codes: 0 success (Ctrl-C included), 1 error (unreadable model, empty prompt, prompt longer than\n"
      "the context), 2 bad command line.");
  cmd->callback([&action, o, cmd] {
    if (o->prompt.has_value() == o->prompt_file.has_value()) {
      throw CLI::ValidationError("give the prompt with -p TEXT or -f FILE (one of them)");
    }
    if (o->n_predict < -1) throw CLI::ValidationError(fmt::format("-n must be -1 or more, not {}", o->n_predict));
    check_sampling_flags(o->sampling, o->stop);
    resolve_speculative_flags(*cmd, o->speculative, o->draft_model_path);
    check_speculative_sampling(o->speculative, o->sampling);
    o->constraint = resolve_constraint_flags(o->constraint_flags);
    action = [o] { return run_generate(*o); };
  });
}

}  // namespace ember::cli
