// The CUDA emulator's shared internals: the last error, the registry of device allocations that
// kernel arguments and copies are checked against, and the emulated device's description.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

namespace ember::cuda_emulator {

// Records `error` as the calling thread's last error (cudaGetLastError) and returns it.
cudaError_t set_last_error(cudaError_t error);
// Whether [p, p + bytes) lies inside one live cudaMalloc allocation (bytes 0: p inside or one past
// the end of one).
bool is_device_range(const void* p, size_t bytes);
// Whether p points into (or one past the end of) any live allocation.
bool is_device_pointer(const void* p);
// Prints "CUDA emulator: <message>" and aborts: a fault a GPU would report as a sticky error.
[[noreturn]] void fault(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace ember::cuda_emulator
