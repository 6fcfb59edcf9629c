// The roofline probe as a library: measures this machine's limits (read bandwidth with 1 and all
// threads, peak FP32 FMA, int8 VNNI dot, BF16 dot) so every benchmark can print its throughput as
// a fraction of them.
#pragma once

namespace ember {

struct Roofline {
  int threads = 0;
  double read_gbs_1 = 0;    // GB/s, one thread
  double read_gbs_all = 0;  // GB/s, all threads
  double fma_gflops = 0;    // FP32 FMA, all threads (0: not measured)
  double vnni_gops = 0;     // int8 vpdpbusd, 2 ops per multiply-add, all threads (0: no VNNI)
  double bf16_gflops = 0;   // vdpbf16ps, all threads (0: no AVX512-BF16)
};

// Medians of 5 runs each; `threads` workers (the calling thread included). Takes a few seconds and
// a 1 GiB buffer. Returns zeros on a CPU without AVX2 + FMA.
Roofline measure_roofline(int threads);

}  // namespace ember
