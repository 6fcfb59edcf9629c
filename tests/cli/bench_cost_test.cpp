// `ember bench`'s prefill FLOP count: matmul weights (less the output matrix) and each layer's
// attention over the positions its tokens see, sliding windows included; a mixture of experts
// counts the experts a token uses.
#include <gtest/gtest.h>

#include "cli/bench_cost.h"
#include "model/forward_test_support.h"
#include "model/random_model.h"

namespace ember::cli {
namespace {

TEST(BenchCost, PrefillFlopsCountWindowsPerLayer) {
  ModelCost cost;
  cost.matmul_params = 1000;
  cost.output_params = 100;
  cost.attention = {{10, 0}, {10, 4}};  // a global layer and a window of 4
  // n = 8: the global layer's tokens see 1..8 positions (mean 4.5); the windowed one's
  // 1, 2, 3, 4, 4, 4, 4, 4 (mean 3.25).
  EXPECT_DOUBLE_EQ(prefill_flop_per_token(cost, 8), 1800.0 + 10 * 4.5 + 10 * 3.25);
  // A window at least as long as the prompt changes nothing.
  for (int64_t window : {8, 100}) {
    cost.attention[1].window = window;
    EXPECT_DOUBLE_EQ(prefill_flop_per_token(cost, 8), 1800.0 + 10 * 4.5 * 2) << "window " << window;
  }
  cost.attention[1].window = 1;  // each token sees only itself
  EXPECT_DOUBLE_EQ(prefill_flop_per_token(cost, 8), 1800.0 + 10 * 4.5 + 10 * 1.0);
  EXPECT_DOUBLE_EQ(prefill_flop_per_token(cost, 1), 1800.0 + 10 + 10);
}

// After a context of `depth` tokens, a prompt's tokens see that many more positions each, up to
// a window; decode reads each seen position's K and V rows.
TEST(BenchCost, DepthAddsThePositionsATokenSees) {
  EXPECT_DOUBLE_EQ(positions_seen(0, 0, 4), 1 + 2 + 3 + 4);
  EXPECT_DOUBLE_EQ(positions_seen(0, 10, 3), 11 + 12 + 13);
  EXPECT_DOUBLE_EQ(positions_seen(4, 0, 6), 1 + 2 + 3 + 4 + 4 + 4);
  EXPECT_DOUBLE_EQ(positions_seen(4, 2, 3), 3 + 4 + 4);
  EXPECT_DOUBLE_EQ(positions_seen(4, 100, 2), 4 + 4);
  EXPECT_DOUBLE_EQ(positions_seen(4, 7, 0), 0);

  ModelCost cost;
  cost.matmul_params = 1000;
  cost.output_params = 100;
  cost.matmul_bytes = 5000;
  cost.attention = {{10, 0, 64}, {10, 4, 32}};  // a global layer and a window of 4
  // Two tokens after 8: the global layer's see 9 and 10 positions, the windowed one's 4 and 4.
  EXPECT_DOUBLE_EQ(prefill_flop_per_token(cost, 2, 8), 1800.0 + 10 * 9.5 + 10 * 4.0);
  EXPECT_DOUBLE_EQ(prefill_flop_per_token(cost, 2, 0), prefill_flop_per_token(cost, 2));
  EXPECT_DOUBLE_EQ(decode_bytes_per_token(cost, 2, 8), 5000.0 + 64 * 9.5 + 32 * 4.0);
  EXPECT_DOUBLE_EQ(decode_bytes_per_token(cost, 1, 0), 5000.0 + 64 + 32);
  cost.attention[0].kv_bytes_per_position = cost.attention[1].kv_bytes_per_position = 0;  // not counted
  EXPECT_DOUBLE_EQ(decode_bytes_per_token(cost, 2, 8), 5000.0);
}

// A qwen2moe of 2 layers, F32 weights: n_embd 64, 4 query and 2 KV heads of 16, 8 experts of 32 (3
// per token), a shared expert of 96, vocabulary 96, separate output matrix.
TEST(BenchCost, MixtureOfExpertsCountsTheExpertsATokenUses) {
  test::RandomModelSpec spec;
  spec.arch = "qwen2moe";
  spec.n_expert = 8;
  spec.n_expert_used = 3;
  spec.n_ff_expert = 32;
  const std::vector<std::byte> bytes = test::write_random_model(spec);
  CpuBackendOptions options;
  options.n_threads = 1;
  CpuBackend backend(options);
  const std::unique_ptr<Model> model = Model::from_file(GgufFile::parse(bytes, "moe.gguf"), backend);
  const ModelCost cost = model_cost(*model);
  const uint64_t attention = 64 * 64 + 2 * 64 * 32 + 64 * 64;                     // q, k, v, o
  const uint64_t router = 64 * 8 + 64;                                            // ffn_gate_inp, ffn_gate_inp_shexp
  const uint64_t shared = 3 * 64 * 96;                                            // gate, up, down of the shared expert
  const uint64_t experts = 3 * uint64_t{3} * 64 * 32;                             // 3 of 8 experts' gate, up, down
  const uint64_t params = 2 * (attention + router + shared + experts) + 64 * 96;  // + the output matrix
  EXPECT_EQ(cost.matmul_params, params);
  EXPECT_EQ(cost.matmul_bytes, 4 * params);  // F32
  EXPECT_EQ(cost.output_params, 64u * 96u);
  for (const ModelCost::Layer& layer : cost.attention) EXPECT_EQ(layer.kv_bytes_per_position, 0u);  // no cache given

  // With a cache: each position's K and V rows, 2 KV heads of 16 values, in the cache's types.
  for (const auto& [type, row_bytes] : {std::pair{DType::kF16, 2 * 16 * 2}, std::pair{DType::kF32, 2 * 16 * 4}}) {
    const KvCache kv(model->config(), model->kv_options(64, type, type));
    for (const ModelCost::Layer& layer : model_cost(*model, &kv).attention) {
      EXPECT_EQ(layer.kv_bytes_per_position, static_cast<uint64_t>(2 * row_bytes)) << dtype_name(type);
    }
  }
}

// Multi-head latent attention caches one row per position (the latent and the rope key: V is read
// from it), counted once.
TEST(BenchCost, LatentAttentionCountsOneRowPerPosition) {
  const test::RandomModelSpec spec = test::deepseek2_lite_spec(DType::kF32, false);
  const std::vector<std::byte> bytes = test::write_random_model(spec);
  CpuBackendOptions options;
  options.n_threads = 1;
  CpuBackend backend(options);
  const std::unique_ptr<Model> model = Model::from_file(GgufFile::parse(bytes, "mla.gguf"), backend);
  const KvCache kv(model->config(), model->kv_options(64, DType::kF16, DType::kF16));
  const ModelCost cost = model_cost(*model, &kv);
  ASSERT_EQ(cost.attention.size(), static_cast<size_t>(spec.n_layer));
  const auto row = static_cast<uint64_t>(spec.kv_lora_rank + spec.n_rot) * 2;  // f16
  for (const ModelCost::Layer& layer : cost.attention) EXPECT_EQ(layer.kv_bytes_per_position, row);
}

}  // namespace
}  // namespace ember::cli
