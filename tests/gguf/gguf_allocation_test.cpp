// The reader never allocates far more than the file it reads: corrupted counts cannot make it
// reserve gigabytes. Measured with a counting global operator new.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "gguf/gguf_reader.h"
#include "gguf/raw_gguf.h"

// GCC sees the malloc/free pair inside the replaced global operators after inlining and takes
// it for a new/free mismatch; it is the definition of those operators.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
std::atomic<bool> g_counting{false};
std::atomic<size_t> g_allocated{0};     // cumulative bytes requested while counting
std::atomic<size_t> g_limit{SIZE_MAX};  // while counting, requests past this total fail
}  // namespace

void* operator new(size_t n) {
  if (g_counting.load(std::memory_order_relaxed) &&
      g_allocated.fetch_add(n, std::memory_order_relaxed) + n > g_limit.load(std::memory_order_relaxed)) {
    // Fail once, then let the error path allocate its message (as freed memory would allow).
    g_counting.store(false, std::memory_order_relaxed);
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace ember {
namespace {

using test::RawGguf;
constexpr uint32_t kValueTypeU8 = 0, kValueTypeArray = 9;
constexpr size_t kFileSize = 1 << 20;

// Cumulative bytes allocated while parsing `bytes` (whether it parses or not).
size_t allocated_while_parsing(const RawGguf& file) {
  g_allocated = 0;
  g_counting = true;
  try {
    GgufFile::parse(file.span(), "alloc.gguf");
  } catch (const Error&) {
  }
  g_counting = false;
  return g_allocated;
}

void fill_to(RawGguf& f, size_t size) {
  while (f.size() < size) f.u8(0);
}

// Bound: a small constant plus a fixed multiple of the file size (one GgufValue per 12-byte
// nested array header, and vector doubling), never the count a header claims.
constexpr size_t kBound = 32 * kFileSize + (8 << 20);

TEST(GgufAllocation, DeepNestingWithHugeCountsStaysBounded) {
  RawGguf f;
  f.header(0, 1).kv("k", kValueTypeArray);
  for (int level = 0; level < 20; ++level) f.u32(kValueTypeArray).u64((kFileSize - f.size()) / 12);
  fill_to(f, kFileSize);
  EXPECT_LT(allocated_while_parsing(f), kBound);
}

TEST(GgufAllocation, WideArrayOfEmptyArraysStaysBounded) {
  RawGguf f;
  const uint64_t n = (kFileSize - 64) / 12;
  f.header(0, 1).kv("k", kValueTypeArray).u32(kValueTypeArray).u64(n);
  for (uint64_t i = 0; i < n; ++i) f.u32(kValueTypeU8).u64(0);
  const size_t allocated = allocated_while_parsing(f);
  EXPECT_LT(allocated, kBound);
  EXPECT_NO_THROW(GgufFile::parse(f.span(), "wide.gguf"));
}

TEST(GgufAllocation, HeaderCountsAreNotReservedBlindly) {
  RawGguf f;
  f.header(kFileSize / 40, kFileSize / 40);
  fill_to(f, kFileSize);  // zeros: the first key is empty, parsing stops at entry 0
  EXPECT_LT(allocated_while_parsing(f), size_t{2} << 20);
}

// Running out of memory while parsing is an ember::Error naming the file, not std::bad_alloc.
TEST(GgufAllocation, OutOfMemoryBecomesAnEmberError) {
  RawGguf f;
  f.header(0, 1).kv("tokens", kValueTypeArray).u32(8).u64(20000);  // 20,000 strings
  for (int i = 0; i < 20000; ++i) f.str("token");
  g_allocated = 0;
  g_limit = 64 * 1024;
  g_counting = true;
  try {
    GgufFile::parse(f.span(), "oom.gguf");
    g_counting = false;
    ADD_FAILURE() << "parsed within a 64 KiB allocation budget";
  } catch (const Error& e) {
    g_counting = false;
    EXPECT_EQ(e.code(), ErrorCode::kOutOfMemory);
    EXPECT_NE(std::string(e.what()).find("oom.gguf"), std::string::npos) << e.what();
  }
  g_limit = SIZE_MAX;
  EXPECT_NO_THROW(GgufFile::parse(f.span(), "oom.gguf"));  // and fine with memory to spare
}

}  // namespace
}  // namespace ember
