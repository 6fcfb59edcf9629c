// EMBER_CUDA_LAUNCH(grid, block, shared_bytes, stream, kernel)(args...): a kernel launch, written
// once for both builds. With nvcc it is `kernel<<<grid, block, shared_bytes, stream>>>(args...)`;
// in an EMBER_CUDA=EMULATE build the CUDA emulator runs the grid on the host (emulator/device.h).
// The kernel comes last so that a template's argument list may hold commas.
#pragma once

#if defined(EMBER_CUDA_EMULATED)
#define EMBER_CUDA_LAUNCH(grid, block, shared_bytes, stream, ...) \
  EMBER_CUDA_EMULATED_LAUNCH(grid, block, shared_bytes, stream, __VA_ARGS__)
#else
#define EMBER_CUDA_LAUNCH(grid, block, shared_bytes, stream, ...) __VA_ARGS__<<<grid, block, shared_bytes, stream>>>
#endif
