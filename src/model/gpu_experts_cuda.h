// Mixture-of-experts layers on the CUDA backend (the GPU side of moe.h): the merged expert tensors
// uploaded whole, the router's choice on the device, and two ways through the experts. A
// decode-sized step (up to kGemvMaxRows rows) runs every (row, expert) entry's GEMV in one launch
// each for gate/up and down, reading the expert's blocks in place: no host round trip, so the step
// can be captured in a CUDA graph. A longer step copies the choice to the host (one
// synchronization per layer), groups the rows by expert, and runs each used expert once on its
// gathered rows (the GEMM path), so a prefill reads each expert once. Both end in one weighted sum
// in the CPU's order (increasing expert), plus the shared expert where the model has one.
#pragma once

#include <cstdint>
#include <vector>

#include "cuda/cuda_backend.h"
#include "model/model_config.h"
#include "model/weights.h"

namespace ember {

// A mixture-of-experts layer's matrices on the device.
struct CudaMoeLayer {
  cuda::CudaLinear router;            // n_expert rows of n_embd
  cuda::DeviceBuffer selection_bias;  // [n_expert] F32 (exp_probs_b, DeepSeek V3), empty when none
  cuda::CudaExperts gate, up, down;   // ffn_{gate,up,down}_exps
  bool has_shared = false;            // a shared expert (Qwen2-MoE, Granite MoE)
  bool shared_gated = false;          // scaled by sigmoid(shared_router · x) (Qwen2-MoE)
  cuda::CudaLinear shared_router;     // 1 row of n_embd
  cuda::CudaLinear shared_gate, shared_up, shared_down;
};

// Uploads layer `il`'s router, experts and shared expert; `bytes` grows by what they take.
CudaMoeLayer upload_moe_layer(cuda::CudaBackend& backend, const LayerWeights& w, int32_t il, uint64_t& bytes);
// The device bytes of a layer's mixture-of-experts tensors (for the fit check before uploading).
uint64_t moe_layer_bytes(const LayerWeights& w);
// What the GPU cannot run in layers first_layer.. (the GPU's), refused at load before anything is
// allocated: Error(kUnsupported) naming it.
void check_moe_supported(const ModelConfig& config, const Weights& weights, int32_t first_layer);

// moe_ffn's device and host buffers, sized at load for steps of up to max_rows rows.
struct CudaMoeScratch {
  CudaMoeScratch() = default;
  CudaMoeScratch(const ModelConfig& config, int64_t max_rows);
  // The device bytes a scratch for these steps takes.
  static uint64_t planned_bytes(const ModelConfig& config, int64_t max_rows);

  cuda::DeviceBuffer device;          // the device buffers below, one allocation
  float* logits = nullptr;            // [rows][n_expert] router logits, then probabilities
  int32_t* experts = nullptr;         // [rows][n_used] each row's experts
  float* weights = nullptr;           // [rows][n_used] and their weights
  int32_t* row_ids = nullptr;         // [rows * n_used] grouped entries' source rows (long steps)
  int32_t* positions = nullptr;       // [rows * n_used] each entry's place among the grouped ones
  float* x = nullptr;                 // [rows * n_used][n_embd] the rows gathered by expert
  float* gate_up = nullptr;           // [rows][2 * the widest expert] matmul_glu's scratch
  float* hidden = nullptr;            // [rows * n_used][n_ff_expert]
  float* y = nullptr;                 // [rows * n_used][n_embd] every entry's expert output
  float* shared_hidden = nullptr;     // [rows][n_ff_shared]
  float* shared_y = nullptr;          // [rows][n_embd]
  float* shared_logit = nullptr;      // [rows]
  std::vector<int32_t> host_experts;  // long steps: the choice, on the host
  std::vector<int32_t> host_index;    // [row_ids | positions]
  std::vector<int32_t> offsets;       // [n_expert + 1]
};

// x's router logits into the scratch.
void moe_router_logits(cuda::CudaBackend& backend, const CudaMoeLayer& layer, const float* xn, int64_t n,
                       CudaMoeScratch& scratch);
// out [n][n_embd] from the router logits in the scratch on (moe.h's moe_experts on the device).
void moe_experts(cuda::CudaBackend& backend, const ModelConfig& config, const CudaMoeLayer& layer, const float* xn,
                 int64_t n, CudaMoeScratch& scratch, float* out);

// The whole mixture: moe_router_logits, on_router_logits(device logits [n][n_expert]) (the
// kRouterLogits hook), then moe_experts.
template <class OnRouterLogits>
void moe_ffn(cuda::CudaBackend& backend, const ModelConfig& config, const CudaMoeLayer& layer, const float* xn,
             int64_t n, CudaMoeScratch& scratch, float* out, OnRouterLogits&& on_router_logits) {
  moe_router_logits(backend, layer, xn, n, scratch);
  on_router_logits(scratch.logits);
  moe_experts(backend, config, layer, xn, n, scratch, out);
}

}  // namespace ember
