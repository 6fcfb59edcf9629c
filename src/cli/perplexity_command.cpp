// `ember perplexity -m MODEL -f TEXT`: a model's perplexity on a text — llama-perplexity's chunks by
// default, Hugging Face's strided windows with --stride — printed as "PPL = x +/- e" (or --json).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command_checks.h"
#include "cli/commands.h"
#include "cli/console.h"
#include "cli/device_flags.h"
#include "cli/interrupt.h"
#include "cli/number_range.h"
#include "cli/perplexity.h"
#include "cli/text_input.h"
#include "cli/value_format.h"
#include "core/check.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "engine/model_files.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace ember::cli {
namespace {

struct PerplexityOptions {
  std::string model_path;
  std::string text_path;
  int32_t ctx = 256;
  bool ctx_given = false;  // --ctx on the command line (else the default)
  int32_t stride = 0;      // 0: llama-perplexity's chunks
  int32_t batch = 0;       // 0: ctx
  int threads = 0;
  int32_t chunks = 0;  // 0: all
  bool no_bos = false;
  bool json = false;
  DType kv_type = DType::kF16;
};

struct PerplexityResult {
  NllAccumulator nll;
  int64_t n_tokens = 0;          // in the text
  int64_t tokens_evaluated = 0;  // run through the model (windows overlap with --stride)
  size_t windows_done = 0;
  size_t windows_planned = 0;
  double seconds = 0;
  bool interrupted = false;
};

// Runs one window from an empty cache in batches of `batch_size` rows and adds the NLL of its
// scored tokens to `nll`. False, with nothing added, when Ctrl-C came before its last batch.
bool evaluate_window(Model& model, KvCache& kv, std::span<const TokenId> tokens, const PerplexityWindow& w, TokenId bos,
                     int32_t batch_size, const CancelOnInterrupt& interrupt, NllAccumulator& nll) {
  const auto n_vocab = static_cast<size_t>(model.config().n_vocab);
  const SeqId seq = kv.add_sequence();
  NllAccumulator window_nll;
  Batch batch;
  const int64_t n = w.end - w.begin;
  for (int64_t b0 = 0; b0 < n; b0 += batch_size) {
    if (interrupt.interrupted()) {
      kv.remove_sequence(seq);
      return false;
    }
    const int64_t b1 = std::min(n, b0 + batch_size);
    batch.clear();
    // Row r holds token begin + r and predicts token begin + r + 1.
    const auto scored = [&w](int64_t r) { return w.begin + r + 1 >= w.score_begin && w.begin + r + 1 < w.end; };
    for (int64_t r = b0; r < b1; ++r) {
      const TokenId token = r == 0 && w.bos_first ? bos : tokens[static_cast<size_t>(w.begin + r)];
      batch.add(token, static_cast<int32_t>(r), seq, scored(r));
    }
    const std::span<const float> logits = model.forward(batch, kv);
    size_t row = 0;
    for (int64_t r = b0; r < b1; ++r) {
      if (!scored(r)) continue;
      const int64_t at = w.begin + r + 1;  // the scored token
      const double token = token_nll(logits.subspan(row++ * n_vocab, n_vocab), tokens[static_cast<size_t>(at)]);
      if (!std::isfinite(token)) {  // NaN or infinite logits: no perplexity to report, not "nan"
        fail(ErrorCode::kFormat,
             "the model's logits before token {} of the text are not finite (NaN or infinity): its weights hold NaN "
             "or infinity, or its activations overflowed",
             at);
      }
      window_nll.add(token);
    }
  }
  kv.remove_sequence(seq);
  nll.add(window_nll);
  return true;
}

// "1 chunk", "5 chunks", "1 window" (--stride), ...
std::string count_text(size_t n, const PerplexityOptions& o) {
  return fmt::format("{} {}{}", n, o.stride > 0 ? "window" : "chunk", n == 1 ? "" : "s");
}

std::string perplexity_text(const PerplexityResult& r, const PerplexityOptions& o) {
  std::string out = fmt::format("PPL = {:.4f} +/- {:.5f}\n", r.nll.ppl(), r.nll.ppl_error());
  out += fmt::format("{} token{} scored in {} of {}{} tokens", r.nll.count(), r.nll.count() == 1 ? "" : "s",
                     count_text(r.windows_done, o), o.stride > 0 ? "up to " : "", o.ctx);
  if (o.stride > 0) out += fmt::format(", stride {}", o.stride);
  out += fmt::format(" ({} tokens in the text)", r.n_tokens);
  if (r.interrupted) out += fmt::format(", interrupted: {} planned", count_text(r.windows_planned, o));
  out += fmt::format("\n{} tokens evaluated in {:.2f} s, {:.1f} tokens/s\n", r.tokens_evaluated, r.seconds,
                     r.seconds > 0 ? static_cast<double>(r.tokens_evaluated) / r.seconds : 0.0);
  return out;
}

std::string perplexity_json(const PerplexityResult& r, const PerplexityOptions& o) {
  const nlohmann::ordered_json j = {
      {"ppl", r.nll.ppl()},
      {"ppl_error", r.nll.ppl_error()},
      {"nll", r.nll.mean()},
      {"nll_error", r.nll.mean_error()},
      {"tokens_scored", r.nll.count()},
      {"chunks", r.windows_done},
      {"chunks_planned", r.windows_planned},
      {"ctx", o.ctx},
      {"stride", o.stride},  // 0: llama-perplexity's chunks
      {"tokens", r.n_tokens},
      {"tokens_evaluated", r.tokens_evaluated},
      {"seconds", r.seconds},
      {"interrupted", r.interrupted},
  };
  return j.dump(2) + "\n";
}

// The windows to run over the text's tokens; Error(kInvalidArgument) when the text is too short.
std::vector<PerplexityWindow> plan_windows(const PerplexityOptions& o, int64_t n_tokens, bool bos_first) {
  if (o.stride > 0) {
    if (n_tokens < 2) {
      fail(ErrorCode::kInvalidArgument, "'{}' is only {} token{}: nothing to score", o.text_path, n_tokens,
           n_tokens == 1 ? "" : "s");
    }
    return plan_strided(n_tokens, o.ctx, o.stride, o.chunks);
  }
  if (n_tokens < o.ctx) {
    fail(ErrorCode::kInvalidArgument,
         "'{}' is {} tokens, less than one chunk of --ctx {} (give more text or a smaller --ctx)", o.text_path,
         n_tokens, o.ctx);
  }
  return plan_chunks(n_tokens, o.ctx, o.chunks, bos_first);
}

// Runs the windows in order, with a progress bar on a terminal (else one line with an ETA after
// the first window); the first Ctrl-C stops before the next forward step, keeping the windows done.
PerplexityResult evaluate(Model& model, std::span<const TokenId> tokens, const std::vector<PerplexityWindow>& windows,
                          TokenId bos, const PerplexityOptions& o, bool stderr_tty) {
  KvCache kv(model.config(), model.kv_options(o.ctx, o.kv_type, o.kv_type));
  PerplexityResult r;
  r.n_tokens = std::ssize(tokens);
  r.windows_planned = windows.size();
  const CancelOnInterrupt interrupt([](void*) noexcept {}, nullptr);
  ProgressBar bar("perplexity (" + count_text(windows.size(), o) + ")");
  Timer timer;
  for (const PerplexityWindow& w : windows) {
    if (!evaluate_window(model, kv, tokens, w, bos, model.options().max_step_tokens, interrupt, r.nll)) {
      r.interrupted = true;
      break;
    }
    ++r.windows_done;
    r.tokens_evaluated += w.end - w.begin;
    bar.update(r.windows_done, windows.size(), fmt::format("PPL {:.4f}", r.nll.ppl()));
    if (!stderr_tty && r.windows_done == 1 && windows.size() > 1) {
      const double first = timer.elapsed_seconds();
      write_stderr(fmt::format("ember: perplexity: {:.3f} s for the first of {}, about {:.1f} s in all\n", first,
                               count_text(windows.size(), o), first * static_cast<double>(windows.size())));
    }
  }
  r.seconds = timer.elapsed_seconds();
  return r;
}

int run_perplexity(const PerplexityOptions& given) {
  PerplexityOptions o = given;
  const std::string text = read_text_input(o.text_path, "the text");
  if (text.empty()) {
    fail(ErrorCode::kInvalidArgument, "{} is empty: no text to score",
         o.text_path == "-" ? std::string("standard input") : "'" + o.text_path + "'");
  }

  const bool stderr_tty = ::isatty(STDERR_FILENO) == 1;
  StatusLine status(stderr_tty, fmt::format("ember: loading {} ...", escape_text(o.model_path)));
  ModelWithTokenizer opened = open_model_with_tokenizer(o.model_path);
  const ModelConfig& config = opened.config;
  const GgufFile& file = opened.files.metadata_file();
  // The default chunk fits the model: a model trained on fewer tokens scores chunks of its context.
  if (!o.ctx_given && config.context_length > 0) {
    o.ctx = std::min(o.ctx, config.context_length);
    if (o.stride == 0 && o.ctx < 3) {
      fail(ErrorCode::kInvalidArgument, "'{}' has a context of {} tokens: chunks need at least 3 (give --stride)",
           file.name(), o.ctx);
    }
    if (o.stride > o.ctx) {
      fail(ErrorCode::kInvalidArgument, "--stride {} is more than the {}-token context of '{}' (the chunk size)",
           o.stride, o.ctx, file.name());
    }
  }
  if (config.context_length > 0 && o.ctx > config.context_length) {
    fail(ErrorCode::kInvalidArgument, "--ctx {}{} exceeds the {}-token context of '{}' (give a smaller --ctx)", o.ctx,
         o.ctx_given ? "" : " (the default)", config.context_length, file.name());
  }
  const Tokenizer& tokenizer = opened.tokenizer;
  // Plain text: control tokens written in it stay text, as in llama-perplexity.
  const std::vector<TokenId> tokens = tokenizer.encode(text, EncodeOptions{.add_special = !o.no_bos});
  const std::optional<TokenId> bos = tokenizer.vocab().special().bos;
  const std::vector<PerplexityWindow> windows =
      plan_windows(o, std::ssize(tokens), !o.no_bos && bos.has_value() && tokenizer.vocab().add_bos());

  CpuBackendOptions backend_options;
  backend_options.n_threads = resolve_threads(o.threads);
  CpuBackend backend(backend_options);
  ModelOptions model_options;
  model_options.max_step_tokens = o.batch > 0 ? std::min(o.batch, o.ctx) : o.ctx;  // rows per forward()
  model_options.context_size = o.ctx;
  const std::unique_ptr<Model> model = Model::from_files(std::move(opened.files), backend, model_options);
  status.clear();

  const PerplexityResult r = evaluate(*model, tokens, windows, bos.value_or(0), o, stderr_tty);
  if (r.windows_done == 0) {
    fail(ErrorCode::kInvalidArgument, "interrupted (Ctrl-C) before the first of {} was done",
         count_text(windows.size(), o));
  }
  if (r.interrupted) {
    write_stderr(fmt::format("ember: interrupted (Ctrl-C): the result covers {} of {}\n", r.windows_done,
                             count_text(r.windows_planned, o)));
  }
  write_stdout(o.json ? perplexity_json(r, o) : perplexity_text(r, o));
  return kExitOk;
}

}  // namespace

