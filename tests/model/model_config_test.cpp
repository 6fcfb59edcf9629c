// ModelConfig from GGUF metadata: the real stories260K, hand-made files for each architecture of
// arch/arch_list.inc, and an error naming the key for each broken or missing hyper-parameter.
#include "model/model_config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <optional>

#include "ember/error.h"
#include "gguf/gguf_writer.h"
#include "support/test_data.h"

namespace ember {
namespace {

TEST(ModelConfig, Stories260K) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const GgufFile file = GgufFile::open((data / "models" / "stories260K" / "stories260K.gguf").string());
  const ModelConfig c = ModelConfig::from_gguf(file);
  EXPECT_EQ(c.arch, Arch::kLlama);
  EXPECT_EQ(c.n_vocab, 512);
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.n_layer, 5);
  EXPECT_EQ(c.n_head, 8);
  EXPECT_EQ(c.n_head_kv, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.head_dim_v, 8);
  EXPECT_EQ(c.n_ff, 172);
  EXPECT_EQ(c.context_length, 128);  // what the llama2.c converter stores (trained with 512)
  EXPECT_EQ(c.rope.n_rot, 8);
  EXPECT_FALSE(c.rope.neox);
  EXPECT_FLOAT_EQ(c.rope.freq_base, 10000.0f);
  EXPECT_EQ(c.norm, NormKind::kRms);
  EXPECT_EQ(c.ffn, FfnKind::kSwiGlu);
  ASSERT_EQ(c.layers.size(), 5u);
  EXPECT_EQ(c.layers[0].sliding_window, 0);
}

// A Llama-like file: only metadata and the tensors the config reads. `arch_keys`: also the keys some
// architectures require (granite's logit_scale, the *moe ones' experts).
GgufWriter llama_like(std::string_view arch, int n_head = 8, int n_head_kv = 2, int n_layer = 3, bool arch_keys = true,
                      int n_vocab = 1000) {
  GgufWriter w;
  const std::string a(arch);
  w.add_string("general.architecture", arch);
  w.add_string("general.name", "hand-made");
  w.add<uint32_t>(a + ".embedding_length", 256);
  w.add<uint32_t>(a + ".block_count", static_cast<uint32_t>(n_layer));
  w.add<uint32_t>(a + ".feed_forward_length", 640);
  w.add<uint32_t>(a + ".attention.head_count", static_cast<uint32_t>(n_head));
  const bool latent = arch == "deepseek2";  // V3's latent attention: one cached row of 512 + 64
  w.add<uint32_t>(a + ".attention.head_count_kv", static_cast<uint32_t>(latent && arch_keys ? 1 : n_head_kv));
  w.add<float>(a + ".attention.layer_norm_rms_epsilon", 1e-6f);
  w.add<float>(a + ".rope.freq_base", 500000.0f);
  w.add<uint32_t>(a + ".context_length", 8192);
  w.add<uint32_t>(a + ".vocab_size", static_cast<uint32_t>(n_vocab));
  if (!arch_keys) return w;
  if (latent) {
    w.add<uint32_t>(a + ".attention.key_length", 576);
    w.add<uint32_t>(a + ".attention.value_length", 512);
    w.add<uint32_t>(a + ".attention.key_length_mla", 192);
    w.add<uint32_t>(a + ".attention.value_length_mla", 128);
    w.add<uint32_t>(a + ".attention.kv_lora_rank", 512);
    w.add<uint32_t>(a + ".attention.q_lora_rank", 1536);
    w.add<uint32_t>(a + ".rope.dimension_count", 64);
  }
  if (arch.starts_with("granite")) w.add<float>(a + ".logit_scale", 8.0f);  // required
  if (arch.ends_with("moe") || arch.starts_with("deepseek")) {              // 8 experts, 2 per token
    w.add<uint32_t>(a + ".expert_count", 8);
    w.add<uint32_t>(a + ".expert_used_count", 2);
  }
  if (arch.starts_with("deepseek")) {  // two shared experts, one leading dense layer
    w.add<uint32_t>(a + ".expert_feed_forward_length", 64);
    w.add<uint32_t>(a + ".expert_shared_count", 2);
    w.add<uint32_t>(a + ".leading_dense_block_count", 1);
  }
  return w;
}

ModelConfig load(const GgufWriter& w, std::vector<std::byte>& storage) {
  storage = w.write_to_memory();
  return ModelConfig::from_gguf(GgufFile::parse(storage, "test.gguf"));
}

void expect_error_naming(const GgufWriter& w, std::string_view text, std::optional<ErrorCode> code = {}) {
  std::vector<std::byte> storage;
  try {
    load(w, storage);
    ADD_FAILURE() << "no error mentioning " << text;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    if (code) {
      EXPECT_EQ(e.code(), *code) << e.what();
    }
  }
}

