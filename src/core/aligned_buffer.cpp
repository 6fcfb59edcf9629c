// AlignedBuffer allocation via std::aligned_alloc.
#include "core/aligned_buffer.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/check.h"

namespace ember {
namespace {

std::atomic<uint64_t> g_allocations{0};

}  // namespace

uint64_t AlignedBuffer::allocation_count() noexcept { return g_allocations.load(std::memory_order_relaxed); }

AlignedBuffer::AlignedBuffer(size_t bytes) {
  if (bytes == 0) return;
  // aligned_alloc requires a size that is a multiple of the alignment.
  if (bytes > SIZE_MAX - kAlignment) fail(ErrorCode::kOutOfMemory, "cannot allocate {} bytes", bytes);
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) fail(ErrorCode::kOutOfMemory, "cannot allocate {} bytes", bytes);
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  std::memset(p, 0, rounded);
  data_ = static_cast<std::byte*>(p);
  size_ = bytes;
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    std::free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

}  // namespace ember
