// `ember run` with structured output: --regex, --grammar (file and inline), --json-schema (file
// and inline) and --json on the bundled ember-tiny, and every bad use failing with one line
// (exit 2) before the model loads.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/cli_run.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::ember;
using test::kTiny;

const std::string kQuestion = "Q:";

// The generated text: stdout is the prompt, the text, then a newline.
std::string generated(const test::RunResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with(kQuestion)) << r.out;
  EXPECT_TRUE(r.out.ends_with("\n")) << r.out;
  if (r.out.size() < kQuestion.size() + 1) return "";
  return r.out.substr(kQuestion.size(), r.out.size() - kQuestion.size() - 1);
}

std::vector<std::string> run_args(std::vector<std::string> extra, int seed) {
  std::vector<std::string> args = {"run", "-m",     kTiny, "-p",     kQuestion,           "-n",
                                   "300", "--temp", "1.5", "--seed", std::to_string(seed)};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string write_temp(const std::string& name, const std::string& text) {
  const fs::path path = test::temp_dir("run_constraint_cli") / name;
  std::ofstream(path) << text;
  return path.string();
}

TEST(RunConstraintCli, RegexAndGrammarShapeTheOutput) {
  for (int seed = 1; seed <= 3; ++seed) {
    const std::string digits = generated(ember(run_args({"--regex", "[0-9]{3}-[0-9]{2}"}, seed)));
    EXPECT_TRUE(std::regex_match(digits, std::regex("[0-9]{3}-[0-9]{2}"))) << digits;

    const test::RunResult inline_grammar = ember(run_args({"--grammar", "root ::= (\"yes\" | \"no\") \".\""}, seed));
    const std::string answer = generated(inline_grammar);
    EXPECT_TRUE(answer == "yes." || answer == "no.") << answer;
    EXPECT_NE(inline_grammar.err.find("constrained output complete"), std::string::npos) << inline_grammar.err;
  }
  const std::string file =
      write_temp("list.gbnf", "# a list of words\nroot ::= word (\", \" word){1,3}\nword ::= [a-z]{1,8}\n");
  const std::string list = generated(ember(run_args({"--grammar", file}, 5)));
  EXPECT_TRUE(std::regex_match(list, std::regex("[a-z]{1,8}(, [a-z]{1,8}){1,3}"))) << list;
}

TEST(RunConstraintCli, JsonSchemaAndJsonModeGiveValidJson) {
  const std::string schema =
      R"({"type":"object","properties":{"name":{"type":"string","maxLength":12},"n":{"type":"integer","minimum":0,"maximum":99}},"required":["name","n"]})";
  const std::string file = write_temp("schema.json", schema);
  for (const std::string& source : {schema, file}) {
    const std::string text = generated(ember(run_args({"--json-schema", source}, 7)));
    const auto j = nlohmann::json::parse(text);  // throws (fails the test) when not JSON
    ASSERT_TRUE(j.is_object()) << text;
    EXPECT_TRUE(j.at("name").is_string());
    EXPECT_LE(j.at("name").get<std::string>().size(), 12u * 4);
    EXPECT_GE(j.at("n").get<int>(), 0);
    EXPECT_LE(j.at("n").get<int>(), 99);
  }
  const std::string any = generated(ember(run_args({"--json"}, 8)));
  EXPECT_TRUE(nlohmann::json::parse(any).is_object()) << any;
}

TEST(RunConstraintCli, BadConstraintsFailBeforeLoadingWithTheirPosition) {
  const auto fails = [](const std::vector<std::string>& extra, const std::string& needle) {
    const test::RunResult r = ember(run_args(extra, 1));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  };
  fails({"--grammar", "root ::= \"a\" |\n  [z-a]"}, "grammar:2:");
  fails({"--grammar", "/no/such/file.gbnf"}, "/no/such/file.gbnf");
  fails({"--json-schema", R"({"type":"array","uniqueItems":true})"}, "uniqueItems");
  fails({"--regex", "(?<=a)b"}, "regex:");
  fails({"--regex", "a", "--json"}, "excludes");
}

}  // namespace
}  // namespace ember
