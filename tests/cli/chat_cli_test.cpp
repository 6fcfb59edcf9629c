// `ember chat` driven through its standard input: turns, prefix reuse (the same replies as without
// it), slash commands, /save and /load, speculative decoding, Ctrl-C stopping a reply but not the
// program, bad input.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli_run.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::ember;
using test::ember_with_stdin;
using test::kStories;

std::vector<std::string> chat_args(const fs::path& model, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"chat", "-m", model.string(), "--temp", "0", "-n", "12", "-c", "512", "-t", "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// The "N reused from the cache" counts of every /stats in `err`.
std::vector<int> reused_counts(const std::string& err) {
  std::vector<int> counts;
  const std::regex reused(R"((\d+) reused from the cache)");
  for (std::sregex_iterator it(err.begin(), err.end(), reused), end; it != end; ++it) {
    counts.push_back(std::stoi((*it)[1]));
  }
  return counts;
}

// The "context N of M" counts of every /stats in `err`.
std::vector<int> context_counts(const std::string& err) {
  std::vector<int> counts;
  const std::regex held(R"(context +(\d+) of)");
  for (std::sregex_iterator it(err.begin(), err.end(), held), end; it != end; ++it)
    counts.push_back(std::stoi((*it)[1]));
  return counts;
}

TEST(ChatCli, TurnsReuseTheConversationsCacheAndReplyAsWithoutIt) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string input = "Tell me a story.\n/stats\nWhat did the dog do?\n/stats\nAnd then?\n/stats\n";
  const auto reused = ember_with_stdin(chat_args(data / kStories), input);
  ASSERT_EQ(reused.exit_code, 0) << reused.err;
  const auto cold = ember_with_stdin(chat_args(data / kStories, {"--no-prefix-reuse"}), input);
  ASSERT_EQ(cold.exit_code, 0) << cold.err;
  EXPECT_EQ(reused.out, cold.out);  // reuse changes the cost, not the text (F32 stories260K: bit-identical)
  EXPECT_FALSE(reused.out.empty());

  // Each turn reuses everything the cache held after the previous one: its prompt and reply (all
  // but the reply's last token, which was never run).
  const std::vector<int> with = reused_counts(reused.err);
  const std::vector<int> held = context_counts(reused.err);
  ASSERT_EQ(with.size(), 3u) << reused.err;
  ASSERT_EQ(held.size(), 3u) << reused.err;
  EXPECT_EQ(with[0], 0);
  EXPECT_EQ(with[1], held[0]);
  EXPECT_EQ(with[2], held[1]);
  EXPECT_GT(with[1], 20);
  EXPECT_EQ(reused_counts(cold.err), (std::vector<int>{0, 0, 0})) << cold.err;
  EXPECT_NE(reused.err.find("first     token after"), std::string::npos) << reused.err;
}

TEST(ChatCli, SaveAndLoadContinueTheConversation) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("chat_cli_save");
  const std::string saved = (dir / "conversation.json").string();
  const auto whole = ember_with_stdin(chat_args(data / kStories, {"--system", "You tell stories."}),
                                      "Once upon a time\nThe cat sat.\n/save " + saved + "\nWhat next?\n");
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  const std::string json = test::read_file(saved);
  EXPECT_NE(json.find("\"role\": \"system\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"content\": \"The cat sat.\""), std::string::npos) << json;

  const auto resumed = ember_with_stdin(chat_args(data / kStories), "/load " + saved + "\nWhat next?\n");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("loaded 5 messages"), std::string::npos) << resumed.err;
  // The third reply of the whole run is the only reply of the resumed one.
  ASSERT_GE(whole.out.size(), resumed.out.size());
  EXPECT_EQ(whole.out.substr(whole.out.size() - resumed.out.size()), resumed.out);
}

