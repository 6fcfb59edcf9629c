// The CUDA emulator's scheduler: a grid's blocks run one after another on the launching thread, a
// block's threads as fibers (a stack each, switched in a few instructions) whose only switch points
// are __syncthreads and the warp exchanges behind the shuffles. Between two barriers the fibers run
// in a seeded random order (EMBER_CUDA_EMULATOR_ORDER=shuffle, the default; forward; reverse), so a
// kernel that reads what another thread wrote without a barrier between them goes wrong here as it
// would on a GPU, and a barrier some threads never reach is reported as a deadlock.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "cuda/emulator/device.h"
#include "cuda/emulator/state.h"

#if !defined(__x86_64__)
#error "the CUDA emulator's fiber switch is written for x86-64"
#endif

// EMBER_EMULATOR_ASAN: the program runs under AddressSanitizer, which must be told of every stack
// switch. This file itself is compiled without it in the sanitizer build (CMakeLists.txt), which
// then defines the macro.
#if defined(EMBER_EMULATOR_ASAN)
#elif defined(__SANITIZE_ADDRESS__)
#define EMBER_EMULATOR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMBER_EMULATOR_ASAN 1
#endif
#endif
#ifdef EMBER_EMULATOR_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

// Saves the callee-saved registers on the current stack, stores the stack pointer in *save_sp, and
// resumes the context whose stack pointer is load_sp (System V). MXCSR and the x87 control word are
// not switched: every fiber runs with the launching thread's.
extern "C" void ember_cuda_emulator_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .globl ember_cuda_emulator_switch
  .hidden ember_cuda_emulator_switch
  .type ember_cuda_emulator_switch, @function
ember_cuda_emulator_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ember_cuda_emulator_switch, .-ember_cuda_emulator_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");

namespace ember::cuda_emulator {

constinit thread_local Builtins t_builtins{};

namespace {

constexpr size_t kStackBytes = size_t{128} << 10;  // per fiber; sanitized kernels have large frames
constexpr int kMaxThreads = 1024;
constexpr int kWarp = 32;

// An mmap'd fiber stack with an inaccessible guard page below it: an overflow faults at once.
class Stack {
 public:
  Stack() {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* p =
        mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) fault("cannot map a %zu KiB fiber stack", kStackBytes >> 10);
    if (mprotect(p, page, PROT_NONE) != 0) fault("cannot protect a fiber stack's guard page");
    base_ = static_cast<char*>(p);
    guard_ = page;
  }
  Stack(Stack&& other) noexcept : base_(std::exchange(other.base_, nullptr)), guard_(other.guard_) {}
  Stack& operator=(Stack&&) = delete;
  Stack(const Stack&) = delete;
  ~Stack() {
    if (base_ != nullptr) munmap(base_, kStackBytes + guard_);
  }
  char* bottom() const { return base_ + guard_; }
  static size_t size() { return kStackBytes; }

