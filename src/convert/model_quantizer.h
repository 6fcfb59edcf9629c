// write_quantized_model: the engine of `ember quantize` — reads a GGUF model (split or not), converts each
// tensor to the type its plan gives, on a thread pool, and streams the new file to disk.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "convert/quant_plan.h"
#include "gguf/gguf_split.h"
#include "gguf/gguf_writer.h"

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

// The engine under write_quantized_model and the synthetic models: writes the tensors of `plan`
// (already declared in `header` with add_tensor_info, in plan order) to `out_path`. A tensor whose
// `copy_raw(i)` is non-empty is written as those bytes; any other is converted to its plan type from
// float rows produced by `fill_rows(i, first_row, n_rows, out)`, which is called concurrently from
// worker threads (it must be thread-safe). Every value must be finite, the copied tensors' too (read
// through fill_rows where find_quant_traits knows their type): a NaN or infinity is an error.
using RawTensorFn = std::function<std::span<const std::byte>(size_t tensor)>;
using FillRowsFn = std::function<void(size_t tensor, int64_t first_row, int64_t n_rows, float* out)>;
void write_planned_tensors(const GgufWriter& header, const QuantPlan& plan, const std::string& out_path, int n_threads,
                           const RawTensorFn& copy_raw, const FillRowsFn& fill_rows,
                           const QuantizeProgressFn& progress = {});

}  // namespace ember