TEST(ChatCli, CommandsAndTheirErrors) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("chat_cli_commands");
  const fs::path bad = dir / "bad.json";
  { std::ofstream(bad) << "{\"messages\": [{\"role\": 1}]}"; }
  const std::string input = "/help\n/params\n/stats\n/frobnicate\n/load " + bad.string() + "\n/load " +
                            (dir / "missing.json").string() + "\n/load " + dir.string() +
                            "\n/save \n/system \n/system Be brief.  \nHi\n/stats\n/reset\n/exit\nNever read\n";
  const auto r = ember_with_stdin(chat_args(data / kStories), input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("/save FILE"), std::string::npos);    // /help
  EXPECT_NE(r.err.find("temp"), std::string::npos);          // /params
  EXPECT_NE(r.err.find("no reply yet"), std::string::npos);  // /stats
  EXPECT_NE(r.err.find("unknown command /frobnicate"), std::string::npos);
  EXPECT_NE(r.err.find("is not a saved conversation"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cannot open"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cannot open '" + dir.string() + "': it is a directory\n"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("basic_filebuf"), std::string::npos) << r.err;  // no library internals
  EXPECT_NE(r.err.find("usage: /save FILE"), std::string::npos);
  EXPECT_NE(r.err.find("no system message"), std::string::npos);  // "/system " with a trailing space
  EXPECT_NE(r.err.find("system message set"), std::string::npos);
  EXPECT_NE(r.err.find("finish    "), std::string::npos);  // the reply to "Hi" and its /stats
  EXPECT_NE(r.err.find("new conversation"), std::string::npos);
  EXPECT_GE(std::count(r.out.begin(), r.out.end(), '\n'), 1);  // the one reply ("Hi")
}

// A template that refuses system messages (Gemma 2's): the error names /system as the way out,
// since /reset keeps the system message; after it the conversation goes on.
TEST(ChatCli, ATemplateThatRefusesTheSystemMessageNamesTheWayOut) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path gemma = data / "templates" / "google-gemma-2-2b-it.jinja";
  const auto r = ember_with_stdin(
      chat_args(data / kStories, {"--chat-template", gemma.string(), "--system", "Be brief."}), "Hi\n/system\nHi\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("System role not supported"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(/reset starts a new conversation; /system with no text drops the system message)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("[no system message; new conversation]"), std::string::npos) << r.err;
  EXPECT_GE(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;  // the reply to the second "Hi"
}

TEST(ChatCli, BadCommandLinesAndModels) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto missing = ember({"chat", "-m", "/no/such/model.gguf"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("/no/such/model.gguf"), std::string::npos) << missing.err;
  EXPECT_EQ(ember({"chat"}).exit_code, 2);
  EXPECT_EQ(ember({"chat", "-m", (data / kStories).string(), "--top-p", "7"}).exit_code, 2);
  EXPECT_EQ(ember({"chat", "-m", (data / kStories).string(), "-c", "-5"}).exit_code, 2);
  const auto preset = ember({"chat", "-m", (data / kStories).string(), "--chat-template", "no-such-preset"});
  EXPECT_NE(preset.exit_code, 0);
  EXPECT_NE(preset.err.find("no-such-preset"), std::string::npos) << preset.err;
  // A Q8_0 cache needs heads of a multiple of 32 values; stories260K's have 8.
  const auto q8 = ember({"chat", "-m", (data / kStories).string(), "--kv-type", "q8_0"});
  EXPECT_EQ(q8.exit_code, 1);
  EXPECT_NE(q8.err.find("multiple of 32"), std::string::npos) << q8.err;
  EXPECT_EQ(ember({"chat", "-m", (data / kStories).string(), "--kv-type", "q5_0"}).exit_code, 2);
  // A template that does not parse, or a directory given as one: an error before the first turn.
  const fs::path dir = test::temp_dir("chat_cli_bad_template");
  std::ofstream(dir / "bad.jinja") << "{% bogus %}";
  for (const fs::path& bad : {dir / "bad.jinja", dir}) {
    const auto r =
        ember_with_stdin({"chat", "-m", (data / kStories).string(), "--chat-template", bad.string()}, "Hi\n");
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find(bad == dir ? "Is a directory" : "does not parse"), std::string::npos) << r.err;
  }

  // A prompt longer than the context: an error for that turn, and the chat goes on.
  const std::string long_message(3000, 'x');
  const auto r = ember_with_stdin({"chat", "-m", (data / kStories).string(), "--temp", "0", "-n", "8", "-c", "64"},
                                  long_message + "\nHi\n/stats\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("no room"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("finish    "), std::string::npos) << r.err;  // "Hi" was answered
}

// Speculative decoding in a conversation on the bundled models: with --deterministic the replies
// are plain decoding's, /stats counts the drafts and /params names where they come from; bad
// combinations are usage errors, a draft of another vocabulary a one-line error.
TEST(ChatCli, SpeculativeRepliesEqualPlainOnes) {
  const fs::path models = fs::path(EMBER_SOURCE_DIR) / "models";
  const fs::path tiny = models / "ember-tiny.gguf", draft = models / "ember-tiny-draft.gguf";
  const std::string input = "And the LORD said unto Moses\n/stats\nAnd Moses answered\n/stats\n/params\n";
  // --draft-always: the steps taken must not depend on timing (this counts drafts).
  const std::vector<std::string> common = {"--deterministic", "--draft-always"};
  const auto plain = ember_with_stdin(chat_args(tiny, common), input);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  std::vector<std::string> with_draft = common;
  with_draft.insert(with_draft.end(), {"--model-draft", draft.string()});
  const auto spec = ember_with_stdin(chat_args(tiny, with_draft), input);
  ASSERT_EQ(spec.exit_code, 0) << spec.err;
  EXPECT_EQ(spec.out, plain.out);
  EXPECT_FALSE(spec.out.empty());
  const std::regex kept(R"(drafts +(\d+) of (\d+) kept)");
  int turns = 0;
  for (std::sregex_iterator it(spec.err.begin(), spec.err.end(), kept), end; it != end; ++it, ++turns) {
    EXPECT_GT(std::stoi((*it)[2]), 0) << spec.err;
    EXPECT_LE(std::stoi((*it)[1]), std::stoi((*it)[2])) << spec.err;
  }
  EXPECT_EQ(turns, 2) << spec.err;
  EXPECT_NE(spec.err.find("ember-tiny-draft.gguf"), std::string::npos) << spec.err;  // /params
  EXPECT_EQ(plain.err.find("drafts"), std::string::npos) << plain.err;

  // With a Q8_0 cache (the draft's too): still plain decoding's replies.
  std::vector<std::string> q8_plain = common, q8_draft = with_draft;
  q8_plain.insert(q8_plain.end(), {"--kv-type", "q8_0"});
  q8_draft.insert(q8_draft.end(), {"--kv-type", "q8_0"});
  const auto q8 = ember_with_stdin(chat_args(tiny, q8_plain), input);
  ASSERT_EQ(q8.exit_code, 0) << q8.err;
  EXPECT_FALSE(q8.out.empty());
  EXPECT_EQ(ember_with_stdin(chat_args(tiny, q8_draft), input).out, q8.out);

  const auto lookup = ember_with_stdin(
      chat_args(tiny, {"--deterministic", "--draft-always", "--draft-max", "4", "--spec-ngram", "2"}), input);
  ASSERT_EQ(lookup.exit_code, 0) << lookup.err;
  EXPECT_EQ(lookup.out, plain.out);
  EXPECT_NE(lookup.err.find("prompt lookup (2-grams)"), std::string::npos) << lookup.err;

  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{"--draft-max", "2", "--draft-min", "3"},
                                             {"--model-draft", draft.string(), "--mirostat", "2"},
                                             {"--model-draft", draft.string(), "--threads-draft", "-1"},
                                             {"--model-draft", draft.string(), "--draft-p-min", "nan"}}) {
    const auto r = ember_with_stdin(chat_args(tiny, bad), "Hi\n");
    EXPECT_EQ(r.exit_code, 2) << bad[0] << " " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  const auto missing = ember_with_stdin(chat_args(tiny, {"--model-draft", "/nonexistent/draft.gguf"}), "Hi\n");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("/nonexistent/draft.gguf"), std::string::npos) << missing.err;

  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto mismatch = ember_with_stdin(chat_args(tiny, {"--model-draft", (data / kStories).string()}), "Hi\n");
  EXPECT_EQ(mismatch.exit_code, 1);
  EXPECT_NE(mismatch.err.find("vocabulary"), std::string::npos) << mismatch.err;
}

