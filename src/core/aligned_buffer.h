// AlignedBuffer: an owning, move-only, 64-byte aligned, zero-filled buffer (activations, scratch,
// repacked weights, KV pools).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ember {

class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 64;  // one cache line; the widest SIMD load (zmm)

  // How many buffers this process has allocated so far: lets tests prove a hot path allocates
  // none (operator new counting cannot see aligned_alloc).
  static uint64_t allocation_count() noexcept;

  AlignedBuffer() = default;
  // Allocates `bytes` bytes, zero-filled. Throws ember::Error(kOutOfMemory) naming the size.
  // Buffers of 4 MiB and more are anonymous mappings, 2 MiB aligned and marked for transparent
  // huge pages: zero without a memset, their pages faulted in by whichever thread first writes
  // them (in parallel when the writers are), 512x fewer faults and TLB misses where THP is on.
  explicit AlignedBuffer(size_t bytes);
  ~AlignedBuffer();

  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  std::byte* data() noexcept { return data_; }
  const std::byte* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::span<std::byte> bytes() noexcept { return {data_, size_}; }
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

  template <typename T>
  T* as() noexcept {
    return reinterpret_cast<T*>(data_);
  }
  template <typename T>
  const T* as() const noexcept {
    return reinterpret_cast<const T*>(data_);
  }

 private:
  void release() noexcept;

  std::byte* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_bytes_ = 0;  // > 0: data_ is an anonymous mapping of this many bytes
};

}  // namespace ember
