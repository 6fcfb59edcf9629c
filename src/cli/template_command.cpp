// `ember template [TEMPLATE.jinja] CONTEXT.json [-m MODEL] [--chat-template FILE|NAME] [--now TIME]`:
// renders a chat template for a conversation, exactly as Python Jinja2 does for Hugging Face.
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/console.h"
#include "core/check.h"
#include "core/whole_file.h"
#include "gguf/gguf_split.h"
#include "tokenizer/chat_template/chat_template.h"
#include "tokenizer/chat_template/chat_template_presets.h"

namespace ember::cli {
namespace {

struct TemplateCommandOptions {
  std::vector<std::string> files;  // [TEMPLATE] CONTEXT
  std::string model_path;
  std::string chat_template;
  std::string now_text;
  std::optional<std::tm> now;
};

std::string read_whole(const std::string& path, std::string_view what) {
  return path == "-" ? read_whole_fd(STDIN_FILENO, "standard input", what) : read_whole_file(path, what);
}

nlohmann::ordered_json read_context(const std::string& path) {
  const std::string text = read_whole(path, "context");
  nlohmann::ordered_json context;
  try {
    context = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // a parse error, or a number out of range (1e400)
    // "[json.exception.parse_error.101] parse error at line 1, column 9: ..." without the tag.
    std::string message = e.what();
    const size_t tag_end = message.find("] ");
    if (tag_end != std::string::npos) message = message.substr(tag_end + 2);
    fail(ErrorCode::kFormat, "context '{}' is not valid JSON: {}", path, message);
  }
  if (!context.is_object()) {
    fail(ErrorCode::kFormat, "context '{}' must be a JSON object (messages, tools, add_generation_prompt, ...)", path);
  }
  return context;
}

int run_template(const TemplateCommandOptions& o) {
  const bool has_template_file = o.files.size() == 2;
  const std::string& context_path = o.files.back();
  // Any part of a split model names the model; its metadata is in the first.
  std::optional<GgufModelFiles> files;
  if (!o.model_path.empty()) files.emplace(GgufModelFiles::open(o.model_path));
  const GgufFile* model = files ? &files->metadata_file() : nullptr;

  ResolvedChatTemplate resolved;
  if (has_template_file) {
    resolved = resolve_chat_template(model, "");
    resolved.source = read_whole(o.files[0], "template");
    resolved.origin = "'" + o.files[0] + "'";
  } else {
    resolved = resolve_chat_template(model, o.chat_template);
  }

  nlohmann::ordered_json context = read_context(context_path);
  // The model's BOS / EOS texts fill in what the context does not give.
  if (model) {
    if (!context.contains("bos_token")) context["bos_token"] = resolved.bos_token;
    if (!context.contains("eos_token")) context["eos_token"] = resolved.eos_token;
  }

  ChatTemplateRenderOptions options;
  options.now = o.now;
  std::string text;
  try {
    const ChatTemplate chat_template = ChatTemplate::parse(resolved.source);
    text = chat_template.render(context, options);
  } catch (const TemplateError& e) {
    if (e.kind() == TemplateErrorKind::kRaised) {
      // The template refused the conversation: its own message, as Python would print it.
      write_stderr(e.message() + "\n");
      return kExitError;
    }
    throw Error(e.code(), resolved.origin + ": " + e.what());
  }
  write_stdout(text);
  return kExitOk;
}

}  // namespace

void add_template_command(CLI::App& app, CommandAction& action) {
  auto o = std::make_shared<TemplateCommandOptions>();
  CLI::App* cmd = app.add_subcommand("template", "Render a chat template for a conversation (as Python Jinja2 does)");
  cmd->add_option("FILES", o->files, "[TEMPLATE.jinja] CONTEXT.json ('-': standard input)")->type_name("");
  cmd->add_option("-m,--model", o->model_path, "Use the model's template (tokenizer.chat_template) and BOS / EOS texts")
      ->type_name("FILE");
  cmd->add_option("--chat-template", o->chat_template,
                  "Template file or preset name (" + chat_template_preset_names() + ") instead of the model's")
      ->type_name("FILE|NAME");
  cmd->add_option("--now", o->now_text, "Fix strftime_now's clock, e.g. 2026-11-29T12:00:00 (default: now)")
      ->type_name("TIME");
  cmd->footer(
      "CONTEXT is a JSON object whose keys become the template's variables: messages, tools,\n"
      "add_generation_prompt, bos_token, eos_token and any others the template reads. The rendering goes\n"
      "to stdout byte for byte (no newline added).\n"
      "The template: TEMPLATE, else --chat-template, else (with -m) the model's tokenizer.chat_template,\n"
      "or ChatML when the model has none.\n"
      "With -m, bos_token / eos_token default to the model's token texts.\n"
      "Exit codes: 0 success; 1 error (a template that raises prints its message on stderr; syntax and\n"
      "render errors name the line and column); 2 bad command line.");
  cmd->callback([&action, o] {
    if (o->files.empty() || o->files.size() > 2) {
      throw CLI::ValidationError("expected [TEMPLATE.jinja] CONTEXT.json, got " + std::to_string(o->files.size()) +
                                 " file arguments");
    }
    if (o->files.size() == 2 && !o->chat_template.empty()) {
      throw CLI::ValidationError("give the template as TEMPLATE or with --chat-template, not both");
    }
    if (o->files.size() == 1 && o->model_path.empty() && o->chat_template.empty()) {
      throw CLI::ValidationError("no template: give TEMPLATE.jinja before CONTEXT, -m MODEL or --chat-template");
    }
    if (!o->chat_template.empty() && find_chat_template_preset(o->chat_template) == nullptr &&
        !std::filesystem::is_regular_file(o->chat_template)) {
      throw CLI::ValidationError("--chat-template '" + o->chat_template + "' is neither a preset (" +
                                 chat_template_preset_names() + ") nor a file");
    }
    if (!o->now_text.empty()) {
      o->now = parse_template_clock(o->now_text);
      if (!o->now) throw CLI::ValidationError("--now: expected YYYY-MM-DDTHH:MM[:SS], got '" + o->now_text + "'");
    }
    action = [o] { return run_template(*o); };
  });
}

}  // namespace ember::cli
