// `ember chat -m MODEL`: an interactive conversation — the model's chat template, streamed replies,
// the conversation's KV cache kept between turns (each turn computes only its new tokens), slash
// commands, Ctrl-C to interrupt a reply and Ctrl-D to leave.
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command_checks.h"
#include "cli/commands.h"
#include "cli/console.h"
#include "cli/device_flags.h"
#include "cli/interrupt.h"
#include "cli/line_reader.h"
#include "cli/number_range.h"
#include "cli/sampling_flags.h"
#include "cli/speculative_flags.h"
#include "cli/value_format.h"
#include "core/atomic_file.h"
#include "core/check.h"
#include "core/thread_pool.h"
#include "ember/ember.hpp"
#include "model/model.h"
#include "tokenizer/chat_template/chat_template.h"

namespace ember::cli {
namespace {

struct ChatCommandOptions {
  std::string model_path;
  std::optional<std::string> system;
  std::optional<std::string> chat_template;  // a file, a preset name
  int threads = 0;
  int32_t ctx_size = 0;
  DType kv_type = DType::kF16;
  bool mlock = false;
  bool batch_invariant = false;  // --deterministic
  bool no_prefix_reuse = false;
  SamplingParams sampling;
  StopConditions stop;
  GenerateOptions::Speculative speculative;
  std::string draft_model_path;  // empty: prompt lookup
  int draft_threads = -1;        // --threads-draft; -1: by the draft's size
};

// A draft file under this size runs on the calling thread alone by default: its steps are too small
// to split, and a second pool of spinning workers would compete with the model's for the cores.
constexpr uintmax_t kSmallDraftBytes = uintmax_t{256} << 20;

// --- The conversation -------------------------------------------------------------------------

class Chat {
 public:
  Chat(const ChatCommandOptions& o, std::shared_ptr<Llm> llm, std::shared_ptr<Llm> draft, bool interactive)
      : options_(o),
        llm_(std::move(llm)),
        session_(llm_, SessionOptions{.reuse_prefix = !o.no_prefix_reuse, .draft_model = std::move(draft)}),
        interactive_(interactive) {
    if (o.system) messages_.push_back({"system", *o.system});
  }

  void run(LineReader& reader) {
    if (interactive_) write_stderr(banner());
    while (std::optional<std::string> line = reader.read("> ")) {
      if (line->find_first_not_of(" \t\n") == std::string::npos) continue;
      if ((*line)[0] == '/') {
        if (!command(*line)) break;
        continue;
      }
      reply(*line);
    }
  }

 private:
  std::string banner() const {
    const ModelInfo& m = llm_->info();
    return fmt::format(
        "ember chat · {} · {} · {} context · {} thread{}\n"
        "Type a message; /help lists the commands; Ctrl-C stops a reply; Ctrl-D quits.\n",
        one_line_text(m.name), m.type, m.context, m.threads, m.threads == 1 ? "" : "s");
  }

  void reply(const std::string& text) {
    messages_.push_back({"user", text});
    GenerateOptions g;
    g.sampling = options_.sampling;
    g.stop = options_.stop;
    g.speculative = options_.speculative;
    g.add_special = true;    // Llm::tokenize keeps one BOS when the template writes it
    g.parse_special = true;  // the template's control tokens (the user's text is data, but rendered in it)
    std::optional<Generation> generation;
    bool rendered = false;
    try {
      const std::string prompt = llm_->apply_chat_template(messages_, true);
      rendered = true;
      generation.emplace(session_.generate(prompt, g));
    } catch (const Error& e) {
      messages_.pop_back();
      write_stderr(fmt::format("ember: {}\n", e.what()));
      if (e.code() == ErrorCode::kInvalidArgument) {
        // /reset keeps the system message, which may be what the template refuses ("System role
        // not supported"): a template's error names the way out of that too.
        write_stderr(!rendered && system_message() ? "(/reset starts a new conversation; /system with no text drops "
                                                     "the system message)\n"
                                                   : "(/reset starts a new conversation)\n");
      }
      return;
    }
    {
      // Ctrl-C stops the reply, not the program (a second one during the same reply quits).
      const CancelOnInterrupt interrupt([](void* session) noexcept { static_cast<Session*>(session)->cancel(); },
                                        &session_);
      GeneratedToken token;
      bool line_open = false;  // text written since the last newline
      try {
        while (generation->next(token)) {
          write_stdout(token.text);
          if (!token.text.empty()) line_open = token.text.back() != '\n';
        }
      } catch (...) {
        if (line_open) end_stdout_line();
        throw;
      }
    }
    write_stdout("\n");
    last_ = generation->stats();
    has_last_ = true;
    if (last_.finish == FinishReason::kCancelled && generation->text().empty()) {
      messages_.pop_back();  // interrupted before a word: as if the message had not been sent
    } else {
      messages_.push_back({"assistant", generation->text()});
    }
    switch (last_.finish) {
      case FinishReason::kCancelled: write_stderr("[interrupted]\n"); break;
      case FinishReason::kContextFull: write_stderr("[the context is full: /reset starts a new conversation]\n"); break;
      case FinishReason::kMaxTokens:
        if (interactive_) write_stderr("[token limit]\n");
        break;
      default: break;
    }
  }

