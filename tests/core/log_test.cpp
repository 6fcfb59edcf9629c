// Logging levels, parsing, lazy formatting and the single-line stderr format.
#include <gtest/gtest.h>

#include "core/log.h"

namespace {

// Counts how often it is formatted, to prove disabled levels never format their arguments.
struct Counted {
  int* count;
};

}  // namespace

template <>
struct fmt::formatter<Counted> : fmt::formatter<int> {
  auto format(const Counted& c, fmt::format_context& ctx) const {
    ++*c.count;
    return fmt::formatter<int>::format(*c.count, ctx);
  }
};

namespace ember {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = log_level(); }
  void TearDown() override { set_log_level(saved_); }
  LogLevel saved_ = LogLevel::kWarn;
};

TEST_F(LogTest, ParsesLevelNames) {
  LogLevel level = LogLevel::kError;
  ASSERT_TRUE(parse_log_level("DEBUG", &level));
  EXPECT_EQ(level, LogLevel::kDebug);
  ASSERT_TRUE(parse_log_level("trace", &level));
  EXPECT_EQ(level, LogLevel::kTrace);
  EXPECT_FALSE(parse_log_level("verbose", &level));
  EXPECT_FALSE(parse_log_level("", &level));
  EXPECT_EQ(level, LogLevel::kTrace);  // unchanged on failure
}

TEST_F(LogTest, WritesOneLinePerMessageAtEnabledLevels) {
  set_log_level(LogLevel::kInfo);
  testing::internal::CaptureStderr();
  EMBER_LOG_INFO("loaded {} tensors", 21);
  EMBER_LOG_DEBUG("hidden {}", 1);
  EMBER_LOG_ERROR("broken");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "ember: info: loaded 21 tensors\nember: error: broken\n");
}

TEST_F(LogTest, DisabledLevelsDoNotFormat) {
  int count = 0;
  set_log_level(LogLevel::kError);
  testing::internal::CaptureStderr();
  EMBER_LOG_WARN("{}", Counted{&count});
  EXPECT_EQ(count, 0);
  set_log_level(LogLevel::kWarn);
  EMBER_LOG_WARN("{}", Counted{&count});
  EXPECT_EQ(count, 1);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "ember: warn: 1\n");
}

}  // namespace
}  // namespace ember
