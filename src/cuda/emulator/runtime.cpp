// The CUDA emulator's runtime API: device memory is host memory from the allocator (so
// AddressSanitizer guards every allocation's bounds), registered so that copies and kernel
// arguments are checked to be device memory of the right extent; streams run their work at once, in
// order. EMBER_CUDA_EMULATOR_MEMORY (MiB, default 16384) sizes the device and
// EMBER_CUDA_EMULATOR_DEVICES (default 1) counts them, so out-of-memory and no-GPU paths can be
// tested too. With EMBER_CUDA_EMULATOR_HOST_GUARD=1 allocations are whole pages of their own,
// inaccessible to the host outside the emulated device's work (DeviceAccess, state.h).
#include <cuda_runtime_api.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "cuda/emulator/state.h"

struct CUstream_st {
  unsigned flags = 0;
  // The work recorded while capturing (cudaStreamBeginCapture .. cudaStreamEndCapture).
  std::unique_ptr<std::vector<std::function<void()>>> capture;
};

struct CUgraph_st {
  std::vector<std::function<void()>> nodes;
};

struct CUgraphExec_st {
  std::vector<std::function<void()>> nodes;
};

struct CUevent_st {
  std::chrono::steady_clock::time_point time{};
  bool recorded = false;
  bool timing = true;  // false: cudaEventDisableTiming
};

