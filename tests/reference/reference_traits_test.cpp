// The float64 reference transformer's switches on hand-made tiny llama models written with ember's
// GGUF writer: equivalences that must hold (neox rope = normal rope on permuted head dims, GQA =
// repeated kv heads, fused = separate tensors, ...), properties (causality, sliding window, caps),
// one token computed by hand, the rope frequencies, greedy decoding with drafts, input errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numbers>
#include <random>
#include <string>

#include "gguf/gguf_writer.h"
#include "reference/reference_model.h"

namespace ember {
namespace {

using Logits = std::vector<std::vector<double>>;

struct TinySpec {
  int64_t n_vocab = 23, n_embd = 16, n_layer = 2, n_head = 4, n_head_kv = 2, head_dim = 6, n_ff = 20, n_rot = 4;
  bool qkv_bias = false, qk_norm = false, post_norms = false, tied = false;
  std::string rope_scaling_type;  // written as llama.rope.scaling.type when not empty
  double rope_scaling_factor = 0;
  uint64_t seed = 7;
};

struct TinyTensor {
  std::vector<int64_t> shape;  // ggml order
  std::vector<float> data;
};
using TinyWeights = std::map<std::string, TinyTensor>;

TinyWeights tiny_weights(const TinySpec& s) {
  std::mt19937_64 rng(s.seed);
  TinyWeights w;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float lo, float hi) {
    std::uniform_real_distribution<float> dist(lo, hi);
    TinyTensor t{std::move(shape), {}};
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    for (int64_t i = 0; i < n; ++i) t.data.push_back(dist(rng));
    w[name] = std::move(t);
  };
  const int64_t q_dim = s.n_head * s.head_dim, kv_dim = s.n_head_kv * s.head_dim;
  add("token_embd.weight", {s.n_embd, s.n_vocab}, -1.0f, 1.0f);
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    add(b + "attn_norm.weight", {s.n_embd}, 0.7f, 1.3f);
    add(b + "attn_q.weight", {s.n_embd, q_dim}, -0.6f, 0.6f);
    add(b + "attn_k.weight", {s.n_embd, kv_dim}, -0.6f, 0.6f);
    add(b + "attn_v.weight", {s.n_embd, kv_dim}, -0.4f, 0.4f);
    if (s.qkv_bias) {
      add(b + "attn_q.bias", {q_dim}, -0.3f, 0.3f);
      add(b + "attn_k.bias", {kv_dim}, -0.3f, 0.3f);
      add(b + "attn_v.bias", {kv_dim}, -0.3f, 0.3f);
    }
    if (s.qk_norm) {
      add(b + "attn_q_norm.weight", {s.head_dim}, 0.5f, 2.0f);
      add(b + "attn_k_norm.weight", {s.head_dim}, 0.5f, 2.0f);
    }
    add(b + "attn_output.weight", {q_dim, s.n_embd}, -0.4f, 0.4f);
    add(b + "ffn_norm.weight", {s.n_embd}, 0.7f, 1.3f);
    add(b + "ffn_gate.weight", {s.n_embd, s.n_ff}, -0.5f, 0.5f);
    add(b + "ffn_up.weight", {s.n_embd, s.n_ff}, -0.5f, 0.5f);
    add(b + "ffn_down.weight", {s.n_ff, s.n_embd}, -0.4f, 0.4f);
    if (s.post_norms) {
      add(b + "post_attention_norm.weight", {s.n_embd}, 0.7f, 1.3f);
      add(b + "post_ffw_norm.weight", {s.n_embd}, 0.7f, 1.3f);
    }
  }
  add("output_norm.weight", {s.n_embd}, 0.7f, 1.3f);
  if (!s.tied) add("output.weight", {s.n_embd, s.n_vocab}, -0.5f, 0.5f);
  return w;
}

