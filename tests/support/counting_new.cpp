// The replacement global operator new behind allocation_count(): counts, then forwards to malloc.
#include "support/counting_new.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<int64_t> g_allocations{0};
// Out of line: inlined into a std::allocator, GCC 12 mistakes the free() for a mismatched pair.
[[gnu::noinline]] void release(void* p) noexcept { std::free(p); }
}  // namespace

void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { release(p); }
void operator delete(void* p, size_t) noexcept { release(p); }

namespace ember::test {

int64_t allocation_count() noexcept { return g_allocations.load(std::memory_order_relaxed); }

}  // namespace ember::test
