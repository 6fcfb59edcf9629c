// Detection of CpuFeatures: cpuid + XGETBV for ISA flags, sysfs and sched_getaffinity for counts.
#include "core/cpu_features.h"

#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#if defined(__linux__)
#include <sched.h>
#include <unistd.h>
#endif

namespace ember {
namespace {

// Used only by the x86 and Linux paths.
[[maybe_unused]] std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  const size_t last = s.find_last_not_of(kSpace);
  return s.substr(first, last - first + 1);
}

#if defined(__x86_64__) || defined(__i386__)

struct CpuidRegs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

// All zero when the leaf is above the CPU's maximum (for its range, basic or extended).
CpuidRegs cpuid(uint32_t leaf, uint32_t subleaf) {
  CpuidRegs r;
  if (!__get_cpuid_count(leaf, subleaf, &r.eax, &r.ebx, &r.ecx, &r.edx)) return {};
  return r;
}

bool bit(uint32_t reg, int n) { return ((reg >> n) & 1u) != 0; }

// XCR0 says which register states the OS saves on context switch. Only call with OSXSAVE set:
// XGETBV is #UD otherwise. Inline asm so this TU needs no -mxsave (it is built for baseline x86-64).
uint64_t read_xcr0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0u));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

constexpr uint64_t kXcr0Avx = (1u << 1) | (1u << 2);                 // XMM, YMM upper halves
constexpr uint64_t kXcr0Avx512 = (1u << 5) | (1u << 6) | (1u << 7);  // opmask, ZMM_Hi256, Hi16_ZMM
constexpr uint64_t kXcr0Amx = (1u << 17) | (1u << 18);               // XTILECFG, XTILEDATA

void detect_isa(CpuFeatures& f) {
  const CpuidRegs l0 = cpuid(0, 0);
  const uint32_t max_leaf = l0.eax;
  char vendor[13] = {};
  std::memcpy(vendor + 0, &l0.ebx, 4);
  std::memcpy(vendor + 4, &l0.edx, 4);
  std::memcpy(vendor + 8, &l0.ecx, 4);
  f.vendor = std::string(trim(vendor));

  const CpuidRegs l1 = max_leaf >= 1 ? cpuid(1, 0) : CpuidRegs{};
  const CpuidRegs l7 = max_leaf >= 7 ? cpuid(7, 0) : CpuidRegs{};
  const CpuidRegs l7s1 = (max_leaf >= 7 && l7.eax >= 1) ? cpuid(7, 1) : CpuidRegs{};

  const bool osxsave = bit(l1.ecx, 27);
  const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  const bool os_avx = (xcr0 & kXcr0Avx) == kXcr0Avx;
  const bool os_avx512 = os_avx && (xcr0 & kXcr0Avx512) == kXcr0Avx512;
  const bool os_amx = (xcr0 & kXcr0Amx) == kXcr0Amx;

  f.sse42 = bit(l1.ecx, 20);

  f.avx = os_avx && bit(l1.ecx, 28);
  f.fma = os_avx && bit(l1.ecx, 12);
  f.f16c = os_avx && bit(l1.ecx, 29);
  f.avx2 = os_avx && bit(l7.ebx, 5);
  f.avx_vnni = os_avx && bit(l7s1.eax, 4);

  f.avx512f = os_avx512 && bit(l7.ebx, 16);
  f.avx512dq = os_avx512 && bit(l7.ebx, 17);
  f.avx512bw = os_avx512 && bit(l7.ebx, 30);
  f.avx512vl = os_avx512 && bit(l7.ebx, 31);
  f.avx512_vnni = os_avx512 && bit(l7.ecx, 11);
  f.avx512_bf16 = os_avx512 && bit(l7s1.eax, 5);

  f.amx_bf16 = os_amx && bit(l7.edx, 22);
  f.amx_tile = os_amx && bit(l7.edx, 24);
  f.amx_int8 = os_amx && bit(l7.edx, 25);

  // Brand string: 48 bytes over three extended leaves, NUL-padded, often with leading spaces.
  const uint32_t max_ext = __get_cpuid_max(0x80000000u, nullptr);
  if (max_ext >= 0x80000004u) {
    char brand[49] = {};
    for (uint32_t i = 0; i < 3; ++i) {
      const CpuidRegs r = cpuid(0x80000002u + i, 0);
      const uint32_t words[4] = {r.eax, r.ebx, r.ecx, r.edx};
      std::memcpy(brand + 16 * i, words, sizeof(words));
    }
    f.brand = std::string(trim(brand));
  }
}

#else

void detect_isa(CpuFeatures&) {}

#endif