// A llama GGUF in memory with every tensor of `w` (F32).
std::vector<std::byte> tiny_gguf(const TinySpec& s, const TinyWeights& w) {
  GgufWriter g;
  g.add_string("general.architecture", "llama");
  g.add<uint32_t>("llama.embedding_length", static_cast<uint32_t>(s.n_embd));
  g.add<uint32_t>("llama.block_count", static_cast<uint32_t>(s.n_layer));
  g.add<uint32_t>("llama.attention.head_count", static_cast<uint32_t>(s.n_head));
  g.add<uint32_t>("llama.attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  g.add<uint32_t>("llama.attention.key_length", static_cast<uint32_t>(s.head_dim));
  g.add<uint32_t>("llama.attention.value_length", static_cast<uint32_t>(s.head_dim));
  g.add<uint32_t>("llama.feed_forward_length", static_cast<uint32_t>(s.n_ff));
  g.add<uint32_t>("llama.vocab_size", static_cast<uint32_t>(s.n_vocab));
  g.add<float>("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  g.add<float>("llama.rope.freq_base", 100.0f);  // small, so that tiny positions turn noticeably
  g.add<uint32_t>("llama.rope.dimension_count", static_cast<uint32_t>(s.n_rot));
  if (!s.rope_scaling_type.empty()) g.add_string("llama.rope.scaling.type", s.rope_scaling_type);
  if (s.rope_scaling_factor != 0) g.add<float>("llama.rope.scaling.factor", static_cast<float>(s.rope_scaling_factor));
  for (const auto& [name, t] : w) g.add_tensor(name, DType::kF32, t.shape, std::as_bytes(std::span(t.data)));
  return g.write_to_memory();
}

ReferenceModel load_tiny(const TinySpec& s, const TinyWeights& w,
                         const std::function<void(ReferenceConfig&)>& adjust = {}) {
  const std::vector<std::byte> bytes = tiny_gguf(s, w);
  const GgufFile file = GgufFile::parse(bytes, "tiny.gguf");
  ReferenceConfig config = reference_config_from_gguf(file);
  if (adjust) adjust(config);
  return ReferenceModel::load(file, config);
}

const std::vector<int32_t> kTinyTokens = {1, 5, 22, 7, 7, 0, 13, 2, 19, 11};

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
  TinyWeights fused = w;
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    auto concat_rows = [&](std::initializer_list<const char*> names) {  // rows of a [n_embd, rows] tensor
      TinyTensor t{{s.n_embd, 0}, {}};
      for (const char* name : names) {
        const TinyTensor& part = fused.at(b + name);
        t.data.insert(t.data.end(), part.data.begin(), part.data.end());
        t.shape[1] += part.shape[1];
        fused.erase(b + name);
      }
      return t;
    };
    fused[b + "attn_qkv.weight"] = concat_rows({"attn_q.weight", "attn_k.weight", "attn_v.weight"});
    fused[b + "ffn_up.weight"] = concat_rows({"ffn_gate.weight", "ffn_up.weight"});
  }
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

TEST(ReferenceModelRope, ThetasAndScaling) {
  TinySpec s;  // rope base 100, n_rot 4: θ = 1, 0.1
  const TinyWeights w = tiny_weights(s);
  const std::vector<double> thetas = reference_rope_thetas(load_tiny(s, w).config());
  ASSERT_EQ(thetas.size(), 2u);
  EXPECT_DOUBLE_EQ(thetas[0], 1.0);
  EXPECT_DOUBLE_EQ(thetas[1], 0.1);

  TinySpec linear = s;
  linear.rope_scaling_type = "linear";
  linear.rope_scaling_factor = 2.0;
  const ReferenceModel m_linear = load_tiny(linear, w);
  EXPECT_EQ(m_linear.config().rope_scaling.kind, ReferenceRopeScaling::Kind::kLinear);
  const std::vector<double> linear_thetas = reference_rope_thetas(m_linear.config());
  EXPECT_DOUBLE_EQ(linear_thetas[0], 0.5);
  EXPECT_DOUBLE_EQ(linear_thetas[1], 0.05);
  // A rope_freqs tensor of 2s divides the same frequencies: the same model.
  TinyWeights with_freqs = w;
  with_freqs["rope_freqs.weight"] = TinyTensor{{s.n_rot / 2}, {2.0f, 2.0f}};
  const ReferenceModel m_freqs = load_tiny(s, with_freqs);
  EXPECT_EQ(m_freqs.config().rope_freq_factors, (std::vector<double>{2.0, 2.0}));
  EXPECT_EQ(m_freqs.forward(kTinyTokens), m_linear.forward(kTinyTokens));
  EXPECT_GT(reference_max_abs_diff(m_freqs.forward(kTinyTokens), load_tiny(s, w).forward(kTinyTokens)), 1e-3);
}

TEST(ReferenceModelRope, Llama3FrequencyFactorsByHand) {
  // n_ctx_orig 64, low 1, high 4, factor 8: wavelengths under 16 keep their frequency, those over 64
  // are divided by 8, between them 1 / ((1 - smooth)/8 + smooth) with smooth = (64/wavelength - 1)/3.
  ReferenceRopeScaling s{ReferenceRopeScaling::Kind::kLlama3, 8.0, 1.0, 4.0, 64};
  // n_rot 4: θ_0 = 1 (wavelength 2π), θ_1 = base^-1/2. With base = (25.6/2π)², wavelength 25.6, smooth
  // 0.5, factor 16/9; with base 1e4, wavelength 200π > 64: the full factor.
  const double mid_base = std::pow(25.6 / (2 * std::numbers::pi), 2);
  const std::vector<double> mid = reference_llama3_freq_factors(4, mid_base, s);
  ASSERT_EQ(mid.size(), 2u);
  EXPECT_DOUBLE_EQ(mid[0], 1.0);
  EXPECT_NEAR(mid[1], 16.0 / 9.0, 1e-12);
  EXPECT_EQ(reference_llama3_freq_factors(4, 1e4, s), (std::vector<double>{1.0, 8.0}));
  // Llama 3.x's parameters: 1 for the fast dims, 32 for the slow ones, non-decreasing.
  const std::vector<double> llama3 =
      reference_llama3_freq_factors(128, 500000.0, {ReferenceRopeScaling::Kind::kLlama3, 32.0, 1.0, 4.0, 8192});
  EXPECT_EQ(llama3.front(), 1.0);
  EXPECT_EQ(llama3.back(), 32.0);
  EXPECT_TRUE(std::is_sorted(llama3.begin(), llama3.end()));
  // Without a rope_freqs tensor, a llama3 config computes them.
  TinySpec tiny;
  ReferenceConfig c = load_tiny(tiny, tiny_weights(tiny)).config();
  c.rope_scaling = s;
  const std::vector<double> thetas = reference_rope_thetas(c);
  EXPECT_DOUBLE_EQ(thetas[1], 0.1 / reference_llama3_freq_factors(4, 100.0, s)[1]);
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
}  // namespace ember
