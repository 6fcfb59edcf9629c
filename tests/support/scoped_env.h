// ScopedEnv: an environment variable set (or unset) for a scope, then restored, also when a
// failed assertion leaves the test early, so no later test in the process sees it.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace ember::test {

class ScopedEnv {
 public:
  // value nullptr: unset for the scope.
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* before = std::getenv(name)) before_ = before;
    set(value);
  }
  ~ScopedEnv() { set(before_ ? before_->c_str() : nullptr); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

  void set(const char* value) {
    EXPECT_EQ(value != nullptr ? ::setenv(name_.c_str(), value, 1) : ::unsetenv(name_.c_str()), 0) << name_;
  }

 private:
  std::string name_;
  std::optional<std::string> before_;
};

}  // namespace ember::test