TEST(ModelConfig, LlamaWithLlama3RopeFrequencies) {
  GgufWriter w = llama_like("llama");
  std::vector<float> freqs(16);
  for (size_t i = 0; i < freqs.size(); ++i) freqs[i] = 1.0f + static_cast<float>(i);
  const int64_t shape[] = {16};
  w.add_tensor("rope_freqs.weight", DType::kF32, shape, std::as_bytes(std::span(freqs)));
  w.add<uint32_t>("llama.attention.sliding_window", 4096);
  std::vector<std::byte> storage;
  const ModelConfig c = load(w, storage);
  EXPECT_EQ(c.arch, Arch::kLlama);
  EXPECT_EQ(c.name, "hand-made");
  EXPECT_EQ(c.head_dim, 32);  // 256 / 8
  EXPECT_EQ(c.rope.n_rot, 32);
  EXPECT_EQ(c.rope.freq_factors, freqs);
  EXPECT_FLOAT_EQ(c.rope.freq_base, 500000.0f);
  EXPECT_EQ(c.n_vocab, 1000);
  EXPECT_TRUE(c.tied_output);  // no output.weight
  for (const LayerConfig& layer : c.layers) EXPECT_EQ(layer.sliding_window, 4096);
}

TEST(ModelConfig, QwenTraits) {
  std::vector<std::byte> storage;
  const ModelConfig qwen2 = load(llama_like("qwen2"), storage);
  EXPECT_EQ(qwen2.arch, Arch::kQwen2);
  EXPECT_TRUE(qwen2.rope.neox);
  EXPECT_TRUE(qwen2.attn_qkv_bias);
  EXPECT_FALSE(qwen2.attn_qk_norm);
  GgufWriter w3 = llama_like("qwen3");
  w3.add<uint32_t>("qwen3.attention.key_length", 128);  // Qwen 3: head size not n_embd / n_head
  w3.add<uint32_t>("qwen3.attention.value_length", 128);
  const ModelConfig qwen3 = load(w3, storage);
  EXPECT_EQ(qwen3.arch, Arch::kQwen3);
  EXPECT_EQ(qwen3.head_dim, 128);
  EXPECT_EQ(qwen3.rope.n_rot, 128);
  EXPECT_TRUE(qwen3.attn_qk_norm);
  EXPECT_FALSE(qwen3.attn_qkv_bias);
}

// Mixtures of experts as llama.cpp reads them: Mixtral (llama with expert_count) has experts of
// feed_forward_length; the Qwen ones expert_feed_forward_length, else n_ff / n_used; Qwen2-MoE's
// shared expert expert_shared_feed_forward_length, else n_ff; the chosen experts' weights
// renormalized except for Qwen2-MoE.
TEST(ModelConfig, MixturesOfExperts) {
  std::vector<std::byte> storage;
  EXPECT_EQ(load(llama_like("llama"), storage).moe.n_expert, 0);
  GgufWriter mixtral = llama_like("llama");
  mixtral.add<uint32_t>("llama.expert_count", 8);
  mixtral.add<uint32_t>("llama.expert_used_count", 2);
  const ModelConfig m = load(mixtral, storage);
  EXPECT_EQ(m.moe.n_expert, 8);
  EXPECT_EQ(m.moe.n_used, 2);
  EXPECT_EQ(m.moe.n_ff_expert, 640);
  EXPECT_TRUE(m.moe.norm_weights);
  EXPECT_EQ(m.moe.n_ff_shared, 0);
  // llama.cpp reads no width key for llama files: Mixtral's experts are n_ff wide whatever it says.
  mixtral.add<uint32_t>("llama.expert_feed_forward_length", 96);
  EXPECT_EQ(load(mixtral, storage).moe.n_ff_expert, 640);

  const ModelConfig q3 = load(llama_like("qwen3moe"), storage);
  EXPECT_EQ(q3.arch, Arch::kQwen3Moe);
  EXPECT_TRUE(q3.attn_qk_norm && q3.rope.neox && !q3.attn_qkv_bias);
  EXPECT_EQ(q3.moe.n_ff_expert, 320);  // 640 / 2
  EXPECT_TRUE(q3.moe.norm_weights);
  GgufWriter q3_ff = llama_like("qwen3moe");
  q3_ff.add<uint32_t>("qwen3moe.expert_feed_forward_length", 96);
  EXPECT_EQ(load(q3_ff, storage).moe.n_ff_expert, 96);
  GgufWriter q3_zero = llama_like("qwen3moe");  // 0 is absent (llama.cpp)
  q3_zero.add<uint32_t>("qwen3moe.expert_feed_forward_length", 0);
  EXPECT_EQ(load(q3_zero, storage).moe.n_ff_expert, 320);

  const ModelConfig q2 = load(llama_like("qwen2moe"), storage);
  EXPECT_TRUE(q2.attn_qkv_bias && q2.rope.neox && !q2.attn_qk_norm);
  EXPECT_FALSE(q2.moe.norm_weights);
  EXPECT_EQ(q2.moe.n_ff_shared, 640);
  GgufWriter q2_shared = llama_like("qwen2moe");
  q2_shared.add<uint32_t>("qwen2moe.expert_shared_feed_forward_length", 1408);
  EXPECT_EQ(load(q2_shared, storage).moe.n_ff_shared, 1408);
  GgufWriter q2_zero = llama_like("qwen2moe");
  q2_zero.add<uint32_t>("qwen2moe.expert_shared_feed_forward_length", 0);
  EXPECT_EQ(load(q2_zero, storage).moe.n_ff_shared, 640);

  GgufWriter too_many = llama_like("llama");
  too_many.add<uint32_t>("llama.expert_count", 8);
  too_many.add<uint32_t>("llama.expert_used_count", 9);
  expect_error_naming(too_many, "llama.expert_used_count = 9 is outside [1, 8]");
  GgufWriter no_used = llama_like("llama");
  no_used.add<uint32_t>("llama.expert_count", 8);
  expect_error_naming(no_used, "the model has no llama.expert_used_count");
  GgufWriter huge = llama_like("llama");
  huge.add<uint32_t>("llama.expert_count", 4096);
  huge.add<uint32_t>("llama.expert_used_count", 2);
  expect_error_naming(huge, "llama.expert_count = 4096 is outside [1, 512]");
  // No width key and n_ff 1 for 2 experts per token: n_ff / n_used is 0.
  std::vector<std::byte> bytes = llama_like("qwen3moe").write_to_memory();
  const GgufFile file = GgufFile::parse(bytes, "full.gguf");
  GgufWriter narrow;
  for (const auto& kv : file.metadata()) {
    if (kv.key == "qwen3moe.feed_forward_length") {
      narrow.add<uint32_t>(kv.key, 1);
    } else {
      narrow.add_value(kv.key, kv.value);
    }
  }
  expect_error_naming(narrow,
                      "qwen3moe.feed_forward_length = 1 leaves no width for 2 experts per token (and "
                      "qwen3moe.expert_feed_forward_length is 0 or absent)");
}

