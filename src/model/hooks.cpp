// Hooks: the registry of forward-pass callbacks.
#include "model/hooks.h"

#include <algorithm>
#include <utility>

namespace ember {

std::string_view hook_point_name(HookPoint point) noexcept {
  switch (point) {
    case HookPoint::kEmbeddings: return "embeddings";
    case HookPoint::kAttentionOutput: return "attention_output";
    case HookPoint::kFfnOutput: return "ffn_output";
    case HookPoint::kResidual: return "residual";
    case HookPoint::kFinalNorm: return "final_norm";
    case HookPoint::kLogits: return "logits";
    case HookPoint::kRouterLogits: return "router_logits";
  }
  return "?";
}

Hooks::Handle Hooks::add(HookPoint point, HookFn fn) {
  const Handle handle = next_++;
  entries_.push_back({handle, point, std::move(fn)});
  update_mask();
  return handle;
}

void Hooks::remove(Handle handle) noexcept {
  std::erase_if(entries_, [handle](const Entry& e) { return e.handle == handle; });
  update_mask();
}

void Hooks::clear() noexcept {
  entries_.clear();
  mask_ = 0;
}

void Hooks::run(const HookTensor& tensor) const {
  // A snapshot: a callback may add or remove hooks (itself included); that takes effect from the
  // next intermediate on.
  const std::vector<Entry> snapshot = entries_;
  for (const Entry& e : snapshot) {
    if (e.point == tensor.point) e.fn(tensor);
  }
}

void Hooks::update_mask() noexcept {
  mask_ = 0;
  for (const Entry& e : entries_) mask_ |= 1u << static_cast<unsigned>(e.point);
}

}  // namespace ember
