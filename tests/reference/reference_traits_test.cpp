// The float64 reference transformer's switches on hand-made tiny llama models written with ember's
// GGUF writer: equivalences that must hold (neox rope = normal rope on permuted head dims, GQA =
// repeated kv heads, fused = separate tensors, ...), properties (causality, sliding window, caps),
// one token and a three-token sequence computed by hand, greedy decoding with drafts, input errors.
// Rope frequencies and scaling: reference_rope_test.cpp; architecture mappings: reference_arch_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "reference/reference_test_util.h"

namespace ember::reference_test {
namespace {

// Within each q/k head, moves dim 2i to i and 2i+1 to n_rot/2 + i (i < n_rot/2): the reordering
// between Meta's interleaved rope layout and Hugging Face's rotate_half layout.
std::vector<float> interleaved_to_halves(const std::vector<float>& rows, int64_t row_len, int64_t head_dim,
                                         int64_t n_rot) {
  std::vector<float> out(rows);
  const int64_t n_rows = static_cast<int64_t>(rows.size()) / row_len;
  for (int64_t r = 0; r < n_rows; ++r) {
    const int64_t head = r / head_dim, d = r % head_dim;
    if (d >= n_rot) continue;
    const int64_t to = head * head_dim + (d % 2 == 0 ? d / 2 : n_rot / 2 + d / 2);
    std::copy_n(rows.begin() + r * row_len, row_len, out.begin() + to * row_len);
  }
  return out;
}

TEST(ReferenceModelTraits, NeoxRopeEqualsNormalRopeOnPermutedHeadDims) {
  TinySpec s;  // head_dim 6 with n_rot 4: partial rotary
  s.qkv_bias = true;
  s.qk_norm = true;
  const TinyWeights w = tiny_weights(s);
  auto traits = [](ReferenceTraits::Rope rope) {
    return [rope](ReferenceConfig& c) {
      c.traits.rope = rope;
      c.traits.qkv_bias = true;
      c.traits.qk_norm = true;
    };
  };
  TinyWeights permuted = w;
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    for (const char* name : {"attn_q.weight", "attn_k.weight"}) {
      permuted[b + name].data = interleaved_to_halves(w.at(b + name).data, s.n_embd, s.head_dim, s.n_rot);
    }
    for (const char* name : {"attn_q.bias", "attn_k.bias", "attn_q_norm.weight", "attn_k_norm.weight"}) {
      permuted[b + name].data = interleaved_to_halves(w.at(b + name).data, 1, s.head_dim, s.n_rot);
    }
  }
  const Logits normal = load_tiny(s, w, traits(ReferenceTraits::Rope::kNormal)).forward(kTinyTokens);
  const Logits neox = load_tiny(s, permuted, traits(ReferenceTraits::Rope::kNeox)).forward(kTinyTokens);
  EXPECT_LE(reference_max_abs_diff(normal, neox), 1e-12);
  // Without the permutation the two rope kinds differ, so the check above has teeth.
  EXPECT_GT(reference_max_abs_diff(normal, load_tiny(s, w, traits(ReferenceTraits::Rope::kNeox)).forward(kTinyTokens)),
            1e-3);
}

TEST(ReferenceModelTraits, GroupedQueryAttentionEqualsRepeatedKvHeads) {
  TinySpec s;  // 4 query heads on 2 kv heads
  s.qkv_bias = true;
  const TinyWeights w = tiny_weights(s);
  TinySpec s_mha = s;
  s_mha.n_head_kv = s.n_head;
  TinyWeights repeated = w;
  const int64_t group = s.n_head / s.n_head_kv;
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    for (auto [name, row_len] : {std::pair{"attn_k.weight", s.n_embd},
                                 {"attn_v.weight", s.n_embd},
                                 {"attn_k.bias", int64_t{1}},
                                 {"attn_v.bias", int64_t{1}}}) {
      const TinyTensor& t = w.at(b + name);
      TinyTensor& out = repeated[b + name];
      out.data.clear();
      for (int64_t h = 0; h < s.n_head; ++h) {  // kv head h of the MHA model = kv head h / group
        const auto head = t.data.begin() + (h / group) * s.head_dim * row_len;
        out.data.insert(out.data.end(), head, head + s.head_dim * row_len);
      }
      out.shape.back() = s.n_head * s.head_dim;
    }
  }
  const ReferenceModel gqa = load_tiny(s, w);
  EXPECT_TRUE(gqa.config().traits.qkv_bias);  // llama with attn_q.bias: the biases are used, as in llama.cpp
  EXPECT_LE(reference_max_abs_diff(gqa.forward(kTinyTokens), load_tiny(s_mha, repeated).forward(kTinyTokens)), 1e-12);
}

