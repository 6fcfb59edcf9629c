// `roofline_bench [--json]`: prints this machine's roofline (see roofline_probe.h).
#include <cstdio>
#include <cstring>

#include "core/cpu_features.h"
#include "cpu/roofline.h"

int main(int argc, char** argv) {
  using namespace ember;
  const bool json = argc > 1 && std::strcmp(argv[1], "--json") == 0;
  const CpuFeatures& cpu = cpu_features();
  if (!cpu.supports_avx2_tier()) {
    std::fprintf(stderr, "roofline: needs at least AVX2 + FMA\n");
    return 1;
  }
  const Roofline r = measure_roofline(cpu.usable_cpus);
  if (json) {
    std::printf(
        "{\"threads\": %d, \"read_gbs_1\": %.2f, \"read_gbs_all\": %.2f, \"fma_gflops\": %.1f, \"vnni_gops\": %.1f, "
        "\"bf16_gflops\": %.1f}\n",
        r.threads, r.read_gbs_1, r.read_gbs_all, r.fma_gflops, r.vnni_gops, r.bf16_gflops);
    return 0;
  }
  std::printf("roofline of %s (%d threads)\n", cpu.to_string().c_str(), r.threads);
  std::printf("  %-36s %10.1f GB/s\n", "read bandwidth, 1 thread", r.read_gbs_1);
  std::printf("  %-36s %10.1f GB/s\n", "read bandwidth, all threads", r.read_gbs_all);
  std::printf("  %-36s %10.1f GFLOP/s\n", "FP32 FMA peak", r.fma_gflops);
  if (r.vnni_gops > 0) std::printf("  %-36s %10.1f GOP/s\n", "int8 VNNI dot peak", r.vnni_gops);
  if (r.bf16_gflops > 0) std::printf("  %-36s %10.1f GFLOP/s\n", "BF16 dot peak", r.bf16_gflops);
  return 0;
}
