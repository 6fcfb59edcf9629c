// Hooks: callbacks on the named intermediates of the forward pass (DESIGN.md §3) — activation
// capture, logit lens, steering. A point with no callback costs the forward pass one branch.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

namespace ember {

enum class HookPoint : uint8_t {
  kEmbeddings,       // token embeddings (scaled where the model scales them), [rows][n_embd]
  kAttentionOutput,  // a layer's attention block output (after wo and any post-norm), [rows][n_embd]
  kFfnOutput,        // a layer's FFN block output (after w_down and any post-norm), [rows][n_embd]
  kResidual,         // the residual stream after a layer, [rows][n_embd]
  kFinalNorm,        // the output norm of the rows that want logits, [rows][n_embd]
  kLogits,           // the logits of the rows that want them (after any soft-cap), [rows][n_vocab]
};
inline constexpr int kHookPointCount = 6;

std::string_view hook_point_name(HookPoint point) noexcept;

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

// Registered callbacks, run in registration order. Not thread-safe: register between steps or
// from inside a callback (which takes effect from the next intermediate on).
class Hooks {
 public:
  using Handle = uint64_t;

  Handle add(HookPoint point, HookFn fn);
  // Removes a callback; an unknown handle is ignored.
  void remove(Handle handle) noexcept;
  void clear() noexcept;

  // The forward pass's one branch per point.
  bool active(HookPoint point) const noexcept { return (mask_ >> static_cast<unsigned>(point)) & 1u; }
  void run(const HookTensor& tensor) const;

 private:
  struct Entry {
    Handle handle;
    HookPoint point;
    HookFn fn;
  };
  void update_mask() noexcept;

  std::vector<Entry> entries_;
  uint32_t mask_ = 0;
  Handle next_ = 1;
};

}  // namespace ember
