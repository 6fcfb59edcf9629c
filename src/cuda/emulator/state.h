// The CUDA emulator's shared internals: the last error, the registry of device allocations that
// kernel arguments and copies are checked against, and the emulated device's description.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <functional>

// The emulator's own bookkeeping on the path of every shuffle, left out of AddressSanitizer's
// instrumentation as scheduler.cpp is (src/cuda/emulator/CMakeLists.txt): ASan is there for the
// kernels' accesses to device memory, not the emulator's to its own state.
#define EMBER_EMULATOR_NO_ASAN __attribute__((no_sanitize("address")))

namespace ember::cuda_emulator {

// Records `error` as the calling thread's last error (cudaGetLastError) and returns it.
cudaError_t set_last_error(cudaError_t error);
// Whether [p, p + bytes) lies inside one live cudaMalloc allocation (bytes 0: p inside or one past
// the end of one).
bool is_device_range(const void* p, size_t bytes);
// Whether p points into (or one past the end of) any live allocation.
bool is_device_pointer(const void* p);
// Work enqueued on `stream`: recorded into its capture when it is capturing (true), else left to
// the caller to run now (false). Aborts for the legacy stream while this thread captures (CUDA's
// implicit synchronization would invalidate the capture).
bool record_if_capturing(cudaStream_t stream, std::function<void()> work, const char* call);
// Aborts naming `call` when this thread has a capture in progress: synchronous calls end it on a GPU.
void check_not_capturing(const char* call);
// Whether `stream` is capturing.
bool is_capturing(cudaStream_t stream);
// While one lives (kernels, copies, memsets, cuBLAS calls), the host may touch device memory. The
// allocations made with EMBER_CUDA_EMULATOR_HOST_GUARD=1 are PROT_NONE outside them, so that host
// code reading or writing through a device pointer faults as it would on a GPU (elsewhere this
// costs nothing). Nests; one switch for all threads.
struct DeviceAccess {
  DeviceAccess();
  ~DeviceAccess();
  DeviceAccess(const DeviceAccess&) = delete;
  DeviceAccess& operator=(const DeviceAccess&) = delete;
};
// Whether EMBER_CUDA_EMULATOR_HOST_GUARD=1 asks for the host guard (DeviceAccess): allocations are
// then whole pages of their own.
bool host_guard_requested();
// Prints "CUDA emulator: <message>" and aborts: a fault a GPU would report as a sticky error.
[[noreturn]] void fault(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace ember::cuda_emulator
