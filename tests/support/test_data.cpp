// Locating test data and per-test temporary directories.
#include "support/test_data.h"

namespace ember::test {

std::optional<std::filesystem::path> shared_data_dir() {
  std::filesystem::path dir = std::filesystem::path(EMBER_SOURCE_DIR) / ".." / "shared" / "data";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return std::nullopt;
  return std::filesystem::canonical(dir, ec);
}

std::filesystem::path temp_dir(const std::string& name) {
  std::filesystem::path dir = std::filesystem::path(EMBER_BINARY_DIR) / "test-tmp" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace ember::test