TEST(ChatCli, CtrlCStopsTheReplyNotTheProgram) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("chat_cli_sigint");
  // A random-weight model never ends its reply: only Ctrl-C does.
  const fs::path model = dir / "tiny.gguf";
  const auto synth = ember({"synth", "--preset", "tiny", "-o", model.string(), "--data-dir", data.string()});
  ASSERT_EQ(synth.exit_code, 0) << synth.err;
  test::PipedEmber chat({"chat", "-m", model.string(), "--temp", "0", "-c", "32768", "-t", "1", "--ignore-eos"},
                        dir / "err", 1 << 16, /*stdin_pipe=*/true);
  ASSERT_TRUE(chat.started());
  chat.write("Hello\n");
  ASSERT_FALSE(chat.read_some().empty());  // the reply is streaming
  chat.signal(SIGINT);
  chat.write("/stats\n");
  chat.close_input();
  chat.read_rest();
  const int status = chat.wait_status();
  const std::string err = test::read_file(dir / "err");
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status) << "\n" << err;
  EXPECT_EQ(WEXITSTATUS(status), 0) << err;
  EXPECT_NE(err.find("[interrupted]"), std::string::npos) << err;
  EXPECT_NE(err.find("finish    cancelled"), std::string::npos) << err;
}

}  // namespace
}  // namespace ember
