// The CUDA emulator itself (src/cuda/emulator): shuffles, barriers and launches behave as CUDA
// defines them, and the bugs it exists to catch (a missing barrier, a deadlock, a host pointer
// handed to a kernel, an out-of-range copy, a trap) are caught. Built only with EMBER_CUDA=EMULATE.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda/device_buffer.h"
#include "cuda/emulator/state.h"
#include "cuda/launch.h"
#include "cuda/mma.h"
#include "cuda/warp_sum.h"
#include "ember/error.h"
#include "quant/fp16.h"
#include "support/sanitized.h"
#include "support/scoped_env.h"

namespace ember {
namespace {

using cuda::DeviceBuffer;

template <class T>
std::vector<T> download(const DeviceBuffer& b, size_t n) {
  std::vector<T> out(n);
  b.download(out.data(), n * sizeof(T));
  return out;
}

// ---- shuffles ----

enum class Shfl { kXor, kDown, kUp, kIndex };

__global__ void shuffle_kernel(int* out, Shfl op, int arg, int width) {
  const int v = static_cast<int>(threadIdx.x) * 10 + 1;
  int r = 0;
  switch (op) {
    case Shfl::kXor: r = __shfl_xor_sync(0xFFFFFFFFu, v, arg, width); break;
    case Shfl::kDown: r = __shfl_down_sync(0xFFFFFFFFu, v, static_cast<unsigned>(arg), width); break;
    case Shfl::kUp: r = __shfl_up_sync(0xFFFFFFFFu, v, static_cast<unsigned>(arg), width); break;
    case Shfl::kIndex: r = __shfl_sync(0xFFFFFFFFu, v, arg, width); break;
  }
  out[threadIdx.x] = r;
}

// The source lane of each shuffle, from PTX's shfl.sync pseudocode (with CUDA's c operand for
// `width`: segmask = 32 - width; clamp 31, or 0 for up): lanes of a 64-thread block, two warps.
int expected_source(Shfl op, int t, int arg, int width) {
  const int lane = t % 32, warp0 = t - lane, b = arg & 31, segmask = 32 - width;
  const int min_lane = lane & segmask, max_lane = (lane & segmask) | (31 & ~segmask);
  int j = lane;
  bool valid = true;
  switch (op) {
    case Shfl::kUp: j = lane - b, valid = j >= min_lane; break;  // clamp 0: maxLane = minLane
    case Shfl::kDown: j = lane + b, valid = j <= max_lane; break;
    case Shfl::kXor: j = lane ^ b, valid = j <= max_lane; break;
    case Shfl::kIndex: j = min_lane | (b & ~segmask), valid = j <= max_lane; break;
  }
  return warp0 + (valid ? j : lane);
}

TEST(CudaEmulator, ShufflesMatchPtxSemantics) {
  DeviceBuffer out(64 * sizeof(int), "out");
  const auto run = [&](Shfl op, int arg, int width) {
    EMBER_CUDA_LAUNCH(1, 64, 0, nullptr, shuffle_kernel)(out.as<int>(), op, arg, width);
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
    std::vector<int> src = download<int>(out, 64);
    for (int& v : src) v = (v - 1) / 10;  // the source thread
    return src;
  };
  for (Shfl op : {Shfl::kXor, Shfl::kDown, Shfl::kUp, Shfl::kIndex}) {
    for (int width : {32, 16, 8, 1}) {
      for (int arg : {0, 1, 3, 5, 16, 31, 33, -1}) {
        const std::vector<int> got = run(op, arg, width);
        for (int t = 0; t < 64; ++t) {
          ASSERT_EQ(got[static_cast<size_t>(t)], expected_source(op, t, arg, width))
              << "op " << static_cast<int>(op) << " width " << width << " arg " << arg << " thread " << t;
        }
      }
    }
  }
  // Spot values worked out by hand from the PTX text.
  EXPECT_EQ(run(Shfl::kXor, 16, 16)[20], 4);    // an earlier segment is a valid xor source
  EXPECT_EQ(run(Shfl::kXor, 16, 16)[4], 4);     // a later one is not: the caller's own value
  EXPECT_EQ(run(Shfl::kXor, 33, 32)[6], 7);     // the lane mask is cut to 5 bits
  EXPECT_EQ(run(Shfl::kDown, 3, 8)[5], 5);      // past the segment's end
  EXPECT_EQ(run(Shfl::kUp, 3, 8)[10], 10);      // before the segment's start
  EXPECT_EQ(run(Shfl::kIndex, 13, 8)[42], 45);  // segment 40..47, lane 13 % 8
}

// ---- warp butterflies ----

// The reference: shuffles each round (an exchange each in the emulator), as on a GPU.
template <int... Offsets, class T, class Op>
__device__ T rounds_by_shuffles(T v, Op op) {
  ((v = op(v, cuda::shuffle_xor(v, Offsets))), ...);
  return v;
}

struct ValueAt {
  float value;
  int32_t index;
};
struct LargerFirst {  // the larger value, then the lower index: not commutative in ties of NaN
  __device__ ValueAt operator()(ValueAt own, ValueAt partner) const {
    return partner.value > own.value || (partner.value == own.value && partner.index < own.index) ? partner : own;
  }
};

// Each warp (of a 64-thread block) reduces its lanes' x four ways, by warp_xor_rounds and by
// shuffles: out[case][thread][fast, shuffled].
__global__ void xor_rounds_kernel(const float* x, float* sums, ValueAt* best) {
  const float v = x[threadIdx.x];
  const int t = static_cast<int>(threadIdx.x);
  sums[t * 2] = cuda::warp_sum(v);
  sums[t * 2 + 1] = rounds_by_shuffles<16, 8, 4, 2, 1>(v, cuda::WarpAdd{});
  sums[128 + t * 2] = cuda::warp_xor_rounds<1, 2, 4>(v, cuda::WarpAdd{});
  sums[128 + t * 2 + 1] = rounds_by_shuffles<1, 2, 4>(v, cuda::WarpAdd{});
  sums[256 + t * 2] = cuda::warp_xor_rounds<8, 4, 2, 1>(v, cuda::WarpMax{});
  sums[256 + t * 2 + 1] = rounds_by_shuffles<8, 4, 2, 1>(v, cuda::WarpMax{});
  best[t * 2] = cuda::warp_butterfly(ValueAt{v, t}, LargerFirst{});
  best[t * 2 + 1] = rounds_by_shuffles<16, 8, 4, 2, 1>(ValueAt{v, t}, LargerFirst{});
}

__global__ void partial_warp_rounds_kernel(float* out) {
  if (threadIdx.x == 7) return;
  out[threadIdx.x] = cuda::warp_sum(1.0f);
}

TEST(CudaEmulator, WarpXorRoundsGiveTheShufflesBits) {
  // Values of mixed magnitudes, so that any other order of the float additions changes the bits;
  // NaNs in the second warp for fmaxf's and the argmax's NaN rules; repeats for the index ties.
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::vector<float> x(64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = unit(rng) * std::ldexp(1.0f, static_cast<int>(rng() % 40) - 20);
  x[40] = x[45] = NAN;
  x[50] = x[51];
  DeviceBuffer xd(64 * sizeof(float), "x"), sums(384 * sizeof(float), "sums"), best(128 * sizeof(ValueAt), "best");
  xd.upload(x.data(), 64 * sizeof(float));
  EMBER_CUDA_LAUNCH(1, 64, 0, nullptr, xor_rounds_kernel)(xd.as<float>(), sums.as<float>(), best.as<ValueAt>());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> s = download<float>(sums, 384);
  const std::vector<ValueAt> b = download<ValueAt>(best, 128);
  int differing_lanes = 0;  // the 8-lane sums differ between groups: the rounds stay in their group
  for (int c = 0; c < 3; ++c) {
    for (int t = 0; t < 64; ++t) {
      const float fast = s[static_cast<size_t>(c * 128 + t * 2)], slow = s[static_cast<size_t>(c * 128 + t * 2 + 1)];
      ASSERT_EQ(std::bit_cast<uint32_t>(fast), std::bit_cast<uint32_t>(slow)) << "case " << c << " thread " << t;
      if (c == 1 && t % 32 >= 8) differing_lanes += fast != s[static_cast<size_t>(c * 128 + (t / 32 * 32) * 2)];
    }
  }
  EXPECT_GT(differing_lanes, 0);
  for (int t = 0; t < 64; ++t) {
    const ValueAt fast = b[static_cast<size_t>(t * 2)], slow = b[static_cast<size_t>(t * 2 + 1)];
    ASSERT_EQ(fast.index, slow.index) << "thread " << t;
    ASSERT_EQ(std::bit_cast<uint32_t>(fast.value), std::bit_cast<uint32_t>(slow.value)) << "thread " << t;
  }
  EXPECT_FALSE(std::isnan(s[0]));  // the first warp's sum is a number
}

TEST(CudaEmulatorDeathTest, WarpXorRoundsNeedTheWholeWarp) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  DeviceBuffer out(32 * sizeof(float), "out");
  EXPECT_DEATH(EMBER_CUDA_LAUNCH(1, 16, 0, nullptr, partial_warp_rounds_kernel)(out.as<float>()),
               "partial_warp_rounds_kernel: .*xor_rounds_in_warp.* in a partial warp");
  EXPECT_DEATH(EMBER_CUDA_LAUNCH(1, 32, 0, nullptr, partial_warp_rounds_kernel)(out.as<float>()),
               "partial_warp_rounds_kernel: thread .*(exits while .* wait in a shuffle|names lanes 0x80 that exited)");
}

// ---- barriers ----

// Block sum through shared memory with a tree of barriers, over blocks of any shape: every thread
// gets the sum of the linear thread ids, and the built-in variables are consistent.
__global__ void block_sum_kernel(int* out) {
  __shared__ int s[1024];
  const unsigned n = blockDim.x * blockDim.y * blockDim.z;
  const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  s[t] = static_cast<int>(t);
  __syncthreads();
  for (unsigned stride = 1; stride < n; stride *= 2) {
    const int add = t % (2 * stride) == 0 && t + stride < n ? s[t + stride] : 0;
    __syncthreads();
    s[t] += add;
    __syncthreads();
  }
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  out[block * n + t] = s[0];
}

TEST(CudaEmulator, BarriersAndBuiltinsOverBlockShapes) {
  for (const dim3 shape : {dim3(1), dim3(37), dim3(96), dim3(8, 4, 2), dim3(5, 3, 7), dim3(1024)}) {
    const dim3 grid(2, 3, 1);
    const unsigned n = shape.x * shape.y * shape.z, blocks = grid.x * grid.y * grid.z;
    DeviceBuffer out(static_cast<size_t>(n) * blocks * sizeof(int), "out");
    EMBER_CUDA_LAUNCH(grid, shape, 0, nullptr, block_sum_kernel)(out.as<int>());
    ASSERT_EQ(cudaGetLastError(), cudaSuccess);
    const std::vector<int> got = download<int>(out, static_cast<size_t>(n) * blocks);
    for (int v : got) ASSERT_EQ(v, static_cast<int>(n * (n - 1) / 2)) << "block " << shape.x << "x" << shape.y;
  }
}

// Each thread publishes its id, then (without a barrier between) reads its right neighbour's: on a
// GPU this races; in the emulator threads run in a shuffled order between barriers, so some reads
// see the neighbour's value and some the stale one. With the barrier, all are right.
__global__ void neighbour_kernel(int* out, bool barrier) {
  __shared__ int s[256];
  s[threadIdx.x] = -1;
  __syncthreads();
  s[threadIdx.x] = static_cast<int>(threadIdx.x);
  if (barrier) __syncthreads();
  out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

TEST(CudaEmulator, AMissingBarrierGivesWrongResults) {
  DeviceBuffer out(256 * sizeof(int), "out");
  for (bool barrier : {true, false}) {
    EMBER_CUDA_LAUNCH(1, 256, 0, nullptr, neighbour_kernel)(out.as<int>(), barrier);
    const std::vector<int> got = download<int>(out, 256);
    int stale = 0;
    for (int t = 0; t < 256; ++t) stale += got[static_cast<size_t>(t)] != (t + 1) % 256;
    if (barrier) {
      EXPECT_EQ(stale, 0);
    } else {
      EXPECT_GT(stale, 0) << "the racy kernel read every neighbour's value: the run order hides races";
    }
  }
}

// A barrier after some threads exited, and a shuffle naming an exited lane: undefined in CUDA
// (__syncthreads must be reached by the whole block), reported rather than tolerated.
__global__ void early_exit_kernel(int* out) {
  __shared__ int s[64];
  if (threadIdx.x >= 40) return;
  s[threadIdx.x] = static_cast<int>(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = s[39 - threadIdx.x];
}

__global__ void exited_lane_kernel(int* out) {
  if (threadIdx.x == 3) return;
  out[threadIdx.x] = __shfl_xor_sync(0xFFFFFFFFu, static_cast<int>(threadIdx.x), 1);
}

// Each block adds its index into a slot another block reads: on a GPU blocks run in any order, so
// the emulator runs them shuffled and the result depends on it.
__global__ void block_order_kernel(int* order, int* counter) {
  if (threadIdx.x == 0) order[blockIdx.x] = (*counter)++;
}

TEST(CudaEmulator, BlocksRunInAShuffledOrder) {
  DeviceBuffer order(64 * sizeof(int), "order"), counter(sizeof(int), "counter");
  const int zero = 0;
  counter.upload(&zero, sizeof zero);
  EMBER_CUDA_LAUNCH(64, 32, 0, nullptr, block_order_kernel)(order.as<int>(), counter.as<int>());
  const std::vector<int> got = download<int>(order, 64);
  int in_place = 0;
  for (int i = 0; i < 64; ++i) in_place += got[static_cast<size_t>(i)] == i;
  if (std::getenv("EMBER_CUDA_EMULATOR_ORDER") == nullptr) {
    EXPECT_LT(in_place, 64) << "blocks ran in index order";
  }
}

// Lane 0 waits in a shuffle its warp-mates never reach: they wait at the block barrier instead.
__global__ void deadlock_kernel(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x == 0) v = __shfl_xor_sync(0xFFFFFFFFu, v, 1);
  __syncthreads();
  out[threadIdx.x] = v;
}

__global__ void trap_kernel(int* out) {
  if (threadIdx.x == 5) __trap();
  out[threadIdx.x] = 1;
}

__global__ void write_kernel(int* out) { out[threadIdx.x] = 7; }

TEST(CudaEmulatorDeathTest, DeadlocksTrapsAndHostPointersAbortWithTheKernelsName) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  DeviceBuffer out(64 * sizeof(int), "out");
  EXPECT_DEATH(EMBER_CUDA_LAUNCH(1, 64, 0, nullptr, early_exit_kernel)(out.as<int>()),
               "early_exit_kernel: (__syncthreads after [0-9]+ threads of the block exited|thread [0-9]+ exits while)");
  EXPECT_DEATH(EMBER_CUDA_LAUNCH(1, 32, 0, nullptr, exited_lane_kernel)(out.as<int>()),
               "exited_lane_kernel: thread .* (exits while|names lanes 0x8 that exited)");
  EXPECT_DEATH(EMBER_CUDA_LAUNCH(1, 64, 0, nullptr, deadlock_kernel)(out.as<int>()), "deadlock_kernel deadlocked");
  EXPECT_DEATH(EMBER_CUDA_LAUNCH(1, 64, 0, nullptr, trap_kernel)(out.as<int>()), "trap_kernel trapped");
  std::vector<int> host(64);
  EXPECT_DEATH(EMBER_CUDA_LAUNCH(1, 64, 0, nullptr, write_kernel)(host.data()), "argument 0 .* is not device memory");
}

#ifdef EMBER_TEST_SANITIZED
__global__ void read_past_kernel(const int* in, int* out) { out[threadIdx.x] = in[threadIdx.x + 1]; }
#endif

// AddressSanitizer watches the kernels' accesses to device memory (the scheduler that runs them is
// left uninstrumented, src/cuda/emulator/CMakeLists.txt): thread 63 reading one int past the end of
// its 64-int allocation aborts the kernel.
TEST(CudaEmulatorDeathTest, AddressSanitizerSeesAKernelReadPastItsAllocation) {
#ifndef EMBER_TEST_SANITIZED
  GTEST_SKIP() << "AddressSanitizer's reports are checked in the sanitizer build (make test-sanitize)";
#else
  // The host guard's allocations are whole pages: a read just past the end stays inside them.
  if (cuda_emulator::host_guard_requested()) GTEST_SKIP() << "not with EMBER_CUDA_EMULATOR_HOST_GUARD=1";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  DeviceBuffer in(64 * sizeof(int), "in");
  DeviceBuffer out(64 * sizeof(int), "out");
  EXPECT_DEATH(EMBER_CUDA_LAUNCH(1, 64, 0, nullptr, read_past_kernel)(in.as<int>(), out.as<int>()),
               "heap-buffer-overflow.*\n(.*\n)*.*read_past_kernel");
#endif
}

TEST(CudaEmulator, ABadLaunchConfigurationRunsNothingAndSetsTheError) {
  DeviceBuffer out(64 * sizeof(int), "out");
  const std::vector<int> zeros(64, 0);
  out.upload(zeros.data(), zeros.size() * sizeof(int));
  EMBER_CUDA_LAUNCH(1, 2048, 0, nullptr, write_kernel)(out.as<int>());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // not sticky
  EMBER_CUDA_LAUNCH(dim3(1, 70000), 32, 0, nullptr, write_kernel)(out.as<int>());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(download<int>(out, 64), zeros);
}

// ---- stream capture ----

__global__ void add_one_kernel(int* data, int n) {
  for (int i = static_cast<int>(threadIdx.x); i < n; i += static_cast<int>(blockDim.x)) data[i] += 1;
}

TEST(CudaEmulator, ACapturedStreamReplaysItsWorkWithTheArgumentsOfTheCapture) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  DeviceBuffer a(40 * sizeof(int), "a"), b(40 * sizeof(int), "b");
  const std::vector<int> zeros(40, 0);
  a.upload(zeros.data(), 40 * sizeof(int));
  int n = 40;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  ASSERT_EQ(cudaStreamIsCapturing(stream, &status), cudaSuccess);
  EXPECT_EQ(status, cudaStreamCaptureStatusActive);
  EMBER_CUDA_LAUNCH(1, 32, 0, stream, add_one_kernel)(a.as<int>(), n);
  n = 7;  // the capture holds 40
  ASSERT_EQ(cudaMemcpyAsync(b.data(), a.data(), 40 * sizeof(int), cudaMemcpyDeviceToDevice, stream), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  EXPECT_EQ(download<int>(a, 40), zeros) << "captured work ran at capture";
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  for (int replay = 1; replay <= 3; ++replay) {
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    EXPECT_EQ(download<int>(b, 40), std::vector<int>(40, replay));
  }
  EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
  EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

TEST(CudaEmulatorDeathTest, WhatACaptureCannotHoldAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto capturing = [](auto&& body) {
    cudaStream_t stream = nullptr;
    (void)cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    (void)cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
    body(stream);
  };
  DeviceBuffer dev(64, "dev");
  std::vector<char> host(64);
  EXPECT_DEATH(capturing([&](cudaStream_t s) { (void)cudaStreamSynchronize(s); }),
               "cudaStreamSynchronize while this thread captures");
  EXPECT_DEATH(capturing([&](cudaStream_t) { (void)cudaMemcpy(dev.data(), host.data(), 64, cudaMemcpyHostToDevice); }),
               "cudaMemcpy while this thread captures");
  EXPECT_DEATH(
      capturing([&](cudaStream_t s) { (void)cudaMemcpyAsync(dev.data(), host.data(), 64, cudaMemcpyHostToDevice, s); }),
      "copies of pageable host memory cannot be captured");
  EXPECT_DEATH(capturing([&](cudaStream_t) { DeviceBuffer more(64, "more"); }),
               "cudaMalloc while this thread captures");
}

// ---- memory ----

// An allocation made with EMBER_CUDA_EMULATOR_HOST_GUARD=1 (the variable is read per cudaMalloc;
// restored after).
DeviceBuffer guarded_buffer(size_t bytes) {
  const test::ScopedEnv guard("EMBER_CUDA_EMULATOR_HOST_GUARD", "1");
  return DeviceBuffer(bytes, "guarded");
}

// The host guard: the emulated device's own work (kernels, copies, memsets) reaches a guarded
// allocation; host code reading or writing through its pointer faults, as on a GPU, fresh or after
// the device has worked on it (the guard closes again). A fault of the emulator's own (a check
// that fires) is not what these deaths are.
TEST(CudaEmulatorDeathTest, TheHostGuardLetsOnlyTheDeviceTouchDeviceMemory) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  {
    DeviceBuffer b = guarded_buffer(64 * sizeof(int));
    EMBER_CUDA_LAUNCH(1, 32, 0, nullptr, write_kernel)(b.as<int>());
    ASSERT_EQ(cudaMemsetAsync(b.as<int>() + 32, 0, 32 * sizeof(int), nullptr), cudaSuccess);
    const std::vector<int> got = download<int>(b, 64);
    for (int i = 0; i < 64; ++i) EXPECT_EQ(got[static_cast<size_t>(i)], i < 32 ? 7 : 0) << i;
    b.upload(got.data(), 64 * sizeof(int));
  }
  const auto not_the_emulator = testing::Not(testing::HasSubstr("CUDA emulator"));
  EXPECT_DEATH(
      {
        DeviceBuffer b = guarded_buffer(64);
        std::printf("%d\n", *static_cast<volatile int*>(b.as<int>()));
      },
      not_the_emulator);
  EXPECT_DEATH(
      {
        DeviceBuffer b = guarded_buffer(64 * sizeof(int));
        EMBER_CUDA_LAUNCH(1, 32, 0, nullptr, write_kernel)(b.as<int>());
        *static_cast<volatile int*>(b.as<int>()) = 1;
      },
      not_the_emulator);
  EXPECT_DEATH(
      {
        DeviceBuffer b = guarded_buffer(64 * sizeof(int));
        const std::vector<int> sevens(64, 7);
        b.upload(sevens.data(), sizeof(int) * sevens.size());
        std::printf("%d\n", *static_cast<volatile int*>(b.as<int>()));
      },
      not_the_emulator);
}

TEST(CudaEmulator, FreshDeviceMemoryReadsAsNaN) {
  DeviceBuffer b(100 * sizeof(float), "fresh");
  for (float v : download<float>(b, 100)) EXPECT_TRUE(std::isnan(v));
}

TEST(CudaEmulatorDeathTest, CopiesAreCheckedAgainstTheAllocations) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  DeviceBuffer dev(64, "dev");
  std::vector<char> host(128);
  EXPECT_DEATH((void)cudaMemcpy(dev.data(), host.data(), 65, cudaMemcpyHostToDevice),
               "destination .* is not inside one device allocation");
  EXPECT_DEATH((void)cudaMemcpy(host.data(), host.data() + 64, 8, cudaMemcpyDeviceToHost),
               "source .* is not inside one device allocation");
  EXPECT_DEATH((void)cudaMemcpy(host.data(), dev.data(), 8, cudaMemcpyHostToDevice),
               "source .* is device memory, used as host memory");
  EXPECT_DEATH((void)cudaMemsetAsync(static_cast<char*>(dev.data()) + 60, 0, 8, nullptr),
               "not inside one device allocation");
}

TEST(CudaEmulator, AllocationsBeyondTheDeviceFailWithTheNumbers) {
  size_t free_bytes = 0, total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total), cudaSuccess);
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, total + 1), cudaErrorMemoryAllocation);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation);
  try {
    DeviceBuffer too_big(total + 1, "a test's huge buffer");
    FAIL() << "allocated more than the device holds";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kOutOfMemory);
    EXPECT_NE(std::string(e.what()).find("a test's huge buffer"), std::string::npos) << e.what();
  }
  size_t free_after = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_after, &total), cudaSuccess);
  EXPECT_EQ(free_after, free_bytes);
}

