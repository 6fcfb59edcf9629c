// one_of (cli/word_option.h): the listed words pass, stored as listed (any case with ignore_case),
// others are refused with the list; --help names the words once.
#include "cli/word_option.h"

#include <gtest/gtest.h>

#include <string>

namespace ember::cli {
namespace {

struct Parsed {
  std::string value;
  std::string error;  // empty when the parse passed
};

Parsed parse(const std::string& given, bool ignore_case) {
  CLI::App app;
  Parsed out{.value = "unset", .error = ""};
  one_of(app.add_option("--kind", out.value, "What kind"), {"f16", "q8_0"}, ignore_case);
  try {
    app.parse("--kind " + given, false);
  } catch (const CLI::ParseError& e) {
    out.error = e.what();
  }
  return out;
}

TEST(WordOption, ListedWordsPassAndOthersListTheWords) {
  EXPECT_EQ(parse("q8_0", false).value, "q8_0");
  EXPECT_EQ(parse("q8_0", false).error, "");
  EXPECT_NE(parse("Q8_0", false).error.find("Q8_0 not in {f16,q8_0}"), std::string::npos) << parse("Q8_0", false).error;
  EXPECT_NE(parse("bf16", true).error.find("bf16 not in {f16,q8_0}"), std::string::npos) << parse("bf16", true).error;
}

TEST(WordOption, AnyCaseIsStoredAsListed) {
  const Parsed p = parse("Q8_0", true);
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(p.value, "q8_0");
}

TEST(WordOption, HelpNamesTheWordsOnce) {
  CLI::App app;
  std::string value;
  one_of(app.add_option("--kind", value, "What kind"), {"f16", "q8_0"}, true);
  const std::string help = app.help();
  EXPECT_NE(help.find("--kind f16|q8_0 "), std::string::npos) << help;
  EXPECT_EQ(help.find(":{"), std::string::npos) << help;
}

}  // namespace
}  // namespace ember::cli
