// AlignedBuffer allocation: std::aligned_alloc, or an anonymous mapping for large buffers.
#include "core/aligned_buffer.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <sys/mman.h>

#include "core/check.h"

namespace ember {
namespace {

std::atomic<uint64_t> g_allocations{0};
constexpr size_t kHugePageBytes = size_t{2} << 20;

}  // namespace

uint64_t AlignedBuffer::allocation_count() noexcept { return g_allocations.load(std::memory_order_relaxed); }

AlignedBuffer::AlignedBuffer(size_t bytes) {
  if (bytes == 0) return;
  if (bytes > SIZE_MAX / 2) fail(ErrorCode::kOutOfMemory, "cannot allocate {} bytes", bytes);
  if (bytes >= 2 * kHugePageBytes) {
    // Over-map by one huge page, then trim to a 2 MiB aligned range.
    const size_t rounded = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
    const size_t span = rounded + kHugePageBytes;
    void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) fail(ErrorCode::kOutOfMemory, "cannot allocate {} bytes", bytes);
    const auto base = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (base + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
    if (aligned > base) munmap(raw, aligned - base);
    const uintptr_t end = aligned + rounded;
    if (end < base + span) munmap(reinterpret_cast<void*>(end), base + span - end);
    madvise(reinterpret_cast<void*>(aligned), rounded, MADV_HUGEPAGE);  // a hint; ignored without THP
    data_ = reinterpret_cast<std::byte*>(aligned);
    mapped_bytes_ = rounded;
  } else {
    // aligned_alloc requires a size that is a multiple of the alignment.
    const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* p = std::aligned_alloc(kAlignment, rounded);
    if (p == nullptr) fail(ErrorCode::kOutOfMemory, "cannot allocate {} bytes", bytes);
    std::memset(p, 0, rounded);
    data_ = static_cast<std::byte*>(p);
  }
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  size_ = bytes;
}

void AlignedBuffer::release() noexcept {
  if (mapped_bytes_ > 0) {
    munmap(data_, mapped_bytes_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
  size_ = 0;
  mapped_bytes_ = 0;
}

AlignedBuffer::~AlignedBuffer() { release(); }

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_bytes_(std::exchange(other.mapped_bytes_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_bytes_ = std::exchange(other.mapped_bytes_, 0);
  }
  return *this;
}

}  // namespace ember
