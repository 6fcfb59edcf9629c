// ember::Error, fail() formatting and EMBER_CHECK aborting with file:line.
#include <gtest/gtest.h>

#include <set>

#include "core/check.h"

namespace ember {
namespace {

TEST(Error, CarriesCodeAndMessage) {
  try {
    fail(ErrorCode::kFormat, "'{}': bad key '{}'", "model.gguf", "llama.block_count");
    FAIL() << "fail() returned";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFormat);
    EXPECT_STREQ(e.what(), "'model.gguf': bad key 'llama.block_count'");
  }
}

TEST(Error, CodeNamesAreDistinct) {
  std::set<std::string_view> names;
  for (ErrorCode c : {ErrorCode::kInvalidArgument, ErrorCode::kIo, ErrorCode::kFormat, ErrorCode::kUnsupported,
                      ErrorCode::kNotFound, ErrorCode::kTypeMismatch, ErrorCode::kOutOfMemory}) {
    EXPECT_TRUE(names.insert(error_code_name(c)).second);
    EXPECT_NE(error_code_name(c), "unknown");
  }
}

TEST(ErrorDeathTest, CheckAbortsWithLocation) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const int zero = static_cast<int>(std::string("").size());
  EXPECT_DEATH(EMBER_CHECK(zero == 1), "internal check failed: zero == 1 at .*error_test.cpp:[0-9]+");
  EXPECT_DEATH(EMBER_CHECK_MSG(zero > 0, "needs a positive size"), "needs a positive size");
}

TEST(Error, CheckPassesSilently) {
  const int one = 1;
  EMBER_CHECK(one == 1);
  EMBER_CHECK_MSG(one > 0, "never printed");
  SUCCEED();
}

}  // namespace
}  // namespace ember
