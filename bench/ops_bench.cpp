// Throughput of the CPU ops (norms, RoPE, softmax, GLUs, get_rows, argmax, top-k) on every ops
// table this machine supports, at LLM row sizes, in GB/s of bytes read + written (bytes_per_second).
// The rows stay in L1/L2 here, as in a forward pass; compare with roofline_bench's cache/DRAM rates.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cpu/ops.h"
#include "cpu/rope.h"

namespace {

using namespace ember;

std::vector<float> random_floats(int64_t n, float sigma) {
  std::mt19937 rng(static_cast<unsigned>(n));
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng);
  return x;
}

void set_bytes(benchmark::State& state, int64_t bytes_per_iteration) {
  state.SetBytesProcessed(state.iterations() * bytes_per_iteration);
}

void bm_rms_norm(benchmark::State& state, Isa isa, int64_t n) {
  const CpuOps& ops = cpu_ops(isa);
  const std::vector<float> x = random_floats(n, 1.0f), w = random_floats(n, 1.0f);
  std::vector<float> y(static_cast<size_t>(n));
  for (auto _ : state) {
    ops.rms_norm(x.data(), w.data(), y.data(), n, 1e-6f);
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 3 * 4 * n);
}

void bm_rms_norm_q8_0(benchmark::State& state, Isa isa, int64_t n) {
  const CpuOps& ops = cpu_ops(isa);
  const std::vector<float> x = random_floats(n, 1.0f), w = random_floats(n, 1.0f);
  std::vector<std::byte> y(static_cast<size_t>(n / 32 * 34));
  for (auto _ : state) {
    ops.rms_norm_q8_0(x.data(), w.data(), y.data(), n, 1e-6f);
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 2 * 4 * n + n / 32 * 34);
}

// The unfused pair the fused op replaces: rms_norm into a row, then the matmul's Q8_0 quantizer.
void bm_rms_norm_then_q8_0(benchmark::State& state, Isa isa, int64_t n) {
  const CpuOps& ops = cpu_ops(isa);
  const QuantizeRowFn quantize = cpu_kernels(isa).quantize_row_for(DType::kQ8_0);
  const std::vector<float> x = random_floats(n, 1.0f), w = random_floats(n, 1.0f);
  std::vector<float> y(static_cast<size_t>(n));
  std::vector<std::byte> q(static_cast<size_t>(n / 32 * 34));
  for (auto _ : state) {
    ops.rms_norm(x.data(), w.data(), y.data(), n, 1e-6f);
    quantize(y.data(), q.data(), n, nullptr);
    benchmark::DoNotOptimize(q.data());
  }
  set_bytes(state, 2 * 4 * n + n / 32 * 34);
}

