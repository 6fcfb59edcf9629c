// Synthetic models: parameter counts of the real models, written files that read back with the
// requested shapes, metadata and vocabulary, weights distributed N(0, 0.02), determinism.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "convert/synth_model.h"
#include "ember/error.h"
#include "gguf/gguf_reader.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;

// Published parameter counts of the models the presets mimic (tied embeddings counted once).
TEST(SynthModel, PresetsHaveTheRealModelsParameterCounts) {
  EXPECT_EQ(synth_parameter_count(*find_synth_preset("smollm-135m")), 134'515'008u);
  EXPECT_EQ(synth_parameter_count(*find_synth_preset("qwen2.5-0.5b")), 494'032'768u);
  EXPECT_EQ(synth_parameter_count(*find_synth_preset("llama-3.2-1b")), 1'235'814'400u);
  EXPECT_EQ(synth_parameter_count(*find_synth_preset("LLAMA-3.2-3B")), 3'212'749'824u);
  EXPECT_EQ(find_synth_preset("llama-9"), nullptr);
}

// The scaled-down Qwen3-MoE: 16 layers of (q 1024x1024, k and v 1024x256, o 1024x1024, three norms of
// 1024 / 64 / 64 and one of 1024, router 1024x64, 64 experts of three 1024x384 matrices), the tied
// 151936 x 1024 embeddings and the output norm. Its plan keeps the routers F32 (as llama.cpp) and
// quantizes the experts.
TEST(SynthModel, MixtureOfExpertsPreset) {
  const SynthPreset& moe = *find_synth_preset("qwen3moe-1.4b");
  const uint64_t per_layer =
      1024 + 1024 * 1024 + 2 * 1024 * 256 + 1024 * 1024 + 64 + 64 + 1024 + 1024 * 64 + uint64_t{3} * 1024 * 384 * 64;
  EXPECT_EQ(synth_parameter_count(moe), 16 * per_layer + 151936ull * 1024 + 1024);
  SynthOptions options;
  options.file_type = FileType::kQ8_0;
  std::map<std::string, TensorPlan> plan;
  for (const TensorPlan& p : synth_plan(moe, options).tensors) plan.emplace(p.name, p);
  EXPECT_EQ(plan.at("blk.3.ffn_gate_inp.weight").to, DType::kF32);
  EXPECT_EQ(plan.at("blk.3.ffn_down_exps.weight").to, DType::kQ8_0);
  EXPECT_EQ(plan.at("blk.3.ffn_down_exps.weight").shape, (std::vector<int64_t>{384, 1024, 64}));
  EXPECT_EQ(plan.count("blk.3.ffn_down.weight"), 0u);
  EXPECT_EQ(plan.at("blk.0.attn_q_norm.weight").shape, std::vector<int64_t>{64});
}

// The scaled-down DeepSeek-V2-Lite: 12 layers of latent attention (q 1024x3072, kv_a 1024x576, its
// norm of 512, k_b 128x512x16, v_b 512x128x16, o 2048x1024, two norms of 1024), layer 0's dense FFN of
// 2816, then 64 experts of 704 with a router and a shared expert of 2 x 704; 102400 x 1024 tied
// embeddings and the output norm. In a K-quant mix k_b's rows of 128 take llama.cpp's fallback.
TEST(SynthModel, LatentAttentionPreset) {
  const SynthPreset& ds = *find_synth_preset("deepseek2-1.8b");
  const uint64_t attention =
      1024 + 1024 * 3072 + 1024 * 576 + 512 + 128 * 512 * 16 + 512 * 128 * 16 + 2048 * 1024 + 1024;
  const uint64_t dense = uint64_t{3} * 1024 * 2816;
  const uint64_t experts = 1024 * 64 + uint64_t{3} * 1024 * 704 * 64 + uint64_t{3} * 1024 * 1408;
  EXPECT_EQ(synth_parameter_count(ds), 12 * attention + dense + 11 * experts + 102400ull * 1024 + 1024);
  SynthOptions options;
  options.file_type = FileType::kQ4_K_M;
  std::map<std::string, TensorPlan> plan;
  for (const TensorPlan& p : synth_plan(ds, options).tensors) plan.emplace(p.name, p);
  EXPECT_EQ(plan.at("blk.0.attn_k_b.weight").shape, (std::vector<int64_t>{128, 512, 16}));
  EXPECT_EQ(plan.at("blk.0.attn_k_b.weight").to, DType::kQ5_0);  // llama.cpp's fallback for Q4_K's 256-blocks
  EXPECT_EQ(dtype_traits(plan.at("blk.0.attn_output.weight").to).block_size, 256);  // 2048 wide: a K-quant
  EXPECT_EQ(plan.at("blk.1.ffn_gate_inp.weight").to, DType::kF32);
  EXPECT_EQ(plan.count("blk.0.ffn_gate_inp.weight"), 0u);  // the leading dense layer
  EXPECT_EQ(plan.at("blk.0.ffn_down.weight").shape, (std::vector<int64_t>{2816, 1024}));
  EXPECT_EQ(plan.at("blk.1.ffn_down_shexp.weight").shape, (std::vector<int64_t>{1408, 1024}));
}

// Llama 3 RoPE factors for base 500000, head_dim 64, factor 32, original context 8192: 15 high-
// frequency bands unscaled (wavelength < 2048), 14 low-frequency bands scaled by 32 (> 8192), 3
// smoothly interpolated between.
TEST(SynthModel, Llama3RopeFactors) {
  const std::vector<float> f = llama3_rope_factors({32.0f, 1.0f, 4.0f, 8192}, 500000.0f, 64);
  ASSERT_EQ(f.size(), 32u);
  EXPECT_EQ(std::count(f.begin(), f.end(), 1.0f), 15);
  EXPECT_EQ(std::count(f.begin(), f.end(), 32.0f), 14);
  EXPECT_TRUE(std::is_sorted(f.begin(), f.end()));
  for (size_t i = 15; i < 18; ++i) EXPECT_TRUE(f[i] > 1.0f && f[i] < 32.0f) << i;
}

TEST(SynthModel, PlansFollowTheFileTypeMix) {
  SynthOptions options;
  options.file_type = FileType::kQ4_K_M;
  const QuantPlan plan = synth_plan(*find_synth_preset("llama-3.2-1b"), options);
  std::map<std::string, DType> types;
  for (const TensorPlan& p : plan.tensors) types[p.name] = p.to;
  EXPECT_EQ(types.at("token_embd.weight"), DType::kQ6_K);  // tied: the output's type
  EXPECT_EQ(types.at("rope_freqs.weight"), DType::kF32);
  EXPECT_EQ(types.at("blk.5.ffn_up.weight"), DType::kQ4_K);
  const QuantPlan qwen = synth_plan(*find_synth_preset("qwen2.5-0.5b"), options);
  const auto bias = std::ranges::find(qwen.tensors, std::string("blk.0.attn_k.bias"), &TensorPlan::name);
  ASSERT_NE(bias, qwen.tensors.end());
  EXPECT_EQ(bias->shape, std::vector<int64_t>{128});  // 2 KV heads x 64
  options.all_f32 = true;
  for (const TensorPlan& p : synth_plan(*find_synth_preset("tiny"), options).tensors) EXPECT_EQ(p.to, DType::kF32);
}

TEST(SynthModel, TinyModelReadsBackWithNormalWeights) {
  const fs::path dir = test::temp_dir("synth_tiny");
  const SynthPreset& tiny = *find_synth_preset("tiny");
  SynthOptions options;
  options.all_f32 = true;
  options.seed = 42;
  const std::string path = (dir / "tiny.gguf").string();
  write_synth_model(tiny, options, path, 3);
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.get<std::string>("general.architecture"), "llama");
  EXPECT_EQ(f.get<uint32_t>("llama.block_count"), 2u);
  EXPECT_EQ(f.get<uint32_t>("llama.embedding_length"), 256u);
  EXPECT_EQ(f.get<uint32_t>("llama.attention.head_count_kv"), 2u);
  EXPECT_EQ(f.get_strings("tokenizer.ggml.tokens").size(), 512u);  // placeholder vocabulary
  EXPECT_EQ(f.get_strings("tokenizer.ggml.tokens")[3], "<0x00>");
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);  // tied embeddings
  EXPECT_EQ(f.tensors().size(), 1 + 2 * 9 + 1u);

  const GgufTensorInfo& embd = *f.find_tensor("token_embd.weight");
  EXPECT_EQ(std::vector<int64_t>(embd.shape().begin(), embd.shape().end()), (std::vector<int64_t>{256, 512}));
  const float* w = f.tensor_view(embd).data_as<float>();
  double sum = 0, sumsq = 0;
  size_t within_one_sigma = 0;
  for (uint64_t i = 0; i < embd.n_elements; ++i) {
    sum += w[i];
    sumsq += static_cast<double>(w[i]) * w[i];
    within_one_sigma += std::fabs(w[i]) < 0.02f ? 1 : 0;
  }
  const double n = static_cast<double>(embd.n_elements);
  EXPECT_NEAR(sum / n, 0.0, 0.0005);                // 131072 samples: standard error 5.5e-5
  EXPECT_NEAR(std::sqrt(sumsq / n), 0.02, 0.0005);  // standard deviation
  EXPECT_NEAR(within_one_sigma / n, 0.6827, 0.01);  // normal, not uniform (0.5 for U(-.035,.035))
  const GgufTensorInfo& norm = *f.find_tensor("blk.1.ffn_norm.weight");
  const float* ones = f.tensor_view(norm).data_as<float>();
  EXPECT_TRUE(std::all_of(ones, ones + norm.n_elements, [](float v) { return v == 1.0f; }));
}

