// StagedUpload: a step's small host inputs packed into one page-locked buffer and sent to the
// device in one asynchronous copy: one stream operation where a copy per input from pageable
// memory was one each, every one a transfer the GPU waits for in stream order.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <span>
#include <string_view>

#include <cuda_runtime_api.h>

#include "cuda/device_buffer.h"

namespace ember::cuda {

class StagedUpload {
 public:
  // Every input starts at a multiple of this (cudaMalloc's own alignment: vector loads need 16).
  static constexpr size_t kAlignment = 256;

  StagedUpload() = default;
  // Host and device buffers of `capacity` bytes. The host one is page-locked, or pageable where
  // the system refuses (then a send copies it synchronously first, as any pageable copy does).
  // Throws Error(kOutOfMemory) naming `what`.
  StagedUpload(size_t capacity, std::string_view what);
  ~StagedUpload();
  StagedUpload(StagedUpload&& other) noexcept;
  StagedUpload& operator=(StagedUpload&& other) noexcept;
  StagedUpload(const StagedUpload&) = delete;
  StagedUpload& operator=(const StagedUpload&) = delete;

  // Bytes that stage() calls of these sizes take, in this order.
  static size_t packed_bytes(std::initializer_list<size_t> sizes) noexcept;

  // Starts a new upload at offset 0, first waiting until the copy of the previous send() has read
  // the host buffer (at once when the stream was synchronized since).
  void begin();
  // Appends `bytes` of `src` at the next multiple of kAlignment (checked to fit); returns the
  // device address they have once sent. The first input of an upload lands at device().
  void* stage(const void* src, size_t bytes);
  template <class T>
  T* stage(std::span<const T> values) {
    return static_cast<T*>(stage(values.data(), values.size_bytes()));
  }
  // Queues the copy of everything staged since begin() on `stream`.
  void send(cudaStream_t stream);

  size_t capacity() const noexcept { return device_.bytes(); }
  void* device() const noexcept { return device_.data(); }

 private:
  void release() noexcept;

  DeviceBuffer device_;
  void* host_ = nullptr;
  bool page_locked_ = false;
  cudaEvent_t read_ = nullptr;  // recorded after the copy: the host buffer may be written again
  bool in_flight_ = false;      // read_ recorded and not yet waited for
  size_t used_ = 0;
};

}  // namespace ember::cuda