namespace ember::cuda_emulator {
namespace {

// Fresh device memory holds this byte: every float and half read from it before a write is NaN.
constexpr unsigned char kUninitializedByte = 0xFF;
constexpr size_t kAlignment = 256;  // cudaMalloc's guarantee

size_t env_size(const char* name, size_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  if (*end != '\0') fault("%s=%s is not a whole number", name, v);
  return static_cast<size_t>(n);
}

struct Device {
  std::mutex mu;
  std::map<uintptr_t, size_t> allocations;  // base -> bytes
  // EMBER_CUDA_EMULATOR_HOST_GUARD allocations: base -> mapped bytes (whole pages, and one more
  // after them that is never accessible, so no other mapping begins one past the end). Toggled
  // under access_mu (taken before mu), while `open` DeviceAccess guards live.
  std::map<uintptr_t, size_t> guarded;
  std::mutex access_mu;
  int open = 0;
  std::set<const CUstream_st*> streams;
  std::set<const CUevent_st*> events;
  std::set<const void*> pinned;  // cudaMallocHost's
  size_t used = 0;
  size_t total = env_size("EMBER_CUDA_EMULATOR_MEMORY", 16384) << 20;
  int count = static_cast<int>(env_size("EMBER_CUDA_EMULATOR_DEVICES", 1));
};

Device& device() {
  static Device* d = new Device;  // never destroyed: buffers may be freed during static destruction
  return *d;
}

thread_local cudaError_t t_last_error = cudaSuccess;
thread_local int t_current_device = 0;
thread_local int t_captures = 0;  // captures this thread has begun and not ended

// The allocation holding p (or p one past its end), under d.mu.
const std::pair<const uintptr_t, size_t>* find_allocation(Device& d, const void* p) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  auto it = d.allocations.upper_bound(addr);
  if (it == d.allocations.begin()) return nullptr;
  --it;
  return addr <= it->first + it->second ? &*it : nullptr;
}

bool known_stream(cudaStream_t s) {
  if (s == nullptr) return true;  // the legacy default stream
  Device& d = device();
  const std::lock_guard lock(d.mu);
  return d.streams.count(s) != 0;
}

const char* kind_name(cudaMemcpyKind kind) {
  switch (kind) {
    case cudaMemcpyHostToHost: return "host to host";
    case cudaMemcpyHostToDevice: return "host to device";
    case cudaMemcpyDeviceToHost: return "device to host";
    case cudaMemcpyDeviceToDevice: return "device to device";
    case cudaMemcpyDefault: return "default";
  }
  return "?";
}

// Checks one side of a copy: device memory of the whole extent where the kind says device, not
// device memory where it says host (a GPU would read or write the wrong thing).
void check_side(const void* p, size_t bytes, bool on_device, const char* side, cudaMemcpyKind kind, const char* call) {
  if (on_device && !is_device_range(p, bytes)) {
    fault("%s (%s): the %s %p (%zu bytes) is not inside one device allocation", call, kind_name(kind), side, p, bytes);
  }
  if (!on_device && is_device_pointer(p)) {
    fault("%s (%s): the %s %p is device memory, used as host memory", call, kind_name(kind), side, p);
  }
}

// A copy on `stream` (synchronous: cudaMemcpy, on the legacy stream, waiting for it).
cudaError_t copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream, bool synchronous,
                 const char* call) {
  if (!known_stream(stream)) return set_last_error(cudaErrorInvalidResourceHandle);
  if (synchronous) check_not_capturing(call);
  if (bytes == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return set_last_error(cudaErrorInvalidValue);
  if (kind == cudaMemcpyDefault) {
    kind = is_device_pointer(src) ? (is_device_pointer(dst) ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
                                  : (is_device_pointer(dst) ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
  }
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDeviceToDevice) {
    return set_last_error(cudaErrorInvalidMemcpyDirection);
  }
  check_side(src, bytes, kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice, "source", kind, call);
  check_side(dst, bytes, kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice, "destination", kind, call);
  if (is_capturing(stream) && kind != cudaMemcpyDeviceToDevice) {
    fault("%s (%s) on a capturing stream: copies of pageable host memory cannot be captured", call, kind_name(kind));
  }
  const auto work = [=] {
    const DeviceAccess access;
    std::memmove(dst, src, bytes);
  };
  if (!record_if_capturing(stream, work, call)) work();
  return cudaSuccess;
}

}  // namespace

cudaError_t set_last_error(cudaError_t error) {
  if (error != cudaSuccess) t_last_error = error;
  return error;
}

bool is_device_range(const void* p, size_t bytes) {
  Device& d = device();
  const std::lock_guard lock(d.mu);
  const auto* a = find_allocation(d, p);
  if (a == nullptr) return false;
  const uintptr_t offset = reinterpret_cast<uintptr_t>(p) - a->first;
  return bytes <= a->second - offset;
}

bool is_device_pointer(const void* p) {
  Device& d = device();
  const std::lock_guard lock(d.mu);
  return find_allocation(d, p) != nullptr;
}

void fault(const char* format, ...) {
  std::fputs("CUDA emulator: ", stderr);
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fputc('\n', stderr);
  std::fflush(stderr);
  std::abort();
}

bool is_capturing(cudaStream_t stream) {
  if (stream == nullptr) return false;
  Device& d = device();
  const std::lock_guard lock(d.mu);
  return stream->capture != nullptr;
}

bool record_if_capturing(cudaStream_t stream, std::function<void()> work, const char* call) {
  if (stream == nullptr) {
    if (t_captures > 0) fault("%s on the legacy stream while this thread captures a stream", call);
    return false;
  }
  Device& d = device();
  const std::lock_guard lock(d.mu);
  if (stream->capture == nullptr) return false;
  stream->capture->push_back(std::move(work));
  return true;
}

void check_not_capturing(const char* call) {
  if (t_captures > 0) fault("%s while this thread captures a stream (CUDA invalidates the capture)", call);
}

void check_kernel_pointer(const void* p, int index, const char* kernel) {
  if (p != nullptr && !is_device_pointer(p)) {
    fault("kernel %s: argument %d (%p) is not device memory", kernel, index, p);
  }
}

bool host_guard_requested() {
  const char* v = std::getenv("EMBER_CUDA_EMULATOR_HOST_GUARD");
  return v != nullptr && std::string_view(v) == "1";
}

namespace {

size_t page_size() {
  static const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

// Every guarded allocation to `prot`, under d.access_mu (which every change of d.guarded holds).
void protect_guarded(Device& d, int prot) {
  for (const auto& [base, bytes] : d.guarded) {
    if (mprotect(reinterpret_cast<void*>(base), bytes, prot) != 0) {
      fault("mprotect of device memory %p (%zu bytes) failed: %s", reinterpret_cast<void*>(base), bytes,
            std::strerror(errno));
    }
  }
}

}  // namespace

DeviceAccess::DeviceAccess() {
  Device& d = device();
  const std::lock_guard lock(d.access_mu);
  if (d.open++ == 0) protect_guarded(d, PROT_READ | PROT_WRITE);
}

DeviceAccess::~DeviceAccess() {
  Device& d = device();
  const std::lock_guard lock(d.access_mu);
  if (--d.open == 0) protect_guarded(d, PROT_NONE);
}

}  // namespace ember::cuda_emulator

using ember::cuda_emulator::device;
using ember::cuda_emulator::set_last_error;

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return set_last_error(cudaErrorInvalidValue);
  *count = device().count;
  return *count == 0 ? set_last_error(cudaErrorNoDevice) : cudaSuccess;
}