// Page-locked host memory is plain host memory, but only cudaMallocHost's may go to cudaFreeHost;
// events made without timing refuse cudaEventElapsedTime, as CUDA's do.
TEST(CudaEmulator, PinnedMemoryAndUntimedEventsFollowCuda) {
  void* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(&pinned, 1000), cudaSuccess);
  ASSERT_NE(pinned, nullptr);
  std::memset(pinned, 7, 1000);
  DeviceBuffer device(1000);
  ASSERT_EQ(cudaMemcpy(device.data(), pinned, 1000, cudaMemcpyHostToDevice), cudaSuccess);  // a host source
  EXPECT_EQ(device.to_vector<uint8_t>(1000), std::vector<uint8_t>(1000, 7));
  int not_pinned = 0;
  EXPECT_EQ(cudaFreeHost(&not_pinned), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFreeHost(pinned), cudaSuccess);
  EXPECT_EQ(cudaFreeHost(pinned), cudaErrorInvalidValue);  // twice
  (void)cudaGetLastError();

  cudaEvent_t untimed = nullptr, timed = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&untimed, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&timed), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(untimed), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(timed), cudaSuccess);
  EXPECT_EQ(cudaEventSynchronize(untimed), cudaSuccess);
  float ms = 0;
  EXPECT_EQ(cudaEventElapsedTime(&ms, timed, untimed), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaEventElapsedTime(&ms, timed, timed), cudaSuccess);
  EXPECT_EQ(cudaEventCreateWithFlags(&untimed, 0x80), cudaErrorInvalidValue);
  EXPECT_EQ(cudaEventCreateWithFlags(&untimed, cudaEventInterprocess), cudaErrorInvalidValue);  // must be untimed
  (void)cudaGetLastError();
  cudaEvent_t blocking = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&blocking, cudaEventBlockingSync | cudaEventDisableTiming), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(blocking), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(untimed), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(timed), cudaSuccess);
}

