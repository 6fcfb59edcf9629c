// quantize_model: the engine of `ember quantize` — reads a GGUF model (split or not), converts each
// tensor to the type its plan gives, on a thread pool, and streams the new file to disk.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "convert/quant_plan.h"
#include "gguf/gguf_split.h"

namespace ember {

// The facts the mixes need, read from the model's metadata (missing keys: zeros).
ModelFacts model_facts(const GgufFile& metadata);

// The plan for a whole model file.
QuantPlan plan_model_quantization(const GgufModelFiles& model, const QuantizeOptions& options);

struct QuantizeProgress {
  size_t tensor_index = 0;  // the tensor being written
  size_t n_tensors = 0;
  uint64_t elements_done = 0;  // over all tensors
  uint64_t elements_total = 0;
};
using QuantizeProgressFn = std::function<void(const QuantizeProgress&)>;

// Writes `model` converted per `plan` to `out_path` (temporary file + rename: `out_path` is never
// half-written). Metadata is copied, except the split keys, with general.file_type and
// general.quantization_version set. n_threads >= 1. `progress` (optional) is called from the
// calling thread after each slab of rows. Throws ember::Error.
void write_quantized_model(const GgufModelFiles& model, const QuantPlan& plan, FileType file_type,
                           const std::string& out_path, int n_threads, const QuantizeProgressFn& progress = {});

}  // namespace ember
