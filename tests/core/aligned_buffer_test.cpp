// AlignedBuffer: alignment, zero fill, ownership transfer, allocation failure as ember::Error.
#include <gtest/gtest.h>

#include <cstdint>

#include "core/aligned_buffer.h"
#include "ember/error.h"

namespace ember {
namespace {

TEST(AlignedBuffer, AlignedAndZeroFilled) {
  for (size_t bytes : {1u, 3u, 63u, 64u, 65u, 4097u, 1000003u}) {
    AlignedBuffer buf(bytes);
    ASSERT_EQ(buf.size(), bytes);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(buf.data()) % AlignedBuffer::kAlignment, 0u);
    for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(buf.data()[i], std::byte{0}) << i;
    for (size_t i = 0; i < bytes; ++i) buf.data()[i] = static_cast<std::byte>(i * 7 + 1);  // writable to the end
    EXPECT_EQ(buf.data()[bytes - 1], static_cast<std::byte>((bytes - 1) * 7 + 1));
  }
}

// From 4 MiB on, buffers are anonymous mappings trimmed to 2 MiB alignment: zero without a memset,
// writable to the end, and moved / move-assigned / freed like the small ones (ASan and the mapping
// count would catch a leaked or double-unmapped range).
TEST(AlignedBuffer, LargeBuffersAreHugePageAlignedMappings) {
  constexpr size_t kMiB = size_t{1} << 20;
  for (size_t bytes : {4 * kMiB - 1, 4 * kMiB, 4 * kMiB + 1, 6 * kMiB + 3}) {
    SCOPED_TRACE(bytes);
    AlignedBuffer buf(bytes);
    ASSERT_EQ(buf.size(), bytes);
    const bool mapped = bytes >= 4 * kMiB;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(buf.data()) % (mapped ? 2 * kMiB : AlignedBuffer::kAlignment), 0u);
    for (size_t i = 0; i < bytes; i += 4093) ASSERT_EQ(buf.data()[i], std::byte{0}) << i;
    ASSERT_EQ(buf.data()[bytes - 1], std::byte{0});
    buf.data()[0] = std::byte{1};
    buf.data()[bytes - 1] = std::byte{2};
    AlignedBuffer moved(std::move(buf));
    EXPECT_EQ(moved.data()[bytes - 1], std::byte{2});
    AlignedBuffer other(5 * kMiB);
    other = std::move(moved);  // unmaps other's range, takes moved's
    EXPECT_EQ(other.size(), bytes);
    EXPECT_EQ(other.data()[0], std::byte{1});
  }
}

TEST(AlignedBuffer, EmptyHasNoData) {
  AlignedBuffer empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.data(), nullptr);
  AlignedBuffer zero(0);
  EXPECT_TRUE(zero.empty());
}

TEST(AlignedBuffer, MoveTransfersOwnership) {
  AlignedBuffer a(128);
  a.as<float>()[5] = 2.5f;
  const std::byte* p = a.data();
  AlignedBuffer b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.size(), 128u);
  EXPECT_EQ(b.as<float>()[5], 2.5f);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  AlignedBuffer c(16);
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.size(), 128u);
}

TEST(AlignedBuffer, ImpossibleSizeThrows) {
  try {
    AlignedBuffer huge(SIZE_MAX - 8);
    FAIL() << "allocated SIZE_MAX - 8 bytes";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kOutOfMemory);
    EXPECT_NE(std::string(e.what()).find(std::to_string(SIZE_MAX - 8)), std::string::npos);
  }
}

}  // namespace
}  // namespace ember
