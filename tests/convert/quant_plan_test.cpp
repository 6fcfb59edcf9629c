// Quantization plans: llama.cpp's per-tensor mixes at real model shapes, fallbacks for rows that
// do not fit a block, overrides, and the inputs a plan refuses.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "convert/quant_plan.h"
#include "ember/error.h"

namespace ember {
namespace {

// The 2-D and 1-D tensors of a Llama-style model, in the order converters write them.
std::vector<TensorSource> llama_tensors(int n_layer, int64_t n_embd, int64_t n_kv, int64_t n_ff, int64_t n_vocab,
                                        bool tied, DType dtype = DType::kF16) {
  std::vector<TensorSource> t;
  t.push_back({"token_embd.weight", dtype, {n_embd, n_vocab}});
  for (int i = 0; i < n_layer; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    t.push_back({p + "attn_norm.weight", DType::kF32, {n_embd}});
    t.push_back({p + "attn_q.weight", dtype, {n_embd, n_embd}});
    t.push_back({p + "attn_k.weight", dtype, {n_embd, n_kv}});
    t.push_back({p + "attn_v.weight", dtype, {n_embd, n_kv}});
    t.push_back({p + "attn_output.weight", dtype, {n_embd, n_embd}});
    t.push_back({p + "ffn_norm.weight", DType::kF32, {n_embd}});
    t.push_back({p + "ffn_gate.weight", dtype, {n_embd, n_ff}});
    t.push_back({p + "ffn_up.weight", dtype, {n_embd, n_ff}});
    t.push_back({p + "ffn_down.weight", dtype, {n_ff, n_embd}});
  }
  t.push_back({"output_norm.weight", DType::kF32, {n_embd}});
  if (!tied) t.push_back({"output.weight", dtype, {n_embd, n_vocab}});
  return t;
}

std::map<std::string, DType> types_of(const QuantPlan& plan) {
  std::map<std::string, DType> m;
  for (const TensorPlan& p : plan.tensors) m[p.name] = p.to;
  return m;
}

// Layers whose `suffix` tensor got `dtype`.
std::set<int> layers_with(const QuantPlan& plan, std::string_view suffix, DType dtype) {
  std::set<int> layers;
  for (const TensorPlan& p : plan.tensors) {
    int layer = -1;
    if (p.name.ends_with(suffix) && p.to == dtype && std::sscanf(p.name.c_str(), "blk.%d.", &layer) == 1) {
      layers.insert(layer);
    }
  }
  return layers;
}

const ModelFacts kLlama32_1B{"llama", 16, 32, 8, 0};

// Llama 3.2 1B (tied embeddings, GQA 4) at Q4_K_M: the layout of the published Q4_K_M files — the
// tied token embedding gets the output's Q6_K, attn_v and ffn_down get Q6_K in the first and last
// two layers and every third layer between (llama.cpp's use_more_bits).
TEST(QuantPlan, Q4KMOnLlama32_1BShape) {
  const auto tensors = llama_tensors(16, 2048, 512, 8192, 128256, /*tied=*/true);
  QuantizeOptions options;
  options.file_type = FileType::kQ4_K_M;
  const QuantPlan plan = plan_quantization(tensors, kLlama32_1B, options);
  const auto types = types_of(plan);
  EXPECT_EQ(types.at("token_embd.weight"), DType::kQ6_K);
  EXPECT_EQ(types.at("blk.3.attn_q.weight"), DType::kQ4_K);
  EXPECT_EQ(types.at("blk.3.ffn_up.weight"), DType::kQ4_K);
  EXPECT_EQ(types.at("blk.3.attn_norm.weight"), DType::kF32);
  const std::set<int> more_bits = {0, 1, 4, 7, 10, 13, 14, 15};
  EXPECT_EQ(layers_with(plan, "attn_v.weight", DType::kQ6_K), more_bits);
  EXPECT_EQ(layers_with(plan, "ffn_down.weight", DType::kQ6_K), more_bits);
  EXPECT_EQ(plan.n_fallback, 0);
  // 1.24B parameters at ~5.2 bits per weight, the size users know (about 770 MiB).
  EXPECT_NEAR(static_cast<double>(plan.to_bytes) / (1 << 20), 770, 30);
}

// The layer counters follow llama.cpp's visiting order (layer number, then name), not the file
// order: a file listing layer 10 before layer 2 gets the same types.
TEST(QuantPlan, LayerRulesDoNotDependOnFileOrder) {
  auto tensors = llama_tensors(16, 256, 64, 512, 1024, false);
  QuantizeOptions options;
  options.file_type = FileType::kQ5_K_M;
  const auto expected = types_of(plan_quantization(tensors, kLlama32_1B, options));
  std::ranges::reverse(tensors);
  EXPECT_EQ(types_of(plan_quantization(tensors, kLlama32_1B, options)), expected);
}

TEST(QuantPlan, Q3KMixesFollowLlamaCpp) {
  const auto tensors = llama_tensors(32, 4096, 1024, 14336, 32000, false);
  const ModelFacts facts{"llama", 32, 32, 8, 0};
  QuantizeOptions options;
  options.file_type = FileType::kQ3_K_M;
  QuantPlan plan = plan_quantization(tensors, facts, options);
  EXPECT_EQ(layers_with(plan, "attn_v.weight", DType::kQ5_K), (std::set<int>{0, 1}));
  EXPECT_EQ(layers_with(plan, "attn_v.weight", DType::kQ4_K).size(), 30u);
  EXPECT_EQ(layers_with(plan, "attn_output.weight", DType::kQ4_K).size(), 32u);
  EXPECT_EQ(layers_with(plan, "ffn_down.weight", DType::kQ5_K), (std::set<int>{0, 1}));  // i < n/16
  EXPECT_EQ(layers_with(plan, "ffn_down.weight", DType::kQ4_K).size(), 30u);
  EXPECT_EQ(types_of(plan).at("output.weight"), DType::kQ6_K);

  options.file_type = FileType::kQ2_K;  // GQA 4: attn_v gets Q4_K
  plan = plan_quantization(tensors, facts, options);
  EXPECT_EQ(layers_with(plan, "attn_v.weight", DType::kQ4_K).size(), 32u);
  EXPECT_EQ(layers_with(plan, "ffn_down.weight", DType::kQ3_K).size(), 32u);
  EXPECT_EQ(layers_with(plan, "ffn_gate.weight", DType::kQ2_K).size(), 32u);
}

TEST(QuantPlan, EightExpertModelsKeepAttentionAtQ8_0) {
  auto tensors = llama_tensors(4, 256, 64, 512, 1024, false);
  QuantizeOptions options;
  options.file_type = FileType::kQ4_K_M;
  const QuantPlan plan = plan_quantization(tensors, {"llama", 4, 8, 2, 8}, options);
  EXPECT_EQ(layers_with(plan, "attn_v.weight", DType::kQ8_0).size(), 4u);
  EXPECT_EQ(layers_with(plan, "attn_k.weight", DType::kQ8_0).size(), 4u);
  EXPECT_EQ(layers_with(plan, "attn_output.weight", DType::kQ5_K).size(), 4u);
}

// llama.cpp's 70B class (80 layers: LLaMA with GQA, Qwen2) bumps Q3_K/Q4_K attn_v to Q5_K; the
// 80-layer LLaMA-65B (no GQA) is not in it.
TEST(QuantPlan, SeventyBillionClassGetsMoreBitsInAttnV) {
  const auto tensors = llama_tensors(80, 256, 64, 512, 1024, false);
  QuantizeOptions options;
  options.file_type = FileType::kQ4_K_S;  // attn_v Q5_K in the first 4 layers, then Q4_K
  const auto q5_layers = [&](const ModelFacts& facts) {
    return layers_with(plan_quantization(tensors, facts, options), "attn_v.weight", DType::kQ5_K).size();
  };
  EXPECT_EQ(q5_layers({"llama", 80, 64, 8, 0}), 80u);
  EXPECT_EQ(q5_layers({"qwen2", 80, 64, 8, 0}), 80u);
  EXPECT_EQ(q5_layers({"llama", 80, 64, 64, 0}), 4u);  // LLaMA-65B
  EXPECT_EQ(q5_layers({"llama", 79, 64, 8, 0}), 4u);
}

// A missing block_count is taken from the tensor names; MoE expert tensors need a layer index.
TEST(QuantPlan, LayerCountAndMoeLayerNames) {
  const auto tensors = llama_tensors(16, 256, 64, 512, 1024, false);
  QuantizeOptions options;
  options.file_type = FileType::kQ4_K_M;
  const auto with_count = plan_quantization(tensors, kLlama32_1B, options);
  const auto without = plan_quantization(tensors, {"llama", 0, 32, 8, 0}, options);
  EXPECT_EQ(types_of(without), types_of(with_count));

  const std::vector<TensorSource> moe = {{"ffn_down_exps.weight", DType::kF16, {512, 256, 8}}};
  EXPECT_THROW(plan_quantization(moe, {"llama", 1, 8, 2, 8}, options), Error);
}

// Hostile hyper-parameters and names (a billion layers, layer numbers beyond int) plan without
// overflow: absurd layer numbers are not layers (UBSan checks the arithmetic in the sanitize build).
TEST(QuantPlan, AbsurdLayerCountsAndIndicesDoNotOverflow) {
  QuantizeOptions options;
  options.file_type = FileType::kQ4_K_M;
  const std::vector<TensorSource> moe = {{"blk.300000.ffn_down_exps.weight", DType::kF16, {256, 256, 8}},
                                         {"blk.1.attn_v.weight", DType::kF16, {256, 256}}};
  const QuantPlan plan = plan_quantization(moe, {"llama", 1 << 30, 8, 2, 8}, options);
  EXPECT_EQ(plan.tensors[0].to, DType::kQ6_K);  // layer 300000 < n/8: one of the "more bits" layers
  const std::vector<TensorSource> huge_index = {{"blk.2147483647.ffn_down.weight", DType::kF16, {256, 256}},
                                                {"blk.99999999999999.ffn_down.weight", DType::kF16, {256, 256}}};
  EXPECT_NO_THROW(plan_quantization(huge_index, {"llama", 0, 8, 2, 0}, options));
  const std::vector<TensorSource> beyond = {{"blk.2147483647.ffn_down_exps.weight", DType::kF16, {256, 256, 8}}};
  EXPECT_THROW(plan_quantization(beyond, {"llama", 1 << 30, 8, 2, 8}, options), Error);  // not a layer index
}

// Trailing dimensions of 1 do not make a matrix: [256, 1] is a vector and stays as it is.
TEST(QuantPlan, TrailingUnitDimensionsAreVectors) {
  EXPECT_EQ(effective_n_dims(std::vector<int64_t>{256, 1}), 1u);
  EXPECT_EQ(effective_n_dims(std::vector<int64_t>{256, 1, 3}), 3u);
  const std::vector<TensorSource> tensors = {{"blk.0.col.weight", DType::kF32, {256, 1}},
                                             {"blk.0.mat.weight", DType::kF32, {256, 2}}};
  QuantizeOptions options;
  options.file_type = FileType::kQ4_0;
  const QuantPlan plan = plan_quantization(tensors, {"llama", 1, 1, 1, 0}, options);
  EXPECT_FALSE(plan.tensors[0].converted());
  EXPECT_EQ(plan.tensors[1].to, DType::kQ4_0);
}

TEST(QuantPlan, PureAndOverrides) {
  const auto tensors = llama_tensors(2, 256, 64, 512, 1024, false);
  QuantizeOptions options;
  options.file_type = FileType::kQ4_K_M;
  options.pure = true;
  auto types = types_of(plan_quantization(tensors, kLlama32_1B, options));
  for (const auto& [name, dtype] : types) {
    EXPECT_EQ(dtype, name.ends_with("norm.weight") ? DType::kF32 : DType::kQ4_K) << name;
  }
  options.output_type = DType::kQ8_0;
  options.token_embedding_type = DType::kF16;
  types = types_of(plan_quantization(tensors, kLlama32_1B, options));
  EXPECT_EQ(types.at("output.weight"), DType::kQ8_0);
  EXPECT_EQ(types.at("token_embd.weight"), DType::kF16);  // == source: copied

  options.output_type = DType::kQ8_K;  // an activation format, not a weight type
  EXPECT_THROW(plan_quantization(tensors, kLlama32_1B, options), Error);
  options.output_type = DType::kIQ2_XXS;  // no quantizer in ember
  EXPECT_THROW(plan_quantization(tensors, kLlama32_1B, options), Error);
}

TEST(QuantPlan, F16FileTypeHasNoMixes) {
  const auto tensors = llama_tensors(2, 256, 64, 512, 1024, false, DType::kF32);
  QuantizeOptions options;
  options.file_type = FileType::kF16;
  const QuantPlan plan = plan_quantization(tensors, kLlama32_1B, options);
  uint64_t to_bytes = 0;
  for (const TensorPlan& p : plan.tensors) {
    const bool vector = p.shape.size() == 1;
    EXPECT_EQ(p.to, vector ? DType::kF32 : DType::kF16) << p.name;
    EXPECT_EQ(p.to_bytes, p.n_elements * (vector ? 4 : 2)) << p.name;
    to_bytes += p.to_bytes;
  }
  EXPECT_EQ(plan.to_bytes, to_bytes);
}

// Rows that do not fit a type's blocks fall back like llama.cpp: Q4_K -> Q5_0 (32-blocks), and
// to F16 when even that does not fit; legacy types keep the source's float type.
TEST(QuantPlan, RowsThatDoNotFitBlocksFallBack) {
  std::vector<TensorSource> tensors = {
      {"blk.0.ffn_up.weight", DType::kF16, {96, 8}},     // 96 % 256 != 0, 96 % 32 == 0
      {"blk.0.ffn_gate.weight", DType::kF16, {100, 8}},  // fits nothing
      {"blk.0.attn_q.weight", DType::kF32, {512, 8}},    // fits
  };
  QuantizeOptions options;
  options.file_type = FileType::kQ4_K_S;
  QuantPlan plan = plan_quantization(tensors, {"llama", 1, 1, 1, 0}, options);
  EXPECT_EQ(plan.tensors[0].to, DType::kQ5_0);
  EXPECT_EQ(plan.tensors[1].to, DType::kF16);
  EXPECT_EQ(plan.tensors[2].to, DType::kQ4_K);
  EXPECT_EQ(plan.n_fallback, 2);
  EXPECT_NE(plan.tensors[0].note.find("q5_0 instead"), std::string::npos) << plan.tensors[0].note;
  EXPECT_TRUE(plan.tensors[2].note.empty());

  tensors[1].dtype = DType::kF32;
  options.file_type = FileType::kQ8_0;
  plan = plan_quantization(tensors, {"llama", 1, 1, 1, 0}, options);
  EXPECT_EQ(plan.tensors[1].to, DType::kF32);  // stays as it was (stories260K's ffn_down in llama.cpp)
  EXPECT_FALSE(plan.tensors[1].converted());
}

TEST(QuantPlan, QuantizedInputNeedsAllowRequantize) {
  const std::vector<TensorSource> tensors = {{"blk.0.attn_q.weight", DType::kQ8_0, {256, 4}},
                                             {"blk.0.attn_norm.weight", DType::kF32, {256}}};
  QuantizeOptions options;
  options.file_type = FileType::kQ4_K_M;
  try {
    plan_quantization(tensors, {"llama", 1, 1, 1, 0}, options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--allow-requantize"), std::string::npos) << e.what();
  }
  options.allow_requantize = true;
  EXPECT_EQ(plan_quantization(tensors, {"llama", 1, 1, 1, 0}, options).tensors[0].to, DType::kQ4_K);
  options.file_type = FileType::kQ8_0;  // same type: copied, allowed without the flag
  options.allow_requantize = false;
  EXPECT_FALSE(plan_quantization(tensors, {"llama", 1, 1, 1, 0}, options).tensors[0].converted());

  const std::vector<TensorSource> unreadable = {{"blk.0.attn_q.weight", DType::kIQ2_XXS, {256, 4}}};
  options.allow_requantize = true;
  EXPECT_THROW(plan_quantization(unreadable, {"llama", 1, 1, 1, 0}, options), Error);
}

TEST(QuantPlan, WhichTensorsAreQuantizable) {
  EXPECT_TRUE(is_quantizable_tensor("blk.0.attn_q.weight", 2));
  EXPECT_TRUE(is_quantizable_tensor("blk.0.ffn_down_exps.weight", 3));
  EXPECT_FALSE(is_quantizable_tensor("blk.0.attn_q.weight", 1));
  EXPECT_FALSE(is_quantizable_tensor("blk.0.attn_q.bias", 2));
  EXPECT_FALSE(is_quantizable_tensor("blk.0.attn_norm.weight", 2));
  EXPECT_FALSE(is_quantizable_tensor("blk.0.ffn_gate_inp.weight", 2));
  EXPECT_FALSE(is_quantizable_tensor("position_embd.weight", 2));
}

}  // namespace
}  // namespace ember
