// GpuLayers in a build without the CUDA backend: asking for GPU layers is a clear error.
#include "core/check.h"
#include "ember/error.h"
#include "model/gpu_layers.h"

namespace ember {

std::unique_ptr<GpuLayers> GpuLayers::create(const ModelConfig&, const Weights&, const GpuLayersOptions&) {
  fail(ErrorCode::kUnsupported,
       "GPU offload asked for, but this build of ember has no CUDA backend (rebuild where the CUDA toolkit is "
       "installed: nvcc and cuBLAS)");
}

}  // namespace ember
