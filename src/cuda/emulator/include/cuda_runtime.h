// The CUDA emulator's stand-in for cuda_runtime.h: the runtime API and the device-side language
// (qualifiers, built-in variables, intrinsics, kernel launches).
#pragma once

#include <cuda_runtime_api.h>

#include "cuda/emulator/device.h"
