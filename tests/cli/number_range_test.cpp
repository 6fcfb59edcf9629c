// NumberRange (cli/number_range.h): values in range pass and are stored; text that is no number,
// a fraction for an integer, NaN and values out of range are refused with a message that says which;
// --help shows the range as CLI11's Range does.
#include "cli/number_range.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace ember::cli {
namespace {

// The error of parsing "--n <given>" into a T limited to [min, max] ("" when it passed), and the
// value stored.
template <class T>
std::pair<std::string, T> parse(const std::string& given, T min, T max) {
  CLI::App app;
  T value{};
  app.add_option("--n", value, "A number")->check(NumberRange(min, max));
  try {
    app.parse(std::vector<std::string>{given, "--n"});  // (reversed: CLI11 reads the vector from the back)
  } catch (const CLI::ParseError& e) {
    return {e.what(), value};
  }
  return {"", value};
}

TEST(NumberRange, IntegersInRangePassAndOthersSayWhy) {
  EXPECT_EQ(parse<int>("0", 0, 1024), (std::pair<std::string, int>{"", 0}));
  EXPECT_EQ(parse<int>("1024", 0, 1024), (std::pair<std::string, int>{"", 1024}));
  EXPECT_EQ(parse<int>("1025", 0, 1024).first, "--n: 1025 is not in the range 0 to 1024");
  EXPECT_EQ(parse<int>("-3", 0, 1024).first, "--n: -3 is not in the range 0 to 1024");
  EXPECT_EQ(parse<int>("99999999999999999999", 0, 1024).first,
            "--n: 99999999999999999999 is not in the range 0 to 1024");
  EXPECT_EQ(parse<int>("1e3", 0, 1 << 30).first, "--n: '1e3' is not a whole number");
  EXPECT_EQ(parse<int>("1.5", 0, 1024).first, "--n: '1.5' is not a whole number");
  EXPECT_EQ(parse<int>("abc", 0, 1024).first, "--n: 'abc' is not a whole number");
  EXPECT_EQ(parse<int>("", 0, 1024).first, "--n: '' is not a whole number");
  // What CLI11 itself reads and stores (strtoll, base 0): a sign, leading blanks, hex, octal.
  EXPECT_EQ(parse<int>("+4", 0, 1024), (std::pair<std::string, int>{"", 4}));
  EXPECT_EQ(parse<int>(" 4", 0, 1024), (std::pair<std::string, int>{"", 4}));
  EXPECT_EQ(parse<int>("0x10", 0, 1024), (std::pair<std::string, int>{"", 16}));
  EXPECT_EQ(parse<int>("010", 0, 1024), (std::pair<std::string, int>{"", 8}));
  EXPECT_EQ(parse<int>("0177777", 0, 65535), (std::pair<std::string, int>{"", 65535}));
  EXPECT_EQ(parse<size_t>("2048", 1024, size_t{1} << 31), (std::pair<std::string, size_t>{"", 2048}));
}

TEST(NumberRange, UnsignedRefusesTheSignAndWhatOverflows) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(parse<uint64_t>("18446744073709551615", 0, kMax), (std::pair<std::string, uint64_t>{"", kMax}));
  EXPECT_EQ(parse<uint64_t>("18446744073709551616", 0, kMax).first,
            "--n: 18446744073709551616 is not in the range 0 to 18446744073709551615");
  EXPECT_EQ(parse<uint64_t>("-1", 0, kMax).first, "--n: -1 is not in the range 0 to 18446744073709551615");
}

TEST(NumberRange, FloatsRefuseNanAndText) {
  EXPECT_EQ(parse<double>("0.25", 0.0, 1.0), (std::pair<std::string, double>{"", 0.25}));
  EXPECT_EQ(parse<double>("1e-3", 0.0, 1.0).first, "");
  EXPECT_EQ(parse<double>("nan", 0.0, 1.0).first, "--n: nan is not in the range 0 to 1");
  EXPECT_EQ(parse<double>("inf", 0.0, 1.0).first, "--n: inf is not in the range 0 to 1");
  EXPECT_EQ(parse<double>("0.5x", 0.0, 1.0).first, "--n: '0.5x' is not a number");
}

TEST(NumberRange, HelpShowsTheRange) {
  CLI::App app;
  int value = 0;
  app.add_option("--n", value, "A number")->check(NumberRange(0, 1024));
  const std::string help = app.help();
  EXPECT_NE(help.find("--n INT:INT in [0 - 1024]"), std::string::npos) << help;
}

}  // namespace
}  // namespace ember::cli