TEST(ReferenceModelTraits, CausalAndPrefixConsistent) {
  const TinySpec s;
  const ReferenceModel m = load_tiny(s, tiny_weights(s));
  const Logits full = m.forward(kTinyTokens);
  const Logits prefix = m.forward(std::vector<int32_t>(kTinyTokens.begin(), kTinyTokens.begin() + 6));
  EXPECT_EQ(prefix, Logits(full.begin(), full.begin() + 6));  // the same loops: bit for bit
  std::vector<int32_t> changed = kTinyTokens;
  changed[6] = 3;
  const Logits other = m.forward(changed);
  EXPECT_EQ(Logits(other.begin(), other.begin() + 6), prefix);
  EXPECT_GT(reference_max_abs_diff(Logits(other.begin() + 6, other.end()), Logits(full.begin() + 6, full.end())), 1e-3);
}

TEST(ReferenceModelTraits, SlidingWindow) {
  TinySpec s;
  s.n_layer = 1;
  const TinyWeights w = tiny_weights(s);
  auto window = [](int64_t n, std::vector<bool> layers = {}) {
    return [n, layers](ReferenceConfig& c) {
      c.traits.sliding_window = n;
      c.traits.sliding_layers = layers;
    };
  };
  const Logits full = load_tiny(s, w).forward(kTinyTokens);
  const int64_t n_tokens = static_cast<int64_t>(kTinyTokens.size());
  EXPECT_EQ(load_tiny(s, w, window(n_tokens)).forward(kTinyTokens), full);
  EXPECT_EQ(load_tiny(s, w, window(1, {false})).forward(kTinyTokens), full);  // a layer without the window
  // One layer with a window of 3: position t sees tokens t-2..t only, and rope makes scores depend on
  // relative positions only, so it equals the last position of that 3-token sequence on its own.
  const ReferenceModel m3 = load_tiny(s, w, window(3));
  const Logits windowed = m3.forward(kTinyTokens);
  EXPECT_GT(reference_max_abs_diff(windowed, full), 1e-3);
  for (size_t t = 2; t < kTinyTokens.size(); ++t) {
    const std::vector<int32_t> alone(kTinyTokens.begin() + static_cast<std::ptrdiff_t>(t) - 2,
                                     kTinyTokens.begin() + static_cast<std::ptrdiff_t>(t) + 1);
    EXPECT_LE(reference_max_abs_diff({windowed[t]}, {m3.forward(alone).back()}), 1e-12) << "position " << t;
  }
}

// A layer without positions (NoPE, smollm3): q and k are not rotated, by hand; and with nothing
// positional left, the last token's logits do not depend on the order of the tokens before it.
TEST(ReferenceModelTraits, NoPeLayerComputedByHandAndBlindToOrder) {
  TinySpec s;
  s.n_layer = 1;
  const TinyWeights w = tiny_weights(s);
  const auto no_rope = [](ReferenceConfig& c) { c.traits.nope_layers = {true}; };
  const Logits got = load_tiny(s, w, no_rope).forward(kTinyTokens);
  EXPECT_LE(reference_max_abs_diff(got, sequence_by_hand(s, w, kTinyTokens, {.rope = false})), 1e-12);
  EXPECT_GT(reference_max_abs_diff(got, sequence_by_hand(s, w, kTinyTokens, {})), 1e-3);
  std::vector<int32_t> shuffled = kTinyTokens;
  std::reverse(shuffled.begin(), shuffled.end() - 1);  // the last token stays last
  const auto last = [&](const std::function<void(ReferenceConfig&)>& adjust, const std::vector<int32_t>& tokens) {
    return Logits{load_tiny(s, w, adjust).forward(tokens).back()};
  };
  EXPECT_LE(reference_max_abs_diff(last(no_rope, shuffled), last(no_rope, kTinyTokens)), 1e-12);
  EXPECT_GT(reference_max_abs_diff(last({}, shuffled), last({}, kTinyTokens)), 1e-3);  // rope sees the order
}

