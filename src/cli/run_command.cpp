// `ember run -m MODEL -p PROMPT`: generates text on the CPU — the prompt as one batch, then one
// token per step, streamed to stdout as it comes — and ends with a stats panel on stderr.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "cli/command_checks.h"
#include "cli/commands.h"
#include "cli/console.h"
#include "cli/inspect_report.h"
#include "cli/text_table.h"
#include "cli/value_format.h"
#include "core/check.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "engine/sampler.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace ember::cli {
namespace {

// The default context when --ctx-size is not given: the model's, but no more than this (a 128k
// context would allocate gigabytes of KV cache for a short run).
constexpr int32_t kDefaultMaxContext = 4096;
constexpr int32_t kMaxStepTokens = 512;

struct RunCommandOptions {
  std::string model_path;
  std::optional<std::string> prompt;
  std::optional<std::string> prompt_file;  // "-": standard input
  int32_t n_predict = 128;                 // -1: until end of generation or a full context
  int threads = 0;
  SamplerOptions sampler;
  std::optional<uint64_t> seed;  // absent: a random one (printed with the stats)
  int32_t ctx_size = 0;          // 0: the model's context, at most kDefaultMaxContext
  bool mlock = false;
  bool no_bos = false;
};

enum class StopReason { kEndOfGeneration, kTokenLimit, kContextFull, kInterrupted };

struct RunStats {
  double load_ms = 0;
  int32_t n_prompt = 0;
  double prefill_ms = 0;
  int32_t n_decoded = 0;  // single-token forward passes after the prompt
  double decode_ms = 0;
  int32_t n_sampled = 0;
  double sample_ms = 0;
  int32_t n_generated = 0;  // tokens printed (an end-of-generation token is sampled, not printed)
  double total_ms = 0;      // the prompt's forward pass to the last token, output included
  int32_t context = 0;
  StopReason stop = StopReason::kTokenLimit;
};

// --- Ctrl-C ------------------------------------------------------------------------------------

// The first SIGINT asks the generation loop to stop after the current token (the stats still
// print, the exit code is 0); a second one goes to the handler that was there before — main()'s
// temporary-file cleanup, which re-raises it — so Ctrl-C twice always ends the process.
std::atomic<bool> g_stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "read and written in a signal handler");
struct sigaction g_previous_sigint {};

extern "C" void request_stop(int sig) {
  if (g_stop_requested.exchange(true)) {
    ::sigaction(sig, &g_previous_sigint, nullptr);
    ::raise(sig);  // pending until this handler returns (SIGINT is blocked in it), then the old one runs
  }
}

// Installs request_stop for its lifetime (the generation loop only). ThreadPool workers block
// signals, so the handler runs on the thread that runs this loop.
class StopOnInterrupt {
 public:
  StopOnInterrupt() {
    g_stop_requested.store(false);
    ::sigaction(SIGINT, nullptr, &g_previous_sigint);
    if (g_previous_sigint.sa_handler == SIG_IGN) return;  // ignored on purpose (a background job): keep it
    struct sigaction action {};
    action.sa_handler = request_stop;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;  // a write to stdout under way continues
    installed_ = ::sigaction(SIGINT, &action, nullptr) == 0;
  }
  ~StopOnInterrupt() {
    if (installed_) ::sigaction(SIGINT, &g_previous_sigint, nullptr);
  }
  StopOnInterrupt(const StopOnInterrupt&) = delete;
  StopOnInterrupt& operator=(const StopOnInterrupt&) = delete;

  bool requested() const noexcept { return g_stop_requested.load(std::memory_order_relaxed); }

 private:
  bool installed_ = false;
};

// --- Input -------------------------------------------------------------------------------------

