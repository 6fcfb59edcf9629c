// MappedFile: contents, errors naming the path, empty files, move semantics, hints.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>
#include <vector>

#include "core/mapped_file.h"
#include "ember/error.h"
#include "support/test_data.h"

namespace ember {
namespace {

std::filesystem::path write_file(const std::filesystem::path& dir, const std::string& name,
                                 const std::vector<char>& bytes) {
  const auto path = dir / name;
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::vector<char> random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<char> v(n);
  for (char& c : v) c = static_cast<char>(rng());
  return v;
}

TEST(MappedFile, MapsContents) {
  const auto dir = test::temp_dir("mapped_file_contents");
  const auto bytes = random_bytes(100003, 1);
  const auto path = write_file(dir, "f.bin", bytes);
  for (const MapOptions options :
       {MapOptions{}, MapOptions{true, false, MapAdvice::kSequential}, MapOptions{false, true, MapAdvice::kRandom}}) {
    const MappedFile f = MappedFile::open(path.string(), options);
    ASSERT_EQ(f.size(), bytes.size());
    EXPECT_EQ(std::memcmp(f.data(), bytes.data(), bytes.size()), 0);
    EXPECT_EQ(f.path(), path.string());
    f.advise(MapAdvice::kWillNeed, 4097, 10);
    f.advise(MapAdvice::kNormal, f.size() + 100);  // out of range: ignored, no crash
  }
}

TEST(MappedFile, EmptyFileIsEmptySpan) {
  const auto dir = test::temp_dir("mapped_file_empty");
  const MappedFile f = MappedFile::open(write_file(dir, "empty", {}).string());
  EXPECT_EQ(f.size(), 0u);
  EXPECT_TRUE(f.bytes().empty());
}

TEST(MappedFile, ErrorsNameThePath) {
  const auto dir = test::temp_dir("mapped_file_errors");
  for (const auto& path : {dir / "missing.gguf", dir}) {
    try {
      MappedFile::open(path.string());
      FAIL() << "opened " << path;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kIo);
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
  }
}

TEST(MappedFile, MoveKeepsTheMapping) {
  const auto dir = test::temp_dir("mapped_file_move");
  const auto bytes = random_bytes(5000, 2);
  MappedFile a = MappedFile::open(write_file(dir, "f.bin", bytes).string());
  const std::byte* p = a.data();
  MappedFile b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move)
  MappedFile c;
  c = std::move(b);
  ASSERT_EQ(c.size(), bytes.size());
  EXPECT_EQ(std::memcmp(c.data(), bytes.data(), bytes.size()), 0);
}

}  // namespace
}  // namespace ember