TEST(ModelConfig, Phi3LongRope) {
  GgufWriter w = llama_like("phi3", 8, 8);
  w.add<uint32_t>("phi3.rope.scaling.original_context_length", 4096);
  w.add<uint32_t>("phi3.attention.sliding_window", 2047);
  const std::vector<float> short_factors(16, 1.5f), long_factors(16, 4.0f);
  const int64_t shape[] = {16};
  w.add_tensor("rope_factors_short.weight", DType::kF32, shape, std::as_bytes(std::span(short_factors)));
  w.add_tensor("rope_factors_long.weight", DType::kF32, shape, std::as_bytes(std::span(long_factors)));
  std::vector<std::byte> storage;
  const ModelConfig c = load(w, storage);
  EXPECT_EQ(c.arch, Arch::kPhi3);
  EXPECT_TRUE(c.rope.neox);
  EXPECT_EQ(c.rope.freq_factors, short_factors);
  EXPECT_EQ(c.rope_factors_long, long_factors);
  EXPECT_FLOAT_EQ(c.rope.attn_factor, 1.0f);  // no rope.scaling.attn_factor key: 1, as llama.cpp
  EXPECT_EQ(c.layers[1].sliding_window, 0);   // llama.cpp disables Phi-3's window
  GgufWriter with_factor = llama_like("phi3", 8, 8);
  with_factor.add<float>("phi3.rope.scaling.attn_factor", 1.19f);
  EXPECT_FLOAT_EQ(load(with_factor, storage).rope.attn_factor, 1.19f);
}