std::string read_prompt_file(const std::string& path) {
  const bool from_stdin = path == "-";
  if (from_stdin && ::isatty(STDIN_FILENO) == 1) {
    write_stderr("ember: reading the prompt from standard input (end it with Ctrl-D)\n");
  }
  std::FILE* f = from_stdin ? stdin : std::fopen(path.c_str(), "rb");
  if (f == nullptr) fail(ErrorCode::kIo, "cannot open '{}': {}", path, std::strerror(errno));
  const auto close = [from_stdin](std::FILE* file) {
    if (!from_stdin) std::fclose(file);
  };
  const std::unique_ptr<std::FILE, decltype(close)> closer(f, close);
  std::string text;
  char buffer[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, n);
  if (std::ferror(f)) {
    fail(ErrorCode::kIo, "cannot read '{}': {}", from_stdin ? "standard input" : path, std::strerror(errno));
  }
  // Like llama.cpp's -f: the newline an editor puts at the end is not part of the prompt.
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

// --- The stats panel ---------------------------------------------------------------------------

std::string stop_text(const RunStats& s, const RunCommandOptions& o) {
  switch (s.stop) {
    case StopReason::kEndOfGeneration: return "end-of-generation token";
    case StopReason::kTokenLimit: return fmt::format("token limit (-n {})", o.n_predict);
    case StopReason::kContextFull: return fmt::format("context full ({} tokens, --ctx-size)", s.context);
    case StopReason::kInterrupted: return "interrupted (Ctrl-C)";
  }
  return "";
}

std::string rate(int32_t n, double ms) {
  return n > 0 && ms > 0 ? fmt::format("{:.1f} tok/s", n * 1e3 / ms) : std::string("-");
}

// The panel's lines, without borders. `sep` joins the parts of a line (" · " on a terminal).
std::vector<std::string> panel_lines(const Model& model, const KvCache& kv, const Sampler& sampler, const RunStats& s,
                                     const RunCommandOptions& o, std::string_view sep, size_t* section_break) {
  const ModelConfig& c = model.config();
  const CpuBackend& backend = model.backend();
  const auto label = [](std::string_view name) { return fmt::format("{:<10}", name); };
  const std::string name = c.name.empty() ? std::string(arch_name(c.arch)) : c.name;
  std::vector<std::string> lines;
  lines.push_back(label("model") + fmt::format("{}{}{}{}{}{}{} params", name, sep, arch_name(c.arch), sep,
                                               model_type_label(model.file()), sep,
                                               human_count(model.parameter_count())));
  lines.push_back(label("backend") + fmt::format("cpu {}{}{} thread{}", backend.kernels_name(), sep,
                                                 backend.n_threads(), backend.n_threads() == 1 ? "" : "s"));
  section_break[0] = lines.size();

  using Align = TextTable::Align;
  TextTable table({Align::kLeft, Align::kRight, Align::kLeft, Align::kRight, Align::kRight}, 0);
  const auto ms = [](double v) { return fmt::format("{:.2f} ms", v); };
  table.add_row(
      {label("prefill"), fmt::format("{}", s.n_prompt), "tokens", ms(s.prefill_ms), rate(s.n_prompt, s.prefill_ms)});
  table.add_row(
      {label("decode"), fmt::format("{}", s.n_decoded), "tokens", ms(s.decode_ms), rate(s.n_decoded, s.decode_ms)});
  table.add_row({label("sampling"), fmt::format("{}", s.n_sampled), "tokens", ms(s.sample_ms),
                 s.n_sampled > 0 ? fmt::format("{:.1f} µs/token", s.sample_ms * 1e3 / s.n_sampled) : "-"});
  table.add_row(
      {label("total"), fmt::format("{}", s.n_generated), "generated", ms(s.total_ms), rate(s.n_generated, s.total_ms)});
  std::string rendered;
  table.render(rendered);
  for (size_t at = 0; at < rendered.size();) {
    const size_t end = rendered.find('\n', at);
    lines.push_back(rendered.substr(at, end - at));
    at = end + 1;
  }
  section_break[1] = lines.size();

  lines.push_back(label("load") + ms(s.load_ms));
  lines.push_back(label("weights") + fmt::format("{} mapped{}{} repacked", human_bytes(model.weight_bytes()), sep,
                                                 human_bytes(backend.packed_bytes())));
  lines.push_back(label("KV cache") +
                  fmt::format("{} ({} tokens, {})", human_bytes(kv.bytes()), s.context, dtype_name(DType::kF16)));
  const SamplerOptions& so = sampler.options();
  lines.push_back(label("sampler") + (sampler.greedy()
                                          ? std::string("greedy (--temp 0)")
                                          : fmt::format("temp {:.2f}{}top-k {}{}top-p {:.2f}{}seed {}", so.temperature,
                                                        sep, so.top_k, sep, so.top_p, sep, so.seed)));
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

// "ember: loading ..." on a terminal while the model loads, erased when it is done (or fails).
class StatusLine {
 public:
  StatusLine(bool shown, std::string_view text) : shown_(shown) {
    if (shown_) write_stderr(text);
  }
  ~StatusLine() { clear(); }
  StatusLine(const StatusLine&) = delete;
  StatusLine& operator=(const StatusLine&) = delete;

  void clear() {
    if (shown_) write_stderr("\r\x1b[K");
    shown_ = false;
  }

 private:
  bool shown_;
};

// --- The run -----------------------------------------------------------------------------------

uint64_t random_seed() {
  std::random_device device;
  return (uint64_t{device()} << 32) ^ device();
}

int run_generate(const RunCommandOptions& o) {
  const std::string prompt = o.prompt ? *o.prompt : read_prompt_file(*o.prompt_file);
  if (prompt.empty()) fail(ErrorCode::kInvalidArgument, "the prompt is empty (give text with -p or -f)");

  const bool stderr_tty = ::isatty(STDERR_FILENO) == 1;
  RunStats s;
  Timer load_timer;
  StatusLine status(stderr_tty, fmt::format("ember: loading {} ...", escape_text(o.model_path)));
  MapOptions map;
  map.mlock = o.mlock;
  GgufFile file = GgufFile::open(o.model_path, map);
  if (!file.contains("tokenizer.ggml.model")) {
    fail(ErrorCode::kNotFound, "'{}' has no tokenizer (no tokenizer.ggml.model key)", file.name());
  }
  const ModelConfig config = ModelConfig::from_gguf(file);
  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  // Control tokens written in the prompt (a chat template typed by hand) are parsed, as llama.cpp does.
  const std::vector<TokenId> tokens =
      tokenizer.encode(prompt, EncodeOptions{.add_special = !o.no_bos, .parse_special = true});
  if (tokens.empty()) fail(ErrorCode::kInvalidArgument, "the prompt has no tokens");

  const int32_t trained = config.context_length;
  s.context = o.ctx_size > 0 ? o.ctx_size : trained > 0 ? std::min(trained, kDefaultMaxContext) : kDefaultMaxContext;
  s.n_prompt = static_cast<int32_t>(tokens.size());
  if (s.n_prompt >= s.context) {
    fail(ErrorCode::kInvalidArgument,
         "the prompt is {} tokens, which leaves no room to generate in a context of {} (raise --ctx-size)", s.n_prompt,
         s.context);
  }

  CpuBackendOptions backend_options;
  backend_options.n_threads = resolve_threads(o.threads);
  CpuBackend backend(backend_options);
  ModelOptions model_options;
  model_options.max_step_tokens = std::min(s.context, kMaxStepTokens);
  model_options.context_size = s.context;
  const std::unique_ptr<Model> model = Model::from_file(std::move(file), backend, model_options);
  KvCache kv(model->config(), model->kv_options(s.context));
  s.load_ms = load_timer.elapsed_ms();
  status.clear();
  if (trained > 0 && s.context > trained) {
    print_warning(fmt::format("--ctx-size {} exceeds the {} tokens the model was trained on: expect degraded text",
                              s.context, trained));
  }

  SamplerOptions sampler_options = o.sampler;
  sampler_options.seed = o.seed ? *o.seed : random_seed();
  Sampler sampler(sampler_options);
  const Vocab& vocab = tokenizer.vocab();
  const size_t n_vocab = static_cast<size_t>(model->config().n_vocab);
  // The generation continues the prompt: its first piece keeps its leading space.
  Detokenizer detokenizer(tokenizer, DecodeOptions{.render_special = false, .strip_space_prefix = false});

  {
    StopOnInterrupt interrupt;  // from the first byte out: output is what tells a user it is running
    write_stdout(prompt);
    Timer total_timer;
    const SeqId seq = kv.add_sequence();
    Batch batch;
    // The prompt in chunks of one forward step each, so Ctrl-C also stops a long prefill.
    const int32_t chunk = model->options().max_step_tokens;
    Timer timer;
    std::span<const float> logits;
    for (int32_t begin = 0; begin < s.n_prompt && !interrupt.requested(); begin += chunk) {
      batch.clear();
      for (int32_t i = begin; i < std::min(s.n_prompt, begin + chunk); ++i) {
        batch.add(tokens[static_cast<size_t>(i)], i, seq, i + 1 == s.n_prompt);
      }
      logits = model->forward(batch, kv);
    }
    s.prefill_ms = timer.elapsed_ms();
    int32_t n_past = s.n_prompt;
    s.stop = StopReason::kTokenLimit;
    while (o.n_predict < 0 || s.n_generated < o.n_predict) {
      if (interrupt.requested()) {
        s.stop = StopReason::kInterrupted;
        break;
      }
      timer.reset();
      const TokenId id = sampler.sample(logits.first(n_vocab));
      s.sample_ms += timer.elapsed_ms();
      ++s.n_sampled;
      if (vocab.is_end_of_generation(id)) {
        s.stop = StopReason::kEndOfGeneration;
        break;
      }
      write_stdout(detokenizer.push(id));
      ++s.n_generated;
      if (o.n_predict >= 0 && s.n_generated >= o.n_predict) break;
      if (n_past >= s.context) {  // the token just printed has no room in the cache
        s.stop = StopReason::kContextFull;
        break;
      }
      batch.clear();
      batch.add(id, n_past++, seq, true);
      timer.reset();
      logits = model->forward(batch, kv);
      s.decode_ms += timer.elapsed_ms();
      ++s.n_decoded;
    }
    write_stdout(detokenizer.flush() + "\n");
    s.total_ms = total_timer.elapsed_ms();
  }

  size_t section_break[2] = {0, 0};
  const std::vector<std::string> lines =
      panel_lines(*model, kv, sampler, s, o, stderr_tty ? " · " : ", ", section_break);
  write_stderr(render_panel(lines, section_break, stderr_tty));
  return kExitOk;
}

}  // namespace

void add_run_command(CLI::App& app, CommandAction& action) {
  auto o = std::make_shared<RunCommandOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Generate text from a prompt on the CPU, streamed as it comes");
  cmd->add_option("-m,--model", o->model_path, "GGUF model file")->required()->type_name("FILE");
  cmd->add_option("-p,--prompt", o->prompt, "The prompt (one argument: quote it)")->type_name("TEXT");
  cmd->add_option("-f,--file", o->prompt_file, "Read the prompt from FILE ('-': standard input)")->type_name("FILE");
  cmd->add_option("-n,--n-predict", o->n_predict,
                  "Tokens to generate; -1: until an end-of-generation token or a full context")
      ->capture_default_str()
      ->type_name("N");
  cmd->add_option("-t,--threads", o->threads, "Worker threads (default 0: every CPU the process may use)")
      ->type_name("N");
  cmd->add_option("--temp", o->sampler.temperature, "Sampling temperature; 0: greedy (argmax)")
      ->capture_default_str()
      ->type_name("T");
  cmd->add_option("--top-k", o->sampler.top_k, "Sample among the K most likely tokens; 0: all")
      ->capture_default_str()
      ->type_name("K");
  cmd->add_option("--top-p", o->sampler.top_p, "Then among the fewest holding this probability, in (0, 1]; 1: off")
      ->capture_default_str()
      ->type_name("P");
  cmd->add_option("--seed", o->seed, "Sampling seed (default: a random one, shown in the stats)")->type_name("S");
  cmd->add_option(
         "-c,--ctx-size", o->ctx_size,
         fmt::format("Context size in tokens, prompt included (default: the model's, at most {})", kDefaultMaxContext))
      ->type_name("N");
  cmd->add_flag("--mlock", o->mlock, "Lock the model's pages in RAM (a warning when the limit forbids it)");
  cmd->add_flag("--no-bos", o->no_bos, "Do not add BOS (nor the EOS / SEP the vocabulary adds) to the prompt");
  cmd->footer(
      "Output: the prompt, then the generated text as it is generated (stdout, a newline at the end), then\n"
      "the stats (stderr): prefill and decode tokens, time and tok/s, sampling time, total generation time,\n"
      "load time, weight / repacked / KV cache memory, the sampler settings with the seed, why it stopped.\n"
      "Generation stops at an end-of-generation token, after N tokens, when the context is full, or at\n"
      "Ctrl-C (once: stops after the current token and prints the stats; twice: quits at once).\n"
      "Sampling: temperature, then top-k, then top-p, then a seeded draw; --temp 0 is greedy.\n"
      "Exit codes: 0 success (Ctrl-C included), 1 error (unreadable model, empty prompt, prompt longer than\n"
      "the context), 2 bad command line.");
  cmd->callback([&action, o] {
    if (o->prompt.has_value() == o->prompt_file.has_value()) {
      throw CLI::ValidationError("give the prompt with -p TEXT or -f FILE (one of them)");
    }
    if (o->n_predict < -1) throw CLI::ValidationError(fmt::format("-n must be -1 or more, not {}", o->n_predict));
    if (o->threads < 0 || o->threads > ThreadPool::kMaxThreads) {
      throw CLI::ValidationError(fmt::format("--threads must be 0 to {}, not {}", ThreadPool::kMaxThreads, o->threads));
    }
    if (o->ctx_size < 0) throw CLI::ValidationError(fmt::format("--ctx-size must be 0 or more, not {}", o->ctx_size));
    try {
      validate(o->sampler);
    } catch (const Error& e) {
      throw CLI::ValidationError(e.what());
    }
    action = [o] { return run_generate(*o); };
  });
}

}  // namespace ember::cli
