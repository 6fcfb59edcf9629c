// GpuLayers: the layers of a model that run on the GPU (hybrid offload, DESIGN.md §4). The model
// runs its first layers on the CPU backend, copies the residual stream to the device at the
// boundary, and this runs the rest — and, when the output head is offloaded too, the final norm and
// the logits. Implemented by gpu_layers_cuda.cpp in a build with the CUDA backend, and by
// gpu_layers_none.cpp (which refuses with a clear error) in one without.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "cpu/kv_layout.h"
#include "model/batch.h"
#include "model/hooks.h"
#include "model/kv_cache.h"
#include "model/model_config.h"
#include "model/weights.h"

namespace ember {

struct GpuLayersOptions {
  int32_t first_layer = 0;  // layers [first_layer, n_layer) run on the GPU
  bool output = false;      // the output norm and LM head too
  int32_t device = 0;       // CUDA device index
  int64_t max_rows = 1;     // rows per step
  int32_t max_context = 0;  // tokens per sequence
  int32_t n_rot = 0;        // the global RoPE table's rotary dims (0: none)
  int32_t n_rot_local = 0;  // the local one's (Gemma 3; 0: none)
  bool neox = false;
  bool neox_local = false;
  bool batch_invariant = false;
  // Decode steps (up to cuda::kGemvMaxRows rows, no hooks) captured once per shape as CUDA graphs
  // and replayed. EMBER_CUDA_GRAPHS=0 in the environment turns them off (A/B measurements), =1 is
  // the default.
  bool graphs = true;
  // Steps of more than cuda::kGemvMaxRows rows (prefill) run their attention tiled on tensor cores
  // (cuda::tiled_attention, runs of 16 or more rows of a sequence) unless batch-invariant, and when
  // the tiles fill the GPU (cuda::kMinTiledBlocks). EMBER_CUDA_TILED_ATTENTION=0 turns it off,
  // =always tiles whatever the block count (tests, A/B on small models), =1 is the default.
  bool tiled_attention = true;
  bool tiled_attention_always = false;
  // Steps of more than cuda::kGemvMaxRows rows run the matmuls of cuda::int8_gemm_supports' types
  // (every block type) as int8 GEMMs on Q8_1 activations instead of f16
  // cuBLAS on dequantized weights.
  // EMBER_CUDA_INT8_GEMM=1 turns it on, =0 (the default until a GPU has timed both) off.
  bool int8_gemm = false;
};

// The rows of one step as the GPU layers see them (host memory; uploaded once per step).
struct GpuStep {
  int64_t n = 0;
  std::span<const KvSeq> seqs;  // each extended by its rows in this step
  std::span<const KvRow> rows;
  const float* cos_sin = nullptr;        // [n][n_rot]
  const float* cos_sin_local = nullptr;  // [n][n_rot_local]
  const KvCache* kv = nullptr;
};

// What GpuLayers::outputs() gives for a step's rows (step-local indices, ascending in each list),
// into host memory: the logits [logit_rows][n_vocab], the greedy tokens of token_rows (Batch::kToken),
// and the top_k best logits of each of top_rows (Batch::kTopK), [top_rows][top_k].
struct GpuOutputs {
  std::span<const int32_t> logit_rows;
  float* logits = nullptr;
  std::span<const int32_t> token_rows;
  int32_t* tokens = nullptr;
  std::span<const int32_t> top_rows;
  int32_t top_k = 0;
  TopCandidate* top = nullptr;
};

// Runs a hook point on host data (the GPU layers copy a buffer down and back around it).
using GpuHook = std::function<void(HookPoint point, int32_t layer, float* data, int64_t n_rows, int64_t n_cols)>;

// What the device holds, for the stats panel and `ember inspect`.
struct GpuMemoryReport {
  std::string device;         // "NVIDIA H200 (compute 9.0)"
  uint64_t weight_bytes = 0;  // the offloaded weights
  uint64_t scratch_bytes = 0;
  uint64_t used_bytes = 0;   // the whole device's used memory (all processes)
  uint64_t total_bytes = 0;  // the device's memory
};

// The device's measured limits (what `ember bench` reports GPU rates against).
struct GpuRoofline {
  double copy_gbs = 0;    // device-to-device copy, bytes read + written per second / 1e9
  double f16_tflops = 0;  // an f16 tensor-core GEMM (f32 accumulation), TFLOP/s
};

class GpuLayers {
 public:
  // Uploads the weights of the offloaded layers (and the head). Throws Error(kUnsupported) in a
  // build without CUDA, with no usable GPU, or for a tensor type the GPU kernels do not take, and
  // Error(kOutOfMemory) — with the bytes needed and free — when the weights do not fit.
  static std::unique_ptr<GpuLayers> create(const ModelConfig& config, const Weights& weights,
                                           const GpuLayersOptions& options);
  virtual ~GpuLayers() = default;

  virtual int32_t first_layer() const noexcept = 0;
  virtual bool runs_output() const noexcept = 0;
  // Device memory for the KV pools of the GPU layers (KvCacheOptions::device).
  virtual std::shared_ptr<KvPoolMemory> kv_memory() = 0;
  virtual GpuMemoryReport memory() const = 0;
  // Measures the device's copy bandwidth and GEMM rate (~1 s, 1.5 GiB of device memory).
  virtual GpuRoofline measure_roofline() const = 0;

  // Runs layers [first_layer, n_layer) on the step: x [n][n_embd] (host) is their input. When
  // `keep_on_device`, the result stays on the GPU for outputs(), which must follow (the step may
  // still be running when this returns; outputs() waits for it); otherwise it is copied back into x.
  virtual void run(const GpuStep& step, float* x, bool keep_on_device, const std::function<bool(HookPoint)>& active,
                   const GpuHook& hook) = 0;
  // After each run(keep_on_device = true), even with no rows: the output norm, the LM head and the
  // final soft-cap of the rows `out` names, then their outputs (greedy tokens and top-k chosen on
  // the device). Returns once the step and its outputs are done.
  virtual void outputs(const GpuOutputs& out) = 0;
  // Steps run by replaying a captured graph, and graphs captured (tests, stats).
  virtual uint64_t graph_replays() const noexcept { return 0; }
  virtual uint64_t graph_captures() const noexcept { return 0; }
};

}  // namespace ember
