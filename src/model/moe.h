// Mixture-of-experts FFN on the CPU backend (Mixtral, Qwen2-MoE, Qwen3-MoE, Granite MoE, DeepSeek): the
// router picks each row's experts; every expert runs its SwiGLU once on all the step's rows routed to it
// (gathered, so a prefill step reads each expert's weights once), and a row's output is the weighted
// sum of its experts' outputs, plus a shared expert where the model has one (Qwen2-MoE's gated).
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/cpu_backend.h"
#include "model/model_config.h"
#include "model/weights.h"

namespace ember {

// A mixture-of-experts layer's matrices as the CPU backend runs them.
struct MoeLinears {
  Linear router;  // n_expert rows of n_embd
  std::vector<Linear> gate, up,
      down;                   // [n_expert]: n_ff_expert rows of n_embd (gate, up); n_embd of n_ff_expert (down)
  bool has_shared = false;    // a shared expert (Qwen2-MoE, Granite MoE)
  bool shared_gated = false;  // scaled by sigmoid(shared_router · x) (Qwen2-MoE)
  Linear shared_router;       // 1 row of n_embd: the shared expert's gate logit
  Linear shared_gate, shared_up, shared_down;
  const float* selection_bias = nullptr;  // [n_expert] exp_probs_b (DeepSeek V3), else null
};

// Expert e of a merged [k, n_out, n_expert] tensor (ffn_*_exps) as a matrix of n_out rows of k.
WeightMatrix expert_matrix(const TensorView& experts, int64_t e);

// How select_experts chooses and weighs (a model's MoeConfig with one layer's selection bias).
struct ExpertRouting {
  int32_t n_expert = 0;
  int32_t k = 0;                // experts per row, 1..n_expert
  bool normalize = false;       // the chosen weights divided by their sum (at least 2^-14, as llama.cpp clamps it)
  float scale = 0.0f;           // then times this; 0 or 1: none
  const float* bias = nullptr;  // [n_expert] added to the probabilities for the choice only; null: none
  // > 1: the experts are n_group equal groups and a row chooses within the n_group_used groups whose
  // two largest biased probabilities sum highest (ties: the lower group first).
  int32_t n_group = 0;
  int32_t n_group_used = 0;

  static ExpertRouting of(const MoeConfig& moe, const float* bias) noexcept;
};

// The router's choice for each of n_rows rows of `probs` ([n_rows][n_expert] probabilities): the k
// largest (biased, within the allowed groups; ties: the lower expert first), in decreasing order, into
// experts [n_rows][k], with their unbiased probabilities, normalized and scaled as `routing` says,
// into weights [n_rows][k].
void select_experts(const float* probs, int64_t n_rows, const ExpertRouting& routing, int32_t* experts, float* weights);
// The plain rule (softmax routers of Mixtral and Qwen): no bias, groups or scale.
inline void select_experts(const float* probs, int64_t n_rows, int32_t n_expert, int32_t k, bool normalize,
                           int32_t* experts, float* weights) {
  select_experts(probs, n_rows, ExpertRouting{.n_expert = n_expert, .k = k, .normalize = normalize}, experts, weights);
}

// A router's logits [n_rows][n_expert] into probabilities in place: softmax or sigmoid (`gating`).
void gate_router_logits(CpuBackend& backend, ExpertGating gating, float* logits, int64_t n_rows, int32_t n_expert);

// moe_ffn's buffers, sized once (reserve) for the largest step.
struct MoeScratch {
  std::vector<float> probs;        // [rows][n_expert] router logits, then probabilities
  std::vector<int32_t> experts;    // [rows][n_used] each row's chosen experts
  std::vector<float> weights;      // [rows][n_used] and their weights
  std::vector<int32_t> offsets;    // [n_expert + 1]: expert e's entries of `entries` are [offsets[e], offsets[e + 1])
  std::vector<int32_t> entries;    // [rows * n_used] row * n_used + slot, grouped by expert, rows in order
  std::vector<float> x;            // [rows][n_embd] the rows routed to one expert, gathered
  std::vector<float> gate_up;      // [rows][2 * the widest expert]
  std::vector<float> hidden;       // [rows][the widest expert]
  std::vector<float> y;            // [rows][n_embd] one expert's outputs
  std::vector<float> shared_gate;  // [rows] the shared expert's gate logits

  void reserve(const ModelConfig& config, int64_t max_rows);
};

// s.probs [n][n_expert] = the router's logits of xn [n][n_embd] (the normed FFN input).
void moe_router_logits(CpuBackend& backend, const MoeLinears& layer, const float* xn, int64_t n, MoeScratch& scratch);
// out [n][n_embd] from the router logits in scratch.probs on: for each row, the sum over its chosen
// experts e (in increasing e, so a row's result depends on its own experts only, not on what shares
// its step) of weight_e · down_e(silu(gate_e · x) · up_e · x), then + the shared expert's output where
// the model has one, times sigmoid(shared_router · x) where it is gated. The weights as
// select_experts gives them for the model's routing (MoeConfig).
void moe_experts(CpuBackend& backend, const ModelConfig& config, const MoeLinears& layer, const float* xn, int64_t n,
                 MoeScratch& scratch, float* out);

// The whole mixture: moe_router_logits, on_router_logits(logits [n][n_expert]) (the kRouterLogits
// hook, which may modify them), then moe_experts. (A template: a step allocates nothing.)
template <class OnRouterLogits>
void moe_ffn(CpuBackend& backend, const ModelConfig& config, const MoeLinears& layer, const float* xn, int64_t n,
             MoeScratch& scratch, float* out, OnRouterLogits&& on_router_logits) {
  moe_router_logits(backend, layer, xn, n, scratch);
  on_router_logits(scratch.probs.data());
  moe_experts(backend, config, layer, xn, n, scratch, out);
}

}  // namespace ember