TEST(ReferenceModelTraits, QkNormMakesAttentionScaleInvariant) {
  TinySpec s;
  s.qk_norm = true;
  const TinyWeights w = tiny_weights(s);
  TinyWeights scaled = w;
  for (int64_t il = 0; il < s.n_layer; ++il) {
    for (float& v : scaled["blk." + std::to_string(il) + ".attn_q.weight"].data) v *= 4.0f;
    for (float& v : scaled["blk." + std::to_string(il) + ".attn_k.weight"].data) v *= 0.5f;
  }
  auto qk_norm = [](bool on) {
    return [on](ReferenceConfig& c) {
      c.traits.qk_norm = on;
      c.rms_eps = 1e-14;  // the eps term is all that is not scale-invariant
    };
  };
  EXPECT_LE(reference_max_abs_diff(load_tiny(s, w, qk_norm(true)).forward(kTinyTokens),
                                   load_tiny(s, scaled, qk_norm(true)).forward(kTinyTokens)),
            1e-9);
  // Without QK-norm (and its tensors) the scaling changes the attention.
  auto without_norms = [&](TinyWeights weights) {
    for (int64_t il = 0; il < s.n_layer; ++il) {
      weights.erase("blk." + std::to_string(il) + ".attn_q_norm.weight");
      weights.erase("blk." + std::to_string(il) + ".attn_k_norm.weight");
    }
    return weights;
  };
  EXPECT_GT(reference_max_abs_diff(load_tiny(s, without_norms(w), qk_norm(false)).forward(kTinyTokens),
                                   load_tiny(s, without_norms(scaled), qk_norm(false)).forward(kTinyTokens)),
            1e-3);
}

TEST(ReferenceModelTraits, SoftCaps) {
  const TinySpec s;
  const TinyWeights w = tiny_weights(s);
  const Logits plain = load_tiny(s, w).forward(kTinyTokens);
  const Logits capped = load_tiny(s, w, [](ReferenceConfig& c) { c.traits.final_softcap = 2.0; }).forward(kTinyTokens);
  double largest = 0;
  for (size_t t = 0; t < plain.size(); ++t) {
    for (size_t i = 0; i < plain[t].size(); ++i) {
      EXPECT_NEAR(capped[t][i], 2.0 * std::tanh(plain[t][i] / 2.0), 1e-12);
      EXPECT_LT(std::abs(capped[t][i]), 2.0);
      largest = std::max(largest, std::abs(plain[t][i]));
    }
  }
  EXPECT_GT(largest, 2.0);  // the cap did bite somewhere
  // An attention cap far above every score changes nothing measurable; a small one does.
  auto attn_cap = [](double cap) { return [cap](ReferenceConfig& c) { c.traits.attn_softcap = cap; }; };
  EXPECT_LE(reference_max_abs_diff(load_tiny(s, w, attn_cap(1e7)).forward(kTinyTokens), plain), 1e-9);
  EXPECT_GT(reference_max_abs_diff(load_tiny(s, w, attn_cap(0.1)).forward(kTinyTokens), plain), 1e-3);
}

TEST(ReferenceModelTraits, FusedQkvAndGateUpEqualSeparateTensors) {
  const TinySpec s;
  const TinyWeights w = tiny_weights(s);
  const TinyWeights fused = fuse_qkv_and_gate_up(s, w);
  ASSERT_TRUE(fused.contains("blk.1.attn_qkv.weight"));
  ASSERT_FALSE(fused.contains("blk.1.ffn_gate.weight"));
  EXPECT_EQ(load_tiny(s, fused).forward(kTinyTokens), load_tiny(s, w).forward(kTinyTokens));
}

TEST(ReferenceModelTraits, TiedOutputReusesTokenEmbeddings) {
  TinySpec s;
  s.tied = true;
  const TinyWeights w = tiny_weights(s);
  TinyWeights untied = w;
  untied["output.weight"] = w.at("token_embd.weight");
  EXPECT_EQ(load_tiny(s, w).forward(kTinyTokens), load_tiny(s, untied).forward(kTinyTokens));
}