// ---- intrinsics ----

TEST(CudaEmulator, BytePermSelectsAndSignReplicates) {
  EXPECT_EQ(__byte_perm(0x33221100u, 0x77665544u, 0x1234u), 0x11223344u);
  EXPECT_EQ(__byte_perm(0x33221100u, 0x77665544u, 0x7654u), 0x77665544u);
  EXPECT_EQ(__byte_perm(0x000080FFu, 0, 0x4498u), 0x0000FFFFu);  // bit 3: the sign of bytes 0 and 1
  EXPECT_EQ(__byte_perm(0x00007F01u, 0, 0x4489u), 0x00000000u);
}

TEST(CudaEmulator, HalfConversionsRoundToNearestEven) {
  EXPECT_EQ(__half_as_ushort(__float2half_rn(1.0f)), 0x3C00);
  EXPECT_EQ(__half_as_ushort(__float2half_rn(1.0f + 1.0f / 2048)), 0x3C00);  // a tie: to even
  EXPECT_EQ(__half_as_ushort(__float2half_rn(1.0f + 3.0f / 2048)), 0x3C02);
  EXPECT_EQ(__half2float(__ushort_as_half(0xC000)), -2.0f);
  const float2 f = __half22float2(__floats2half2_rn(0.5f, -0.25f));
  EXPECT_EQ(f.x, 0.5f);
  EXPECT_EQ(f.y, -0.25f);
}