TEST(ModelConfig, GemmaLocalAndGlobalLayers) {
  std::vector<std::byte> storage;
  GgufWriter w2 = llama_like("gemma2");
  w2.add<float>("gemma2.attn_logit_softcapping", 50.0f);
  w2.add<float>("gemma2.final_logit_softcapping", 30.0f);
  w2.add<uint32_t>("gemma2.attention.sliding_window", 4096);
  const ModelConfig g2 = load(w2, storage);
  EXPECT_EQ(g2.ffn, FfnKind::kGeGlu);
  EXPECT_TRUE(g2.post_norms);
  EXPECT_FLOAT_EQ(g2.embedding_scale, 16.0f);  // sqrt(256)
  EXPECT_FLOAT_EQ(g2.attn_softcap, 50.0f);
  EXPECT_FLOAT_EQ(g2.final_softcap, 30.0f);
  EXPECT_FLOAT_EQ(g2.attn_scale, 1.0f / std::sqrt(32.0f));
  ASSERT_EQ(g2.layers.size(), 3u);
  EXPECT_EQ(g2.layers[0].sliding_window, 4096);  // local, global, local
  EXPECT_EQ(g2.layers[1].sliding_window, 0);
  EXPECT_EQ(g2.layers[2].sliding_window, 4096);

  GgufWriter w3 = llama_like("gemma3");
  w3.add<uint32_t>("gemma3.attention.sliding_window", 1024);
  w3.add_string("gemma3.rope.scaling.type", "linear");
  w3.add<float>("gemma3.rope.scaling.factor", 8.0f);
  const ModelConfig g3 = load(w3, storage);
  EXPECT_TRUE(g3.attn_qk_norm);
  EXPECT_FLOAT_EQ(g3.final_softcap, 0.0f);
  EXPECT_FLOAT_EQ(g3.rope.freq_scale, 0.125f);         // global layers: the file's scaling
  EXPECT_FLOAT_EQ(g3.rope_local.freq_base, 10000.0f);  // local layers: their own rope
  EXPECT_FLOAT_EQ(g3.rope_local.freq_scale, 1.0f);
  EXPECT_TRUE(g3.layers[0].uses_local_rope);
  EXPECT_EQ(g3.layers[2].sliding_window, 1024);
}

// Gemma 1: the family's GeGLU, scaled embeddings and neox rope, none of Gemma 2's post norms, caps or
// windows (even when a file carries the keys, as llama.cpp reads none of them for gemma).
TEST(ModelConfig, Gemma1HasNoPostNormsCapsOrWindows) {
  std::vector<std::byte> storage;
  GgufWriter w = llama_like("gemma", 8, 2, 3);
  w.add<float>("gemma.final_logit_softcapping", 30.0f);
  w.add<uint32_t>("gemma.attention.sliding_window", 4096);
  const ModelConfig g = load(w, storage);
  EXPECT_EQ(g.arch, Arch::kGemma);
  EXPECT_EQ(g.ffn, FfnKind::kGeGlu);
  EXPECT_TRUE(g.rope.neox);
  EXPECT_FLOAT_EQ(g.embedding_scale, 16.0f);  // sqrt(256)
  EXPECT_FALSE(g.post_norms || g.attn_qk_norm);
  EXPECT_EQ(g.attn_softcap + g.final_softcap + g.attn_scale, 0.0f);
  for (const LayerConfig& layer : g.layers) EXPECT_EQ(layer.sliding_window, 0);
}

// SmolLM3: llama's traits, and layers 3, 7, 11, ... without rope (a fixed step of 4).
TEST(ModelConfig, SmolLm3SkipsRopeInEveryFourthLayer) {
  std::vector<std::byte> storage;
  const ModelConfig c = load(llama_like("smollm3", 8, 2, 9), storage);
  EXPECT_EQ(c.arch, Arch::kSmolLm3);
  EXPECT_FALSE(c.rope.neox);
  EXPECT_FALSE(c.attn_qkv_bias);
  ASSERT_EQ(c.layers.size(), 9u);
  for (size_t i = 0; i < 9; ++i) {
    EXPECT_EQ(c.layers[i].skips_rope, i == 3 || i == 7) << i;
    EXPECT_EQ(c.layers[i].sliding_window, 0) << i;
  }
}

