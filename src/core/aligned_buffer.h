// AlignedBuffer: an owning, move-only, 64-byte aligned heap buffer (activations, scratch, repacks).
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
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ember
