// Hooks: the callbacks registered on the named intermediates of the forward pass (the points and
// what they see: include/ember/hooks.h). A point with no callback costs the forward pass one branch.
#pragma once

#include <cstdint>
#include <vector>

#include "ember/hooks.h"

namespace ember {

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