// Granite: its four multipliers (0 or absent: none; logit_scale required), and no rope anywhere when
// rope.scaling.finetuned is false.
TEST(ModelConfig, GraniteMultipliers) {
  std::vector<std::byte> storage;
  GgufWriter w = llama_like("granite");
  w.add<float>("granite.residual_scale", 0.22f);
  w.add<float>("granite.embedding_scale", 12.0f);
  w.add<float>("granite.attention.scale", 0.0078125f);
  const ModelConfig c = load(w, storage);
  EXPECT_EQ(c.arch, Arch::kGranite);
  EXPECT_FALSE(c.rope.neox);
  EXPECT_FLOAT_EQ(c.logit_scale, 8.0f);
  EXPECT_FLOAT_EQ(c.residual_scale, 0.22f);
  EXPECT_FLOAT_EQ(c.embedding_scale, 12.0f);
  EXPECT_FLOAT_EQ(c.attn_scale, 0.0078125f);
  for (const LayerConfig& layer : c.layers) EXPECT_FALSE(layer.skips_rope);

  GgufWriter plain = llama_like("granite");
  plain.add<float>("granite.residual_scale", 0.0f);
  plain.add<float>("granite.embedding_scale", 0.0f);
  plain.add<float>("granite.attention.scale", 0.0f);
  plain.add<bool>("granite.rope.scaling.finetuned", false);
  const ModelConfig p = load(plain, storage);
  EXPECT_EQ(p.residual_scale + p.embedding_scale + p.attn_scale, 0.0f);
  for (const LayerConfig& layer : p.layers) EXPECT_TRUE(layer.skips_rope);

  GgufWriter negative = llama_like("granite");
  negative.add<float>("granite.residual_scale", -1.0f);
  EXPECT_THROW(load(negative, storage), Error);
  // Granite MoE (and granite with expert_count, the same llama.cpp loader): experts of n_ff whatever
  // expert_feed_forward_length says, weights renormalized, a shared expert only with its width key,
  // never gated.
  for (const char* arch : {"granite", "granitemoe"}) {
    SCOPED_TRACE(arch);
    GgufWriter moe = llama_like(arch);
    const std::string a = arch;
    if (a == "granite") {
      moe.add<uint32_t>("granite.expert_count", 4);
      moe.add<uint32_t>("granite.expert_used_count", 2);
    }
    moe.add<uint32_t>(a + ".expert_feed_forward_length", 64);
    const ModelConfig m = load(moe, storage);
    EXPECT_EQ(m.moe.n_expert, a == "granite" ? 4 : 8);
    EXPECT_EQ(m.moe.n_ff_expert, 640);
    EXPECT_TRUE(m.moe.norm_weights);
    EXPECT_EQ(m.moe.n_ff_shared, 0);
    EXPECT_FLOAT_EQ(m.logit_scale, 8.0f);
    moe.add<uint32_t>(a + ".expert_shared_feed_forward_length", 96);
    const ModelConfig shared = load(moe, storage);
    EXPECT_EQ(shared.moe.n_ff_shared, 96);
    EXPECT_FALSE(shared.moe.shared_gated);
  }
  EXPECT_TRUE(load(llama_like("qwen2moe"), storage).moe.shared_gated);  // Qwen2-MoE's is
  GgufWriter dense_moe = llama_like("granitemoe", 8, 2, 3, /*arch_keys=*/false);
  dense_moe.add<float>("granitemoe.logit_scale", 8.0f);  // no expert_count: dense, as llama.cpp loads it
  EXPECT_EQ(load(dense_moe, storage).moe.n_expert, 0);
  GgufWriter missing = llama_like("granite", 8, 2, 3, /*arch_keys=*/false);  // no logit_scale
  expect_error_naming(missing, "granite.logit_scale");
  missing.add<float>("granite.logit_scale", 1e-39f);  // > 0, but the logits would be divided into inf
  expect_error_naming(missing, "inverse logit scale", ErrorCode::kFormat);
}

TEST(ModelConfig, Gemma3WithoutAWindowAndGemma27BScale) {
  std::vector<std::byte> storage;
  // Seven layers with a window: the sixth is global.
  GgufWriter windowed = llama_like("gemma3", 8, 2, 7);
  windowed.add<uint32_t>("gemma3.attention.sliding_window", 512);
  const ModelConfig g = load(windowed, storage);
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(g.layers[i].sliding_window, i == 5 ? 0 : 512) << i;
  EXPECT_FALSE(g.layers[5].uses_local_rope);
  // No window key (sliding_window_pattern 1 in the original config): every layer global.
  const ModelConfig all_global = load(llama_like("gemma3", 8, 2, 7), storage);
  for (const LayerConfig& layer : all_global.layers) {
    EXPECT_EQ(layer.sliding_window, 0);
    EXPECT_FALSE(layer.uses_local_rope);
  }
  // The 27B models (46 layers for Gemma 2) scale queries by 1/sqrt(n_embd / n_head).
  GgufWriter big = llama_like("gemma2", 8, 2, 46);
  big.add<uint32_t>("gemma2.attention.key_length", 64);
  big.add<uint32_t>("gemma2.attention.value_length", 64);
  const ModelConfig g27 = load(big, storage);
  EXPECT_EQ(g27.head_dim, 64);
  EXPECT_FLOAT_EQ(g27.attn_scale, 1.0f / std::sqrt(32.0f));  // 256 / 8, not 64
}

TEST(ModelConfig, RopeScalingFollowsLlamaCpp) {
  std::vector<std::byte> storage;
  GgufWriter no_type = llama_like("llama");
  no_type.add<float>("llama.rope.scaling.factor", 4.0f);  // a factor without a type scales linearly
  EXPECT_FLOAT_EQ(load(no_type, storage).rope.freq_scale, 0.25f);
  GgufWriter old_key = llama_like("llama");
  old_key.add<float>("llama.rope.scale_linear", 2.0f);
  EXPECT_FLOAT_EQ(load(old_key, storage).rope.freq_scale, 0.5f);
  GgufWriter none = llama_like("llama");
  none.add_string("llama.rope.scaling.type", "none");
  none.add<float>("llama.rope.scaling.factor", 4.0f);
  EXPECT_FLOAT_EQ(load(none, storage).rope.freq_scale, 1.0f);
  GgufWriter attn = llama_like("qwen2");
  attn.add<float>("qwen2.rope.scaling.attn_factor", 0.9f);
  EXPECT_FLOAT_EQ(load(attn, storage).rope.attn_factor, 0.9f);
}

