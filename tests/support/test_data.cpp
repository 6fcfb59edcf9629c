// Locating test data and per-test temporary directories.
#include "support/test_data.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace ember::test {

std::optional<std::filesystem::path> shared_data_dir() {
  // EMBER_SHARED_DATA overrides the place beside the checkout the tests were built in (a test
  // binary run on another machine: scripts/device-check.sh).
  const char* env = std::getenv("EMBER_SHARED_DATA");
  std::filesystem::path dir = env != nullptr && *env != '\0'
                                  ? std::filesystem::path(env)
                                  : std::filesystem::path(EMBER_SOURCE_DIR) / ".." / "shared" / "data";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return std::nullopt;
  return std::filesystem::canonical(dir, ec);
}

bool shared_data_required() {
  const char* env = std::getenv("EMBER_REQUIRE_SHARED_DATA");
  return env != nullptr && std::string(env) == "1";
}

std::vector<std::filesystem::path> gguf_files_under(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".gguf") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t entries_in(const std::filesystem::path& dir) {
  return static_cast<size_t>(
      std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()));
}

namespace {

// Directories handed out by temp_dir(), removed when the test process exits normally.
std::vector<std::filesystem::path>& created_dirs() {
  static std::vector<std::filesystem::path> dirs;
  return dirs;
}

void remove_created_dirs() {
  std::error_code ec;
  for (const auto& dir : created_dirs()) std::filesystem::remove_all(dir, ec);
}

}  // namespace

std::filesystem::path temp_dir(const std::string& name) {
  // ctest runs every test case as its own process, several at once: the pid keeps two processes
  // that ask for the same name from wiping each other's files.
  std::filesystem::path dir =
      std::filesystem::path(EMBER_BINARY_DIR) / "test-tmp" / (name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  if (created_dirs().empty()) std::atexit(remove_created_dirs);
  created_dirs().push_back(dir);
  return dir;
}

}  // namespace ember::test