// One token at position 0 attends only to itself (softmax weight 1, rope the identity), so the whole
// model is a few matrix products that this test writes out independently.
std::vector<double> one_token_by_hand(const TinySpec& s, const TinyWeights& w, int32_t token, double embd_scale,
                                      bool geglu, double final_cap) {
  auto vec = [&](const std::string& name) {
    return std::vector<double>(w.at(name).data.begin(), w.at(name).data.end());
  };
  auto mul = [](const std::vector<double>& m, const std::vector<double>& x) {
    std::vector<double> y(m.size() / x.size(), 0.0);
    for (size_t o = 0; o < y.size(); ++o)
      for (size_t i = 0; i < x.size(); ++i) y[o] += m[o * x.size() + i] * x[i];
    return y;
  };
  auto norm = [](std::vector<double> x, const std::vector<double>& g) {
    double ms = 0;
    for (double v : x) ms += v * v / static_cast<double>(x.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = x[i] / std::sqrt(ms + 1e-5) * g[i];
    return x;
  };
  const auto embd = vec("token_embd.weight");
  std::vector<double> x(embd.begin() + token * s.n_embd, embd.begin() + (token + 1) * s.n_embd);
  for (double& v : x) v *= embd_scale;
  std::vector<double> v = mul(vec("blk.0.attn_v.weight"), norm(x, vec("blk.0.attn_norm.weight")));
  const auto bv = vec("blk.0.attn_v.bias");
  for (size_t i = 0; i < v.size(); ++i) v[i] += bv[i];
  std::vector<double> heads;  // query head h reads kv head h / group
  for (int64_t h = 0; h < s.n_head; ++h) {
    const auto kv = v.begin() + (h / (s.n_head / s.n_head_kv)) * s.head_dim;
    heads.insert(heads.end(), kv, kv + s.head_dim);
  }
  const auto attn = norm(mul(vec("blk.0.attn_output.weight"), heads), vec("blk.0.post_attention_norm.weight"));
  for (size_t i = 0; i < x.size(); ++i) x[i] += attn[i];
  const auto xn = norm(x, vec("blk.0.ffn_norm.weight"));
  const auto gate = mul(vec("blk.0.ffn_gate.weight"), xn);
  auto up = mul(vec("blk.0.ffn_up.weight"), xn);
  for (size_t i = 0; i < up.size(); ++i) {
    const double g = gate[i];
    up[i] *=
        geglu ? 0.5 * g * (1 + std::tanh(0.7978845608028654 * (g + 0.044715 * g * g * g))) : g / (1 + std::exp(-g));
  }
  const auto ffn = norm(mul(vec("blk.0.ffn_down.weight"), up), vec("blk.0.post_ffw_norm.weight"));
  for (size_t i = 0; i < x.size(); ++i) x[i] += ffn[i];
  auto logits = mul(vec("output.weight"), norm(x, vec("output_norm.weight")));
  for (double& l : logits) l = final_cap * std::tanh(l / final_cap);
  return logits;
}

TEST(ReferenceModelTraits, OneTokenComputedByHand) {
  TinySpec s;
  s.n_layer = 1;
  s.qkv_bias = true;
  s.qk_norm = true;  // no effect on a single token: its only score is normalized away
  s.post_norms = true;
  const TinyWeights w = tiny_weights(s);
  for (bool geglu : {false, true}) {
    SCOPED_TRACE(geglu ? "GeGLU" : "SwiGLU");
    const ReferenceModel m = load_tiny(s, w, [&](ReferenceConfig& c) {
      c.traits.qkv_bias = c.traits.qk_norm = c.traits.post_norms = true;
      c.traits.embd_scale = 4.0;
      c.traits.final_softcap = 3.0;
      c.traits.ffn = geglu ? ReferenceTraits::Ffn::kGeGLU : ReferenceTraits::Ffn::kSwiGLU;
    });
    for (int32_t token : {0, 9, 22}) {
      const Logits got = m.forward({token});
      EXPECT_LE(reference_max_abs_diff(got, {one_token_by_hand(s, w, token, 4.0, geglu, 3.0)}), 1e-12)
          << "token " << token;
    }
  }
}

// Three tokens, so that attention mixes positions and q and k matter: q/k/v biases, QK-norm with
// non-uniform weights (before rope), rope, a non-default attention scale and an attention soft-cap
// (after the scale), checked against sequence_by_hand.
TEST(ReferenceModelTraits, AttentionSequenceComputedByHand) {
  const TinySpec s = hand_spec();
  const TinyWeights w = tiny_weights(s);
  // The norm weights are far from uniform, so replacing them by ones or moving them past rope matters.
  const auto& qn = w.at("blk.0.attn_q_norm.weight").data;
  ASSERT_GT(*std::max_element(qn.begin(), qn.end()) - *std::min_element(qn.begin(), qn.end()), 0.3f);
  for (bool neox : {false, true}) {
    SCOPED_TRACE(neox ? "neox" : "normal rope");
    HandOptions o{.neox = neox, .bias = true, .qk_norm = true, .attn_scale = 0.9, .attn_softcap = 1.5};
    const ReferenceModel m = load_tiny(s, w, [&](ReferenceConfig& c) {
      c.traits.rope = neox ? ReferenceTraits::Rope::kNeox : ReferenceTraits::Rope::kNormal;
      c.traits.qkv_bias = c.traits.qk_norm = true;
      c.attn_scale = o.attn_scale;
      c.traits.attn_softcap = o.attn_softcap;
    });
    const Logits expected = sequence_by_hand(s, w, kHandTokens, o);
    EXPECT_LE(reference_max_abs_diff(m.forward(kHandTokens), expected), 1e-12);
    // The cap bites and every switch changes the result, so the comparison above has teeth.
    for (auto [what, change] : std::initializer_list<std::pair<const char*, std::function<void(HandOptions&)>>>{
             {"no cap", [](HandOptions& h) { h.attn_softcap = 0; }},
             {"default scale", [](HandOptions& h) { h.attn_scale = 0; }},
             {"no q/k norm", [](HandOptions& h) { h.qk_norm = false; }},
             {"other rope", [](HandOptions& h) { h.neox = !h.neox; }}}) {
      HandOptions other = o;
      change(other);
      EXPECT_GT(reference_max_abs_diff(sequence_by_hand(s, w, kHandTokens, other), expected), 1e-3) << what;
    }
  }
}

TEST(ReferenceModelGreedy, DraftDoesNotChangeTheResult) {
  const TinySpec s;
  const ReferenceModel m = load_tiny(s, tiny_weights(s));
  const std::vector<int32_t> prompt = {1, 5, 9};
  // Step by step, the obvious way.
  std::vector<int32_t> seq = prompt, expected;
  for (int i = 0; i < 12; ++i) {
    expected.push_back(reference_argmax(m.forward(seq).back()));
    seq.push_back(expected.back());
  }
  EXPECT_EQ(m.greedy(prompt, 12), expected);
  EXPECT_EQ(m.greedy(prompt, 12, expected), expected);
  std::vector<int32_t> wrong = expected;
  wrong[4] = (wrong[4] + 1) % static_cast<int32_t>(s.n_vocab);
  wrong.resize(8);
  EXPECT_EQ(m.greedy(prompt, 12, wrong), expected);
  EXPECT_EQ(m.greedy(prompt, 5, std::vector<int32_t>(40, 3)),
            std::vector<int32_t>(expected.begin(), expected.begin() + 5));
}

TEST(ReferenceModelErrors, InputErrorsThrow) {
  const TinySpec s;
  const TinyWeights w = tiny_weights(s);
  const ReferenceModel m = load_tiny(s, w);
  EXPECT_THROW(m.forward({1, static_cast<int32_t>(s.n_vocab)}), Error);
  EXPECT_THROW(m.forward({-1}), Error);
  TinyWeights missing = w;
  missing.erase("blk.1.ffn_down.weight");
  try {
    load_tiny(s, missing);
    ADD_FAILURE() << "no error for a missing tensor";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("blk.1.ffn_down.weight"), std::string::npos) << e.what();
  }
  TinyWeights unknown = w;  // a tensor the reference would ignore must not be ignored silently
  unknown["blk.0.attn_output.bias"] = TinyTensor{{s.n_embd}, std::vector<float>(static_cast<size_t>(s.n_embd), 1.0f)};
  try {
    load_tiny(s, unknown);
    ADD_FAILURE() << "no error for an unknown tensor";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("blk.0.attn_output.bias"), std::string::npos) << e.what();
  }
  TinyWeights wrong_shape = w;
  wrong_shape["blk.0.attn_q.weight"].shape = {s.n_embd / 2, 2 * s.n_head * s.head_dim};
  EXPECT_THROW(load_tiny(s, wrong_shape), Error);
  GgufWriter g;
  g.add_string("general.architecture", "mamba");
  const auto bytes = g.write_to_memory();
  try {
    reference_config_from_gguf(GgufFile::parse(bytes, "mamba.gguf"));
    ADD_FAILURE() << "no error for an unsupported architecture";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
  }
}

}  // namespace
}  // namespace ember::reference_test
