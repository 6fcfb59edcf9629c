// One whole decoder layer as every backend runs it (forward.cpp on the CPU, gpu_layers_cuda.cpp on
// CUDA): attention (latent attention in a model with MlaConfig) then the FFN (the experts in a layer
// that has them, else the dense one), then the residual hook.
#pragma once

#include <cstdint>

#include "model/latent_attention.h"
#include "model/transformer_layer.h"

namespace ember {

// `latent`: the layer's latent-attention matrices (null unless c.mla.kv_lora_rank > 0), with the
// step's LatentBuffers `t`. `experts(xn, rows, out, on_router_logits)`: the layer's experts (called
// only when c.layer_has_experts(il)).
template <class Backend, class LinearT, class StepKv, class Experts, class Active, class Hook>
void decoder_layer(Backend& b, const ModelConfig& c, int32_t il, const LayerVectors& w,
                   const LayerLinearsOf<LinearT>& l, const LatentLinearsOf<LinearT>* latent, const LayerBuffers& s,
                   const LatentBuffers& t, const LayerStep& step, const PagedKvView& cache, const StepKv& kv,
                   Experts&& experts, Active&& active, Hook&& hook) {
  if (latent != nullptr) {  // DeepSeek V2/V3's latent attention
    latent_attention_block(b, c, il, w, l, *latent, s, t, step, cache, kv, active, hook);
  } else {
    attention_block(b, c, il, w, l, s, step, cache, kv, active, hook);
  }
  if (c.layer_has_experts(il)) {
    expert_ffn_block(b, c, il, w, s, step.n, experts, active, hook);
  } else {
    ffn_block(b, c, il, w, l, s, step.n, active, hook);
  }
  residual_hook(c, il, s, step.n, active, hook);
}

}  // namespace ember
