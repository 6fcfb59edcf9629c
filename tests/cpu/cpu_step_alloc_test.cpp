// A whole CpuBackend step after reserve() allocates nothing: its own executable, because it links
// counting_new.cpp (a replacement global operator new, which ThreadSanitizer's runtime also defines).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/aligned_buffer.h"
#include "cpu/cpu_backend.h"
#include "cpu_test_util.h"
#include "support/counting_new.h"

namespace ember {
namespace {

using namespace cpu_test;

// One decode-like step through every op, after reserve(): no heap allocation at all.
TEST(CpuBackend, AReservedStepDoesNotAllocate) {
  constexpr int64_t kRows = 9, kEmbd = 256, kFf = 512, kVocab = 300;
  constexpr int32_t kHead = 4, kHeadKv = 2, kHeadDim = 64;
  CpuBackend backend(backend_options(2));
  StepLimits step = step_limits(kRows, kFf);
  step.max_n_rot = kHeadDim;
  step.n_head = kHead;
  step.n_head_kv = kHeadKv;
  step.head_dim = kHeadDim;
  backend.reserve(step);
  AttentionParams attention_params;
  attention_params.n_head = kHead;
  const std::vector<std::byte> w_up = quantized(DType::kQ4_K, random_values(2 * kFf * kEmbd, 7, 0.05f));
  const std::vector<std::byte> w_down = quantized(DType::kQ6_K, random_values(kEmbd * kFf, 8, 0.05f));
  const std::vector<std::byte> embd = quantized(DType::kQ8_0, random_values(kVocab * kEmbd, 9, 1.0f));
  const Linear up = backend.prepare({w_up.data(), DType::kQ4_K, 2 * kFf, kEmbd});
  const Linear down = backend.prepare({w_down.data(), DType::kQ6_K, kEmbd, kFf});
  // Decode rows on the panels (the one-row GEMM kernel) whatever this CPU's default; gate / up as
  // two matrices, both on the panels (one gemm_row_many job at one row) or only the gate (a mix).
  const Linear down_rows_packed = backend.prepare({w_down.data(), DType::kQ6_K, kEmbd, kFf}, true, true);
  const std::byte* w_up_half = w_up.data() + *dtype_bytes_for(DType::kQ4_K, uint64_t{kFf} * kEmbd);
  const Linear gate_rows_packed = backend.prepare({w_up.data(), DType::kQ4_K, kFf, kEmbd}, true, true);
  const Linear up_rows_packed = backend.prepare({w_up_half, DType::kQ4_K, kFf, kEmbd}, true, true);
  const Linear up_default = backend.prepare({w_up_half, DType::kQ4_K, kFf, kEmbd});
  // F16 weights: on avx512 their GEMM takes the largest activation layout (4-byte floats).
  const std::vector<std::byte> w_o = quantized(DType::kF16, random_values(kEmbd * kHead * kHeadDim, 13, 0.05f));
  const Linear o_proj = backend.prepare({w_o.data(), DType::kF16, kEmbd, kHead * kHeadDim});
  RopeParams rope_params;
  rope_params.n_rot = kHeadDim;
  const RopeTable rope(rope_params);
  // KV: one sequence of 3 blocks (48 tokens), F16.
  const KvLayout layout{kHeadKv, kHeadDim, DType::kF16};
  std::vector<std::byte> k_pool(3 * layout.block_bytes()), v_pool(3 * layout.block_bytes());
  const PagedKvView kv{kHeadKv, kHeadDim, DType::kF16, DType::kF16, k_pool.data(), v_pool.data(), 3};
  const std::vector<int32_t> block_table{2, 0, 1};
  std::vector<KvSeq> seqs{KvSeq{block_table, 40}};
  std::vector<KvRow> rows;
  std::vector<int32_t> ids, positions;
  for (int32_t i = 0; i < kRows; ++i) {
    rows.push_back({0, 31 + i});
    ids.push_back((i * 37) % kVocab);
    positions.push_back(31 + i);
  }
  std::vector<float> x(kRows * kEmbd), h(kRows * kEmbd), gate_up(kRows * 2 * kFf), act(kRows * kFf);
  std::vector<float> q = random_values(kRows * kHead * kHeadDim, 10, 1.0f), attn(q.size());
  const std::vector<float> k = random_values(kRows * kHeadKv * kHeadDim, 11, 1.0f),
                           v = random_values(k.size(), 12, 1.0f);
  std::vector<float> top_values(5);
  std::vector<int32_t> top_ids(5);

  const int64_t before = test::allocation_count();
  const uint64_t buffers_before = AlignedBuffer::allocation_count();
  // A prefill chunk (GEMM), then one decode row (the GEMV, or the packed one-row kernel).
  for (int64_t m : {kRows, int64_t{1}}) {
    backend.get_rows(DType::kQ8_0, embd.data(), kVocab, kEmbd, ids.data(), m, x.data());
    backend.rms_norm(x.data(), nullptr, h.data(), m, kEmbd, 1e-6f);
    backend.rope(q.data(), m, kHead * kHeadDim, kHead, kHeadDim, rope, positions.data());
    backend.store_kv(kv, seqs, std::span(rows).first(static_cast<size_t>(m)), k.data(), v.data());
    backend.attention(kv, seqs, std::span(rows).first(static_cast<size_t>(m)), q.data(), attention_params, attn.data());
    backend.matmul(o_proj, attn.data(), m, h.data());
    backend.matmul(up, h.data(), m, gate_up.data());
    backend.swiglu(gate_up.data(), gate_up.data() + kFf, 2 * kFf, act.data(), m, kFf);
    backend.matmul(down, act.data(), m, h.data());
    backend.matmul(down_rows_packed, act.data(), m, h.data());
    backend.matmul_glu(gate_rows_packed, &up_rows_packed, h.data(), m, false, gate_up.data(), act.data());
    backend.matmul_glu(gate_rows_packed, &up_default, h.data(), m, false, gate_up.data(), act.data());
    backend.add(x.data(), h.data(), x.data(), m, kEmbd, kEmbd);
    backend.softmax(x.data(), h.data(), m, kEmbd, 1.0f, 0.0f);
    backend.top_k(x.data(), kEmbd, 5, top_values.data(), top_ids.data());
  }
  EXPECT_EQ(test::allocation_count(), before);
  EXPECT_EQ(AlignedBuffer::allocation_count(), buffers_before);
  for (float value : h) ASSERT_TRUE(std::isfinite(value));
}

}  // namespace
}  // namespace ember