cudaError_t cudaSetDevice(int d) {
  if (d < 0 || d >= device().count) return set_last_error(cudaErrorInvalidDevice);
  ember::cuda_emulator::t_current_device = d;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* d) {
  if (d == nullptr) return set_last_error(cudaErrorInvalidValue);
  *d = ember::cuda_emulator::t_current_device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int d) {
  if (prop == nullptr) return set_last_error(cudaErrorInvalidValue);
  if (d < 0 || d >= device().count) return set_last_error(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "ember CUDA emulator");
  prop->totalGlobalMem = device().total;
  prop->sharedMemPerBlock = 48 << 10;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 0x7FFFFFFF;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 1;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  ember::cuda_emulator::check_not_capturing("cudaDeviceSynchronize");
  return cudaSuccess;
}

cudaError_t cudaGetLastError() { return std::exchange(ember::cuda_emulator::t_last_error, cudaSuccess); }

cudaError_t cudaPeekAtLastError() { return ember::cuda_emulator::t_last_error; }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
  }
  return "unknown error";
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  ember::cuda_emulator::check_not_capturing("cudaMalloc");
  if (ptr == nullptr) return set_last_error(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  auto& d = device();
  {
    const std::lock_guard lock(d.mu);
    if (bytes > d.total - d.used) return set_last_error(cudaErrorMemoryAllocation);
    d.used += bytes;
  }
  void* p = nullptr;
  const bool guarded = ember::cuda_emulator::host_guard_requested();
  const size_t page = ember::cuda_emulator::page_size(), mapped = (bytes + page - 1) / page * page;
  if (guarded) {
    p = mmap(nullptr, mapped + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) p = nullptr;
    if (p != nullptr && mprotect(static_cast<char*>(p) + mapped, page, PROT_NONE) != 0) {  // the page after: never
      ember::cuda_emulator::fault("mprotect of a guard page failed: %s", std::strerror(errno));
    }
  } else if (posix_memalign(&p, ember::cuda_emulator::kAlignment, bytes) != 0) {
    p = nullptr;
  }
  if (p == nullptr) {
    const std::lock_guard lock(d.mu);
    d.used -= bytes;
    return set_last_error(cudaErrorMemoryAllocation);
  }
  std::memset(p, ember::cuda_emulator::kUninitializedByte, bytes);
  const std::lock_guard access(d.access_mu);
  if (guarded && d.open == 0 && mprotect(p, mapped, PROT_NONE) != 0) {
    ember::cuda_emulator::fault("mprotect of device memory %p (%zu bytes) failed: %s", p, mapped, std::strerror(errno));
  }
  const std::lock_guard lock(d.mu);
  if (guarded) d.guarded.emplace(reinterpret_cast<uintptr_t>(p), mapped);
  d.allocations.emplace(reinterpret_cast<uintptr_t>(p), bytes);
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  ember::cuda_emulator::check_not_capturing("cudaFree");
  auto& d = device();
  {
    const std::lock_guard lock(d.mu);
    const auto it = d.allocations.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == d.allocations.end()) return set_last_error(cudaErrorInvalidValue);
    d.used -= it->second;
    d.allocations.erase(it);
  }
  size_t guarded_bytes = 0;
  {
    const std::lock_guard access(d.access_mu);
    const std::lock_guard lock(d.mu);
    if (const auto g = d.guarded.find(reinterpret_cast<uintptr_t>(ptr)); g != d.guarded.end()) {
      guarded_bytes = g->second;
      d.guarded.erase(g);
    }
  }
  if (guarded_bytes > 0) {
    munmap(ptr, guarded_bytes + ember::cuda_emulator::page_size());
  } else {
    std::free(ptr);
  }
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  ember::cuda_emulator::check_not_capturing("cudaMallocHost");
  if (ptr == nullptr) return set_last_error(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  if (posix_memalign(ptr, ember::cuda_emulator::kAlignment, bytes) != 0) {
    *ptr = nullptr;
    return set_last_error(cudaErrorMemoryAllocation);
  }
  auto& d = device();
  const std::lock_guard lock(d.mu);
  d.pinned.insert(*ptr);
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  ember::cuda_emulator::check_not_capturing("cudaFreeHost");
  {
    auto& d = device();
    const std::lock_guard lock(d.mu);
    if (d.pinned.erase(ptr) == 0) return set_last_error(cudaErrorInvalidValue);
  }
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (free_bytes == nullptr || total_bytes == nullptr) return set_last_error(cudaErrorInvalidValue);
  auto& d = device();
  const std::lock_guard lock(d.mu);
  *free_bytes = d.total - d.used;
  *total_bytes = d.total;
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return ember::cuda_emulator::copy(dst, src, bytes, kind, nullptr, true, "cudaMemcpy");
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  return ember::cuda_emulator::copy(dst, src, bytes, kind, stream, false, "cudaMemcpyAsync");
}

cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t stream) {
  if (width > dpitch || width > spitch) return set_last_error(cudaErrorInvalidValue);
  for (size_t r = 0; r < height; ++r) {
    const cudaError_t status =
        ember::cuda_emulator::copy(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch,
                                   width, kind, stream, false, "cudaMemcpy2DAsync");
    if (status != cudaSuccess) return status;
  }
  return cudaSuccess;
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  ember::cuda_emulator::check_not_capturing("cudaMemset");
  return cudaMemsetAsync(ptr, value, bytes, nullptr);
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  if (!ember::cuda_emulator::known_stream(stream)) return set_last_error(cudaErrorInvalidResourceHandle);
  if (bytes == 0) return cudaSuccess;
  if (!ember::cuda_emulator::is_device_range(ptr, bytes)) {
    ember::cuda_emulator::fault("cudaMemset: %p (%zu bytes) is not inside one device allocation", ptr, bytes);
  }
  const auto work = [=] {
    const ember::cuda_emulator::DeviceAccess access;
    std::memset(ptr, value, bytes);
  };
  if (!ember::cuda_emulator::record_if_capturing(stream, work, "cudaMemsetAsync")) work();
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  if (stream == nullptr) return set_last_error(cudaErrorInvalidValue);
  *stream = new CUstream_st{flags, nullptr};
  auto& d = device();
  const std::lock_guard lock(d.mu);
  d.streams.insert(*stream);
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  auto& d = device();
  {
    const std::lock_guard lock(d.mu);
    if (stream == nullptr || d.streams.erase(stream) == 0) return set_last_error(cudaErrorInvalidResourceHandle);
  }
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (!ember::cuda_emulator::known_stream(stream)) return set_last_error(cudaErrorInvalidResourceHandle);
  if (stream == nullptr || ember::cuda_emulator::is_capturing(stream)) {
    ember::cuda_emulator::check_not_capturing("cudaStreamSynchronize");
  }
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  // CUDA's flags (an interprocess event must also be untimed); blocking sync changes nothing here.
  const unsigned known = cudaEventBlockingSync | cudaEventDisableTiming | cudaEventInterprocess;
  if (event == nullptr || (flags & ~known) != 0 ||
      ((flags & cudaEventInterprocess) != 0 && (flags & cudaEventDisableTiming) == 0)) {
    return set_last_error(cudaErrorInvalidValue);
  }
  *event = new CUevent_st;
  (*event)->timing = (flags & cudaEventDisableTiming) == 0;
  auto& d = device();
  const std::lock_guard lock(d.mu);
  d.events.insert(*event);
  return cudaSuccess;
}

