// Architecture mappings of the float64 reference (reference_config_from_gguf) on hand-made tiny
// files: each architecture's traits are the ones llama.cpp gives it (a file of that architecture =
// the same weights as llama with those traits switched on by hand), and each new piece of math is
// checked against the one-layer hand computation of reference_test_util.h (LongRoPE factors per
// dim, gemma's caps, scales and windows, gemma3's local rope) or a property (gemma3's local layers
// ignore the file's rope base and scaling). Layouts llama.cpp would not load are rejected.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <utility>

#include "reference/reference_test_util.h"

namespace ember::reference_test {
namespace {

using Adjust = std::function<void(HandOptions&)>;

// Each change of the hand computation's options must change its logits: the comparison has teeth.
void expect_each_change_matters(const TinySpec& s, const TinyWeights& w, const std::vector<int32_t>& tokens,
                                const HandOptions& o, const Logits& got,
                                std::initializer_list<std::pair<const char*, Adjust>> changes) {
  for (const auto& [what, change] : changes) {
    HandOptions other = o;
    change(other);
    EXPECT_GT(reference_max_abs_diff(got, sequence_by_hand(s, w, tokens, other)), 1e-3) << what;
  }
}

void expect_unsupported(const std::function<void()>& f, const char* what) {
  try {
    f();
    ADD_FAILURE() << "no error for " << what;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported) << what << ": " << e.what();
  }
}

// qwen2 = llama + neox rope + q/k/v biases; qwen3 = llama + neox rope + QK-norm (its head_dim from
// qwen3.attention.key_length, here != n_embd / n_head). Each file is also written as llama and
// loaded with those traits switched on by hand: the same logits, bit for bit, and both = by hand.
TEST(ReferenceModelTraits, Qwen2AndQwen3ArchitecturesMapToTheirTraits) {
  for (const char* arch : {"qwen2", "qwen3"}) {
    SCOPED_TRACE(arch);
    const bool qwen2 = std::string(arch) == "qwen2";
    TinySpec s = hand_spec();
    s.arch = arch;
    s.qkv_bias = qwen2;
    s.qk_norm = !qwen2;
    s.head_dim = 6, s.n_rot = 6;  // key_length 6 != n_embd / n_head = 4
    const TinyWeights w = tiny_weights(s);
    const std::vector<std::byte> bytes = tiny_gguf(s, w);
    const GgufFile file = GgufFile::parse(bytes, std::string(arch) + ".gguf");
    const ReferenceConfig c = reference_config_from_gguf(file);
    EXPECT_EQ(c.arch, arch);
    EXPECT_EQ(c.traits.rope, ReferenceTraits::Rope::kNeox);
    EXPECT_EQ(c.traits.qkv_bias, qwen2);
    EXPECT_EQ(c.traits.qk_norm, !qwen2);
    EXPECT_EQ(c.head_dim, 6);
    EXPECT_EQ(c.n_rot, 6);
    EXPECT_EQ(c.n_head_kv, 1);
    const Logits got = ReferenceModel::load(file).forward(kHandTokens);

    TinySpec as_llama = s;
    as_llama.arch = "llama";
    const Logits llama_with_traits = load_tiny(as_llama, w, [&](ReferenceConfig& lc) {
                                       EXPECT_EQ(lc.traits.rope, ReferenceTraits::Rope::kNormal);
                                       lc.traits.rope = ReferenceTraits::Rope::kNeox;
                                       lc.traits.qkv_bias = qwen2;
                                       lc.traits.qk_norm = !qwen2;
                                     }).forward(kHandTokens);
    EXPECT_EQ(got, llama_with_traits);
    EXPECT_LE(
        reference_max_abs_diff(
            got, sequence_by_hand(s, w, kHandTokens, HandOptions{.neox = true, .bias = qwen2, .qk_norm = !qwen2})),
        1e-12);
    // Normal rope instead of neox changes the logits: the check has teeth.
    EXPECT_GT(
        reference_max_abs_diff(
            got, sequence_by_hand(s, w, kHandTokens, HandOptions{.neox = false, .bias = qwen2, .qk_norm = !qwen2})),
        1e-3);
  }
}

// ---- phi3 ----

const std::vector<int32_t> kFourTokens = {3, 9, 17, 4};

// q_dim = n_embd (llama.cpp's phi3 attn_output is [n_embd, n_embd]), partial rotary (4 of 6 dims),
// a window key llama.cpp ignores, an attention factor, original context 16 of 64.
TinySpec phi3_spec() {
  TinySpec s;
  s.arch = "phi3";
  s.n_vocab = 23, s.n_embd = 12, s.n_layer = 1, s.n_head = 2, s.n_head_kv = 1, s.head_dim = 6, s.n_ff = 10, s.n_rot = 4;
  s.n_ctx_train = 64;
  s.rope_orig_ctx = 16;
  s.rope_attn_factor = 1.25;
  s.more_keys = [](GgufWriter& g, const std::string& p) { g.add<uint32_t>(p + "attention.sliding_window", 2); };
  s.seed = 5;
  return s;
}

const std::vector<float> kShortFactors = {1.25f, 2.5f}, kLongFactors = {4.0f, 10.0f};

// phi3 = neox rope over rope.dimension_count dims, fused attn_qkv and gate+up, no window (llama.cpp
// disables Phi-3's), rope.scaling.attn_factor, and LongRoPE: θ_i / short_i, or / long_i once the
// context per sequence exceeds the original context.
TEST(ReferenceModelArch, Phi3LongRopeFusedTensorsNoWindow) {
  const TinySpec s = phi3_spec();
  const TinyWeights separate = tiny_weights(s);
  TinyWeights w = fuse_qkv_and_gate_up(s, separate);
  w["rope_factors_short.weight"] = TinyTensor{{2}, kShortFactors};
  w["rope_factors_long.weight"] = TinyTensor{{2}, kLongFactors};
  const ReferenceConfig c = tiny_config(s, w);
  EXPECT_EQ(c.traits.rope, ReferenceTraits::Rope::kNeox);
  EXPECT_FALSE(c.traits.qkv_bias || c.traits.qk_norm || c.traits.post_norms);
  EXPECT_EQ(c.traits.sliding_window, 0);  // phi3.attention.sliding_window = 2 is ignored
  EXPECT_EQ(c.rope_factors_short, (std::vector<double>{1.25, 2.5}));
  EXPECT_EQ(c.rope_factors_long, (std::vector<double>{4.0, 10.0}));
  EXPECT_EQ(c.rope_scaling.kind, ReferenceRopeScaling::Kind::kNone);
  EXPECT_EQ(c.rope_scaling.n_ctx_orig, 16);
  EXPECT_EQ(c.rope_scaling.attn_factor, 1.25);
  // Per dim, by hand: θ = 100^(-2i/4) / factor_i; the long factors only past the original context.
  for (auto [n_ctx_seq, factors] : {std::pair{0, kShortFactors}, {16, kShortFactors}, {17, kLongFactors}}) {
    SCOPED_TRACE(n_ctx_seq);
    ReferenceConfig cc = c;
    cc.n_ctx_seq = n_ctx_seq;
    EXPECT_EQ(reference_rope_freq_factors(cc), std::vector<double>(factors.begin(), factors.end()));
    const std::vector<double> thetas = reference_rope_thetas(cc);
    EXPECT_DOUBLE_EQ(thetas[0], 1.0 / factors[0]);
    EXPECT_DOUBLE_EQ(thetas[1], 0.1 / factors[1]);
  }
  for (bool use_long : {false, true}) {
    SCOPED_TRACE(use_long ? "long factors" : "short factors");
    const std::vector<float>& f = use_long ? kLongFactors : kShortFactors;
    const Logits got =
        load_tiny(s, w, [&](ReferenceConfig& cc) { cc.n_ctx_seq = use_long ? 17 : 0; }).forward(kFourTokens);
    const HandOptions o{.neox = true, .mscale = 1.25, .theta_mul = {1.0 / f[0], 1.0 / f[1]}};
    EXPECT_LE(reference_max_abs_diff(got, sequence_by_hand(s, separate, kFourTokens, o)), 1e-12);
    expect_each_change_matters(s, separate, kFourTokens, o, got,
                               {{"window 2", [](HandOptions& h) { h.window = 2; }},
                                {"no factors", [](HandOptions& h) { h.theta_mul.clear(); }},
                                {"no attn_factor", [](HandOptions& h) { h.mscale = 1.0; }},
                                {"normal rope", [](HandOptions& h) { h.neox = false; }}});
  }
  // The same weights as llama with neox switched on and rope_freqs = the short factors: bit for bit.
  TinySpec as_llama = s;
  as_llama.arch = "llama";
  as_llama.more_keys = {};
  TinyWeights llama_w = separate;
  llama_w["rope_freqs.weight"] = TinyTensor{{2}, kShortFactors};
  EXPECT_EQ(load_tiny(as_llama, llama_w, [](ReferenceConfig& lc) { lc.traits.rope = ReferenceTraits::Rope::kNeox; })
                .forward(kFourTokens),
            load_tiny(s, w).forward(kFourTokens));
}

TEST(ReferenceModelArch, Phi3DefaultsAndLayoutsLlamaCppRejects) {
  TinySpec s = phi3_spec();
  s.rope_orig_ctx = 0;  // the threshold falls back to context_length
  s.rope_attn_factor = 0;
  const TinyWeights separate = tiny_weights(s);
  TinyWeights w = fuse_qkv_and_gate_up(s, separate);
  w["rope_factors_long.weight"] = TinyTensor{{2}, kLongFactors};  // no short factors: none below
  ReferenceConfig c = tiny_config(s, w);
  EXPECT_EQ(c.rope_scaling.attn_factor, 1.0);
  EXPECT_EQ(c.rope_scaling.n_ctx_orig, 64);
  c.n_ctx_seq = 64;
  EXPECT_TRUE(reference_rope_freq_factors(c).empty());
  c.n_ctx_seq = 65;
  EXPECT_EQ(reference_rope_freq_factors(c), (std::vector<double>{4.0, 10.0}));
  // Separate q/k/v are loaded too (llama.cpp's create_tensor_qkv): the same model.
  TinyWeights separate_qkv = w;
  for (const char* name : {"attn_q.weight", "attn_k.weight", "attn_v.weight"}) {
    separate_qkv[std::string("blk.0.") + name] = separate.at(std::string("blk.0.") + name);
  }
  separate_qkv.erase("blk.0.attn_qkv.weight");
  EXPECT_EQ(load_tiny(s, separate_qkv).forward(kFourTokens), load_tiny(s, w).forward(kFourTokens));
  // llama.cpp's phi3 has no separate ffn_gate, no rope_freqs and q_dim = n_embd.
  TinyWeights gate = w;
  gate["blk.0.ffn_up.weight"] = separate.at("blk.0.ffn_up.weight");
  gate["blk.0.ffn_gate.weight"] = separate.at("blk.0.ffn_gate.weight");
  expect_unsupported([&] { tiny_config(s, gate); }, "a separate ffn_gate");
  TinyWeights freqs = w;
  freqs["rope_freqs.weight"] = TinyTensor{{2}, kShortFactors};
  expect_unsupported([&] { load_tiny(s, freqs); }, "rope_freqs");
  TinySpec wide = s;
  wide.head_dim = 8;
  expect_unsupported([&] { tiny_config(wide, fuse_qkv_and_gate_up(wide, tiny_weights(wide))); }, "q_dim != n_embd");
}

// ---- smollm3 ----

// smollm3: llama's block with no rope in every fourth layer (3, 7; llama.cpp's fixed step of 4): =
// the same weights as llama with those layers switched to NoPE by hand, bit for bit, and != llama.
TEST(ReferenceModelArch, SmolLm3SkipsRopeInEveryFourthLayer) {
  for (int64_t n_layer : {3, 8}) {
    SCOPED_TRACE(n_layer);
    TinySpec s;
    s.arch = "smollm3";
    s.n_layer = n_layer;
    const TinyWeights w = tiny_weights(s);
    const ReferenceConfig c = tiny_config(s, w);
    std::vector<bool> nope(static_cast<size_t>(n_layer), false);
    if (n_layer == 8) nope[3] = nope[7] = true;
    EXPECT_EQ(c.traits.nope_layers, nope);
    EXPECT_EQ(c.traits.rope, ReferenceTraits::Rope::kNormal);
    TinySpec as_llama = s;
    as_llama.arch = "llama";
    const Logits got = load_tiny(s, w).forward(kTinyTokens);
    EXPECT_EQ(got,
              load_tiny(as_llama, w, [&](ReferenceConfig& lc) { lc.traits.nope_layers = nope; }).forward(kTinyTokens));
    const Logits llama = load_tiny(as_llama, w).forward(kTinyTokens);
    if (n_layer == 3) {
      EXPECT_EQ(got, llama);
    } else {
      EXPECT_GT(reference_max_abs_diff(got, llama), 1e-6);
    }
  }
}

// ---- granite ----

// granite: llama's block with its four multipliers from the keys (embeddings × 5, queries × 0.3,
// attention and FFN outputs × 0.25 before the residual adds, logits / 3): one layer by hand, each
// multiplier left out fails it; only logit_scale is required; rope.scaling.finetuned false = no rope.
// (Its experts, granitemoe's: reference_moe_test.cpp.)
TEST(ReferenceModelArch, GraniteLogitsByHand) {
  TinySpec s;
  s.arch = "granite";
  s.n_layer = 1;
  s.more_keys = [](GgufWriter& g, const std::string& p) {
    g.add<float>(p + "logit_scale", 3.0f);
    g.add<float>(p + "residual_scale", 0.25f);
    g.add<float>(p + "embedding_scale", 5.0f);
    g.add<float>(p + "attention.scale", 0.3f);
  };
  const TinyWeights w = tiny_weights(s);
  const Logits got = load_tiny(s, w).forward(kTinyTokens);
  const HandOptions o{
      .attn_scale = 0.3f, .embd_scale = 5.0f, .residual_scale = 0.25f, .logit_scale = 3.0f};  // the keys' floats
  EXPECT_LE(reference_max_abs_diff(got, sequence_by_hand(s, w, kTinyTokens, o)), 1e-12);
  expect_each_change_matters(s, w, kTinyTokens, o, got,
                             {{"no residual scale", [](HandOptions& h) { h.residual_scale = 1; }},
                              {"no logit scale", [](HandOptions& h) { h.logit_scale = 1; }},
                              {"logits × scale", [](HandOptions& h) { h.logit_scale = 1.0 / 3.0; }},
                              {"no embedding scale", [](HandOptions& h) { h.embd_scale = 1; }},
                              {"1/sqrt(head_dim)", [](HandOptions& h) { h.attn_scale = 0; }},
                              {"neox rope", [](HandOptions& h) { h.neox = true; }}});

  TinySpec only_logits = s;  // the other multipliers absent or 0: none
  only_logits.more_keys = [](GgufWriter& g, const std::string& p) {
    g.add<float>(p + "logit_scale", 3.0f);
    g.add<float>(p + "residual_scale", 0.0f);
    g.add<float>(p + "embedding_scale", 0.0f);
    g.add<float>(p + "attention.scale", 0.0f);
  };
  EXPECT_LE(reference_max_abs_diff(load_tiny(only_logits, w).forward(kTinyTokens),
                                   sequence_by_hand(s, w, kTinyTokens, {.logit_scale = 3.0f})),
            1e-12);
  TinySpec no_rope = only_logits;
  no_rope.more_keys = [](GgufWriter& g, const std::string& p) {
    g.add<float>(p + "logit_scale", 3.0f);
    g.add<bool>(p + "rope.scaling.finetuned", false);
  };
  EXPECT_LE(reference_max_abs_diff(load_tiny(no_rope, w).forward(kTinyTokens),
                                   sequence_by_hand(s, w, kTinyTokens, {.rope = false, .logit_scale = 3.0f})),
            1e-12);
  TinySpec missing = s;
  missing.more_keys = {};
  EXPECT_THROW(tiny_config(missing, tiny_weights(missing)), Error);  // llama.cpp requires logit_scale
}

// ---- gemma2 / gemma3 ----

const std::vector<int32_t> kFiveTokens = {3, 9, 17, 4, 11};

// head_dim 6 != n_embd / n_head = 4, fully rotated, post norms, tied output (gemma3: QK-norm).
TinySpec gemma_spec(const std::string& arch) {
  TinySpec s;
  s.arch = arch;
  s.n_vocab = 23, s.n_embd = 8, s.n_layer = 1, s.n_head = 2, s.n_head_kv = 1, s.head_dim = 6, s.n_ff = 10, s.n_rot = 6;
  s.post_norms = s.tied = true;
  s.qk_norm = arch == "gemma3";
  s.seed = 13;
  return s;
}

// The gemma traits switched on by hand on a llama file of the same weights.
void gemma_traits(ReferenceConfig& c) {
  c.traits.rope = ReferenceTraits::Rope::kNeox;
  c.traits.ffn = ReferenceTraits::Ffn::kGeGLU;
  c.traits.post_norms = true;
  c.traits.embd_scale = std::sqrt(static_cast<double>(c.n_embd));
}

// gemma (1): embeddings × sqrt(n_embd), neox, GeGLU, tied output, 1/sqrt(head_dim), and nothing of
// gemma2's (no post norms, caps or window): one layer of five tokens by hand, = llama with those traits.
TEST(ReferenceModelArch, Gemma1LogitsByHand) {
  TinySpec s = gemma_spec("gemma");
  s.post_norms = false;
  const TinyWeights w = tiny_weights(s);
  const ReferenceConfig c = tiny_config(s, w);
  EXPECT_FALSE(c.traits.post_norms || c.traits.qk_norm);
  EXPECT_EQ(c.traits.attn_softcap + c.traits.final_softcap, 0.0);
  EXPECT_EQ(c.traits.sliding_window, 0);
  const Logits got = load_tiny(s, w).forward(kFiveTokens);
  const HandOptions o{.neox = true, .embd_scale = std::sqrt(8.0), .geglu = true, .tied = true};
  EXPECT_LE(reference_max_abs_diff(got, sequence_by_hand(s, w, kFiveTokens, o)), 1e-12);
  expect_each_change_matters(s, w, kFiveTokens, o, got,
                             {{"no embedding scale", [](HandOptions& h) { h.embd_scale = 1; }},
                              {"SwiGLU", [](HandOptions& h) { h.geglu = false; }},
                              {"normal rope", [](HandOptions& h) { h.neox = false; }}});
  TinySpec as_llama = s;
  as_llama.arch = "llama";
  EXPECT_EQ(load_tiny(as_llama, w,
                      [](ReferenceConfig& lc) {
                        gemma_traits(lc);
                        lc.traits.post_norms = false;
                      })
                .forward(kFiveTokens),
            got);
  TinySpec untied = s;
  untied.tied = false;
  expect_unsupported([&] { tiny_config(untied, tiny_weights(untied)); }, "gemma output.weight");
}

// gemma2: embeddings × sqrt(n_embd), neox, post norms, GeGLU, attention cap (key), final cap (key),
// window (key) in layer 0, tied output, 1/sqrt(head_dim): one layer of five tokens by hand.
TEST(ReferenceModelArch, Gemma2LogitsByHand) {
  TinySpec s = gemma_spec("gemma2");
  s.more_keys = [](GgufWriter& g, const std::string& p) {
    g.add<float>(p + "attn_logit_softcapping", 1.5f);
    g.add<float>(p + "final_logit_softcapping", 2.0f);
    g.add<uint32_t>(p + "attention.sliding_window", 2);
  };
  const TinyWeights w = tiny_weights(s);
  const ReferenceConfig c = tiny_config(s, w);
  EXPECT_EQ(c.traits.rope, ReferenceTraits::Rope::kNeox);
  EXPECT_EQ(c.traits.ffn, ReferenceTraits::Ffn::kGeGLU);
  EXPECT_TRUE(c.traits.post_norms);
  EXPECT_FALSE(c.traits.qk_norm || c.traits.qkv_bias);
  EXPECT_DOUBLE_EQ(c.traits.embd_scale, std::sqrt(8.0));
  EXPECT_EQ(c.traits.attn_softcap, 1.5);
  EXPECT_EQ(c.traits.final_softcap, 2.0);
  EXPECT_EQ(c.traits.sliding_window, 2);
  EXPECT_EQ(c.traits.sliding_layers, std::vector<bool>{true});
  EXPECT_EQ(c.attn_scale, 0.0);  // 1/sqrt(head_dim)
  EXPECT_EQ(c.rope_base_swa, 0.0);
  const Logits got = load_tiny(s, w).forward(kFiveTokens);
  const HandOptions o{.neox = true,
                      .attn_softcap = 1.5,
                      .embd_scale = std::sqrt(8.0),
                      .post_norms = true,
                      .geglu = true,
                      .window = 2,
                      .final_softcap = 2.0,
                      .tied = true};
  EXPECT_LE(reference_max_abs_diff(got, sequence_by_hand(s, w, kFiveTokens, o)), 1e-12);
  expect_each_change_matters(s, w, kFiveTokens, o, got,
                             {{"no window", [](HandOptions& h) { h.window = 0; }},
                              {"no attention cap", [](HandOptions& h) { h.attn_softcap = 0; }},
                              {"no final cap", [](HandOptions& h) { h.final_softcap = 0; }},
                              {"no embedding scale", [](HandOptions& h) { h.embd_scale = 1; }},
                              {"no post norms", [](HandOptions& h) { h.post_norms = false; }},
                              {"SwiGLU", [](HandOptions& h) { h.geglu = false; }},
                              {"scale 1/sqrt(n_embd/n_head)", [](HandOptions& h) { h.attn_scale = 0.5; }},
                              {"normal rope", [](HandOptions& h) { h.neox = false; }}});
}

// llama.cpp's defaults (caps 50 / 30, window 4096), the window in even layers only (set_swa_pattern(2)),
// the 27B attention scale (n_layer 46: 1/sqrt(n_embd / n_head)), and what gemma2 never loads.
TEST(ReferenceModelArch, Gemma2DefaultsEvenLayerWindowAnd27BScale) {
  TinySpec s = gemma_spec("gemma2");
  s.n_layer = 5;
  const ReferenceConfig d = tiny_config(s, tiny_weights(s));
  EXPECT_EQ(d.traits.attn_softcap, 50.0);
  EXPECT_EQ(d.traits.final_softcap, 30.0);
  EXPECT_EQ(d.traits.sliding_window, 4096);
  EXPECT_EQ(d.traits.sliding_layers, (std::vector<bool>{true, false, true, false, true}));
  // Two layers, window 2: the same weights as llama with the window in layer 0 only, bit for bit;
  // the window in layer 1 instead (or in both) is another model.
  s.n_layer = 2;
  s.more_keys = [](GgufWriter& g, const std::string& p) { g.add<uint32_t>(p + "attention.sliding_window", 2); };
  const TinyWeights w = tiny_weights(s);
  const Logits got = load_tiny(s, w).forward(kFiveTokens);
  TinySpec as_llama = s;
  as_llama.arch = "llama";
  auto llama_with_window_in = [&](std::vector<bool> layers) {
    return load_tiny(as_llama, w,
                     [&](ReferenceConfig& c) {
                       gemma_traits(c);
                       c.traits.attn_softcap = 50.0;
                       c.traits.final_softcap = 30.0;
                       c.traits.sliding_window = 2;
                       c.traits.sliding_layers = layers;
                     })
        .forward(kFiveTokens);
  };
  EXPECT_EQ(got, llama_with_window_in({true, false}));
  EXPECT_GT(reference_max_abs_diff(got, llama_with_window_in({false, true})), 1e-6);
  EXPECT_GT(reference_max_abs_diff(got, llama_with_window_in({true, true})), 1e-6);
  // The 27B rule goes by the layer count: 1/sqrt(8 / 2) = 0.5 instead of 1/sqrt(6).
  for (int64_t n_layer : {45, 46, 47}) {
    TinySpec t = gemma_spec("gemma2");
    t.n_layer = n_layer;
    EXPECT_EQ(tiny_config(t, tiny_weights(t)).attn_scale, n_layer == 46 ? 0.5 : 0.0) << n_layer;
  }
  // gemma2's output is always token_embd, and gate and up are separate.
  TinySpec untied = gemma_spec("gemma2");
  untied.tied = false;
  expect_unsupported([&] { tiny_config(untied, tiny_weights(untied)); }, "gemma2 output.weight");
  TinyWeights fused = tiny_weights(gemma_spec("gemma2"));
  fused = fuse_qkv_and_gate_up(gemma_spec("gemma2"), fused);
  expect_unsupported([&] { tiny_config(gemma_spec("gemma2"), fused); }, "gemma2 fused gate+up");
}

// gemma3 with a window: its one layer is local, so it rotates with base 10000 and no scaling
// whatever the file says (base 100, linear factor 2), with QK-norm, no attention cap (its key is
// ignored) and no final cap unless the key says so. Without a window every layer is global.
TEST(ReferenceModelArch, Gemma3LocalAndGlobalLayerLogitsByHand) {
  TinySpec s = gemma_spec("gemma3");
  s.rope_scaling_factor = 2.0;
  s.more_keys = [](GgufWriter& g, const std::string& p) {
    g.add<uint32_t>(p + "attention.sliding_window", 2);
    g.add<float>(p + "attn_logit_softcapping", 1.5f);
  };
  const TinyWeights w = tiny_weights(s);
  const ReferenceConfig c = tiny_config(s, w);
  EXPECT_TRUE(c.traits.qk_norm && c.traits.post_norms);
  EXPECT_EQ(c.traits.attn_softcap, 0.0);
  EXPECT_EQ(c.traits.final_softcap, 0.0);
  EXPECT_EQ(c.traits.sliding_window, 2);
  EXPECT_EQ(c.traits.sliding_layers, std::vector<bool>{true});
  EXPECT_EQ(c.rope_base_swa, 10000.0);
  const std::vector<double> local = reference_rope_thetas(c, true), global = reference_rope_thetas(c, false);
  EXPECT_DOUBLE_EQ(local[1], std::pow(10000.0, -1.0 / 3.0));
  EXPECT_DOUBLE_EQ(global[1], std::pow(100.0, -1.0 / 3.0) / 2.0);
  const HandOptions o{.neox = true,
                      .qk_norm = true,
                      .rope_base = 10000.0,
                      .embd_scale = std::sqrt(8.0),
                      .post_norms = true,
                      .geglu = true,
                      .window = 2,
                      .tied = true};
  const Logits got = load_tiny(s, w).forward(kFiveTokens);
  EXPECT_LE(reference_max_abs_diff(got, sequence_by_hand(s, w, kFiveTokens, o)), 1e-12);
  expect_each_change_matters(s, w, kFiveTokens, o, got,
                             {{"the file's rope", [](HandOptions& h) { h.rope_base = 100.0, h.freq_scale = 0.5; }},
                              {"no window", [](HandOptions& h) { h.window = 0; }},
                              {"attention cap", [](HandOptions& h) { h.attn_softcap = 1.5; }},
                              {"no QK-norm", [](HandOptions& h) { h.qk_norm = false; }}});
  // No window key: a global layer with the file's base and linear scaling, no window; a final cap key.
  s.more_keys = [](GgufWriter& g, const std::string& p) { g.add<float>(p + "final_logit_softcapping", 2.0f); };
  const ReferenceConfig global_only = tiny_config(s, w);
  EXPECT_EQ(global_only.traits.sliding_window, 0);
  EXPECT_EQ(global_only.traits.final_softcap, 2.0);
  HandOptions g = o;
  g.rope_base = 100.0, g.freq_scale = 0.5, g.window = 0, g.final_softcap = 2.0;
  EXPECT_LE(reference_max_abs_diff(load_tiny(s, w).forward(kFiveTokens), sequence_by_hand(s, w, kFiveTokens, g)),
            1e-12);
}

// Five local layers, then a global one (set_swa_pattern(6)); the local layers ignore the file's rope
// base and scaling (five layers: changing both changes nothing, bit for bit), the global ones use
// them (six layers: the logits move). Six layers = llama with the traits by hand; 27B: n_layer 62.
TEST(ReferenceModelArch, Gemma3EverySixthLayerIsGlobal) {
  TinySpec s = gemma_spec("gemma3");
  s.tied = false;  // gemma3 may have its own output.weight
  s.n_layer = 12;
  s.more_keys = [](GgufWriter& g, const std::string& p) { g.add<uint32_t>(p + "attention.sliding_window", 2); };
  EXPECT_EQ(tiny_config(s, tiny_weights(s)).traits.sliding_layers,
            (std::vector<bool>{true, true, true, true, true, false, true, true, true, true, true, false}));
  for (int64_t n_layer : {5, 6}) {
    SCOPED_TRACE(n_layer);
    s.n_layer = n_layer;
    const TinyWeights w = tiny_weights(s);
    TinySpec other_rope = s;
    other_rope.rope_base = 1000.0;
    other_rope.rope_scaling_factor = 4.0;
    const Logits a = load_tiny(s, w).forward(kFiveTokens), b = load_tiny(other_rope, w).forward(kFiveTokens);
    if (n_layer == 5) {
      EXPECT_EQ(a, b);
    } else {
      EXPECT_GT(reference_max_abs_diff(a, b), 1e-6);
      TinySpec as_llama = s;
      as_llama.arch = "llama";
      const Logits llama = load_tiny(as_llama, w, [](ReferenceConfig& c) {
                             gemma_traits(c);
                             c.traits.qk_norm = true;
                             c.traits.sliding_window = 2;
                             c.traits.sliding_layers = {true, true, true, true, true, false};
                             c.rope_base_swa = 10000.0;
                           }).forward(kFiveTokens);
      EXPECT_EQ(a, llama);
    }
  }
  for (int64_t n_layer : {61, 62}) {
    TinySpec t = gemma_spec("gemma3");
    t.n_layer = n_layer;
    EXPECT_EQ(tiny_config(t, tiny_weights(t)).attn_scale, n_layer == 62 ? 0.5 : 0.0) << n_layer;
  }
}

}  // namespace
}  // namespace ember::reference_test
