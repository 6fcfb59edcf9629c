// CpuFeatures: the ISA extensions and CPU counts of this machine, detected once for kernel dispatch.
#pragma once

#include <string>

namespace ember {

// What the CPU can run *and* the OS has enabled: a SIMD flag is only set when the OS saves the
// matching register state (XCR0), so a set flag means instructions of that family are safe to use.
// On non-x86 builds every flag is false (NEON fields come later).
struct CpuFeatures {
  bool sse42 = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool avx_vnni = false;
  // AMX: the prefill GEMM uses AMX-INT8 and AMX-BF16 (cpu/gemm.h, amx_usable()). Linux additionally
  // requires a per-process arch_prctl(ARCH_REQ_XCOMP_PERM) before the first tile instruction.
  bool amx_tile = false;
  bool amx_int8 = false;
  bool amx_bf16 = false;

  std::string vendor;      // cpuid leaf 0, e.g. "GenuineIntel"; empty off x86
  std::string brand;       // cpuid 0x80000002..4, trimmed; empty when unavailable
  int logical_cpus = 1;    // online logical CPUs
  int physical_cores = 1;  // distinct cores among the online CPUs (SMT siblings count once)
  int usable_cpus = 1;     // CPUs in this process's affinity mask at detection time: thread pool size

  // The `avx2` kernel table: AVX2 + FMA + F16C.
  bool supports_avx2_tier() const noexcept { return avx2 && fma && f16c; }
  // The `avx512` kernel table: AVX-512 F/BW/VL/DQ + VNNI + BF16.
  bool supports_avx512_tier() const noexcept {
    return avx512f && avx512bw && avx512vl && avx512dq && avx512_vnni && avx512_bf16;
  }

  // One line for logs and `ember --version`, flags named as in /proc/cpuinfo:
  // "GenuineIntel Intel(R) Xeon(R) ... | sse4_2 avx avx2 fma f16c ... | 8 logical, 4 physical, 8 usable".
  std::string to_string() const;

  bool operator==(const CpuFeatures&) const = default;
};

// Runs detection now (cpuid, sysfs, sched_getaffinity). Prefer cpu_features().
CpuFeatures detect_cpu_features();

// Detected on first call (thread-safe), then the same object for the life of the process.
const CpuFeatures& cpu_features();

}  // namespace ember
