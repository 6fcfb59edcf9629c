// DeviceBuffer: a move-only owner of one cudaMalloc allocation (DESIGN.md §8), with the host <->
// device copies the backend and the tests need.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include <cuda_runtime_api.h>

namespace ember::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  // Throws Error(kOutOfMemory) naming `what`, the bytes asked for and the device's free memory.
  explicit DeviceBuffer(size_t bytes, std::string_view what = "buffer");
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const noexcept { return data_; }
  template <typename T>
  T* as() const noexcept {
    return static_cast<T*>(data_);
  }
  size_t bytes() const noexcept { return bytes_; }
  bool empty() const noexcept { return bytes_ == 0; }

  // Synchronous copies (tests, load time); `bytes` must fit.
  void upload(const void* src, size_t bytes, size_t offset = 0);
  void download(void* dst, size_t bytes, size_t offset = 0) const;

  // A new buffer holding `values`.
  template <typename T>
  static DeviceBuffer from(std::span<const T> values, std::string_view what = "buffer") {
    DeviceBuffer b(values.size_bytes(), what);
    b.upload(values.data(), values.size_bytes());
    return b;
  }
  template <typename T>
  static DeviceBuffer from(const std::vector<T>& values, std::string_view what = "buffer") {
    return from(std::span<const T>(values), what);
  }
  // The first n elements as a host vector.
  template <typename T>
  std::vector<T> to_vector(size_t n) const {
    std::vector<T> out(n);
    download(out.data(), n * sizeof(T));
    return out;
  }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// CUDA devices visible to this process; 0 when there is no driver, no GPU, or the runtime fails.
int device_count() noexcept;
// (free, total) bytes of the current device.
struct MemoryInfo {
  size_t free = 0;
  size_t total = 0;
};
MemoryInfo memory_info();

}  // namespace ember::cuda