  // Runs a slash command; false to quit.
  bool command(const std::string& line) {
    const size_t space = line.find_first_of(" \t");
    const std::string name = line.substr(0, space);
    const size_t arg_at = space == std::string::npos ? std::string::npos : line.find_first_not_of(" \t", space);
    std::string arg = arg_at == std::string::npos ? "" : line.substr(arg_at);
    while (!arg.empty() && (arg.back() == ' ' || arg.back() == '\t')) arg.pop_back();
    if (name == "/exit" || name == "/quit") return false;
    if (name == "/help") {
      write_stderr(
          "/reset          start a new conversation (the system message stays)\n"
          "/system TEXT    set the system message (empty: none) and start over\n"
          "/save FILE      save the conversation as JSON\n"
          "/load FILE      continue a saved conversation\n"
          "/params         the sampling parameters\n"
          "/stats          the last reply's tokens and timings\n"
          "/exit           quit (or Ctrl-D)\n");
    } else if (name == "/reset") {
      reset(system_message());
      write_stderr("[new conversation]\n");
    } else if (name == "/system") {
      reset(arg.empty() ? std::nullopt : std::optional<std::string>(arg));
      write_stderr(arg.empty() ? "[no system message; new conversation]\n"
                               : "[system message set; new conversation]\n");
    } else if (name == "/save") {
      save(arg);
    } else if (name == "/load") {
      load(arg);
    } else if (name == "/params") {
      write_stderr(params_text());
    } else if (name == "/stats") {
      write_stderr(stats_text());
    } else {
      write_stderr(fmt::format("unknown command {} (/help lists them)\n", name));
    }
    return true;
  }

  std::optional<std::string> system_message() const {
    if (!messages_.empty() && messages_[0].role == "system") return messages_[0].content;
    return std::nullopt;
  }

  void reset(const std::optional<std::string>& system) {
    messages_.clear();
    if (system) messages_.push_back({"system", *system});
    session_.reset();
    has_last_ = false;
  }

  void save(const std::string& path) {
    if (path.empty()) return write_stderr("usage: /save FILE\n");
    nlohmann::json messages = nlohmann::json::array();
    for (const ChatMessage& m : messages_) messages.push_back({{"role", m.role}, {"content", m.content}});
    const std::string text = nlohmann::json{{"messages", messages}}.dump(2) + "\n";
    try {
      AtomicFile file(path);
      file.write(std::as_bytes(std::span(text.data(), text.size())));
      file.commit();
      write_stderr(fmt::format("[saved {} messages to {}]\n", messages_.size(), path));
    } catch (const Error& e) {
      write_stderr(fmt::format("ember: {}\n", e.what()));
    }
  }

  void load(const std::string& path) {
    if (path.empty()) return write_stderr("usage: /load FILE\n");
    std::error_code error;
    if (std::filesystem::is_directory(path, error)) {
      return write_stderr(fmt::format("ember: cannot open '{}': it is a directory\n", path));
    }
    std::ifstream in(path);
    if (!in) return write_stderr(fmt::format("ember: cannot open '{}': {}\n", path, std::strerror(errno)));
    std::vector<ChatMessage> loaded;
    try {
      const nlohmann::json j = nlohmann::json::parse(in);
      const nlohmann::json& messages = j.is_object() && j.contains("messages") ? j.at("messages") : j;
      if (!messages.is_array()) throw std::runtime_error("expected {\"messages\": [...]}");
      for (const nlohmann::json& m : messages) {
        if (!m.is_object() || !m.contains("role") || !m.at("role").is_string() || !m.contains("content") ||
            !m.at("content").is_string()) {
          throw std::runtime_error("each message needs a string role and a string content");
        }
        loaded.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
      }
    } catch (const std::exception& e) {
      return write_stderr(fmt::format("ember: '{}' is not a saved conversation: {}\n", path, e.what()));
    }
    messages_ = std::move(loaded);
    has_last_ = false;
    write_stderr(
        fmt::format("[loaded {} message{} from {}]\n", messages_.size(), messages_.size() == 1 ? "" : "s", path));
    if (!interactive_) return;
    for (const ChatMessage& m : messages_) write_stderr(fmt::format("{}: {}\n", m.role, m.content));
  }