#if defined(__linux__)

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return {};
  return line;
}

// Parses a kernel CPU list such as "0-3,8,10-11"; empty on any syntax error.
std::vector<int> parse_cpu_list(std::string_view text) {
  std::vector<int> cpus;
  text = trim(text);
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const size_t dash = item.find('-');
    int lo = 0, hi = 0;
    auto parse_int = [](std::string_view s, int& out) {
      if (s.empty() || s.size() > 9) return false;
      out = 0;
      for (char c : s) {
        if (c < '0' || c > '9') return false;
        out = out * 10 + (c - '0');
      }
      return true;
    };
    if (dash == std::string_view::npos) {
      if (!parse_int(item, lo)) return {};
      hi = lo;
    } else if (!parse_int(item.substr(0, dash), lo) || !parse_int(item.substr(dash + 1), hi) || hi < lo) {
      return {};
    }
    for (int c = lo; c <= hi; ++c) cpus.push_back(c);
  }
  return cpus;
}

// Each online CPU names the set of CPUs sharing its core; distinct sets are distinct cores.
int count_physical_cores(const std::vector<int>& online) {
  std::set<std::string> cores;
  for (int cpu : online) {
    const std::string dir = fmt::format("/sys/devices/system/cpu/cpu{}/topology/", cpu);
    std::string siblings = read_first_line(dir + "core_cpus_list");
    if (siblings.empty()) siblings = read_first_line(dir + "thread_siblings_list");
    if (siblings.empty()) return 0;  // incomplete topology: do not guess from a partial count
    cores.insert(std::string(trim(siblings)));
  }
  return static_cast<int>(cores.size());
}

int count_usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  // More CPUs than a cpu_set_t holds (> 1024): retry with growing dynamic sets.
  for (int n = 2048; n <= (1 << 20); n *= 2) {
    cpu_set_t* dyn = CPU_ALLOC(n);
    if (dyn == nullptr) return 0;
    const size_t size = CPU_ALLOC_SIZE(n);
    CPU_ZERO_S(size, dyn);
    const bool ok = sched_getaffinity(0, size, dyn) == 0;
    const int count = ok ? CPU_COUNT_S(size, dyn) : 0;
    CPU_FREE(dyn);
    if (ok) return count;
  }
  return 0;
}

void detect_counts(CpuFeatures& f) {
  const std::vector<int> online = parse_cpu_list(read_first_line("/sys/devices/system/cpu/online"));
  int logical = static_cast<int>(online.size());
  if (logical < 1) logical = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  if (logical < 1) logical = static_cast<int>(std::thread::hardware_concurrency());
  f.logical_cpus = logical < 1 ? 1 : logical;

  const int physical = online.empty() ? 0 : count_physical_cores(online);
  f.physical_cores = physical < 1 ? f.logical_cpus : physical;

  const int usable = count_usable_cpus();
  f.usable_cpus = usable < 1 ? f.logical_cpus : usable;
}

#else

void detect_counts(CpuFeatures& f) {
  const int n = static_cast<int>(std::thread::hardware_concurrency());
  f.logical_cpus = f.physical_cores = f.usable_cpus = n < 1 ? 1 : n;
}

#endif

}  // namespace

std::string CpuFeatures::to_string() const {
  // Names as in /proc/cpuinfo, in dispatch-tier order.
  const std::pair<bool, const char*> flags[] = {
      {sse42, "sse4_2"},
      {avx, "avx"},
      {avx2, "avx2"},
      {fma, "fma"},
      {f16c, "f16c"},
      {avx512f, "avx512f"},
      {avx512bw, "avx512bw"},
      {avx512vl, "avx512vl"},
      {avx512dq, "avx512dq"},
      {avx512_vnni, "avx512_vnni"},
      {avx512_bf16, "avx512_bf16"},
      {avx_vnni, "avx_vnni"},
      {amx_tile, "amx_tile"},
      {amx_int8, "amx_int8"},
      {amx_bf16, "amx_bf16"},
  };
  std::string names;
  for (const auto& [set, name] : flags) {
    if (!set) continue;
    if (!names.empty()) names += ' ';
    names += name;
  }
  std::string cpu = vendor.empty() ? std::string("unknown") : vendor;
  if (!brand.empty()) cpu += ' ' + brand;
  if (names.empty()) names = "no simd flags";
  return fmt::format("{} | {} | {} logical, {} physical, {} usable", cpu, names, logical_cpus, physical_cores,
                     usable_cpus);
}

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
  detect_isa(f);
  detect_counts(f);
  return f;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures kFeatures = detect_cpu_features();
  return kFeatures;
}

}  // namespace ember
