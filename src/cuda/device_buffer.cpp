// DeviceBuffer and device queries (see device_buffer.h).
#include "cuda/device_buffer.h"

#include <utility>

#include "core/check.h"
#include "cuda/cuda_check.h"
#include "ember/error.h"

namespace ember::cuda {

DeviceBuffer::DeviceBuffer(size_t bytes, std::string_view what) {
  if (bytes == 0) return;
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, bytes);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error so later calls do not report it
    const MemoryInfo mem = memory_info();
    fail(ErrorCode::kOutOfMemory, "CUDA: cannot allocate {} ({:.1f} MiB): {} of {:.1f} MiB free on the GPU ({})", what,
         static_cast<double>(bytes) / (1 << 20), static_cast<double>(mem.free) / (1 << 20),
         static_cast<double>(mem.total) / (1 << 20), cudaGetErrorString(status));
  }
  data_ = p;
  bytes_ = bytes;
}

DeviceBuffer::~DeviceBuffer() {
  if (data_ != nullptr) cudaFree(data_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) cudaFree(data_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::upload(const void* src, size_t bytes, size_t offset) {
  EMBER_CHECK(offset <= bytes_ && bytes <= bytes_ - offset);
  if (bytes == 0) return;
  EMBER_CUDA_CHECK(cudaMemcpy(static_cast<char*>(data_) + offset, src, bytes, cudaMemcpyHostToDevice));
}

void DeviceBuffer::download(void* dst, size_t bytes, size_t offset) const {
  EMBER_CHECK(offset <= bytes_ && bytes <= bytes_ - offset);
  if (bytes == 0) return;
  EMBER_CUDA_CHECK(cudaMemcpy(dst, static_cast<const char*>(data_) + offset, bytes, cudaMemcpyDeviceToHost));
}

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

MemoryInfo memory_info() {
  MemoryInfo info;
  if (cudaMemGetInfo(&info.free, &info.total) != cudaSuccess) {
    (void)cudaGetLastError();
    return {};
  }
  return info;
}

}  // namespace ember::cuda
