// Locating test data: ../shared/data beside the checkout, and per-test temporary directories.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ember::test {

// ../shared/data relative to the repository root (or $EMBER_SHARED_DATA), or nullopt when absent.
std::optional<std::filesystem::path> shared_data_dir();

// True when EMBER_REQUIRE_SHARED_DATA=1 (set by .ci/run): missing test data is then a failure.
bool shared_data_required();

// Every *.gguf file below `dir`, sorted.
std::vector<std::filesystem::path> gguf_files_under(const std::filesystem::path& dir);

// A fresh, empty directory under the build tree, private to this process; recreated per call.
std::filesystem::path temp_dir(const std::string& name);

// The whole file as bytes in a string (empty when unreadable).
std::string read_file(const std::filesystem::path& path);
// How many entries `dir` holds (to check that no temporary file was left behind).
size_t entries_in(const std::filesystem::path& dir);

// stories260K's folder and GGUF, relative to ../shared/data, and the prompt of its reference runs.
inline constexpr const char* kStoriesDir = "models/stories260K/";
inline constexpr const char* kStories = "models/stories260K/stories260K.gguf";
inline constexpr const char* kStoriesPrompt = "Once upon a time";
// The bundled model, ember-tiny.
inline const std::string kTiny = (std::filesystem::path(EMBER_SOURCE_DIR) / "models" / "ember-tiny.gguf").string();

}  // namespace ember::test

// Skips the current test with a clear message when ../shared/data is absent (fails instead when
// EMBER_REQUIRE_SHARED_DATA=1); binds `dir` otherwise.
#define EMBER_SHARED_DATA_OR_SKIP(dir)                                                              \
  const auto dir##_opt = ::ember::test::shared_data_dir();                                          \
  if (!dir##_opt && ::ember::test::shared_data_required())                                          \
    FAIL() << "../shared/data not found beside the checkout, and EMBER_REQUIRE_SHARED_DATA=1";      \
  if (!dir##_opt) GTEST_SKIP() << "../shared/data not found beside the checkout; test data absent"; \
  const std::filesystem::path& dir = *dir##_opt