  std::string params_text() const {
    const StopConditions& stop = options_.stop;
    std::string text = "sampler   " + sampler_summary(options_.sampling, " · ") + "\n";
    text += fmt::format("reply     at most {}\n", stop.max_tokens < 0 ? std::string("until the model ends it")
                                                                      : fmt::format("{} tokens", stop.max_tokens));
    for (const std::string& s : stop.strings) text += fmt::format("stop at   \"{}\"\n", escape_text(s));
    if (stop.max_time_ms > 0) text += fmt::format("time      at most {:.1f} s per reply\n", stop.max_time_ms / 1e3);
    const GenerateOptions::Speculative& spec = options_.speculative;
    if (spec.draft_max > 0) {
      text += fmt::format("drafts    {}-{} tokens per step, from {}\n", spec.draft_min, spec.draft_max,
                          options_.draft_model_path.empty() ? fmt::format("prompt lookup ({}-grams)", spec.ngram_max)
                          : spec.p_min > 0.0f               ? fmt::format("{} (while it is {:.0f}% sure)",
                                                                          escape_text(options_.draft_model_path), 100.0 * spec.p_min)
                                                            : escape_text(options_.draft_model_path));
    }
    return text;
  }

  std::string stats_text() const {
    if (!has_last_) return "no reply yet\n";
    const GenerationStats& s = last_;
    const int32_t computed = s.prompt_tokens - s.cached_tokens;
    const auto rate = [](int32_t n, double ms) { return ms > 0 ? fmt::format("{:.1f} tok/s", n * 1e3 / ms) : "-"; };
    // Speculative steps emit several tokens: the rate counts tokens (the first comes from the prefill).
    const int32_t decoded = s.draft_tokens > 0 ? std::max(s.generated_tokens - 1, 0) : s.decode_steps;
    std::string drafts;
    if (s.draft_tokens > 0) {
      drafts = fmt::format("drafts    {} of {} kept ({:.0f}%)\n", s.accepted_tokens, s.draft_tokens,
                           100.0 * s.accepted_tokens / s.draft_tokens);
    }
    return fmt::format(
        "prompt    {} tokens: {} reused from the cache, {} computed in {:.1f} ms ({})\n"
        "reply     {} tokens: {} decode steps in {:.1f} ms ({}), sampling {:.1f} µs/token\n"
        "{}"
        "first     token after {:.1f} ms\n"
        "context   {} of {} tokens in the cache\n"
        "finish    {}\n",
        s.prompt_tokens, s.cached_tokens, computed, s.prefill_ms, rate(computed, s.prefill_ms), s.generated_tokens,
        s.decode_steps, s.decode_ms, rate(decoded, s.decode_ms),
        s.generated_tokens > 0 ? s.sample_ms * 1e3 / s.generated_tokens : 0.0, drafts, s.first_token_ms,
        session_.cached_tokens().size(), llm_->info().context, finish_reason_name(s.finish));
  }