// ---- cuBLAS ----

// ---- mma.sync m16n8k16 ----

// d = c + a·b through cuda/mma.h, the operand registers filled as the PTX ISA lays them out
// ("Matrix Fragments for mma.m16n8k16 with floating point type"), written here from its tables:
// a_i (halves 0-7): row g for i in {0, 1, 4, 5}, else g + 8; column 2t + i % 2, + 8 for i >= 4.
// b_i (halves 0-3): row 2t + i % 2, + 8 for i >= 2; column g. c_i: row g, + 8 for i >= 2;
// column 2t + i % 2.
__global__ void mma_kernel(const float* a, const float* b, const float* c, float* d) {
  const int lane = static_cast<int>(threadIdx.x), g = lane / 4, t = lane % 4;
  float ah[8], bh[4];
  for (int i = 0; i < 8; ++i) ah[i] = a[(g + (i % 4 >= 2 ? 8 : 0)) * 16 + 2 * t + i % 2 + (i >= 4 ? 8 : 0)];
  for (int i = 0; i < 4; ++i) bh[i] = b[(2 * t + i % 2 + (i >= 2 ? 8 : 0)) * 8 + g];
  const uint32_t ar[4] = {cuda::pack_half2(ah[0], ah[1]), cuda::pack_half2(ah[2], ah[3]),
                          cuda::pack_half2(ah[4], ah[5]), cuda::pack_half2(ah[6], ah[7])};
  const uint32_t br[2] = {cuda::pack_half2(bh[0], bh[1]), cuda::pack_half2(bh[2], bh[3])};
  float acc[4];
  for (int i = 0; i < 4; ++i) acc[i] = c[(g + (i >= 2 ? 8 : 0)) * 8 + 2 * t + i % 2];
  cuda::mma_16x8x16(acc, ar, br);
  for (int i = 0; i < 4; ++i) d[(g + (i >= 2 ? 8 : 0)) * 8 + 2 * t + i % 2] = acc[i];
}

