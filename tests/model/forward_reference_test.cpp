// The forward pass against the float64 reference transformer on small random models of every
// architecture and several weight types: prefill, decode token by token, every ISA.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "ember/error.h"
#include "model/forward_test_support.h"
#include "model/latent_weights.h"
#include "quant/quant_traits.h"
#include "support/sanitized.h"

namespace ember {
namespace {

using test::RandomModelSpec;
using test::TwinModels;

struct TypeTolerance {
  DType type;
  double relative;  // of max |logit|: ember computes in float32 and quantizes activations
};

// 2-4x the largest error measured over the architectures (the test prints them; Gemma 3's are the
// largest, at about half the bound): float32 arithmetic for F32; F16 activations in the F16 GEMV;
// Q8_0 / Q8_K activations for the others. An architecture-level mistake (a missing bias, a wrong
// rope) is the F32 rows' job: 2e-6 there.
const TypeTolerance kTypes[] = {
    {DType::kF32, 2e-6},  {DType::kF16, 2e-3},   {DType::kQ8_0, 0.06},
    {DType::kQ4_0, 0.06}, {DType::kQ4_K, 0.075}, {DType::kQ6_K, 0.075},
};

struct RelativeErrors {
  double prefill, decode;  // max |ember - reference| over every row, relative to `scale`
  double scale;            // max |reference logit|
  double agreement;        // of a mixture of experts: the least ExpertRecorder::agreement() of the two runs
};

// A quantized mixture of experts may route a near-tie the other way than the reference (the
// reference then runs ember's experts: test::compare_to_reference), but not often: a routing bug
// falls far below. (Measured: at worst 0.97, one decision of 38.) F32 models route as the reference.
constexpr double kMinQuantizedAgreement = 0.9;
double min_agreement(DType type) { return type == DType::kF32 ? 1.0 : kMinQuantizedAgreement; }

// ember's logits of `tokens` as one prefill and decoded token by token, against the reference's.
RelativeErrors relative_errors(TwinModels& m, const std::vector<int32_t>& tokens) {
  const test::ReferenceComparison prefill = test::compare_to_reference(*m.model, *m.kv, *m.reference, tokens, false);
  const test::ReferenceComparison decode = test::compare_to_reference(*m.model, *m.kv, *m.reference, tokens, true);
  return {.prefill = prefill.relative(),
          .decode = decode.relative(),
          .scale = prefill.scale,
          .agreement = std::min(prefill.agreement, decode.agreement)};
}

// Whether architecture a (index into architecture_names()) runs with kTypes[t]. Every pair, but
// under AddressSanitizer a cross-section: every type on the first architecture and one rotating
// type on each other, so each architecture and each type's kernels still run instrumented (the
// pairs cost 90 s there; the release build runs them all).
bool every_pair_or_cross_section([[maybe_unused]] size_t a, [[maybe_unused]] size_t t) {
#ifdef EMBER_TEST_SANITIZED
  return test::in_cross_section(a, t, std::size(kTypes));
#else
  return true;
#endif
}

TEST(ForwardReference, PrefillAndDecodeOfEveryArchitectureAndType) {
  const std::vector<int32_t> tokens = test::random_tokens(21, 80, 3);
  const std::vector<std::string>& archs = test::architecture_names();
  for (size_t a = 0; a < archs.size(); ++a) {
    const std::string& arch = archs[a];
    for (size_t i = 0; i < std::size(kTypes); ++i) {
      if (!every_pair_or_cross_section(a, i)) continue;
      const TypeTolerance& t = kTypes[i];
      SCOPED_TRACE(arch + " " + std::string(dtype_name(t.type)));
      TwinModels m = TwinModels::make(test::reference_spec(arch, t.type), {.max_step_tokens = 8});
      [[maybe_unused]] const auto [prefill, decode, scale, agreement] = relative_errors(m, tokens);
      std::printf("%-6s %-5s max |logit| %5.2f  relative error prefill %.2e decode %.2e\n", arch.c_str(),
                  std::string(dtype_name(t.type)).c_str(), scale, prefill, decode);
      EXPECT_LE(prefill, t.relative);
      EXPECT_LE(decode, t.relative);
      EXPECT_GE(agreement, min_agreement(t.type));
    }
  }
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// Every ISA's kernels (scalar, avx2, avx512 where the CPU has them) on an F32 and a Q8_0 model.
TEST(ForwardReference, EveryIsa) {
  const std::vector<int32_t> tokens = test::random_tokens(13, 80, 5);
  for (Isa isa : supported_isas()) {
    for (const TypeTolerance& t : {kTypes[0], kTypes[2]}) {
      SCOPED_TRACE(std::string(isa_name(isa)) + " " + std::string(dtype_name(t.type)));
      TwinModels m = TwinModels::make(test::reference_spec("qwen2", t.type), {.max_step_tokens = 8, .isa = isa});
      [[maybe_unused]] const auto [prefill, decode, scale, agreement] = relative_errors(m, tokens);
      EXPECT_LE(prefill, t.relative);
      EXPECT_LE(decode, t.relative);
    }
  }
}

// The default F16 cache rounds K and V to 11 significant bits: logits move by ~1e-3 of their scale.
TEST(ForwardReference, F16KvCache) {
  const std::vector<int32_t> tokens = test::random_tokens(21, 80, 9);
  TwinModels m = TwinModels::make(test::reference_spec("llama", DType::kF32), {.kv_type = DType::kF16});
  const test::RefLogits expected = m.reference->forward(tokens);
  const double error = test::max_abs_diff(test::run_sequence(m, tokens, false), expected) / test::max_abs(expected);
  std::printf("llama f32 weights, f16 KV cache: relative error %.2e\n", error);
  EXPECT_LE(error, 3e-3);
  EXPECT_GT(error, 1e-6);  // the cache really is F16
}

// A Q8_0 cache keeps 8 bits per value (32 per block share an f16 scale): logits move by ~1e-2 of
// their scale (measured: llama 1.1e-2, qwen2 6.5e-3; the F16 cache's 3.4e-4 above).
TEST(ForwardReference, Q8_0KvCache) {
  const std::vector<int32_t> tokens = test::random_tokens(21, 80, 10);
  for (const std::string arch : {"llama", "qwen2"}) {
    SCOPED_TRACE(arch);
    TwinModels m = TwinModels::make(test::reference_spec(arch, DType::kF32), {.kv_type = DType::kQ8_0});
    [[maybe_unused]] const auto [prefill, decode, scale, agreement] = relative_errors(m, tokens);
    std::printf("%-6s f32 weights, q8_0 KV cache: relative error prefill %.2e decode %.2e\n", arch.c_str(), prefill,
                decode);
    EXPECT_LE(prefill, 3e-2);
    EXPECT_LE(decode, 3e-2);
    EXPECT_GT(prefill, 2e-3);  // the cache really is Q8_0, not F16
  }
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

struct Variant {
  std::string name;
  RandomModelSpec spec;
  test::TwinOptions options;
};

// RoPE scaling and window variants, each against the reference (F32 weights and cache).
TEST(ForwardReference, RopeScalingAndWindows) {
  std::vector<Variant> variants;
  const auto with_keys = [](std::string arch, std::function<void(GgufWriter&)> keys) {
    RandomModelSpec s = test::reference_spec(arch, DType::kF32);
    s.extra_keys = std::move(keys);
    return s;
  };
  variants.push_back({"llama linear x4",
                      with_keys("llama",
                                [](GgufWriter& w) {
                                  w.add_string("llama.rope.scaling.type", "linear");
                                  w.add<float>("llama.rope.scaling.factor", 4.0f);
                                }),
                      {}});
  variants.push_back({"llama llama3 factors", test::reference_spec("llama", DType::kF32), {}});
  variants.back().spec.rope_freqs = true;
  variants.push_back({"qwen2 yarn x4",
                      with_keys("qwen2",
                                [](GgufWriter& w) {
                                  w.add_string("qwen2.rope.scaling.type", "yarn");
                                  w.add<float>("qwen2.rope.scaling.factor", 4.0f);
                                  w.add<uint32_t>("qwen2.rope.scaling.original_context_length", 128);
                                }),
                      {}});
  variants.push_back({"qwen3 attn_factor",
                      with_keys("qwen3", [](GgufWriter& w) { w.add<float>("qwen3.rope.scaling.attn_factor", 1.25f); }),
                      {}});
  // Phi-3 LongRoPE: the long factors once the context exceeds the original one (512 here).
  variants.push_back({"phi3 long factors", test::reference_spec("phi3", DType::kF32), {.context_size = 2048}});
  variants.push_back({"phi3 short factors", test::reference_spec("phi3", DType::kF32), {.context_size = 512}});
  // A window in every layer: llama.cpp ignores llama's key; ember applies it (Mistral trained so).
  variants.push_back({"llama window 5",
                      with_keys("llama", [](GgufWriter& w) { w.add<uint32_t>("llama.attention.sliding_window", 5); }),
                      {.edit_reference = [](ReferenceConfig& c) { c.traits.sliding_window = 5; }}});
  const std::vector<int32_t> tokens = test::random_tokens(21, 80, 11);
  for (Variant& v : variants) {
    SCOPED_TRACE(v.name);
    TwinModels m = TwinModels::make(v.spec, v.options);
    [[maybe_unused]] const auto [prefill, decode, scale, agreement] = relative_errors(m, tokens);
    std::printf("%-20s relative error prefill %.2e decode %.2e\n", v.name.c_str(), prefill, decode);
    EXPECT_LE(prefill, 2e-6);
    EXPECT_LE(decode, 2e-6);
  }
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// Mixtures of experts beyond the every-architecture test's (4 experts, 2 per token): Mixtral's
// layout (llama with experts of n_ff), many experts for few rows (most idle in a step), every
// expert or a single one per token, in steps of 1, 3 and 64 rows (an expert's rows gathered from
// anywhere in the step), and Granite MoE without a shared expert (the every-architecture test has one).
TEST(ForwardReference, MixturesOfExperts) {
  struct MoeVariant {
    std::string name;
    std::string arch;
    int64_t n_expert, n_used;
    DType type;
    int32_t step;
    double tolerance;
  };
  const MoeVariant variants[] = {
      {"mixtral 8x2", "llama", 8, 2, DType::kF32, 64, 2e-6},
      {"mixtral 8x2 q4_K", "llama", 8, 2, DType::kQ4_K, 3, 0.075},
      {"qwen3moe 16x4", "qwen3moe", 16, 4, DType::kF32, 3, 2e-6},
      {"qwen3moe 4x4 (every expert)", "qwen3moe", 4, 4, DType::kF32, 64, 2e-6},
      {"qwen3moe 6x1", "qwen3moe", 6, 1, DType::kQ8_0, 1, 0.06},
      {"qwen2moe 8x2 q6_K", "qwen2moe", 8, 2, DType::kQ6_K, 64, 0.075},
      {"granitemoe 8x2 (no shared)", "granitemoe", 8, 2, DType::kF32, 3, 2e-6},
  };
  const std::vector<int32_t> tokens = test::random_tokens(19, 80, 12);
  for (const MoeVariant& v : variants) {
    SCOPED_TRACE(v.name);
    RandomModelSpec spec = test::reference_spec(v.arch, v.type);
    spec.n_expert = v.n_expert;
    spec.n_expert_used = v.n_used;
    spec.n_ff_expert = 256;
    spec.n_ff_shared = 0;  // granitemoe: none, as in the real Granite 3 MoE files
    TwinModels m = TwinModels::make(spec, {.max_step_tokens = v.step});
    ASSERT_EQ(m.model->config().moe.n_expert, v.n_expert);
    ASSERT_EQ(m.model->config().moe.n_used, v.n_used);
    [[maybe_unused]] const auto [prefill, decode, scale, agreement] = relative_errors(m, tokens);
    std::printf("%-28s relative error prefill %.2e decode %.2e, experts as the reference's %.3f\n", v.name.c_str(),
                prefill, decode, agreement);
    EXPECT_LE(prefill, v.tolerance);
    EXPECT_LE(decode, v.tolerance);
    EXPECT_GE(agreement, min_agreement(v.type));
  }
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// The kRouterLogits hook steers: one expert per token (qwen3moe normalizes its weights, so the one
// chosen weighs exactly 1 whatever its probability) forced by the hook to a pattern of the layer and
// position, against the reference running the same experts.
TEST(ForwardReference, RouterLogitsHookSteersTheExperts) {
  RandomModelSpec spec = test::reference_spec("qwen3moe", DType::kF32);
  spec.n_expert = 6;
  spec.n_expert_used = 1;
  TwinModels m = TwinModels::make(spec, {.max_step_tokens = 5});
  const auto forced = [](int64_t layer, int64_t position) { return static_cast<int32_t>((position * 3 + layer) % 6); };
  std::vector<int64_t> rows_seen(static_cast<size_t>(m.model->config().n_layer));
  const auto handle = m.model->hooks().add(HookPoint::kRouterLogits, [&](const HookTensor& t) {
    ASSERT_EQ(t.n_cols, 6);
    for (int64_t r = 0; r < t.n_rows; ++r) {
      const int64_t position = rows_seen[static_cast<size_t>(t.layer)]++;
      for (int64_t e = 0; e < t.n_cols; ++e) {
        float& logit = t.data[r * t.n_cols + e];
        logit = e == forced(t.layer, position) ? logit : -INFINITY;
      }
    }
  });
  const std::vector<int32_t> tokens = test::random_tokens(13, 80, 21);
  const test::RefLogits expected =
      m.reference->forward(tokens, [&](int64_t layer, int64_t position, std::span<const int32_t>) {
        return std::vector<int32_t>{forced(layer, position)};
      });
  const test::RefLogits own = m.reference->forward(tokens);
  const double error = test::max_abs_diff(test::run_sequence(m, tokens, false), expected) / test::max_abs(expected);
  m.model->hooks().remove(handle);
  std::printf("steered experts: relative error %.2e (the reference's own experts: %.2e apart)\n", error,
              test::max_abs_diff(test::run_sequence(m, tokens, false), own) / test::max_abs(own));
  EXPECT_LE(error, 2e-6);
  // Steering changed the outcome: the unsteered model is far from the steered reference.
  EXPECT_GT(test::max_abs_diff(test::run_sequence(m, tokens, false), expected) / test::max_abs(expected), 1e-2);
}

// deepseek2 beyond the every-architecture test's V3 kind: V2-Lite's (q straight from x, a softmax
// router with weights as they are, no YaRN, no bias or groups), also in the layout before April 2025
// (attn_kv_b: ember transposes k_b at load, the reference decompresses from it), and V3's routing with more experts
// (8 in 4 groups, 2 used, 3 per token), in steps of 1, 3 and 64 rows.
TEST(ForwardReference, DeepSeek2Variants) {
  struct DeepSeekVariant {
    const char* name;
    bool lite;
    bool merged_kv_b;  // the layout before April 2025 (attn_kv_b)
    DType type;
    int32_t step;
    double tolerance;
  };
  const DeepSeekVariant variants[] = {{"v2-lite f32", true, false, DType::kF32, 3, 2e-6},
                                      {"v2-lite q8_0", true, false, DType::kQ8_0, 64, 0.06},
                                      {"v2-lite attn_kv_b f32", true, true, DType::kF32, 3, 2e-6},
                                      {"v2-lite attn_kv_b q8_0", true, true, DType::kQ8_0, 64, 0.06},
                                      {"v2-lite attn_kv_b f16", true, true, DType::kF16, 3, 2e-3},
                                      {"v3 8x3 f32", false, false, DType::kF32, 1, 2e-6},
                                      {"v3 8x3 q4_K", false, false, DType::kQ4_K, 64, 0.075}};
  const std::vector<int32_t> tokens = test::random_tokens(19, 80, 14);
  for (const DeepSeekVariant& v : variants) {
    SCOPED_TRACE(v.name);
    RandomModelSpec spec =
        v.lite ? test::deepseek2_lite_spec(v.type, v.merged_kv_b) : test::reference_spec("deepseek2", v.type);
    if (!v.lite) {
      spec.n_expert = 8;
      spec.n_expert_used = 3;
      spec.extra_keys = [keys = spec.extra_keys](GgufWriter& w) {
        w.add<uint32_t>("deepseek2.expert_gating_func", 2);
        w.add<bool>("deepseek2.expert_weights_norm", true);
        w.add<float>("deepseek2.expert_weights_scale", 2.5f);
        w.add<uint32_t>("deepseek2.expert_group_count", 4);
        w.add<uint32_t>("deepseek2.expert_group_used_count", 2);
      };
    }
    TwinModels m = TwinModels::make(spec, {.max_step_tokens = v.step});
    const ModelConfig& c = m.model->config();
    ASSERT_EQ(c.mla.q_lora_rank, v.lite ? 0 : 256);
    ASSERT_EQ(c.mla.merged_kv_b, v.merged_kv_b);
    // The older layout's k_b copies, one per head and layer, are the only weights made at load.
    const uint64_t k_b_bytes = *dtype_bytes_for(transposed_k_b_type(v.type, c.mla.nope_dim),
                                                static_cast<uint64_t>(c.mla.kv_lora_rank * c.mla.nope_dim));
    EXPECT_EQ(m.model->derived_weight_bytes(),
              v.merged_kv_b ? static_cast<uint64_t>(c.n_layer * c.n_head) * k_b_bytes : uint64_t{0});
    ASSERT_EQ(c.moe.gating, v.lite ? ExpertGating::kSoftmax : ExpertGating::kSigmoid);
    ASSERT_EQ(c.moe.n_group, v.lite ? 0 : 4);
    [[maybe_unused]] const auto [prefill, decode, scale, agreement] = relative_errors(m, tokens);
    std::printf("deepseek2 %-14s relative error prefill %.2e decode %.2e, experts as the reference's %.3f\n", v.name,
                prefill, decode, agreement);
    EXPECT_LE(prefill, v.tolerance);
    EXPECT_LE(decode, v.tolerance);
    EXPECT_GE(agreement, min_agreement(v.type));
  }
}

}  // namespace
}  // namespace ember
