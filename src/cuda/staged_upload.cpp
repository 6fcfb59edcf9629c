// StagedUpload (see staged_upload.h).
#include "cuda/staged_upload.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "core/check.h"
#include "core/log.h"
#include "cuda/cuda_check.h"
#include "ember/error.h"

namespace ember::cuda {

namespace {
size_t round_up(size_t n) {
  return (n + StagedUpload::kAlignment - 1) / StagedUpload::kAlignment * StagedUpload::kAlignment;
}
}  // namespace

size_t StagedUpload::packed_bytes(std::initializer_list<size_t> sizes) noexcept {
  size_t total = 0;
  for (const size_t n : sizes) total = round_up(total) + n;
  return total;
}

StagedUpload::StagedUpload(size_t capacity, std::string_view what) : device_(capacity, what) {
  if (capacity == 0) return;
  if (cudaMallocHost(&host_, capacity) == cudaSuccess) {
    page_locked_ = true;
  } else {
    (void)cudaGetLastError();  // not sticky, but keep it from being reported by a later check
    host_ = nullptr;
    EMBER_LOG_WARN("CUDA: no page-locked memory for {} ({} bytes): its uploads copy synchronously", what, capacity);
    host_ = std::aligned_alloc(kAlignment, round_up(capacity));
    if (host_ == nullptr)
      fail(ErrorCode::kOutOfMemory, "cannot allocate {} bytes of host memory for {}", capacity, what);
  }
  EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&read_, cudaEventDisableTiming));
}

StagedUpload::~StagedUpload() { release(); }

StagedUpload::StagedUpload(StagedUpload&& other) noexcept
    : device_(std::move(other.device_)),
      host_(std::exchange(other.host_, nullptr)),
      page_locked_(std::exchange(other.page_locked_, false)),
      read_(std::exchange(other.read_, nullptr)),
      in_flight_(std::exchange(other.in_flight_, false)),
      used_(std::exchange(other.used_, 0)) {}

StagedUpload& StagedUpload::operator=(StagedUpload&& other) noexcept {
  if (this != &other) {
    release();
    device_ = std::move(other.device_);
    host_ = std::exchange(other.host_, nullptr);
    page_locked_ = std::exchange(other.page_locked_, false);
    read_ = std::exchange(other.read_, nullptr);
    in_flight_ = std::exchange(other.in_flight_, false);
    used_ = std::exchange(other.used_, 0);
  }
  return *this;
}

void StagedUpload::release() noexcept {
  // A copy still reading the host buffer must finish before it goes (the device buffer's owner
  // keeps the stream's later work from outliving it, as for any DeviceBuffer).
  if (in_flight_) (void)cudaEventSynchronize(read_);
  if (read_ != nullptr) (void)cudaEventDestroy(read_);
  if (page_locked_) {
    (void)cudaFreeHost(host_);
  } else {
    std::free(host_);
  }
  host_ = nullptr;
  read_ = nullptr;
  in_flight_ = false;
}

void StagedUpload::begin() {
  if (in_flight_) {
    EMBER_CUDA_CHECK(cudaEventSynchronize(read_));
    in_flight_ = false;
  }
  used_ = 0;
}

void* StagedUpload::stage(const void* src, size_t bytes) {
  EMBER_CHECK(!in_flight_);  // begin() first
  const size_t at = round_up(used_);
  EMBER_CHECK_MSG(at <= capacity() && bytes <= capacity() - at, "a staged upload past its capacity");
  if (bytes != 0) std::memcpy(static_cast<char*>(host_) + at, src, bytes);
  used_ = at + bytes;
  return static_cast<char*>(device_.data()) + at;
}

void StagedUpload::send(cudaStream_t stream) {
  EMBER_CHECK(!in_flight_);
  if (used_ == 0) return;
  EMBER_CUDA_CHECK(cudaMemcpyAsync(device_.data(), host_, used_, cudaMemcpyHostToDevice, stream));
  EMBER_CUDA_CHECK(cudaEventRecord(read_, stream));
  in_flight_ = true;
}

}  // namespace ember::cuda