TEST(ModelConfig, LinearAndYarnRopeScaling) {
  GgufWriter linear = llama_like("llama");
  linear.add_string("llama.rope.scaling.type", "linear");
  linear.add<float>("llama.rope.scaling.factor", 4.0f);
  std::vector<std::byte> storage;
  EXPECT_FLOAT_EQ(load(linear, storage).rope.freq_scale, 0.25f);
  GgufWriter yarn = llama_like("qwen2");
  yarn.add_string("qwen2.rope.scaling.type", "yarn");
  yarn.add<float>("qwen2.rope.scaling.factor", 4.0f);
  yarn.add<uint32_t>("qwen2.rope.scaling.original_context_length", 32768);
  const ModelConfig c = load(yarn, storage);
  EXPECT_FLOAT_EQ(c.rope.ext_factor, 1.0f);
  EXPECT_EQ(c.rope.n_ctx_orig, 32768);
}

TEST(ModelConfig, EveryListedArchitectureLoads) {
  // Tests iterate the list, so an architecture added to arch_list.inc is covered at once.
  std::vector<std::byte> storage;
  for (std::string_view name : {
#define EMBER_ARCH(id, gguf_name, reader) std::string_view(gguf_name),
#include "model/arch/arch_list.inc"
#undef EMBER_ARCH
       }) {
    SCOPED_TRACE(name);
    const ModelConfig c = load(llama_like(name), storage);
    EXPECT_EQ(arch_name(c.arch), name);
    EXPECT_EQ(c.n_layer, 3);
    EXPECT_NE(supported_architectures().find(name), std::string::npos);
  }
}

// llama_like(arch) without one key.
GgufWriter without(std::string_view key) {
  std::vector<std::byte> storage = llama_like("llama").write_to_memory();
  const GgufFile file = GgufFile::parse(storage, "full.gguf");
  GgufWriter w;
  for (const auto& kv : file.metadata()) {
    if (kv.key != key) w.add_value(kv.key, kv.value);
  }
  return w;
}