TEST(CudaEmulator, MmaM16n8k16MatchesItsPtxDefinition) {
  // Multiples of 1/8 up to ±4: exact in f16, and every product and sum exact in float, so the
  // result is exact whatever the summation order.
  std::mt19937 rng(21);
  std::uniform_int_distribution<int> eighths(-32, 32);
  const auto fill = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) {
      do {
        x = static_cast<float>(eighths(rng)) / 8.0f;
      } while (x == 0.0f);
    }
    return v;
  };
  const std::vector<float> a = fill(16 * 16), b = fill(16 * 8), c = fill(16 * 8);
  const DeviceBuffer da = DeviceBuffer::from(a), db = DeviceBuffer::from(b), dc = DeviceBuffer::from(c);
  DeviceBuffer dd(16 * 8 * sizeof(float));
  EMBER_CUDA_LAUNCH(1, 32, 0, nullptr, mma_kernel)(da.as<float>(), db.as<float>(), dc.as<float>(), dd.as<float>());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> d = download<float>(dd, 16 * 8);
  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 8; ++j) {
      double want = c[static_cast<size_t>(i * 8 + j)];
      for (int k = 0; k < 16; ++k)
        want += double{a[static_cast<size_t>(i * 16 + k)]} * b[static_cast<size_t>(k * 8 + j)];
      EXPECT_EQ(d[static_cast<size_t>(i * 8 + j)], want) << "D[" << i << "][" << j << "]";
    }
  }
  // The lower index goes in the low half.
  EXPECT_EQ(cuda::pack_half2(1.0f, -2.0f), 0xC0003C00u);
}

