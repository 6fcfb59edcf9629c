// Tiny models and the one-layer hand computation shared by the reference model's tests.
#include "reference/reference_test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <span>

namespace ember::reference_test {

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

TinyWeights fuse_qkv_and_gate_up(const TinySpec& s, TinyWeights w) {
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    auto concat_rows = [&](std::initializer_list<const char*> names) {  // rows of a [n_embd, rows] tensor
      TinyTensor t{{s.n_embd, 0}, {}};
      for (const char* name : names) {
        const TinyTensor& part = w.at(b + name);
        t.data.insert(t.data.end(), part.data.begin(), part.data.end());
        t.shape[1] += part.shape[1];
        w.erase(b + name);
      }
      return t;
    };
    w[b + "attn_qkv.weight"] = concat_rows({"attn_q.weight", "attn_k.weight", "attn_v.weight"});
    w[b + "ffn_up.weight"] = concat_rows({"ffn_gate.weight", "ffn_up.weight"});
  }
  return w;
}

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
  g.add<float>(p + "rope.freq_base", static_cast<float>(s.rope_base));
  g.add<uint32_t>(p + "rope.dimension_count", static_cast<uint32_t>(s.n_rot));
  if (s.n_ctx_train != 0) g.add<uint32_t>(p + "context_length", static_cast<uint32_t>(s.n_ctx_train));
  if (!s.rope_scaling_type.empty()) g.add_string(p + "rope.scaling.type", s.rope_scaling_type);
  if (s.rope_scaling_factor != 0) g.add<float>(p + "rope.scaling.factor", static_cast<float>(s.rope_scaling_factor));
  if (s.rope_scale_linear != 0) g.add<float>(p + "rope.scale_linear", static_cast<float>(s.rope_scale_linear));
  if (s.rope_attn_factor != 0) g.add<float>(p + "rope.scaling.attn_factor", static_cast<float>(s.rope_attn_factor));
  if (s.rope_orig_ctx != 0) {
    g.add<uint32_t>(p + "rope.scaling.original_context_length", static_cast<uint32_t>(s.rope_orig_ctx));
  }
  if (s.more_keys) s.more_keys(g, p);
  for (const auto& [name, t] : w) g.add_tensor(name, DType::kF32, t.shape, std::as_bytes(std::span(t.data)));
  return g.write_to_memory();
}

ReferenceConfig tiny_config(const TinySpec& s, const TinyWeights& w) {
  const std::vector<std::byte> bytes = tiny_gguf(s, w);
  return reference_config_from_gguf(GgufFile::parse(bytes, s.arch + ".gguf"));
}

ReferenceModel load_tiny(const TinySpec& s, const TinyWeights& w, const std::function<void(ReferenceConfig&)>& adjust) {
  const std::vector<std::byte> bytes = tiny_gguf(s, w);
  const GgufFile file = GgufFile::parse(bytes, s.arch + ".gguf");
  ReferenceConfig config = reference_config_from_gguf(file);
  if (adjust) adjust(config);
  return ReferenceModel::load(file, config);
}

TinySpec hand_spec() {
  TinySpec s;
  s.n_vocab = 23, s.n_embd = 8, s.n_layer = 1, s.n_head = 2, s.n_head_kv = 1, s.head_dim = 4, s.n_ff = 10, s.n_rot = 4;
  s.qkv_bias = s.qk_norm = true;
  s.seed = 11;
  return s;
}

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
  // 1. Embeddings (scaled), attention norm, projections (+ biases), split into heads.
  std::vector<std::vector<double>> x(n);
  std::vector<std::vector<std::vector<double>>> q(n), k(n), v(n);  // [token][head][dim]
  for (size_t t = 0; t < n; ++t) {
    x[t].assign(embd.begin() + tokens[t] * s.n_embd, embd.begin() + (tokens[t] + 1) * s.n_embd);
    for (double& e : x[t]) e *= o.embd_scale;
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
    if (!o.rope) return;
    const int64_t half = s.n_rot / 2;
    for (int64_t i = 0; i < half; ++i) {
      const double theta = std::pow(o.rope_base, -2.0 * static_cast<double>(i) / static_cast<double>(s.n_rot));
      const double mul_i = o.theta_mul.empty() ? 1.0 : o.theta_mul[static_cast<size_t>(i)];
      const double angle = static_cast<double>(pos) * theta * o.freq_scale * mul_i;
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
  auto cap = [](double value, double c) { return c > 0 ? c * std::tanh(value / c) : value; };
  Logits logits(n);
  for (size_t t = 0; t < n; ++t) {
    const size_t first =
        o.window > 0 && t + 1 > static_cast<size_t>(o.window) ? t + 1 - static_cast<size_t>(o.window) : 0;
    std::vector<double> heads;
    for (int64_t h = 0; h < s.n_head; ++h) {
      const size_t kvh = static_cast<size_t>(h / (s.n_head / s.n_head_kv));
      std::vector<double> weights;
      double sum = 0;
      for (size_t j = first; j <= t; ++j) {
        double dot = 0;
        for (size_t d = 0; d < hd; ++d) dot += q[t][static_cast<size_t>(h)][d] * k[j][kvh][d];
        weights.push_back(std::exp(cap(dot * scale, o.attn_softcap)));
        sum += weights.back();
      }
      std::vector<double> out(hd, 0.0);
      for (size_t j = first; j <= t; ++j)
        for (size_t d = 0; d < hd; ++d) out[d] += weights[j - first] / sum * v[j][kvh][d];
      heads.insert(heads.end(), out.begin(), out.end());
    }
    std::vector<double> attn = mul(vec("blk.0.attn_output.weight"), heads);
    if (o.post_norms) attn = norm(attn, vec("blk.0.post_attention_norm.weight"));
    for (double& a : attn) a *= o.residual_scale;
    std::vector<double> xt = add(x[t], attn);
    const auto xn = norm(xt, vec("blk.0.ffn_norm.weight"));
    const auto gate = mul(vec("blk.0.ffn_gate.weight"), xn);
    auto up = mul(vec("blk.0.ffn_up.weight"), xn);
    for (size_t i = 0; i < up.size(); ++i) {
      const double g = gate[i];
      up[i] *= o.geglu ? 0.5 * g * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (g + 0.044715 * g * g * g)))
                       : g / (1 + std::exp(-g));
    }
    std::vector<double> ffn = mul(vec("blk.0.ffn_down.weight"), up);
    if (o.post_norms) ffn = norm(ffn, vec("blk.0.post_ffw_norm.weight"));
    for (double& f : ffn) f *= o.residual_scale;
    xt = add(xt, ffn);
    logits[t] = mul(vec(o.tied ? "token_embd.weight" : "output.weight"), norm(xt, vec("output_norm.weight")));
    for (double& l : logits[t]) l = cap(l / o.logit_scale, o.final_softcap);
  }
  return logits;
}

}  // namespace ember::reference_test
