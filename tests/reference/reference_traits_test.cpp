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
  std::string arch = "llama";  // general.architecture, and the prefix of every key
  int64_t n_vocab = 23, n_embd = 16, n_layer = 2, n_head = 4, n_head_kv = 2, head_dim = 6, n_ff = 20, n_rot = 4;
  bool qkv_bias = false, qk_norm = false, post_norms = false, tied = false;
  std::string rope_scaling_type;   // written as llama.rope.scaling.type when not empty
  double rope_scaling_factor = 0;  // written as <arch>.rope.scaling.factor when not 0
  double rope_scale_linear = 0;    // written as the old key <arch>.rope.scale_linear when not 0
  double rope_attn_factor = 0;     // written as <arch>.rope.scaling.attn_factor when not 0
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

// A GGUF of architecture s.arch (llama unless set) in memory with every tensor of `w` (F32).
std::vector<std::byte> tiny_gguf(const TinySpec& s, const TinyWeights& w) {
  GgufWriter g;
  const std::string p = s.arch + ".";
  g.add_string("general.architecture", s.arch);
  g.add<uint32_t>(p + "embedding_length", static_cast<uint32_t>(s.n_embd));
  g.add<uint32_t>(p + "block_count", static_cast<uint32_t>(s.n_layer));
  g.add<uint32_t>(p + "attention.head_count", static_cast<uint32_t>(s.n_head));
  g.add<uint32_t>(p + "attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  g.add<uint32_t>(p + "attention.key_length", static_cast<uint32_t>(s.head_dim));
  g.add<uint32_t>(p + "attention.value_length", static_cast<uint32_t>(s.head_dim));
  g.add<uint32_t>(p + "feed_forward_length", static_cast<uint32_t>(s.n_ff));
  g.add<uint32_t>(p + "vocab_size", static_cast<uint32_t>(s.n_vocab));
  g.add<float>(p + "attention.layer_norm_rms_epsilon", 1e-5f);
  g.add<float>(p + "rope.freq_base", 100.0f);  // small, so that tiny positions turn noticeably
  g.add<uint32_t>(p + "rope.dimension_count", static_cast<uint32_t>(s.n_rot));
  if (!s.rope_scaling_type.empty()) g.add_string(p + "rope.scaling.type", s.rope_scaling_type);
  if (s.rope_scaling_factor != 0) g.add<float>(p + "rope.scaling.factor", static_cast<float>(s.rope_scaling_factor));
  if (s.rope_scale_linear != 0) g.add<float>(p + "rope.scale_linear", static_cast<float>(s.rope_scale_linear));
  if (s.rope_attn_factor != 0) g.add<float>(p + "rope.scaling.attn_factor", static_cast<float>(s.rope_attn_factor));
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

// The options of sequence_by_hand: the switches that make q and k matter.
struct HandOptions {
  bool neox = false;        // rotate pairs (i, i + n_rot/2) instead of (2i, 2i+1)
  bool bias = false;        // add attn_{q,k,v}.bias
  bool qk_norm = false;     // RMS-normalize each q and k head, times attn_{q,k}_norm, before rope
  double attn_scale = 0;    // 0: 1/sqrt(head_dim)
  double attn_softcap = 0;  // > 0: cap·tanh(score/cap) of the already scaled score
  double freq_scale = 1.0;  // every rope angle is multiplied by this (linear scaling: 1/factor)
  double mscale = 1.0;      // rope.scaling.attn_factor: multiplies cos and sin
};

// Logits of a whole (short) sequence through a one-layer model, written out step by step in
// llama.cpp's order, with none of the reference model's code: q = Wq·x + bq; QK-norm of each head
// (with its weights) before rope; rope; score = (q·k)·scale; cap·tanh(score/cap); causal softmax;
// Σ weight·v; Wo; residual; SwiGLU FFN; output norm and matrix.
Logits sequence_by_hand(const TinySpec& s, const TinyWeights& w, const std::vector<int32_t>& tokens,
                        const HandOptions& o) {
  EXPECT_EQ(s.n_layer, 1);
  const double eps = static_cast<double>(1e-5f);  // as written to the file
  auto vec = [&](const std::string& name) {
    return std::vector<double>(w.at(name).data.begin(), w.at(name).data.end());
  };
  auto mul = [](const std::vector<double>& m, const std::vector<double>& x) {  // m: [rows][x.size()]
    std::vector<double> y(m.size() / x.size(), 0.0);
    for (size_t r = 0; r < y.size(); ++r)
      for (size_t i = 0; i < x.size(); ++i) y[r] += m[r * x.size() + i] * x[i];
    return y;
  };
  auto norm = [&](std::vector<double> x, const std::vector<double>& g) {
    double ms = 0;
    for (double v : x) ms += v * v;
    ms /= static_cast<double>(x.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = x[i] / std::sqrt(ms + eps) * g[i];
    return x;
  };
  auto add = [](std::vector<double> a, const std::vector<double>& b) {
    for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
    return a;
  };
  const size_t n = tokens.size(), hd = static_cast<size_t>(s.head_dim);
  const auto embd = vec("token_embd.weight");
  // 1. Embeddings, attention norm, projections (+ biases), split into heads.
  std::vector<std::vector<double>> x(n);
  std::vector<std::vector<std::vector<double>>> q(n), k(n), v(n);  // [token][head][dim]
  for (size_t t = 0; t < n; ++t) {
    x[t].assign(embd.begin() + tokens[t] * s.n_embd, embd.begin() + (tokens[t] + 1) * s.n_embd);
    const auto xn = norm(x[t], vec("blk.0.attn_norm.weight"));
    auto qt = mul(vec("blk.0.attn_q.weight"), xn), kt = mul(vec("blk.0.attn_k.weight"), xn),
         vt = mul(vec("blk.0.attn_v.weight"), xn);
    if (o.bias) {
      qt = add(qt, vec("blk.0.attn_q.bias"));
      kt = add(kt, vec("blk.0.attn_k.bias"));
      vt = add(vt, vec("blk.0.attn_v.bias"));
    }
    for (int64_t h = 0; h < s.n_head; ++h)
      q[t].emplace_back(qt.begin() + h * s.head_dim, qt.begin() + (h + 1) * s.head_dim);
    for (int64_t h = 0; h < s.n_head_kv; ++h) {
      k[t].emplace_back(kt.begin() + h * s.head_dim, kt.begin() + (h + 1) * s.head_dim);
      v[t].emplace_back(vt.begin() + h * s.head_dim, vt.begin() + (h + 1) * s.head_dim);
    }
  }
  // 2. QK-norm, then rope, of every q and k head.
  auto rope = [&](std::vector<double>& head, size_t pos) {
    const int64_t half = s.n_rot / 2;
    for (int64_t i = 0; i < half; ++i) {
      const double theta = std::pow(100.0, -2.0 * static_cast<double>(i) / static_cast<double>(s.n_rot));
      const double angle = static_cast<double>(pos) * theta * o.freq_scale;
      const size_t a = static_cast<size_t>(o.neox ? i : 2 * i), b = static_cast<size_t>(o.neox ? i + half : 2 * i + 1);
      const double x0 = head[a], x1 = head[b];
      head[a] = o.mscale * (x0 * std::cos(angle) - x1 * std::sin(angle));
      head[b] = o.mscale * (x0 * std::sin(angle) + x1 * std::cos(angle));
    }
  };
  for (size_t t = 0; t < n; ++t) {
    for (auto& head : q[t]) {
      if (o.qk_norm) head = norm(head, vec("blk.0.attn_q_norm.weight"));
      rope(head, t);
    }
    for (auto& head : k[t]) {
      if (o.qk_norm) head = norm(head, vec("blk.0.attn_k_norm.weight"));
      rope(head, t);
    }
  }
  // 3. Causal attention, output projection, residual; 4. FFN; 5. output.
  const double scale = o.attn_scale > 0 ? o.attn_scale : 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  Logits logits(n);
  for (size_t t = 0; t < n; ++t) {
    std::vector<double> heads;
    for (int64_t h = 0; h < s.n_head; ++h) {
      const size_t kvh = static_cast<size_t>(h / (s.n_head / s.n_head_kv));
      std::vector<double> weights;
      double sum = 0;
      for (size_t j = 0; j <= t; ++j) {
        double dot = 0;
        for (size_t d = 0; d < hd; ++d) dot += q[t][static_cast<size_t>(h)][d] * k[j][kvh][d];
        double score = dot * scale;
        if (o.attn_softcap > 0) score = o.attn_softcap * std::tanh(score / o.attn_softcap);
        weights.push_back(std::exp(score));
        sum += weights.back();
      }
      std::vector<double> out(hd, 0.0);
      for (size_t j = 0; j <= t; ++j)
        for (size_t d = 0; d < hd; ++d) out[d] += weights[j] / sum * v[j][kvh][d];
      heads.insert(heads.end(), out.begin(), out.end());
    }
    std::vector<double> xt = add(x[t], mul(vec("blk.0.attn_output.weight"), heads));
    const auto xn = norm(xt, vec("blk.0.ffn_norm.weight"));
    const auto gate = mul(vec("blk.0.ffn_gate.weight"), xn);
    auto up = mul(vec("blk.0.ffn_up.weight"), xn);
    for (size_t i = 0; i < up.size(); ++i) up[i] *= gate[i] / (1 + std::exp(-gate[i]));
    xt = add(xt, mul(vec("blk.0.ffn_down.weight"), up));
    logits[t] = mul(vec("output.weight"), norm(xt, vec("output_norm.weight")));
  }
  return logits;
}

const std::vector<int32_t> kHandTokens = {3, 9, 17};

TinySpec hand_spec() {
  TinySpec s;
  s.n_vocab = 23, s.n_embd = 8, s.n_layer = 1, s.n_head = 2, s.n_head_kv = 1, s.head_dim = 4, s.n_ff = 10, s.n_rot = 4;
  s.qkv_bias = s.qk_norm = true;
  s.seed = 11;
  return s;
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

// llama.cpp's rope scaling keys: the factor from rope.scaling.factor, else the old rope.scale_linear;
// no rope.scaling.type = linear; type "none" ignores the factor; rope.scaling.attn_factor multiplies
// cos and sin whatever the type.
TEST(ReferenceModelRope, ScalingKeysFollowLlamaCpp) {
  TinySpec s;  // rope base 100, n_rot 4: θ = 1, 0.1
  const TinyWeights w = tiny_weights(s);
  auto config = [&](const TinySpec& spec) {
    const std::vector<std::byte> bytes = tiny_gguf(spec, w);
    return reference_config_from_gguf(GgufFile::parse(bytes, "tiny.gguf"));
  };
  auto expect_linear = [&](const TinySpec& spec, double factor) {
    const ReferenceConfig c = config(spec);
    EXPECT_EQ(c.rope_scaling.kind, ReferenceRopeScaling::Kind::kLinear);
    EXPECT_EQ(c.rope_scaling.factor, factor);
    const std::vector<double> thetas = reference_rope_thetas(c);
    EXPECT_DOUBLE_EQ(thetas[0], 1.0 / factor);
    EXPECT_DOUBLE_EQ(thetas[1], 0.1 / factor);
  };
  auto expect_unscaled = [&](const TinySpec& spec) {
    const ReferenceConfig c = config(spec);
    EXPECT_EQ(c.rope_scaling.kind, ReferenceRopeScaling::Kind::kNone);
    EXPECT_EQ(reference_rope_thetas(c), (std::vector<double>{1.0, 0.1}));
  };
  {
    SCOPED_TRACE("factor without a type: linear");
    TinySpec t = s;
    t.rope_scaling_factor = 4.0;
    expect_linear(t, 4.0);
  }
  {
    SCOPED_TRACE("old key scale_linear without a type: linear");
    TinySpec t = s;
    t.rope_scale_linear = 2.0;
    expect_linear(t, 2.0);
    t.rope_scaling_type = "linear";
    expect_linear(t, 2.0);
    t.rope_scaling_factor = 8.0;  // the new key wins
    expect_linear(t, 8.0);
  }
  {
    SCOPED_TRACE("type none with a factor: no scaling");
    TinySpec t = s;
    t.rope_scaling_type = "none";
    t.rope_scaling_factor = 4.0;
    expect_unscaled(t);
    t.rope_scaling_factor = 0;
    t.rope_scale_linear = 2.0;
    expect_unscaled(t);
  }
  {
    SCOPED_TRACE("no keys at all / factor 1: no scaling");
    expect_unscaled(s);
    TinySpec t = s;
    t.rope_scaling_factor = 1.0;
    expect_unscaled(t);
    EXPECT_EQ(config(s).rope_scaling.attn_factor, 1.0);
  }
  {
    SCOPED_TRACE("unsupported types");
    for (const char* type : {"yarn", "longrope", "llama3"}) {
      TinySpec t = s;
      t.rope_scaling_type = type;
      t.rope_scaling_factor = 4.0;
      EXPECT_THROW(config(t), Error) << type;
    }
  }
  {
    SCOPED_TRACE("attn_factor, with linear scaling and with type none");
    TinySpec t = hand_spec();
    t.rope_scaling_factor = 2.0;
    t.rope_attn_factor = 1.25;
    const TinyWeights hw = tiny_weights(t);
    for (bool none : {false, true}) {
      t.rope_scaling_type = none ? "none" : "";
      const std::vector<std::byte> bytes = tiny_gguf(t, hw);
      const GgufFile file = GgufFile::parse(bytes, "tiny.gguf");
      ReferenceConfig c = reference_config_from_gguf(file);
      EXPECT_EQ(c.rope_scaling.attn_factor, 1.25);
      EXPECT_EQ(c.rope_scaling.kind, none ? ReferenceRopeScaling::Kind::kNone : ReferenceRopeScaling::Kind::kLinear);
      c.traits.qk_norm = true;  // llama with attn_q_norm tensors: switched on by hand (biases are automatic)
      const HandOptions o{.bias = true, .qk_norm = true, .freq_scale = none ? 1.0 : 0.5, .mscale = 1.25};
      const Logits got = ReferenceModel::load(file, c).forward(kHandTokens);
      EXPECT_LE(reference_max_abs_diff(got, sequence_by_hand(t, hw, kHandTokens, o)), 1e-12);
      HandOptions no_mscale = o;
      no_mscale.mscale = 1.0;
      EXPECT_GT(reference_max_abs_diff(got, sequence_by_hand(t, hw, kHandTokens, no_mscale)), 1e-3);
    }
  }
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