// ---- mma.sync m16n8k32 on s8 ----

// d = c + a·b through cuda/mma.h, the registers filled from the PTX ISA's tables ("Matrix
// Fragments for mma.m16n8k32", integer types), written here independently of the emulator:
// a_i (bytes 0-15): row g for i in [0, 4) and [8, 12), else g + 8; column 4t + i % 4, + 16 for
// i >= 8. b_i (bytes 0-7): row 4t + i % 4, + 16 for i >= 4; column g. c_i as the f16 shape's.
__global__ void mma_s8_kernel(const int8_t* a, const int8_t* b, const int32_t* c, int32_t* d) {
  const int lane = static_cast<int>(threadIdx.x), g = lane / 4, t = lane % 4;
  int ab[16], bb[8];
  for (int i = 0; i < 16; ++i) ab[i] = a[(g + (i % 8 >= 4 ? 8 : 0)) * 32 + 4 * t + i % 4 + (i >= 8 ? 16 : 0)];
  for (int i = 0; i < 8; ++i) bb[i] = b[(4 * t + i % 4 + (i >= 4 ? 16 : 0)) * 8 + g];
  uint32_t ar[4], br[2];
  for (int r = 0; r < 4; ++r) ar[r] = cuda::pack_s8x4(ab[4 * r], ab[4 * r + 1], ab[4 * r + 2], ab[4 * r + 3]);
  for (int r = 0; r < 2; ++r) br[r] = cuda::pack_s8x4(bb[4 * r], bb[4 * r + 1], bb[4 * r + 2], bb[4 * r + 3]);
  int32_t acc[4];
  for (int i = 0; i < 4; ++i) acc[i] = c[(g + (i >= 2 ? 8 : 0)) * 8 + 2 * t + i % 2];
  cuda::mma_16x8x32_s8(acc, ar, br);
  for (int i = 0; i < 4; ++i) d[(g + (i >= 2 ? 8 : 0)) * 8 + 2 * t + i % 2] = acc[i];
}

