// Paged attention throughput: decode over a 4096-token F16 cache in GB/s of K/V bytes read (compare
// with roofline_bench's read bandwidth) and a 512-row prefill chunk in GFLOP/s. Shapes of a
// Llama-3-8B layer: 32 query heads, 8 kv heads, head_dim 128. Decode cycles through enough layers'
// caches (>= 1 GiB) that K/V come from memory, as in a real step. Kernel table: best or EMBER_ISA.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "core/aligned_buffer.h"
#include "cpu/attention.h"
#include "quant/fp16.h"

namespace {

using namespace ember;

constexpr int32_t kHead = 32, kHeadKv = 8, kHeadDim = 128;

// One layer's pools with `n_tokens` tokens of random F16 K/V in shuffled blocks.
struct Layer {
  AlignedBuffer k, v;
  std::vector<int32_t> table;
  PagedKvView view;
};

Layer make_layer(int32_t n_tokens, std::mt19937& rng, const std::vector<uint16_t>& halves) {
  Layer layer;
  const int32_t n_blocks = (n_tokens + kKvBlockTokens - 1) / kKvBlockTokens;
  layer.view = {kHeadKv, kHeadDim, DType::kF16, DType::kF16, nullptr, nullptr, n_blocks};
  const size_t bytes = static_cast<size_t>(n_blocks) * layer.view.k_layout().block_bytes();
  layer.k = AlignedBuffer(bytes);
  layer.v = AlignedBuffer(bytes);
  for (AlignedBuffer* b : {&layer.k, &layer.v}) {
    auto* h = b->as<uint16_t>();
    const size_t offset = rng() % halves.size();
    for (size_t i = 0; i < bytes / 2; ++i) h[i] = halves[(offset + i) % halves.size()];
  }
  layer.view.k = layer.k.data();
  layer.view.v = layer.v.data();
  layer.table.resize(static_cast<size_t>(n_blocks));
  std::iota(layer.table.begin(), layer.table.end(), 0);
  std::shuffle(layer.table.begin(), layer.table.end(), rng);
  return layer;
}

std::vector<uint16_t> random_halves(std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> h(65521);  // prime: the cyclic copy does not align with rows
  for (uint16_t& x : h) x = fp32_to_fp16(normal(rng));
  return h;
}

std::vector<float> random_floats(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// One decode row per sequence over `context` tokens, `n_seqs` sequences; args: threads, context,
// sequences.
void BM_AttentionDecode(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto context = static_cast<int32_t>(state.range(1));
  const auto n_seqs = static_cast<int32_t>(state.range(2));
  ThreadPool pool(threads);
  const AttentionKernels& kernels = attention_kernels(select_isa());
  std::mt19937 rng(1);
  const std::vector<uint16_t> halves = random_halves(rng);
  // Each layer holds all sequences' tokens; enough layers that the working set leaves the caches.
  const size_t layer_bytes = static_cast<size_t>(context) * n_seqs * kHeadKv * kHeadDim * 2 * 2;
  const size_t n_layers = std::max<size_t>(2, (size_t{1} << 30) / layer_bytes);
  std::vector<Layer> layers;
  for (size_t i = 0; i < n_layers; ++i) layers.push_back(make_layer(context * n_seqs, rng, halves));
  std::vector<std::vector<KvSeq>> seqs(n_layers);
  const int32_t blocks_per_seq = (context + kKvBlockTokens - 1) / kKvBlockTokens;
  for (size_t i = 0; i < n_layers; ++i) {
    for (int32_t s = 0; s < n_seqs; ++s) {
      seqs[i].push_back(
          {std::span<const int32_t>(layers[i].table).subspan(static_cast<size_t>(s * blocks_per_seq), blocks_per_seq),
           context});
    }
  }
  std::vector<KvRow> rows;
  for (int32_t s = 0; s < n_seqs; ++s) rows.push_back({s, context - 1});
  const std::vector<float> q = random_floats(rows.size() * kHead * kHeadDim, rng);
  std::vector<float> out(q.size());
  AttentionScratch scratch(static_cast<int64_t>(rows.size()), kHead, kHeadKv, kHeadDim, threads);
  AttentionParams params;
  params.n_head = kHead;
  size_t layer = 0;
  for (auto _ : state) {
    attention(kernels, pool, layers[layer].view, seqs[layer], rows, q.data(), params, out.data(), scratch);
    layer = (layer + 1) % n_layers;
    benchmark::DoNotOptimize(out.data());
  }
  // Printed with SI prefixes: kv_bytes=23.4G/s is 23.4 GB/s of K/V read.
  state.counters["kv_bytes"] = benchmark::Counter(
      static_cast<double>(layer_bytes) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AttentionDecode)
    ->ArgNames({"threads", "context", "seqs"})
    ->Args({1, 4096, 1})
    ->Args({2, 4096, 1})
    ->Args({1, 512, 8})
    ->Args({2, 512, 8})
    ->UseRealTime();

// A prefill chunk of `rows` rows at positions 0..rows-1 of one sequence (causal); args: threads,
// rows. FLOPs: 4·head_dim per (query head, visible position): q·k and p·v.
void BM_AttentionPrefill(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto n_rows = static_cast<int32_t>(state.range(1));
  ThreadPool pool(threads);
  const AttentionKernels& kernels = attention_kernels(select_isa());
  std::mt19937 rng(2);
  const Layer layer = make_layer(n_rows, rng, random_halves(rng));
  const std::vector<KvSeq> seqs = {{layer.table, n_rows}};
  std::vector<KvRow> rows;
  for (int32_t p = 0; p < n_rows; ++p) rows.push_back({0, p});
  const std::vector<float> q = random_floats(rows.size() * kHead * kHeadDim, rng);
  std::vector<float> out(q.size());
  AttentionScratch scratch(n_rows, kHead, kHeadKv, kHeadDim, threads);
  AttentionParams params;
  params.n_head = kHead;
  for (auto _ : state) {
    attention(kernels, pool, layer.view, seqs, rows, q.data(), params, out.data(), scratch);
    benchmark::DoNotOptimize(out.data());
  }
  const double pairs = 0.5 * n_rows * (n_rows + 1.0);
  state.counters["flops"] = benchmark::Counter(4.0 * kHeadDim * kHead * pairs * static_cast<double>(state.iterations()),
                                               benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AttentionPrefill)->ArgNames({"threads", "rows"})->Args({1, 512})->Args({2, 512})->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