namespace {
bool known_event(cudaEvent_t e) {
  auto& d = device();
  const std::lock_guard lock(d.mu);
  return e != nullptr && d.events.count(e) != 0;
}
}  // namespace

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  auto& d = device();
  {
    const std::lock_guard lock(d.mu);
    if (event == nullptr || d.events.erase(event) == 0) return set_last_error(cudaErrorInvalidResourceHandle);
  }
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!known_event(event) || !ember::cuda_emulator::known_stream(stream)) {
    return set_last_error(cudaErrorInvalidResourceHandle);
  }
  if (ember::cuda_emulator::is_capturing(stream))
    ember::cuda_emulator::fault("cudaEventRecord: events in a capture are not emulated");
  event->time = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  ember::cuda_emulator::check_not_capturing("cudaEventSynchronize");
  return known_event(event) ? cudaSuccess : set_last_error(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr) return set_last_error(cudaErrorInvalidValue);
  if (!known_event(start) || !known_event(end)) return set_last_error(cudaErrorInvalidResourceHandle);
  if (!start->recorded || !end->recorded || !start->timing || !end->timing) {
    return set_last_error(cudaErrorInvalidResourceHandle);
  }
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode /*mode: all behave as ThreadLocal*/) {
  if (stream == nullptr) return set_last_error(cudaErrorStreamCaptureUnsupported);  // the legacy stream
  if (!ember::cuda_emulator::known_stream(stream)) return set_last_error(cudaErrorInvalidResourceHandle);
  auto& d = device();
  const std::lock_guard lock(d.mu);
  if (stream->capture != nullptr) return set_last_error(cudaErrorIllegalState);  // already capturing
  stream->capture = std::make_unique<std::vector<std::function<void()>>>();
  ++ember::cuda_emulator::t_captures;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (graph == nullptr) return set_last_error(cudaErrorInvalidValue);
  if (stream == nullptr || !ember::cuda_emulator::known_stream(stream)) {
    return set_last_error(cudaErrorInvalidResourceHandle);
  }
  auto& d = device();
  const std::lock_guard lock(d.mu);
  if (stream->capture == nullptr) return set_last_error(cudaErrorInvalidValue);
  *graph = new CUgraph_st{std::move(*stream->capture)};
  stream->capture.reset();
  --ember::cuda_emulator::t_captures;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  if (status == nullptr) return set_last_error(cudaErrorInvalidValue);
  *status = ember::cuda_emulator::is_capturing(stream) ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long /*flags*/) {
  if (exec == nullptr || graph == nullptr) return set_last_error(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{graph->nodes};
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags) {
  return cudaGraphInstantiate(exec, graph, flags);
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (exec == nullptr) return set_last_error(cudaErrorInvalidValue);
  if (!ember::cuda_emulator::known_stream(stream)) return set_last_error(cudaErrorInvalidResourceHandle);
  if (ember::cuda_emulator::is_capturing(stream)) ember::cuda_emulator::fault("cudaGraphLaunch into a capture");
  for (const auto& node : exec->nodes) node();
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