// d = c + a·b (a 16×k, b k×8, c and d 16×8, row-major) through `kernel` on one warp, against the
// products summed here in int64; random bytes with the extremes -128 and 127, random accumulators.
void expect_mma_s8(int k, unsigned seed, void (*kernel)(const int8_t*, const int8_t*, const int32_t*, int32_t*)) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> bytes(-128, 127), accs(-1000000, 1000000);
  std::vector<int8_t> a(static_cast<size_t>(16 * k)), b(static_cast<size_t>(k * 8));
  for (int8_t& x : a) x = static_cast<int8_t>(bytes(rng));
  for (int8_t& x : b) x = static_cast<int8_t>(bytes(rng));
  a[0] = b[0] = -128;
  a[1] = b[8] = 127;
  std::vector<int32_t> c(16 * 8);
  for (int32_t& x : c) x = accs(rng);
  const DeviceBuffer da = DeviceBuffer::from(a), db = DeviceBuffer::from(b), dc = DeviceBuffer::from(c);
  DeviceBuffer dd(16 * 8 * sizeof(int32_t));
  EMBER_CUDA_LAUNCH(1, 32, 0, nullptr, kernel)(da.as<int8_t>(), db.as<int8_t>(), dc.as<int32_t>(), dd.as<int32_t>());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<int32_t> d = download<int32_t>(dd, 16 * 8);
  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 8; ++j) {
      int64_t want = c[static_cast<size_t>(i * 8 + j)];
      for (int kk = 0; kk < k; ++kk)
        want += int64_t{a[static_cast<size_t>(i * k + kk)]} * b[static_cast<size_t>(kk * 8 + j)];
      EXPECT_EQ(d[static_cast<size_t>(i * 8 + j)], want) << "k" << k << " D[" << i << "][" << j << "]";
    }
  }
}

TEST(CudaEmulator, MmaM16n8k32S8MatchesItsPtxDefinition) {
  expect_mma_s8(32, 22, mma_s8_kernel);
  EXPECT_EQ(cuda::pack_s8x4(1, -1, -128, 127), 0x7F80FF01u);  // the lowest index in the low byte
}

// The m16n8k16 s8 shape from its own PTX table ("Matrix Fragments for mma.m16n8k16", integer
// types), written here independently: a_i (bytes 0-7) row g for i < 4, else g + 8, column
// 4t + i % 4; b_i (bytes 0-3) row 4t + i, column g. c as the other shapes'.
__global__ void mma_s8_k16_kernel(const int8_t* a, const int8_t* b, const int32_t* c, int32_t* d) {
  const int lane = static_cast<int>(threadIdx.x), g = lane / 4, t = lane % 4;
  int ab[8], bb[4];
  for (int i = 0; i < 8; ++i) ab[i] = a[(g + (i >= 4 ? 8 : 0)) * 16 + 4 * t + i % 4];
  for (int i = 0; i < 4; ++i) bb[i] = b[(4 * t + i) * 8 + g];
  const uint32_t ar[2] = {cuda::pack_s8x4(ab[0], ab[1], ab[2], ab[3]), cuda::pack_s8x4(ab[4], ab[5], ab[6], ab[7])};
  int32_t acc[4];
  for (int i = 0; i < 4; ++i) acc[i] = c[(g + (i >= 2 ? 8 : 0)) * 8 + 2 * t + i % 2];
  cuda::mma_16x8x16_s8(acc, ar, cuda::pack_s8x4(bb[0], bb[1], bb[2], bb[3]));
  for (int i = 0; i < 4; ++i) d[(g + (i >= 2 ? 8 : 0)) * 8 + 2 * t + i % 2] = acc[i];
}

TEST(CudaEmulator, MmaM16n8k16S8MatchesItsPtxDefinition) { expect_mma_s8(16, 23, mma_s8_k16_kernel); }