void add_perplexity_command(CLI::App& app, CommandAction& action) {
  auto o = std::make_shared<PerplexityOptions>();
  CLI::App* cmd = app.add_subcommand("perplexity", "Measure a model's perplexity on a text (like llama-perplexity)");
  cmd->add_option("-m,--model", o->model_path, "GGUF model file")->required()->type_name("FILE");
  cmd->add_option("-f,--file", o->text_path, "The text to score ('-': standard input)")->required()->type_name("FILE");
  cmd->add_option("-c,--ctx,--ctx-size", o->ctx, "Tokens per chunk or window (at most the model's context)")
      ->check(NumberRange(2, 1 << 20))
      ->capture_default_str()
      ->type_name("N");
  add_kv_type_flag(cmd, &o->kv_type);
  cmd->add_option("--stride", o->stride, "Sliding windows that start every S tokens, 1 <= S <= --ctx (see below)")
      ->check(NumberRange(1, 1 << 20))
      ->type_name("S");
  cmd->add_option("-b,--batch", o->batch, "Tokens per forward step (default: --ctx; more acts as --ctx)")
      ->check(NumberRange(1, 1 << 20))
      ->type_name("N");
  cmd->add_option("-t,--threads", o->threads, "Worker threads (default 0: every CPU the process may use)")
      ->check(NumberRange(0, ThreadPool::kMaxThreads))
      ->type_name("N");
  cmd->add_option("--chunks", o->chunks, "Evaluate at most N chunks (windows with --stride)")
      ->check(NumberRange(1, 1 << 30))
      ->type_name("N");
  cmd->add_flag("--no-bos", o->no_bos, "Add no BOS to the text, nor put one at the start of each chunk");
  cmd->add_flag("--json", o->json, "Print the result as JSON");
  cmd->footer(
      "The whole file is tokenized once, BOS first as the vocabulary asks (one trailing newline dropped).\n"
      "Default (llama-perplexity): chunk i is tokens [i*ctx, (i+1)*ctx), n_tokens/ctx chunks, each run\n"
      "from an empty cache with its first token replaced by BOS; only the second half is scored: the\n"
      "rows at positions ctx/2 .. ctx-2 predict the tokens after them (ctx - ctx/2 - 1 per chunk).\n"
      "--stride S (Hugging Face's sliding windows): window k is tokens [k*S, min(k*S + ctx, n_tokens)),\n"
      "run from an empty cache as they are (no BOS put in); it scores the tokens no earlier window\n"
      "scored — the first window every token after its first, later ones their last end - previous end\n"
      "tokens, never a window's first token — and the window that reaches the end of the text is the last.\n"
      "(This is not llama-perplexity's --ppl-stride, which puts BOS in every window and scores only the\n"
      "last S tokens of each full window.)\n"
      "Each token's NLL is -log softmax(logits)[token] in double; PPL = exp(mean NLL), and its error is\n"
      "PPL * sqrt((mean(NLL^2) - mean(NLL)^2) / (N - 1)) over the N tokens scored, as in llama.cpp.\n"
      "Output (stdout): \"PPL = x +/- e\", then the tokens scored, chunks, ctx, seconds and tokens/s; --json:\n"
      "ppl, ppl_error, nll, nll_error, tokens_scored, chunks, chunks_planned, ctx, stride, tokens,\n"
      "tokens_evaluated, seconds, interrupted. Progress: a bar on a terminal, else one line with an ETA.\n"
      "Ctrl-C once stops after the current forward step and reports the chunks done; twice quits at once.\n"
      "Exit codes: 0 success (a Ctrl-C after the first chunk included), 1 error (unreadable model or\n"
      "text, an empty text, a text shorter than one chunk, --ctx above the model's context, Ctrl-C before\n"
      "the first chunk is done), 2 bad command line.");
  cmd->callback([&action, o, cmd] {
    o->ctx_given = cmd->count("--ctx") > 0;
    if (o->stride > o->ctx) {
      throw CLI::ValidationError("--stride", fmt::format("{} is more than --ctx {}", o->stride, o->ctx));
    }
    if (o->stride == 0 && o->ctx < 3) {
      throw CLI::ValidationError("--ctx", "chunks need at least 3 tokens to score one (or give --stride)");
    }
    action = [o] { return run_perplexity(*o); };
  });
}

}  // namespace ember::cli
