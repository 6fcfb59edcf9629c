// Heap allocations counted: link counting_new.cpp into a test executable of its own (it replaces
// the global operator new, which ThreadSanitizer's runtime also defines) to check that a code
// path allocates nothing.
#pragma once

#include <cstdint>

namespace ember::test {

// Calls of the global operator new in this process so far.
int64_t allocation_count() noexcept;

}  // namespace ember::test