TEST(ModelConfig, BadMetadataIsAnErrorNamingTheKey) {
  expect_error_naming(llama_like("mamba9"), "\"mamba9\" is not supported (supported: llama");
  for (const char* key : {"llama.embedding_length", "llama.block_count", "llama.feed_forward_length",
                          "llama.attention.head_count", "llama.attention.layer_norm_rms_epsilon"}) {
    SCOPED_TRACE(key);
    expect_error_naming(without(key), key);
  }
  GgufWriter no_layers = without("llama.block_count");
  no_layers.add<uint32_t>("llama.block_count", 0);
  expect_error_naming(no_layers, "llama.block_count = 0 is outside");
  GgufWriter negative_eps = without("llama.attention.layer_norm_rms_epsilon");
  negative_eps.add<float>("llama.attention.layer_norm_rms_epsilon", -1.0f);
  expect_error_naming(negative_eps, "llama.attention.layer_norm_rms_epsilon");
  expect_error_naming(llama_like("llama", 8, 3), "not a multiple");
  expect_error_naming(llama_like("llama", 8, 16), "llama.attention.head_count_kv");
  GgufWriter odd_rope = llama_like("llama");
  odd_rope.add<uint32_t>("llama.rope.dimension_count", 7);
  expect_error_naming(odd_rope, "must be even");
  GgufWriter scaling = llama_like("llama");
  scaling.add_string("llama.rope.scaling.type", "dynamic-ntk");
  expect_error_naming(scaling, "llama.rope.scaling.type");
  GgufWriter freqs = llama_like("llama");
  const std::vector<float> wrong(5, 1.0f);
  const int64_t shape[] = {5};
  freqs.add_tensor("rope_freqs.weight", DType::kF32, shape, std::as_bytes(std::span(wrong)));
  expect_error_naming(freqs, "rope_freqs.weight");
  // Floats beyond float range, and derived values that overflow.
  GgufWriter huge_base = without("llama.rope.freq_base");
  huge_base.add<double>("llama.rope.freq_base", 1e300);
  expect_error_naming(huge_base, "llama.rope.freq_base");
  GgufWriter tiny_factor = llama_like("llama");
  tiny_factor.add<float>("llama.rope.scaling.factor", 1e-40f);
  expect_error_naming(tiny_factor, "rope frequency scale");
  GgufWriter uneven = without("llama.embedding_length");
  uneven.add<uint32_t>("llama.embedding_length", 250);  // 250 / 8 heads
  expect_error_naming(uneven, "llama.attention.key_length");
  GgufWriter text_heads = without("llama.attention.head_count");
  text_heads.add_string("llama.attention.head_count", "eight");
  expect_error_naming(text_heads, "llama.attention.head_count");
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// DeepSeek MoE (V1): leading dense layers, expert_shared_count experts' width of shared expert, the
// probabilities as they are, normal rope.
TEST(ModelConfig, DeepSeekHasLeadingDenseLayersAndSharedExperts) {
  std::vector<std::byte> storage;
  const ModelConfig c = load(llama_like("deepseek"), storage);
  EXPECT_EQ(c.arch, Arch::kDeepseek);
  EXPECT_TRUE(c.layers[0].dense_ffn);
  EXPECT_FALSE(c.layer_has_experts(0));
  EXPECT_TRUE(c.layer_has_experts(1));
  EXPECT_TRUE(c.layer_has_experts(2));
  EXPECT_EQ(c.moe.n_ff_expert, 64);
  EXPECT_EQ(c.moe.n_ff_shared, 128);
  EXPECT_FALSE(c.moe.norm_weights);
  EXPECT_FALSE(c.moe.shared_gated);
  EXPECT_EQ(c.moe.gating, ExpertGating::kSoftmax);
  EXPECT_FALSE(c.rope.neox);

  GgufWriter no_shared_count = llama_like("deepseek", 8, 2, 3, /*arch_keys=*/false);
  no_shared_count.add<uint32_t>("deepseek.expert_count", 8);
  no_shared_count.add<uint32_t>("deepseek.expert_used_count", 2);
  expect_error_naming(no_shared_count, "deepseek.expert_shared_count", ErrorCode::kNotFound);
  GgufWriter too_many_dense = llama_like("deepseek", 8, 2, 3, /*arch_keys=*/false);
  too_many_dense.add<uint32_t>("deepseek.expert_count", 8);
  too_many_dense.add<uint32_t>("deepseek.expert_used_count", 2);
  too_many_dense.add<uint32_t>("deepseek.expert_shared_count", 1);
  too_many_dense.add<uint32_t>("deepseek.leading_dense_block_count", 4);  // of 3 layers
  expect_error_naming(too_many_dense, "deepseek.leading_dense_block_count");
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// deepseek2 with llama.cpp's MLA layout (V3's sizes): the cache's row is one latent + rope key, the
// heads' sizes come from the _mla keys, and V3's YaRN gives llama.cpp's q·k scale.
TEST(ModelConfig, DeepSeek2ReadsLatentAttention) {
  std::vector<std::byte> storage;
  const ModelConfig plain = load(llama_like("deepseek2"), storage);
  EXPECT_EQ(plain.mla.kv_lora_rank, 512);
  EXPECT_EQ(plain.mla.q_lora_rank, 1536);
  EXPECT_EQ(plain.mla.nope_dim, 128);
  EXPECT_EQ(plain.mla.v_dim, 128);
  EXPECT_EQ(plain.n_head_kv, 1);
  EXPECT_EQ(plain.head_dim, 576);
  EXPECT_EQ(plain.head_dim_v, 576);  // the value row is the key row
  EXPECT_EQ(plain.rope.n_rot, 64);
  EXPECT_FALSE(plain.rope.neox);
  EXPECT_FLOAT_EQ(plain.attn_scale, 1.0f / std::sqrt(192.0f));
  EXPECT_EQ(plain.moe.gating, ExpertGating::kSoftmax);
  EXPECT_FALSE(plain.moe.norm_weights);

  // V3: factor 40, mscale_all_dim 1 (stored as 0.1): mscale 1 + 0.1·ln 40, scale mscale² / sqrt(192)
  // = 0.1352 (llama.cpp's worked value); the rope's own magnitude cancelled to 1.
  GgufWriter v3 = llama_like("deepseek2");
  v3.add_string("deepseek2.rope.scaling.type", "yarn");
  v3.add<float>("deepseek2.rope.scaling.factor", 40.0f);
  v3.add<uint32_t>("deepseek2.rope.scaling.original_context_length", 4096);
  v3.add<float>("deepseek2.rope.scaling.yarn_log_multiplier", 0.1f);
  v3.add<uint32_t>("deepseek2.expert_gating_func", 2);
  v3.add<bool>("deepseek2.expert_weights_norm", true);
  v3.add<float>("deepseek2.expert_weights_scale", 2.5f);
  v3.add<uint32_t>("deepseek2.expert_group_count", 4);
  v3.add<uint32_t>("deepseek2.expert_group_used_count", 2);
  const ModelConfig c = load(v3, storage);
  const double mscale = 1.0 + 0.1 * std::log(40.0);
  EXPECT_NEAR(c.attn_scale, mscale * mscale / std::sqrt(192.0), 1e-6);
  EXPECT_NEAR(c.attn_scale, 0.1352, 1e-4);
  EXPECT_NEAR(c.rope.attn_factor * mscale, 1.0, 1e-6);
  EXPECT_EQ(c.moe.gating, ExpertGating::kSigmoid);
  EXPECT_TRUE(c.moe.norm_weights);
  EXPECT_FLOAT_EQ(c.moe.weights_scale, 2.5f);
  EXPECT_EQ(c.moe.n_group, 4);
  EXPECT_EQ(c.moe.n_group_used, 2);
  EXPECT_FALSE(c.moe.selection_bias);  // no exp_probs_b tensor in this file

  // A multiplier of 0 is as none (llama.cpp tests the value): the rope keeps YaRN's magnitude, and
  // the scale has it squared.
  GgufWriter zero_mul = llama_like("deepseek2");
  zero_mul.add_string("deepseek2.rope.scaling.type", "yarn");
  zero_mul.add<float>("deepseek2.rope.scaling.factor", 40.0f);
  zero_mul.add<float>("deepseek2.rope.scaling.yarn_log_multiplier", 0.0f);
  const ModelConfig z = load(zero_mul, storage);
  EXPECT_NEAR(z.rope.attn_factor, 1.0, 1e-6);  // get_mscale(40, 1) / (1 + 0.1·ln 40)
  EXPECT_NEAR(z.attn_scale, mscale * mscale / std::sqrt(192.0), 1e-6);
  // GLM-4.7-Flash's shapes without a gating key: sigmoid, as llama.cpp guesses.
  GgufWriter glm = llama_like("deepseek2", 8, 2, 47, /*arch_keys=*/true, /*n_vocab=*/154880);
  EXPECT_EQ(load(glm, storage).moe.gating, ExpertGating::kSigmoid);

  GgufWriter temperature = llama_like("deepseek2");
  temperature.add<float>("deepseek2.attention.temperature_scale", 0.1f);
  expect_error_naming(temperature, "deepseek2.attention.temperature_scale", ErrorCode::kUnsupported);
  GgufWriter bad_groups = llama_like("deepseek2");
  bad_groups.add<uint32_t>("deepseek2.expert_group_count", 3);  // 8 experts do not split in 3
  expect_error_naming(bad_groups, "groups must split the experts", ErrorCode::kFormat);
  GgufWriter bad_gating = llama_like("deepseek2");
  bad_gating.add<uint32_t>("deepseek2.expert_gating_func", 4);
  expect_error_naming(bad_gating, "deepseek2.expert_gating_func = 4", ErrorCode::kUnsupported);
  // A file converted before llama.cpp's MLA: attn_kv_b, the heads' sizes in key / value_length, as
  // many kv heads as heads; ember runs it as the MLA layout (one cached row of 512 + 64).
  const auto older_layout = [](int n_head_kv) {
    GgufWriter w = llama_like("deepseek2", 8, n_head_kv, 3, /*arch_keys=*/false);
    w.add<uint32_t>("deepseek2.attention.key_length", 192);
    w.add<uint32_t>("deepseek2.attention.value_length", 128);
    w.add<uint32_t>("deepseek2.attention.kv_lora_rank", 512);
    w.add<uint32_t>("deepseek2.attention.q_lora_rank", 1536);
    w.add<uint32_t>("deepseek2.rope.dimension_count", 64);
    return w;
  };
  GgufWriter merged = older_layout(8);
  merged.add<uint32_t>("deepseek2.expert_count", 8);
  merged.add<uint32_t>("deepseek2.expert_used_count", 2);
  merged.add<uint32_t>("deepseek2.expert_feed_forward_length", 64);
  merged.add<uint32_t>("deepseek2.expert_shared_count", 2);
  const std::vector<float> one = {1.0f};
  GgufWriter with_kv_b = merged;
  with_kv_b.add_tensor("blk.0.attn_kv_b.weight", DType::kF32, std::vector<int64_t>{1}, std::as_bytes(std::span(one)));
  const ModelConfig m = load(with_kv_b, storage);
  EXPECT_TRUE(m.mla.merged_kv_b);
  EXPECT_EQ(m.mla.nope_dim, 128);
  EXPECT_EQ(m.mla.v_dim, 128);
  EXPECT_EQ(m.n_head_kv, 1);
  EXPECT_EQ(m.head_dim, 576);
  EXPECT_EQ(m.head_dim_v, 576);
  EXPECT_FLOAT_EQ(m.attn_scale, 1.0f / std::sqrt(192.0f));
  // The older layout has a kv head per head; fewer is no file llama.cpp writes.
  GgufWriter fewer = older_layout(2);
  fewer.add_tensor("blk.0.attn_kv_b.weight", DType::kF32, std::vector<int64_t>{1}, std::as_bytes(std::span(one)));
  expect_error_naming(fewer, "latent attention sizes do not fit", ErrorCode::kFormat);
  // Neither the _mla keys nor attn_kv_b (an unmerged llama.cpp PR's files): a clear error.
  expect_error_naming(merged, "convert the model again", ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace ember