  const ChatCommandOptions& options_;
  std::shared_ptr<Llm> llm_;
  Session session_;
  bool interactive_;
  std::vector<ChatMessage> messages_;
  GenerationStats last_;
  bool has_last_ = false;
};

int run_chat(const ChatCommandOptions& o) {
  const bool interactive = ::isatty(STDIN_FILENO) == 1;
  LoadOptions load;
  load.threads = resolve_threads(o.threads);
  load.context = o.ctx_size;
  load.kv_type = o.kv_type;
  load.mlock = o.mlock;
  load.batch_invariant = o.batch_invariant;
  if (o.chat_template) load.chat_template = *o.chat_template;
  StatusLine status(interactive && ::isatty(STDERR_FILENO) == 1,
                    fmt::format("ember: loading {} ...", escape_text(o.model_path)));
  const std::shared_ptr<Llm> llm = Llm::load(o.model_path, load);
  // A chat is nothing without its template: one that does not parse ends here, not at every message
  // (the library loads such a model anyway, for plain generation).
  try {
    (void)ChatTemplate::parse(llm->chat_template());
  } catch (const TemplateError& e) {
    fail(ErrorCode::kInvalidArgument, "the chat template does not parse ({}): give another with --chat-template",
         e.what());
  }
  std::shared_ptr<Llm> draft;
  if (!o.draft_model_path.empty()) {
    status.clear();
    StatusLine draft_status(interactive && ::isatty(STDERR_FILENO) == 1,
                            fmt::format("ember: loading {} ...", escape_text(o.draft_model_path)));
    LoadOptions draft_load = load;
    // The session gives the draft the main cache's type where the draft's heads fit it (DraftModel),
    // so a small draft whose heads do not fit Q8_0 still loads.
    draft_load.kv_type = DType::kF16;
    draft_load.threads = o.draft_threads;
    if (draft_load.threads < 0) {
      std::error_code size_error;
      const uintmax_t bytes = std::filesystem::file_size(o.draft_model_path, size_error);
      draft_load.threads = !size_error && bytes < kSmallDraftBytes ? 1 : load.threads;
    }
    draft_load.chat_template.clear();
    draft = Llm::load(o.draft_model_path, draft_load);
  }
  status.clear();
  check_logit_bias_tokens(o.sampling, llm->info().n_vocab);  // now, not at every turn
  LineReader reader(interactive);
  Chat chat(o, llm, draft, interactive);
  chat.run(reader);
  return kExitOk;
}

}  // namespace

void add_chat_command(CLI::App& app, CommandAction& action) {
  auto o = std::make_shared<ChatCommandOptions>();
  CLI::App* cmd = app.add_subcommand("chat", "Chat with a model in the terminal (its chat template, streamed replies)");
  cmd->add_option("-m,--model", o->model_path, "GGUF model file")->required()->type_name("FILE");
  cmd->add_option("--system", o->system, "The system message")->type_name("TEXT");
  cmd->add_option("--chat-template", o->chat_template,
                  "A template file, or a preset: chatml, llama3, llama2, mistral, gemma, phi3, qwen "
                  "(default: the model's, else chatml)")
      ->type_name("FILE|NAME");
  cmd->add_option("-t,--threads", o->threads, "Worker threads (default 0: every CPU the process may use)")
      ->check(NumberRange(0, ThreadPool::kMaxThreads))
      ->type_name("N");
  cmd->add_option(
         "-c,--ctx-size", o->ctx_size,
         fmt::format("Context size in tokens for the whole conversation (default or 0: the model's, at most {})",
                     kDefaultMaxContext))
      ->check(NumberRange(0, 1 << 30))
      ->type_name("N");
  add_kv_type_flag(cmd, &o->kv_type);
  cmd->add_flag("--mlock", o->mlock, "Lock the model's pages in RAM");
  cmd->add_flag("--deterministic", o->batch_invariant,
                "Logits independent of how tokens are grouped into forward steps, so greedy speculative decoding "
                "gives bit-identical replies to plain decoding (slower prefill of F16 / BF16 weights, and of every "
                "type without AVX-512; on AMD AVX-512 CPUs slower decode of quantized weights)");
  cmd->add_flag("--no-prefix-reuse", o->no_prefix_reuse,
                "Compute every turn's whole prompt again instead of reusing the conversation's KV cache");
  cmd->add_option("-n,--n-predict", o->stop.max_tokens, "Tokens per reply at most; -1: until the model ends it")
      ->capture_default_str()
      ->type_name("N");
  add_sampling_flags(cmd, o->sampling, o->stop);
  add_speculative_flags(cmd, o->speculative, o->draft_model_path, /*server=*/false);
  cmd->add_option("--threads-draft", o->draft_threads,
                  "The draft model's threads (default: 1 for a draft file under 256 MiB, whose steps are too small "
                  "to split; else as --threads)")
      ->check(NumberRange(0, ThreadPool::kMaxThreads))
      ->type_name("N");
  cmd->footer(
      "Commands: /reset, /system TEXT, /save FILE, /load FILE, /params, /stats, /help, /exit.\n"
      "A line ending in '\\' continues on the next. Replies stream to stdout; with standard input\n"
      "not a terminal, each line is a message or a command (no prompt, no line editing).");
  cmd->callback([o, cmd, &action] {
    check_sampling_flags(o->sampling, o->stop);
    resolve_speculative_flags(*cmd, o->speculative, o->draft_model_path);
    check_speculative_sampling(o->speculative, o->sampling);
    if (o->stop.max_tokens < -1)
      throw CLI::ValidationError(fmt::format("-n must be -1 or more, not {}", o->stop.max_tokens));
    action = [o] { return run_chat(*o); };
  });
}

}  // namespace ember::cli
