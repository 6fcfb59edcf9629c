// Hook points of the forward pass (DESIGN.md §3): what a callback registered on a model sees —
// activation capture, logit lens, steering.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "ember/export.h"

namespace ember {

enum class HookPoint : uint8_t {
  kEmbeddings,       // token embeddings (scaled where the model scales them), [rows][n_embd]
  kAttentionOutput,  // a layer's attention block output (after wo, any post-norm and residual scale), [rows][n_embd]
  kFfnOutput,        // a layer's FFN block output (after w_down, any post-norm and residual scale), [rows][n_embd]
  kResidual,         // the residual stream after a layer, [rows][n_embd]
  kFinalNorm,        // the output norm of the rows that want logits or hidden states, [rows][n_embd]
  kLogits,           // the logits of the rows that want them (after any logit scale and soft-cap), [rows][n_vocab]
  // A mixture-of-experts layer's router logits, before the softmax (or sigmoid) and the choice of
  // experts, [rows][n_expert]: what each row's experts are chosen from (modify them to steer the
  // choice). Dense layers of such a model (DeepSeek's leading ones) have none.
  kRouterLogits,
};
inline constexpr int kHookPointCount = 7;

// "embeddings", "attention_output", ... (stable: used in CLI flags and logs).
EMBER_API std::string_view hook_point_name(HookPoint point) noexcept;

// What a callback sees: row-major floats it may read and, for steering, modify in place (the
// forward pass continues from the modified values). Valid only during the call.
struct HookTensor {
  HookPoint point;
  int32_t layer;  // the layer index; -1 for kEmbeddings, kFinalNorm, kLogits
  float* data;    // [n_rows][n_cols]
  int64_t n_rows;
  int64_t n_cols;
  std::span<const int32_t> batch_rows;  // the Batch row of each of the n_rows rows
};

using HookFn = std::function<void(const HookTensor&)>;

}  // namespace ember