 private:
  char* base_ = nullptr;
  size_t guard_ = 0;
};

enum class Wait : uint8_t { kRunnable, kBlockBarrier, kWarpExchange, kExited };

struct Fiber {
  void* sp = nullptr;
  Wait wait = Wait::kRunnable;
  uint3 idx{};
  int linear = 0;
  uint32_t exchanges = 0;  // warp exchanges this thread has made
  const Stack* stack = nullptr;
  void* asan_fake_stack = nullptr;
};

// One warp's exchange state. Exchange number s uses buffer s % 2: a thread can only reach exchange
// s + 2 after every live thread of its warp arrived at s + 1, i.e. after all of them read s.
struct Warp {
  uint32_t lanes_mask = 0;  // lanes that exist (a last partial warp has fewer)
  uint32_t live_mask = 0;   // lanes that have not exited
  int live = 0;
  int arrived = 0;
  uint32_t round = 0;          // the exchange number the arrived threads are at
  const char* what = nullptr;  // the instruction of that exchange (a shuffle, mma.sync)
  uint64_t value[2][kWarp][kMaxExchangeWords] = {};
  uint32_t written[2] = {};
  bool combined[2] = {};  // share_in_warp's flag
};

struct Block {
  const std::function<void()>* body = nullptr;
  const char* kernel = "";
  int n_threads = 0;
  int live = 0;
  int at_barrier = 0;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  Fiber* current = nullptr;
  // The run order: a cursor walks `order` cyclically, each pass the other way round when shuffled.
  std::vector<int> order;
  int cursor = -1;
  bool backwards = false;
  void* scheduler_sp = nullptr;
  void* exited_sp = nullptr;  // where an exiting fiber's final switch saves to (never resumed)
  void* scheduler_fake_stack = nullptr;
  const void* scheduler_stack_bottom = nullptr;
  size_t scheduler_stack_size = 0;
};

thread_local Block* t_block = nullptr;

enum class Order { kShuffle, kForward, kReverse };

Order order_policy() {
  static const Order order = [] {
    const char* env = std::getenv("EMBER_CUDA_EMULATOR_ORDER");
    const std::string_view v = env == nullptr ? "shuffle" : env;
    if (v == "forward") return Order::kForward;
    if (v == "reverse") return Order::kReverse;
    if (v != "shuffle")
      std::fprintf(stderr, "CUDA emulator: EMBER_CUDA_EMULATOR_ORDER=%s unknown; using shuffle\n", env);
    return Order::kShuffle;
  }();
  return order;
}

// The run-order generator: splitmix64, seeded once per OS thread. Its own code rather than
// std::shuffle over std::mt19937: those are templates the test bodies instantiate too, and the
// linker keeps the first copy it meets, which in the sanitizer build is the test files' -O0 one
// (tests/CMakeLists.txt) — a tenth of the emulated model tests' time went to shuffling.
uint64_t next_order_bits() {
  thread_local uint64_t state = 12345;
  uint64_t z = (state += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

// Fisher-Yates over `order`; each index's range reduced by a 64×64→128-bit multiply (the bias is
// at most 2^-40 for the sizes here, irrelevant to a run order).
template <class T>
void shuffle_order(std::vector<T>& order) {
  for (size_t i = order.size(); i > 1; --i) {
    const auto j = static_cast<size_t>((static_cast<unsigned __int128>(next_order_bits()) * i) >> 64);
    std::swap(order[i - 1], order[j]);
  }
}

Block& running_block(const char* what) {
  if (t_block == nullptr || t_block->current == nullptr) fault("%s called outside a kernel", what);
  return *t_block;
}

[[noreturn]] void fiber_entry();

// The stack of a fiber that has not run yet, as ember_cuda_emulator_switch leaves a suspended one:
// six registers, then fiber_entry as the return address (entered with the stack 16-byte aligned
// minus 8, as after a call). Stacks start `colour` cache lines below their top, so that the fibers'
// hot frames do not all fall into the same L1 sets.
void* initial_stack_pointer(const Stack& stack, int colour) {
  auto* top = reinterpret_cast<uint64_t*>(stack.bottom() + Stack::size() - 64 * static_cast<size_t>(colour % 64));
  *--top = 0;  // fiber_entry's own return address: it never returns
  *--top = reinterpret_cast<uint64_t>(&fiber_entry);
  for (int i = 0; i < 6; ++i) *--top = 0;  // rbp (0 ends frame-pointer unwinds here), rbx, r12-r15
  return top;
}

void release_block(Block& b) {
  for (Fiber& f : b.fibers) {
    if (f.wait == Wait::kBlockBarrier) f.wait = Wait::kRunnable;
  }
  b.at_barrier = 0;
}

void release_warp(Block& b, int warp) {
  const int first = warp * kWarp, last = std::min(first + kWarp, b.n_threads);
  for (int i = first; i < last; ++i) {
    if (b.fibers[i].wait == Wait::kWarpExchange) b.fibers[i].wait = Wait::kRunnable;
  }
  b.warps[warp].arrived = 0;
}

// The next runnable fiber in run order after the cursor, or null when a whole pass finds none.
Fiber* next_runnable(Block& b) {
  const int n = b.n_threads;
  for (int scanned = 0; scanned < n; ++scanned) {
    if (++b.cursor == n) {
      b.cursor = 0;
      b.backwards = order_policy() == Order::kShuffle && !b.backwards;
    }
    Fiber& f = b.fibers[b.order[b.backwards ? n - 1 - b.cursor : b.cursor]];
    if (f.wait == Wait::kRunnable) return &f;
  }
  return nullptr;
}

[[noreturn]] void deadlock(const Block& b) {
  int at_barrier = 0, at_exchange = 0, first_barrier = -1, first_exchange = -1;
  for (const Fiber& f : b.fibers) {
    if (f.wait == Wait::kBlockBarrier) {
      ++at_barrier;
      if (first_barrier < 0) first_barrier = f.linear;
    } else if (f.wait == Wait::kWarpExchange) {
      ++at_exchange;
      if (first_exchange < 0) first_exchange = f.linear;
    }
  }
  fault(
      "kernel %s deadlocked in block (%u, %u, %u): %d threads wait at __syncthreads (first: thread %d), %d at a "
      "warp shuffle (first: thread %d), %d exited",
      b.kernel, t_builtins.block_idx.x, t_builtins.block_idx.y, t_builtins.block_idx.z, at_barrier, first_barrier,
      at_exchange, first_exchange, b.n_threads - b.live);
}

// Switches from the running context (its stack pointer saved to *save_sp, its ASan fake stack to
// *fake_stack; null when the context ends for good) to `to`, which becomes the running fiber.
void switch_to_fiber(Block& b, void** save_sp, void** fake_stack, Fiber& to) {
  b.current = &to;
  t_builtins.thread_idx = to.idx;
#ifdef EMBER_EMULATOR_ASAN
  __sanitizer_start_switch_fiber(fake_stack, to.stack->bottom(), Stack::size());
#else
  (void)fake_stack;
#endif
  ember_cuda_emulator_switch(save_sp, to.sp);
#ifdef EMBER_EMULATOR_ASAN
  if (fake_stack != nullptr) __sanitizer_finish_switch_fiber(*fake_stack, nullptr, nullptr);
#endif
}

// The running fiber waits: control goes straight to the next runnable fiber (one switch, not two
// through the scheduler) and comes back when some fiber's barrier releases this one and the cursor
// reaches it.
void wait_here(Block& b, Fiber& f) {
  Fiber* next = next_runnable(b);
  if (next == nullptr) deadlock(b);
  if (next == &f) return;  // cannot happen (f waits), kept for safety
  switch_to_fiber(b, &f.sp, &f.asan_fake_stack, *next);
}

void thread_exited(Block& b, Fiber& f) {
  f.wait = Wait::kExited;
  --b.live;
  Warp& w = b.warps[f.linear / kWarp];
  --w.live;
  w.live_mask &= ~(1u << (f.linear % kWarp));
  // A barrier some threads wait at while others exit is undefined in CUDA (it may hang): report it.
  if (b.at_barrier > 0) {
    fault("kernel %s: thread %d exits while %d threads of its block wait at __syncthreads", b.kernel, f.linear,
          b.at_barrier);
  }
  if (w.arrived > 0) {
    fault("kernel %s: thread %d exits while %d lanes of its warp wait in a shuffle", b.kernel, f.linear, w.arrived);
  }
}

[[noreturn]] void fiber_entry() {
  Block& b = *t_block;
#ifdef EMBER_EMULATOR_ASAN
  // The grid's first fiber is entered from run_block: note the launching thread's stack, where the
  // last fiber to exit returns.
  if (b.scheduler_stack_bottom == nullptr) {
    __sanitizer_finish_switch_fiber(nullptr, &b.scheduler_stack_bottom, &b.scheduler_stack_size);
  } else {
    __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
  }
#endif
  (*b.body)();
  thread_exited(b, *b.current);
  if (Fiber* next = next_runnable(b)) {
    switch_to_fiber(b, &b.exited_sp, nullptr, *next);
  } else {
    if (b.live > 0) deadlock(b);
    b.current = nullptr;  // the block is done: back to run_block
#ifdef EMBER_EMULATOR_ASAN
    __sanitizer_start_switch_fiber(nullptr, b.scheduler_stack_bottom, b.scheduler_stack_size);
#endif
    ember_cuda_emulator_switch(&b.exited_sp, b.scheduler_sp);
  }
  __builtin_unreachable();
}

std::vector<Stack>& stacks() {
  thread_local std::vector<Stack> pool;
  return pool;
}

void run_block(Block& b) {
  const dim3 dim = t_builtins.block_dim;
  std::vector<Stack>& pool = stacks();
  while (static_cast<int>(pool.size()) < b.n_threads) pool.emplace_back();
  for (int i = 0; i < b.n_threads; ++i) {
    Fiber& f = b.fibers[i];
    f = Fiber{};
    f.linear = i;
    f.idx = {static_cast<unsigned>(i) % dim.x, static_cast<unsigned>(i) / dim.x % dim.y,
             static_cast<unsigned>(i) / (dim.x * dim.y)};
    f.stack = &pool[i];
    f.sp = initial_stack_pointer(pool[i], i);
  }
  for (size_t w = 0; w < b.warps.size(); ++w) {
    const int lanes = std::min(kWarp, b.n_threads - static_cast<int>(w) * kWarp);
    b.warps[w] = Warp{};
    b.warps[w].live = lanes;
    b.warps[w].lanes_mask = lanes == kWarp ? 0xFFFFFFFFu : (1u << lanes) - 1;
    b.warps[w].live_mask = b.warps[w].lanes_mask;
  }
  b.live = b.n_threads;
  b.at_barrier = 0;
  switch (order_policy()) {
    case Order::kShuffle: shuffle_order(b.order); break;
    case Order::kForward: std::sort(b.order.begin(), b.order.end()); break;
    case Order::kReverse: std::sort(b.order.begin(), b.order.end(), std::greater<>()); break;
  }
  b.cursor = -1;
  b.backwards = false;
  // Runs until the last fiber to exit switches back here.
  Fiber* first = next_runnable(b);
  if (first == nullptr) deadlock(b);  // cannot happen (every fiber starts runnable)
  switch_to_fiber(b, &b.scheduler_sp, &b.scheduler_fake_stack, *first);
}

}  // namespace

void sync_block() {
  Block& b = running_block("__syncthreads");
  Fiber& f = *b.current;
  f.wait = Wait::kBlockBarrier;
  if (b.live < b.n_threads) {
    fault("kernel %s: __syncthreads after %d threads of the block exited (undefined in CUDA)", b.kernel,
          b.n_threads - b.live);
  }
  if (++b.at_barrier == b.live) {
    release_block(b);
  } else {
    wait_here(b, f);
  }
}

namespace {

// The calling thread's arrival at its warp's next exchange with `n_words` words: returns once every
// live thread of the warp arrived, with the exchange's buffer index (see Warp).
int arrive_in_warp(Block& b, unsigned mask, const uint64_t* words, int n_words, const char* what) {
  Fiber& f = *b.current;
  const int warp = f.linear / kWarp, lane = f.linear % kWarp;
  Warp& w = b.warps[warp];
  if ((w.live_mask & ~mask) != 0) {
    fault("kernel %s: thread %d shuffles with mask %#x, which leaves out live lanes %#x of its warp", b.kernel,
          f.linear, mask, w.live_mask & ~mask);
  }
  if ((mask & w.lanes_mask & ~w.live_mask) != 0) {
    fault("kernel %s: thread %d shuffles with mask %#x, which names lanes %#x that exited", b.kernel, f.linear, mask,
          mask & w.lanes_mask & ~w.live_mask);
  }
  const uint32_t round = f.exchanges++;
  const int buf = static_cast<int>(round % 2);
  if (w.arrived == 0) {
    w.round = round;
    w.what = what;
    w.written[buf] = 0;
    w.combined[buf] = false;
  } else if (w.round != round) {
    fault("kernel %s: warp %d's threads shuffle out of step (thread %d at shuffle %u, others at %u)", b.kernel, warp,
          f.linear, round, w.round);
  } else if (w.what != what && std::strcmp(w.what, what) != 0) {  // literals: usually the same pointer
    fault("kernel %s: warp %d's threads meet at different warp instructions (thread %d at %s, others at %s)", b.kernel,
          warp, f.linear, what, w.what);
  }
  // Word by word: a library copy would go through ASan's memmove interceptor and its range checks.
  for (int i = 0; i < n_words; ++i) w.value[buf][lane][i] = words[i];
  w.written[buf] |= 1u << lane;
  f.wait = Wait::kWarpExchange;
  if (++w.arrived == w.live) {
    release_warp(b, warp);
  } else {
    wait_here(b, f);
  }
  return buf;
}

}  // namespace

uint64_t exchange_in_warp(unsigned mask, uint64_t value, int source) {
  Block& b = running_block("a warp shuffle");
  const int buf = arrive_in_warp(b, mask, &value, 1, "a warp shuffle");
  const Warp& w = b.warps[b.current->linear / kWarp];
  if (source < 0 || source >= kWarp || (w.written[buf] >> source & 1) == 0) {
    fault("kernel %s: thread %d reads lane %d of a shuffle that lane did not take part in", b.kernel, b.current->linear,
          source);
  }
  return w.value[buf][source][0];
}

void gather_in_warp(const uint64_t* words, int n_words, uint64_t (*all)[kMaxExchangeWords], const char* what) {
  Block& b = running_block(what);
  if (n_words < 1 || n_words > kMaxExchangeWords) fault("%s: %d words per lane", what, n_words);
  const int warp = b.current->linear / kWarp;
  if (b.warps[warp].lanes_mask != 0xFFFFFFFFu) fault("kernel %s: %s in a partial warp", b.kernel, what);
  const int buf = arrive_in_warp(b, 0xFFFFFFFFu, words, n_words, what);
  const Warp& w = b.warps[warp];
  if (w.written[buf] != 0xFFFFFFFFu) fault("kernel %s: %s after lanes of the warp exited", b.kernel, what);
  for (int lane = 0; lane < kWarp; ++lane) {
    for (int i = 0; i < n_words; ++i) all[lane][i] = w.value[buf][lane][i];
  }
}

WarpWords share_in_warp(const uint64_t* words, int n_words, const char* what) {
  Block& b = running_block(what);
  const int warp = b.current->linear / kWarp;
  if (b.warps[warp].lanes_mask != 0xFFFFFFFFu) fault("kernel %s: %s in a partial warp", b.kernel, what);
  const int buf = arrive_in_warp(b, 0xFFFFFFFFu, words, n_words, what);
  Warp& w = b.warps[warp];
  if (w.written[buf] != 0xFFFFFFFFu) fault("kernel %s: %s after lanes of the warp exited", b.kernel, what);
  return {w.value[buf], &w.combined[buf]};
}

int lane_id() { return running_block("a warp intrinsic").current->linear % kWarp; }

void trap() {
  const Block& b = running_block("__trap");
  fault("kernel %s trapped (__trap) in block (%u, %u, %u), thread (%u, %u, %u)", b.kernel, t_builtins.block_idx.x,
        t_builtins.block_idx.y, t_builtins.block_idx.z, t_builtins.thread_idx.x, t_builtins.thread_idx.y,
        t_builtins.thread_idx.z);
}

bool launch_configuration_ok(dim3 grid, dim3 block, size_t shared_bytes, const char* kernel) {
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  const bool ok = threads >= 1 && threads <= kMaxThreads && block.x <= 1024 && block.y <= 1024 && block.z <= 64 &&
                  grid.x >= 1 && grid.x <= 0x7FFFFFFFu && grid.y >= 1 && grid.y <= 65535 && grid.z >= 1 &&
                  grid.z <= 65535;
  if (shared_bytes != 0) fault("kernel %s: dynamic shared memory is not emulated", kernel);
  if (!ok) set_last_error(cudaErrorInvalidConfiguration);
  return ok;
}

void run_grid(dim3 grid, dim3 block, const std::function<void()>& body, const char* kernel) {
  if (t_block != nullptr) fault("kernel %s launched from inside kernel %s", kernel, t_block->kernel);
  const DeviceAccess access;  // the kernel's threads touch device memory
  Block b;
  b.body = &body;
  b.kernel = kernel;
  b.n_threads = static_cast<int>(block.x * block.y * block.z);
  b.fibers.resize(static_cast<size_t>(b.n_threads));
  b.warps.resize(static_cast<size_t>((b.n_threads + kWarp - 1) / kWarp));
  b.order.resize(static_cast<size_t>(b.n_threads));
  for (int i = 0; i < b.n_threads; ++i) b.order[static_cast<size_t>(i)] = i;
  t_block = &b;
  t_builtins.block_dim = block;
  t_builtins.grid_dim = grid;
  // Blocks in a shuffled order too (forward or reverse under those policies): a kernel whose blocks
  // depend on each other's results goes wrong here as on a GPU, where they run in any order.
  const uint64_t n_blocks = uint64_t{grid.x} * grid.y * grid.z;
  if (n_blocks > (uint64_t{1} << 24))
    fault("kernel %s: a grid of %llu blocks is too large to emulate", kernel,
          static_cast<unsigned long long>(n_blocks));
  std::vector<uint64_t> blocks(n_blocks);
  for (uint64_t i = 0; i < n_blocks; ++i) blocks[i] = order_policy() == Order::kReverse ? n_blocks - 1 - i : i;
  if (order_policy() == Order::kShuffle) shuffle_order(blocks);
  for (const uint64_t i : blocks) {
    t_builtins.block_idx = {static_cast<unsigned>(i % grid.x), static_cast<unsigned>(i / grid.x % grid.y),
                            static_cast<unsigned>(i / (uint64_t{grid.x} * grid.y))};
    run_block(b);
  }
  t_block = nullptr;
}

}  // namespace ember::cuda_emulator
