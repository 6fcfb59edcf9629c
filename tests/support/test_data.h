// Locating test data: ../shared/data beside the checkout, and per-test temporary directories.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>

namespace ember::test {

// ../shared/data relative to the repository root, or nullopt when it is absent.
std::optional<std::filesystem::path> shared_data_dir();

// A fresh, empty directory under the build tree for this test; removed and recreated per call.
std::filesystem::path temp_dir(const std::string& name);

}  // namespace ember::test

// Skips the current test with a clear message when ../shared/data is absent; binds `dir` otherwise.
#define EMBER_SHARED_DATA_OR_SKIP(dir)                                                              \
  const auto dir##_opt = ::ember::test::shared_data_dir();                                          \
  if (!dir##_opt) GTEST_SKIP() << "../shared/data not found beside the checkout; test data absent"; \
  const std::filesystem::path& dir = *dir##_opt