TEST(SynthModel, SameSeedSameBytesWhateverTheThreads) {
  const fs::path dir = test::temp_dir("synth_determinism");
  const SynthPreset& tiny = *find_synth_preset("tiny");
  SynthOptions options;
  options.file_type = FileType::kQ4_K_M;
  write_synth_model(tiny, options, (dir / "a.gguf").string(), 1);
  write_synth_model(tiny, options, (dir / "b.gguf").string(), 4);
  options.seed = 2;
  write_synth_model(tiny, options, (dir / "c.gguf").string(), 2);
  const auto bytes = [&](const char* name) {
    const GgufFile f = GgufFile::open((dir / name).string());
    const GgufTensorInfo& t = *f.find_tensor("blk.0.ffn_up.weight");
    EXPECT_EQ(t.dtype, DType::kQ4_K);
    return std::vector<std::byte>(f.tensor_data(t), f.tensor_data(t) + t.n_bytes);
  };
  EXPECT_EQ(bytes("a.gguf"), bytes("b.gguf"));
  EXPECT_NE(bytes("a.gguf"), bytes("c.gguf"));
}

TEST(SynthModel, RealVocabularyIsCopiedWhenItFits) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("synth_vocab");
  SynthOptions options;
  options.vocab = (data / "models/stories260K/stories260K.gguf").string();
  write_synth_model(*find_synth_preset("tiny"), options, (dir / "tiny.gguf").string(), 2);
  const GgufFile vocab = GgufFile::open(*options.vocab);
  const GgufFile f = GgufFile::open((dir / "tiny.gguf").string());
  EXPECT_TRUE(std::ranges::equal(f.get_strings("tokenizer.ggml.tokens"), vocab.get_strings("tokenizer.ggml.tokens")));
  EXPECT_EQ(f.get<uint32_t>("tokenizer.ggml.bos_token_id"), vocab.get<uint32_t>("tokenizer.ggml.bos_token_id"));

  options.vocab = (data / "vocab/ggml-vocab-llama-spm.gguf").string();  // 32000 tokens, tiny has 512
  try {
    write_synth_model(*find_synth_preset("tiny"), options, (dir / "bad.gguf").string(), 2);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has 32000 tokens; preset tiny needs 512"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "bad.gguf"));
}

}  // namespace
}  // namespace ember