// mma.sync is a whole warp's instruction: a partial warp, an exited lane, or lanes meeting it at
// a shuffle abort naming the kernel.
__global__ void mma_misuse_kernel(float* out, int how) {
  float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  const uint32_t a[4] = {0x3C003C00u, 0x3C003C00u, 0x3C003C00u, 0x3C003C00u}, b[2] = {0x3C003C00u, 0x3C003C00u};
  if (how == 1 && threadIdx.x == 3) return;
  if (how == 2 && threadIdx.x < 16) {
    out[threadIdx.x] = __shfl_xor_sync(0xFFFFFFFFu, 1.0f, 1);
    return;
  }
  cuda::mma_16x8x16(d, a, b);
  out[threadIdx.x] = d[0];
}

TEST(CudaEmulatorDeathTest, MmaOutsideAWholeConvergedWarpAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  DeviceBuffer out(32 * sizeof(float), "out");
  EXPECT_DEATH(EMBER_CUDA_LAUNCH(1, 16, 0, nullptr, mma_misuse_kernel)(out.as<float>(), 0),
               "mma_misuse_kernel: mma.sync in a partial warp");
  EXPECT_DEATH(EMBER_CUDA_LAUNCH(1, 32, 0, nullptr, mma_misuse_kernel)(out.as<float>(), 1),
               "mma_misuse_kernel: thread .* (names lanes 0x8 that exited|exits while .* wait in a shuffle)");
  EXPECT_DEATH(EMBER_CUDA_LAUNCH(1, 32, 0, nullptr, mma_misuse_kernel)(out.as<float>(), 2),
               "mma_misuse_kernel: warp 0's threads meet at different warp instructions");
  // And used as it should be: 16 products of 1·1 per output.
  EMBER_CUDA_LAUNCH(1, 32, 0, nullptr, mma_misuse_kernel)(out.as<float>(), 0);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(download<float>(out, 32), std::vector<float>(32, 16.0f));
}

TEST(CudaEmulator, GemmExMatchesADoubleReferenceForEveryTransposeAndType) {
  cublasHandle_t handle = nullptr;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const int m = 7, n = 5, k = 13, pad = 3;
  for (cudaDataType_t type : {CUDA_R_32F, CUDA_R_16F}) {
    for (cublasOperation_t ta : {CUBLAS_OP_N, CUBLAS_OP_T}) {
      for (cublasOperation_t tb : {CUBLAS_OP_N, CUBLAS_OP_T}) {
        for (float beta : {0.0f, 0.5f}) {
          const int lda = (ta == CUBLAS_OP_N ? m : k) + pad, ldb = (tb == CUBLAS_OP_N ? k : n) + pad, ldc = m + pad;
          const int a_cols = ta == CUBLAS_OP_N ? k : m, b_cols = tb == CUBLAS_OP_N ? n : k;
          // Values exactly representable in f16, so both types compute the same products.
          std::vector<float> a(static_cast<size_t>(lda) * a_cols), b(static_cast<size_t>(ldb) * b_cols);
          std::vector<float> c(static_cast<size_t>(ldc) * n);
          for (auto* vec : {&a, &b, &c}) {
            for (float& x : *vec) x = fp16_to_fp32(fp32_to_fp16(dist(rng)));
          }
          if (beta == 0.0f) std::fill(c.begin(), c.end(), NAN);  // must not be read
          const auto to_device = [&](const std::vector<float>& v) {
            if (type == CUDA_R_32F) return DeviceBuffer::from(v);
            std::vector<uint16_t> h(v.size());
            for (size_t i = 0; i < v.size(); ++i) h[i] = fp32_to_fp16(v[i]);
            return DeviceBuffer::from(h);
          };
          DeviceBuffer da = to_device(a), db = to_device(b), dc = DeviceBuffer::from(c);
          const float alpha = 1.5f;
          ASSERT_EQ(cublasGemmEx(handle, ta, tb, m, n, k, &alpha, da.data(), type, lda, db.data(), type, ldb, &beta,
                                 dc.data(), CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                    CUBLAS_STATUS_SUCCESS);
          const std::vector<float> got = download<float>(dc, c.size());
          for (int j = 0; j < n; ++j) {
            for (int i = 0; i < m; ++i) {
              double sum = 0;
              for (int l = 0; l < k; ++l) {
                const double x =
                    ta == CUBLAS_OP_N ? a[static_cast<size_t>(l * lda + i)] : a[static_cast<size_t>(i * lda + l)];
                const double y =
                    tb == CUBLAS_OP_N ? b[static_cast<size_t>(j * ldb + l)] : b[static_cast<size_t>(l * ldb + j)];
                sum += x * y;
              }
              const double want = alpha * sum + (beta == 0.0f ? 0.0 : beta * c[static_cast<size_t>(j * ldc + i)]);
              EXPECT_NEAR(got[static_cast<size_t>(j * ldc + i)], want, 1e-4) << "i " << i << " j " << j;
            }
          }
        }
      }
    }
  }
  float one = 1.0f;
  EXPECT_EQ(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, nullptr, CUDA_R_32F, 2, nullptr, CUDA_R_32F,
                         4, &one, nullptr, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_INVALID_VALUE);  // lda < m
  EXPECT_EQ(cublasDestroy(handle), CUBLAS_STATUS_SUCCESS);
}

}  // namespace
}  // namespace ember
