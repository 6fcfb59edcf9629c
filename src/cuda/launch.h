// EMBER_CUDA_LAUNCH(grid, block, shared_bytes, stream, kernel)(args...): a kernel launch, written
// once for both builds. With nvcc it is `kernel<<<grid, block, shared_bytes, stream>>>(args...)`;
// in an EMBER_CUDA=EMULATE build the CUDA emulator runs the grid on the host (emulator/device.h).
// The kernel comes last so that a template's argument list may hold commas. Also the grid limits
// the launchers keep to.
#pragma once

#if defined(EMBER_CUDA_EMULATED)
#define EMBER_CUDA_LAUNCH(grid, block, shared_bytes, stream, ...) \
  EMBER_CUDA_EMULATED_LAUNCH(grid, block, shared_bytes, stream, __VA_ARGS__)
#else
#define EMBER_CUDA_LAUNCH(grid, block, shared_bytes, stream, ...) __VA_ARGS__<<<grid, block, shared_bytes, stream>>>
#endif

#include <cstdint>

namespace ember::cuda {
// CUDA's largest grid.y and grid.z (grid.x goes to 2^31 - 1).
inline constexpr int64_t kMaxGridY = 65535;
}  // namespace ember::cuda
