// `ember tokenize -m FILE [TEXT | -f FILE]`: the tokens a model's tokenizer makes of a text, as a
// table of ids and pieces, the ids alone or the pieces alone. Only the tokenizer metadata is read.
#include <unistd.h>

#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/console.h"
#include "cli/value_format.h"
#include "core/check.h"
#include "core/whole_file.h"
#include "gguf/gguf_split.h"
#include "tokenizer/tokenizer.h"

namespace ember::cli {
namespace {

constexpr std::string_view kStdinName = "-";

struct TokenizeCommandOptions {
  std::string model_path;
  std::optional<std::string> text;       // TEXT; absent or "-": standard input
  std::optional<std::string> text_file;  // -f FILE ("-": standard input)
  bool ids = false;
  bool pieces = false;
  bool no_bos = false;
  bool parse_special = false;
};

std::string read_stdin() {
  if (::isatty(STDIN_FILENO) == 1) write_stderr("ember: reading the text from standard input (end it with Ctrl-D)\n");
  return read_whole_fd(STDIN_FILENO, "standard input", "the text");
}

// The text to tokenize, byte for byte: TEXT, the -f file, or stdin.
std::string read_input(const TokenizeCommandOptions& o) {
  if (o.text_file) return *o.text_file == kStdinName ? read_stdin() : read_whole_file(*o.text_file, "the text file");
  if (o.text && *o.text != kStdinName) return *o.text;
  return read_stdin();
}

// A token's bytes (control tokens as their text), quoted and escaped so that every piece is one
// visible line: spaces at the ends show, \n \t \" \\, \xNN for ASCII control characters and for bytes
// that are not whole UTF-8 characters (a character split across tokens).
std::string piece_text(const Tokenizer& tokenizer, TokenId id) {
  std::string piece;
  tokenizer.append_piece(id, /*render_special=*/true, piece);
  return "\"" + escape_text(piece) + "\"";
}

int run_tokenize(const TokenizeCommandOptions& o) {
  // Only the metadata is read: the tensors stay unmapped pages of the file. Any part of a split
  // model names the model; its metadata is in the first.
  const GgufModelFiles model = GgufModelFiles::open(o.model_path);
  const GgufFile& file = model.metadata_file();
  if (!file.contains("tokenizer.ggml.model")) {
    fail(ErrorCode::kNotFound, "'{}' has no tokenizer (no tokenizer.ggml.model key): a model or vocab GGUF is needed",
         file.name());
  }
  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  const std::string text = read_input(o);

  EncodeOptions options;
  options.add_special = !o.no_bos;
  options.parse_special = o.parse_special;
  const std::vector<TokenId> ids = tokenizer.encode(text, options);

  std::string out;
  if (o.ids) {
    for (size_t i = 0; i < ids.size(); ++i) fmt::format_to(std::back_inserter(out), "{}{}", i == 0 ? "" : " ", ids[i]);
    out += '\n';
  } else {
    for (const TokenId id : ids) {
      if (!o.pieces) fmt::format_to(std::back_inserter(out), "{}\t", id);
      out += piece_text(tokenizer, id);
      out += '\n';
    }
  }
  write_stdout(out);
  if (!o.ids && !o.pieces) {
    write_stderr(fmt::format("{} token{} ({} byte{} of text)\n", ids.size(), ids.size() == 1 ? "" : "s", text.size(),
                             text.size() == 1 ? "" : "s"));
  }
  return kExitOk;
}

}  // namespace

void add_tokenize_command(CLI::App& app, CommandAction& action) {
  auto o = std::make_shared<TokenizeCommandOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Show the tokens a model's tokenizer makes of a text");
  cmd->add_option("-m,--model", o->model_path, "GGUF model or vocab file (only its tokenizer metadata is read)")
      ->required()
      ->type_name("FILE");
  cmd->add_option("TEXT", o->text, "Text to tokenize (one argument: quote it); omitted or '-': read standard input")
      ->type_name("");
  cmd->add_option("-f,--file", o->text_file, "Tokenize the contents of FILE instead ('-': standard input)")
      ->type_name("FILE");
  cmd->add_flag("--ids", o->ids, "Print only the ids, on one line, separated by spaces");
  cmd->add_flag("--pieces", o->pieces, "Print only the pieces, one per line");
  cmd->add_flag("--no-bos", o->no_bos, "Do not add BOS (nor the EOS / SEP the vocabulary adds)");
  cmd->add_flag("--parse-special", o->parse_special,
                "Control tokens written in the text (<|im_start|>, <s>, ...) become those tokens");
  cmd->footer(
      "Output (stdout):\n"
      "  default   one line per token, ID<TAB>PIECE, then \"N tokens (B bytes of text)\" on stderr\n"
      "  --ids     the ids on one line, separated by single spaces: 1 15043 3186\n"
      "  --pieces  one PIECE per line\n"
      "A PIECE is the token's bytes (control tokens as their text) in double quotes, escaped: \\n \\t \\\" \\\\,\n"
      "\\xNN for other ASCII control characters and for bytes that are not a whole UTF-8 character, \\uXXXX\n"
      "for C1 controls, line separators and bidirectional overrides.\n"
      "The text is tokenized byte for byte: a final newline from stdin or -f is part of it (use printf, not\n"
      "echo). Without --parse-special, control tokens written in the text are tokenized as plain text.\n"
      "A TEXT that starts with '-' goes after '--': ember tokenize -m FILE -- -text. A TEXT of '-' alone\n"
      "means stdin (tokenize a lone '-' with printf -- - | ember tokenize -m FILE).\n"
      "Exit codes: 0 success, 1 error (unreadable file, no tokenizer), 2 bad command line.");
  cmd->callback([&action, o] {
    if (o->ids && o->pieces) throw CLI::ValidationError("--ids and --pieces cannot be combined: choose one output");
    if (o->text && o->text_file) {
      throw CLI::ValidationError("give the text as TEXT or with -f FILE, not both");
    }
    action = [o] { return run_tokenize(*o); };
  });
}

}  // namespace ember::cli