// Q and K of one step: n_tokens × n_head heads of 128 dims, fully rotated.
void bm_rope(benchmark::State& state, Isa isa, int64_t n_tokens, int64_t n_head, bool neox) {
  const CpuOps& ops = cpu_ops(isa);
  const int64_t head_dim = 128;
  RopeParams p;
  p.n_rot = head_dim;
  p.neox = neox;
  const RopeTable table(p);
  std::vector<int32_t> pos(static_cast<size_t>(n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) pos[t] = static_cast<int32_t>(1000 + t);
  std::vector<float> cs(static_cast<size_t>(n_tokens * head_dim));
  table.cos_sin(pos.data(), n_tokens, cs.data());
  std::vector<float> x = random_floats(n_tokens * n_head * head_dim, 1.0f);
  for (auto _ : state) {
    ops.rope(x.data(), n_tokens, n_head * head_dim, n_head, head_dim, head_dim, neox, cs.data());
    benchmark::DoNotOptimize(x.data());
  }
  set_bytes(state, 4 * (2 * n_tokens * n_head * head_dim + n_tokens * head_dim));
}

// The per-step cos/sin rows (double sin/cos; not per ISA): bytes written.
void bm_rope_cos_sin(benchmark::State& state, int64_t n_tokens) {
  RopeParams p;
  p.n_rot = 128;
  const RopeTable table(p);
  std::vector<int32_t> pos(static_cast<size_t>(n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) pos[t] = static_cast<int32_t>(1000 + t);
  std::vector<float> cs(static_cast<size_t>(n_tokens * 128));
  for (auto _ : state) {
    table.cos_sin(pos.data(), n_tokens, cs.data());
    benchmark::DoNotOptimize(cs.data());
  }
  set_bytes(state, 4 * n_tokens * 128);
}

void bm_softmax(benchmark::State& state, Isa isa, int64_t n, float softcap) {
  const CpuOps& ops = cpu_ops(isa);
  const std::vector<float> x = random_floats(n, 4.0f);
  std::vector<float> y(static_cast<size_t>(n));
  for (auto _ : state) {
    ops.softmax(x.data(), y.data(), n, 1.0f, softcap);
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 2 * 4 * n);
}

void bm_glu(benchmark::State& state, Isa isa, GluFn CpuOps::*fn, int64_t n) {
  const CpuOps& ops = cpu_ops(isa);
  const std::vector<float> g = random_floats(n, 2.0f), u = random_floats(n, 1.0f);
  std::vector<float> y(static_cast<size_t>(n));
  for (auto _ : state) {
    (ops.*fn)(g.data(), u.data(), y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 3 * 4 * n);
}

// 8 token rows of a 1024 × n_embd embedding matrix: bytes of the rows read + floats written.
void bm_get_rows(benchmark::State& state, Isa isa, DType type, int64_t n_embd) {
  const CpuOps& ops = cpu_ops(isa);
  const int64_t n_vocab = 1024, n_ids = 8;  // rows from cache after the first iterations
  const std::vector<float> w = random_floats(n_vocab * n_embd, 0.02f);
  const uint64_t row_bytes = *dtype_bytes_for(type, static_cast<uint64_t>(n_embd));
  std::vector<std::byte> q(row_bytes * n_vocab);
  quantize_rows(type, w.data(), q.data(), n_vocab, n_embd);
  const int32_t ids[n_ids] = {1, 17, 999, 3, 512, 77, 1000, 2};
  std::vector<float> y(static_cast<size_t>(n_ids * n_embd));
  for (auto _ : state) {
    get_rows(ops, type, q.data(), n_vocab, n_embd, ids, n_ids, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, n_ids * static_cast<int64_t>(row_bytes + 4 * n_embd));
}

void bm_argmax(benchmark::State& state, Isa isa, int64_t n) {
  const CpuOps& ops = cpu_ops(isa);
  const std::vector<float> x = random_floats(n, 4.0f);
  for (auto _ : state) benchmark::DoNotOptimize(ops.argmax(x.data(), n));
  set_bytes(state, 4 * n);
}

void bm_top_k(benchmark::State& state, Isa isa, int64_t n, int64_t k) {
  const CpuOps& ops = cpu_ops(isa);
  const std::vector<float> x = random_floats(n, 4.0f);
  std::vector<float> values(static_cast<size_t>(k));
  std::vector<int32_t> indices(static_cast<size_t>(k));
  for (auto _ : state) {
    ops.top_k(x.data(), n, k, values.data(), indices.data());
    benchmark::DoNotOptimize(values.data());
  }
  set_bytes(state, 4 * n);
}

void register_all() {
  constexpr int64_t kEmbd = 4096, kFf = 14336, kVocab = 151936;
  for (Isa isa : supported_isas()) {
    // (snprintf: GCC 12 -O3 warns falsely (-Wrestrict) on std::string concatenation here.)
    const auto name = [&](const char* op) {
      static char buf[128];
      std::snprintf(buf, sizeof buf, "%s/%s", op, std::string(isa_name(isa)).c_str());
      return buf;
    };
    benchmark::RegisterBenchmark(name("rms_norm/4096"), bm_rms_norm, isa, kEmbd);
    benchmark::RegisterBenchmark(name("rms_norm_q8_0/4096"), bm_rms_norm_q8_0, isa, kEmbd);
    benchmark::RegisterBenchmark(name("rms_norm_then_q8_0/4096"), bm_rms_norm_then_q8_0, isa, kEmbd);
    benchmark::RegisterBenchmark(name("rope_decode/1x32x128"), bm_rope, isa, 1, 32, false);
    benchmark::RegisterBenchmark(name("rope_prefill/64x32x128"), bm_rope, isa, 64, 32, false);
    benchmark::RegisterBenchmark(name("rope_prefill_neox/64x32x128"), bm_rope, isa, 64, 32, true);
    benchmark::RegisterBenchmark(name("softmax/4096"), bm_softmax, isa, kEmbd, 0.0f);
    benchmark::RegisterBenchmark(name("softmax/151936"), bm_softmax, isa, kVocab, 0.0f);
    benchmark::RegisterBenchmark(name("softmax_softcap/151936"), bm_softmax, isa, kVocab, 30.0f);
    benchmark::RegisterBenchmark(name("swiglu/14336"), bm_glu, isa, &CpuOps::swiglu, kFf);
    benchmark::RegisterBenchmark(name("geglu/14336"), bm_glu, isa, &CpuOps::geglu, kFf);
    benchmark::RegisterBenchmark(name("geglu_erf/14336"), bm_glu, isa, &CpuOps::geglu_erf, kFf);
    for (DType t : {DType::kF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_K}) {
      const std::string op = "get_rows_" + std::string(dtype_name(t)) + "/8x4096";
      benchmark::RegisterBenchmark(name(op.c_str()), bm_get_rows, isa, t, kEmbd);
    }
    benchmark::RegisterBenchmark(name("argmax/151936"), bm_argmax, isa, kVocab);
    benchmark::RegisterBenchmark(name("top_k40/151936"), bm_top_k, isa, kVocab, 40);
  }
  benchmark::RegisterBenchmark("rope_cos_sin/64x128", bm_rope_cos_sin, 64);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
