// The float64 reference transformer: dequantized weights and a forward pass written as the math
// reads (one token, one head, one dot product at a time). Its reading of the GGUF keys is in
// reference_config.cpp.
#include "reference/reference_model.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numbers>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "core/check.h"
#include "quant/quant_traits.h"
#include "reference/reference_internal.h"

namespace ember {
namespace {

// ---- weights ----

// Splits a row-major matrix with `n_in` columns into consecutive blocks of rows.
std::vector<std::vector<double>> split_rows(const std::vector<double>& m, int64_t n_in,
                                            const std::vector<int64_t>& rows) {
  std::vector<std::vector<double>> parts;
  auto begin = m.begin();
  for (int64_t r : rows) {
    parts.emplace_back(begin, begin + r * n_in);
    begin += r * n_in;
  }
  return parts;
}

// ---- math ----

// y[o] = sum_i w[o][i] x[i] for a row-major [n_out][x.size()] matrix. Four partial sums, added
// at the end: one chain of dependent adds made this the slowest part of the model
// tests, and the order of a float64 sum is far below every tolerance the references serve.
std::vector<double> matvec(const std::vector<double>& w, const std::vector<double>& x) {
  EMBER_CHECK(!x.empty() && w.size() % x.size() == 0);
  const size_t n_in = x.size(), n_out = w.size() / n_in;
  std::vector<double> y(n_out, 0.0);
  const double* xs = x.data();
  for (size_t o = 0; o < n_out; ++o) {
    const double* row = w.data() + o * n_in;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // named, not an array: the sanitizer build keeps arrays in memory
    size_t i = 0;
    for (; i + 4 <= n_in; i += 4) {
      s0 += row[i] * xs[i];
      s1 += row[i + 1] * xs[i + 1];
      s2 += row[i + 2] * xs[i + 2];
      s3 += row[i + 3] * xs[i + 3];
    }
    for (; i < n_in; ++i) s0 += row[i] * xs[i];
    y[o] = (s0 + s1) + (s2 + s3);
  }
  return y;
}

void add_in_place(std::vector<double>& y, const std::vector<double>& b) {
  for (size_t i = 0; i < y.size(); ++i) y[i] += b[i];
}

// x / sqrt(mean(x²) + eps) · weight, over `n` values at `x` (a whole row or one head).
void rms_norm_in_place(double* x, size_t n, const std::vector<double>& weight, double eps) {
  double sum_sq = 0;
  for (size_t i = 0; i < n; ++i) sum_sq += x[i] * x[i];
  const double inv_rms = 1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps);
  for (size_t i = 0; i < n; ++i) x[i] = x[i] * inv_rms * weight[i];
}

std::vector<double> rms_norm(std::vector<double> x, const std::vector<double>& weight, double eps) {
  rms_norm_in_place(x.data(), x.size(), weight, eps);
  return x;
}

// Rotates the first n_rot dims of one head by position · θ_i per pair.
// mscale (rope.scaling.attn_factor, ggml's attn_factor) multiplies cos and sin of the rotated dims.
void rope_in_place(double* head, int64_t pos, const std::vector<double>& thetas, ReferenceTraits::Rope kind,
                   double mscale) {
  const int64_t half = static_cast<int64_t>(thetas.size());
  for (int64_t i = 0; i < half; ++i) {
    const double angle = static_cast<double>(pos) * thetas[i];
    const double c = mscale * std::cos(angle), s = mscale * std::sin(angle);
    const int64_t a = kind == ReferenceTraits::Rope::kNormal ? 2 * i : i;
    const int64_t b = kind == ReferenceTraits::Rope::kNormal ? 2 * i + 1 : i + half;
    const double x0 = head[a], x1 = head[b];
    head[a] = x0 * c - x1 * s;
    head[b] = x0 * s + x1 * c;
  }
}

double softcap(double x, double cap) { return cap > 0 ? cap * std::tanh(x / cap) : x; }

double silu(double x) { return x / (1.0 + std::exp(-x)); }

// GELU with the tanh approximation (gelu_pytorch_tanh, ggml_gelu).
double gelu_tanh(double x) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}

}  // namespace

// The tensors of one file, read by name; remembers which were read so that a tensor the reference
// does not know (an output bias, say) is an error instead of silently changing nothing.
struct ReferenceTensorSource {
  const GgufFile& file;
  std::set<std::string, std::less<>> used;

  bool has(const std::string& name) const { return file.find_tensor(name) != nullptr; }
  std::vector<double> get(const std::string& name, std::vector<int64_t> shape) {
    const GgufTensorInfo* info = file.find_tensor(name);
    if (info == nullptr) fail(ErrorCode::kNotFound, "{}: tensor {} is missing", file.name(), name);
    used.insert(name);
    return reference_read_tensor(file, *info, std::move(shape));
  }
  void check_all_used() const {
    for (const GgufTensorInfo& t : file.tensors()) {
      if (!used.contains(t.name)) {
        fail(ErrorCode::kUnsupported, "{}: tensor {} is not used by the reference model ({} traits)", file.name(),
             t.name, file.get_or<std::string>("general.architecture", "?"));
      }
    }
  }
};

int32_t reference_argmax(std::span<const double> values) {
  EMBER_CHECK(!values.empty());
  size_t best = 0;
  for (size_t i = 1; i < values.size(); ++i) {
    if (values[i] > values[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

double reference_max_abs_diff(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (size_t t = 0; t < a.size(); ++t) {
    if (a[t].size() != b[t].size()) return INFINITY;
    for (size_t i = 0; i < a[t].size(); ++i) m = std::max(m, std::abs(a[t][i] - b[t][i]));
  }
  return m;
}

// ---- loading ----

ReferenceModel ReferenceModel::load(const GgufFile& file) { return load(file, reference_config_from_gguf(file)); }

ReferenceModel ReferenceModel::load(const GgufFile& file, ReferenceConfig config) {
  reference_validate(config, file.name());
  ReferenceModel m;
  m.config_ = std::move(config);
  const ReferenceConfig& c = m.config_;
  for (bool sliding : {false, true}) {
    m.rope_thetas_[sliding] = reference_rope_thetas(c, sliding);
    m.rope_mscale_[sliding] = reference_rope_mscale(c, sliding);
  }
  ReferenceTensorSource source{file, {}};
  for (const char* name : {"rope_freqs.weight", "rope_factors_short.weight", "rope_factors_long.weight"}) {
    if (source.has(name) && reference_config_reads_tensor(c.arch, name)) source.used.insert(name);
  }
  m.token_embd_ = source.get("token_embd.weight", {c.n_embd, c.n_vocab});
  for (int64_t il = 0; il < c.n_layer; ++il) m.load_layer(source, il);
  m.output_norm_ = source.get("output_norm.weight", {c.n_embd});
  // Tied embeddings: without output.weight the logits reuse token_embd (as llama.cpp does).
  m.output_ = source.has("output.weight") ? source.get("output.weight", {c.n_embd, c.n_vocab}) : m.token_embd_;
  source.check_all_used();
  return m;
}

void ReferenceModel::load_layer(ReferenceTensorSource& source, int64_t il) {
  const ReferenceConfig& c = config_;
  const std::string b = "blk." + std::to_string(il) + ".";
  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  Layer l;
  l.attn_norm = source.get(b + "attn_norm.weight", {c.n_embd});
  if (c.kv_lora_rank > 0) {  // deepseek2's latent attention (its own tensors), then the FFN below
    const int64_t q_rows = c.n_head * (c.mla_nope + c.n_rot);
    if (c.q_lora_rank > 0) {
      l.wq_a = source.get(b + "attn_q_a.weight", {c.n_embd, c.q_lora_rank});
      l.q_a_norm = source.get(b + "attn_q_a_norm.weight", {c.q_lora_rank});
      l.wq_b = source.get(b + "attn_q_b.weight", {c.q_lora_rank, q_rows});
    } else {
      l.wq = source.get(b + "attn_q.weight", {c.n_embd, q_rows});
    }
    l.wkv_a = source.get(b + "attn_kv_a_mqa.weight", {c.n_embd, c.kv_lora_rank + c.n_rot});
    l.kv_a_norm = source.get(b + "attn_kv_a_norm.weight", {c.kv_lora_rank});
    const std::vector<int64_t> k_heads(static_cast<size_t>(c.n_head), c.kv_lora_rank);
    const std::vector<int64_t> v_heads(static_cast<size_t>(c.n_head), c.mla_v);
    if (c.mla_merged_kv_b) {  // head h: mla_nope rows of W_UK, then mla_v rows of W_UV (kv_lora_rank each)
      std::vector<int64_t> parts;
      for (int64_t h = 0; h < c.n_head; ++h) parts.insert(parts.end(), {c.mla_nope, c.mla_v});
      const auto rows =
          split_rows(source.get(b + "attn_kv_b.weight", {c.kv_lora_rank, c.n_head * (c.mla_nope + c.mla_v)}),
                     c.kv_lora_rank, parts);
      for (int64_t h = 0; h < c.n_head; ++h) {
        const std::vector<double>& w_uk = rows[static_cast<size_t>(2 * h)];  // [nope][kv_lora_rank]
        std::vector<double> k_b(w_uk.size());                                // [kv_lora_rank][nope]: W_UKᵀ
        for (int64_t i = 0; i < c.mla_nope; ++i) {
          for (int64_t j = 0; j < c.kv_lora_rank; ++j) {
            k_b[static_cast<size_t>(j * c.mla_nope + i)] = w_uk[static_cast<size_t>(i * c.kv_lora_rank + j)];
          }
        }
        l.wk_b.push_back(std::move(k_b));
        l.wv_b.push_back(rows[static_cast<size_t>(2 * h + 1)]);
      }
    } else {
      l.wk_b =
          split_rows(source.get(b + "attn_k_b.weight", {c.mla_nope, c.kv_lora_rank, c.n_head}), c.mla_nope, k_heads);
      l.wv_b =
          split_rows(source.get(b + "attn_v_b.weight", {c.kv_lora_rank, c.mla_v, c.n_head}), c.kv_lora_rank, v_heads);
    }
    l.wo = source.get(b + "attn_output.weight", {c.n_head * c.mla_v, c.n_embd});
  }
  // Phi-3 stores q, k and v as the rows of one attn_qkv tensor, in that order.
  if (c.kv_lora_rank > 0) {
  } else if (source.has(b + "attn_qkv.weight")) {
    auto parts = split_rows(source.get(b + "attn_qkv.weight", {c.n_embd, q_dim + 2 * kv_dim}), c.n_embd,
                            {q_dim, kv_dim, kv_dim});
    l.wq = std::move(parts[0]), l.wk = std::move(parts[1]), l.wv = std::move(parts[2]);
  } else {
    l.wq = source.get(b + "attn_q.weight", {c.n_embd, q_dim});
    l.wk = source.get(b + "attn_k.weight", {c.n_embd, kv_dim});
    l.wv = source.get(b + "attn_v.weight", {c.n_embd, kv_dim});
  }
  if (c.traits.qkv_bias) {
    l.bq = source.get(b + "attn_q.bias", {q_dim});
    l.bk = source.get(b + "attn_k.bias", {kv_dim});
    l.bv = source.get(b + "attn_v.bias", {kv_dim});
  }
  if (c.traits.qk_norm) {
    l.q_norm = source.get(b + "attn_q_norm.weight", {c.head_dim});
    l.k_norm = source.get(b + "attn_k_norm.weight", {c.head_dim});
  }
  if (c.kv_lora_rank == 0) l.wo = source.get(b + "attn_output.weight", {q_dim, c.n_embd});
  l.ffn_norm = source.get(b + "ffn_norm.weight", {c.n_embd});
  if (has_experts(il)) {
    // Merged expert tensors, expert e at index e of the last dimension.
    const std::vector<int64_t> experts(static_cast<size_t>(c.n_expert), c.n_ff_expert);
    const std::vector<int64_t> experts_down(static_cast<size_t>(c.n_expert), c.n_embd);
    l.router = source.get(b + "ffn_gate_inp.weight", {c.n_embd, c.n_expert});
    if (source.has(b + "exp_probs_b.bias")) l.exp_probs_b = source.get(b + "exp_probs_b.bias", {c.n_expert});
    l.expert_gate =
        split_rows(source.get(b + "ffn_gate_exps.weight", {c.n_embd, c.n_ff_expert, c.n_expert}), c.n_embd, experts);
    l.expert_up =
        split_rows(source.get(b + "ffn_up_exps.weight", {c.n_embd, c.n_ff_expert, c.n_expert}), c.n_embd, experts);
    l.expert_down = split_rows(source.get(b + "ffn_down_exps.weight", {c.n_ff_expert, c.n_embd, c.n_expert}),
                               c.n_ff_expert, experts_down);
    if (c.n_ff_shared_expert > 0) {
      if (c.shared_expert_gated) l.shared_router = source.get(b + "ffn_gate_inp_shexp.weight", {c.n_embd});
      l.shared_gate = source.get(b + "ffn_gate_shexp.weight", {c.n_embd, c.n_ff_shared_expert});
      l.shared_up = source.get(b + "ffn_up_shexp.weight", {c.n_embd, c.n_ff_shared_expert});
      l.shared_down = source.get(b + "ffn_down_shexp.weight", {c.n_ff_shared_expert, c.n_embd});
    }
    layers_.push_back(std::move(l));
    return;
  }
  // Phi-3 stores gate and up as the rows of one ffn_up tensor (gate first) and has no ffn_gate.
  if (source.has(b + "ffn_gate.weight")) {
    l.w_gate = source.get(b + "ffn_gate.weight", {c.n_embd, c.n_ff});
    l.w_up = source.get(b + "ffn_up.weight", {c.n_embd, c.n_ff});
  } else {
    auto parts = split_rows(source.get(b + "ffn_up.weight", {c.n_embd, 2 * c.n_ff}), c.n_embd, {c.n_ff, c.n_ff});
    l.w_gate = std::move(parts[0]), l.w_up = std::move(parts[1]);
  }
  l.w_down = source.get(b + "ffn_down.weight", {c.n_ff, c.n_embd});
  if (c.traits.post_norms) {
    l.post_attn_norm = source.get(b + "post_attention_norm.weight", {c.n_embd});
    l.post_ffn_norm = source.get(b + "post_ffw_norm.weight", {c.n_embd});
  }
  layers_.push_back(std::move(l));
}

// ---- forward ----

std::vector<std::vector<double>> ReferenceModel::forward(const std::vector<int32_t>& tokens) const {
  return forward(tokens, {});
}

std::vector<std::vector<double>> ReferenceModel::forward(const std::vector<int32_t>& tokens,
                                                         const ExpertChoice& choose) const {
  const ReferenceConfig& c = config_;
  Rows x(tokens.size());  // the residual stream, [n_tokens][n_embd]
  for (size_t t = 0; t < tokens.size(); ++t) {
    const int32_t id = tokens[t];
    if (id < 0 || id >= c.n_vocab) {
      fail(ErrorCode::kInvalidArgument, "token {} at position {} is outside the vocabulary of {}", id, t, c.n_vocab);
    }
    x[t].assign(token_embd_.begin() + id * c.n_embd, token_embd_.begin() + (id + 1) * c.n_embd);
    for (double& v : x[t]) v *= c.traits.embd_scale;
  }
  for (int64_t il = 0; il < c.n_layer; ++il) {
    if (c.kv_lora_rank > 0) {
      latent_attention(layers_[static_cast<size_t>(il)], x);
    } else {
      attention(layers_[static_cast<size_t>(il)], il, x);
    }
    feed_forward(layers_[static_cast<size_t>(il)], il, x, choose);
  }
  Rows logits(tokens.size());
  for (size_t t = 0; t < tokens.size(); ++t) {
    logits[t] = matvec(output_, rms_norm(x[t], output_norm_, c.rms_eps));
    for (double& v : logits[t]) v = softcap(v / c.traits.logit_scale, c.traits.final_softcap);
  }
  return logits;
}

void ReferenceModel::latent_attention(const Layer& l, Rows& x) const {
  const ReferenceConfig& c = config_;
  const size_t n_tokens = x.size();
  const int64_t nope = c.mla_nope, rope = c.n_rot, head_qk = nope + rope, lora = c.kv_lora_rank;
  // Every token's per-head keys and values, decompressed from its latent.
  Rows q(n_tokens), k(n_tokens), v(n_tokens);
  for (size_t t = 0; t < n_tokens; ++t) {
    const std::vector<double> xn = rms_norm(x[t], l.attn_norm, c.rms_eps);
    q[t] = c.q_lora_rank > 0 ? matvec(l.wq_b, rms_norm(matvec(l.wq_a, xn), l.q_a_norm, c.rms_eps)) : matvec(l.wq, xn);
    std::vector<double> kv = matvec(l.wkv_a, xn);
    const std::vector<double> latent =
        rms_norm(std::vector<double>(kv.begin(), kv.begin() + lora), l.kv_a_norm, c.rms_eps);
    double* k_pe = kv.data() + lora;
    rope_in_place(k_pe, static_cast<int64_t>(t), rope_thetas_[0], c.traits.rope, rope_mscale_[0]);
    for (int64_t h = 0; h < c.n_head; ++h) {
      rope_in_place(q[t].data() + h * head_qk + nope, static_cast<int64_t>(t), rope_thetas_[0], c.traits.rope,
                    rope_mscale_[0]);
      // k_nope[i] = Σ_j k_b[h][j][i] · latent[j]  (k_b[h] is W_UKᵀ: kv_lora rows of nope)
      const std::vector<double>& kb = l.wk_b[static_cast<size_t>(h)];
      for (int64_t i = 0; i < nope; ++i) {
        double sum = 0;
        for (int64_t j = 0; j < lora; ++j)
          sum += kb[static_cast<size_t>(j * nope + i)] * latent[static_cast<size_t>(j)];
        k[t].push_back(sum);
      }
      k[t].insert(k[t].end(), k_pe, k_pe + rope);
      const std::vector<double> vh = matvec(l.wv_b[static_cast<size_t>(h)], latent);
      v[t].insert(v[t].end(), vh.begin(), vh.end());
    }
  }
  for (size_t t = 0; t < n_tokens; ++t) {
    std::vector<double> out(static_cast<size_t>(c.n_head * c.mla_v), 0.0);
    for (int64_t h = 0; h < c.n_head; ++h) {
      const double* qh = q[t].data() + h * head_qk;
      std::vector<double> scores;
      for (size_t j = 0; j <= t; ++j) {
        const double* kh = k[j].data() + h * head_qk;
        double dot = 0;
        for (int64_t d = 0; d < head_qk; ++d) dot += qh[d] * kh[d];
        scores.push_back(dot * c.attn_scale);
      }
      double max_score = -INFINITY;
      for (double s : scores) max_score = std::max(max_score, s);
      double sum = 0;
      for (double& s : scores) sum += (s = std::exp(s - max_score));
      for (size_t j = 0; j <= t; ++j) {
        const double* vh = v[j].data() + h * c.mla_v;
        for (int64_t d = 0; d < c.mla_v; ++d) out[static_cast<size_t>(h * c.mla_v + d)] += scores[j] / sum * vh[d];
      }
    }
    add_in_place(x[t], matvec(l.wo, out));
  }
}

void ReferenceModel::attention(const Layer& l, int64_t il, Rows& x) const {
  const ReferenceConfig& c = config_;
  const size_t n_tokens = x.size(), hd = static_cast<size_t>(c.head_dim);
  const int64_t group = c.n_head / c.n_head_kv;
  const double scale = c.attn_scale > 0 ? c.attn_scale : 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  const bool sliding = c.traits.sliding_window > 0 &&
                       (c.traits.sliding_layers.empty() || c.traits.sliding_layers[static_cast<size_t>(il)]);
  const bool rotates = c.traits.nope_layers.empty() || !c.traits.nope_layers[static_cast<size_t>(il)];

  // Projections of every token first: later queries read all earlier keys and values.
  Rows q(n_tokens), k(n_tokens), v(n_tokens);
  for (size_t t = 0; t < n_tokens; ++t) {
    const std::vector<double> xn = rms_norm(x[t], l.attn_norm, c.rms_eps);
    q[t] = matvec(l.wq, xn);
    k[t] = matvec(l.wk, xn);
    v[t] = matvec(l.wv, xn);
    if (c.traits.qkv_bias) add_in_place(q[t], l.bq), add_in_place(k[t], l.bk), add_in_place(v[t], l.bv);
    for (int64_t h = 0; h < c.n_head; ++h) {
      double* head = q[t].data() + h * c.head_dim;
      if (c.traits.qk_norm) rms_norm_in_place(head, hd, l.q_norm, c.rms_eps);
      if (rotates)
        rope_in_place(head, static_cast<int64_t>(t), rope_thetas_[sliding], c.traits.rope, rope_mscale_[sliding]);
    }
    for (int64_t h = 0; h < c.n_head_kv; ++h) {
      double* head = k[t].data() + h * c.head_dim;
      if (c.traits.qk_norm) rms_norm_in_place(head, hd, l.k_norm, c.rms_eps);
      if (rotates)
        rope_in_place(head, static_cast<int64_t>(t), rope_thetas_[sliding], c.traits.rope, rope_mscale_[sliding]);
    }
  }

  for (size_t t = 0; t < n_tokens; ++t) {
    std::vector<double> out(static_cast<size_t>(c.n_head) * hd, 0.0);  // the heads side by side
    for (int64_t h = 0; h < c.n_head; ++h) {
      const double* qh = q[t].data() + h * c.head_dim;
      const int64_t kvh = h / group;
      // Keys this query sees: 0..t, or the last sliding_window of them.
      const size_t first = sliding && t + 1 > static_cast<size_t>(c.traits.sliding_window)
                               ? t + 1 - static_cast<size_t>(c.traits.sliding_window)
                               : 0;
      std::vector<double> scores;
      for (size_t j = first; j <= t; ++j) {
        const double* kh = k[j].data() + kvh * c.head_dim;
        double dot = 0;
        for (size_t d = 0; d < hd; ++d) dot += qh[d] * kh[d];
        scores.push_back(softcap(dot * scale, c.traits.attn_softcap));
      }
      double max_score = -INFINITY;  // subtracted before exp(), which changes nothing but the range
      for (double s : scores) max_score = std::max(max_score, s);
      double sum = 0;
      for (double& s : scores) sum += (s = std::exp(s - max_score));
      for (size_t j = first; j <= t; ++j) {
        const double weight = scores[j - first] / sum;
        const double* vh = v[j].data() + kvh * c.head_dim;
        for (size_t d = 0; d < hd; ++d) out[static_cast<size_t>(h) * hd + d] += weight * vh[d];
      }
    }
    std::vector<double> o = matvec(l.wo, out);
    if (c.traits.post_norms) rms_norm_in_place(o.data(), o.size(), l.post_attn_norm, c.rms_eps);
    for (double& value : o) value *= c.traits.residual_scale;
    add_in_place(x[t], o);
  }
}

// down(silu(gate · x) * (up · x)): one SwiGLU expert.
std::vector<double> swiglu_ffn(const std::vector<double>& w_gate, const std::vector<double>& w_up,
                               const std::vector<double>& w_down, const std::vector<double>& x) {
  const std::vector<double> gate = matvec(w_gate, x);
  std::vector<double> hidden = matvec(w_up, x);
  for (size_t i = 0; i < hidden.size(); ++i) hidden[i] *= silu(gate[i]);
  return matvec(w_down, hidden);
}

std::vector<double> ReferenceModel::mixture_of_experts(const Layer& l, int64_t il, int64_t position,
                                                       const std::vector<double>& xn,
                                                       const ExpertChoice& choose) const {
  const ReferenceConfig& c = config_;
  // Softmax or sigmoid of the router's logits.
  std::vector<double> probs = matvec(l.router, xn);
  if (c.expert_gating_sigmoid) {
    for (double& p : probs) p = 1.0 / (1.0 + std::exp(-p));
  } else {
    const double max_logit = *std::max_element(probs.begin(), probs.end());
    double sum = 0;
    for (double& p : probs) sum += (p = std::exp(p - max_logit));
    for (double& p : probs) p /= sum;
  }
  // What the choice ranks: the probabilities plus the layer's bias, outside the best groups -inf.
  std::vector<double> score = probs;
  if (!l.exp_probs_b.empty()) {
    for (size_t e = 0; e < score.size(); ++e) score[e] += l.exp_probs_b[e];
  }
  const auto by_score = [](const std::vector<double>& s) {
    std::vector<int32_t> order(s.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return s[static_cast<size_t>(a)] > s[static_cast<size_t>(b)]; });
    return order;
  };
  if (c.n_expert_group > 1) {
    const int64_t per_group = c.n_expert / c.n_expert_group;
    std::vector<double> group_score(static_cast<size_t>(c.n_expert_group));
    for (int64_t g = 0; g < c.n_expert_group; ++g) {
      const auto first = score.begin() + g * per_group;
      const std::vector<int32_t> order = by_score(std::vector<double>(first, first + per_group));
      group_score[static_cast<size_t>(g)] = first[order[0]] + first[order[1]];
    }
    std::vector<int32_t> groups = by_score(group_score);
    groups.resize(static_cast<size_t>(c.n_expert_group_used));
    for (int64_t e = 0; e < c.n_expert; ++e) {
      if (std::find(groups.begin(), groups.end(), e / per_group) == groups.end()) {
        score[static_cast<size_t>(e)] = -std::numeric_limits<double>::infinity();
      }
    }
  }
  // The n_expert_used best, the lower index first among equals.
  std::vector<int32_t> chosen = by_score(score);
  chosen.resize(static_cast<size_t>(c.n_expert_used));
  if (choose) {
    std::vector<int32_t> given = choose(il, position, chosen);
    if (!given.empty()) {
      std::vector<bool> seen(probs.size());
      for (const int32_t e : given) {
        if (e < 0 || e >= c.n_expert || seen[static_cast<size_t>(e)]) {
          fail(ErrorCode::kInvalidArgument, "expert choice: expert {} is out of range [0, {}) or chosen twice", e,
               c.n_expert);
        }
        seen[static_cast<size_t>(e)] = true;
      }
      if (static_cast<int64_t>(given.size()) != c.n_expert_used) {
        fail(ErrorCode::kInvalidArgument, "expert choice: {} experts, not {}", given.size(), c.n_expert_used);
      }
      chosen = std::move(given);
    }
  }
  double chosen_sum = 0;
  for (const int32_t e : chosen) chosen_sum += probs[static_cast<size_t>(e)];
  std::vector<double> out(static_cast<size_t>(c.n_embd), 0.0);
  for (const int32_t expert : chosen) {
    const auto e = static_cast<size_t>(expert);
    double weight = c.expert_weights_norm ? probs[e] / std::max(chosen_sum, 6.103515625e-5) : probs[e];
    if (c.expert_weights_scale != 0 && c.expert_weights_scale != 1) weight *= c.expert_weights_scale;
    const std::vector<double> y = swiglu_ffn(l.expert_gate[e], l.expert_up[e], l.expert_down[e], xn);
    for (size_t i = 0; i < out.size(); ++i) out[i] += weight * y[i];
  }
  if (c.n_ff_shared_expert > 0) {
    double gate = 1.0;
    if (c.shared_expert_gated) {
      double logit = 0;
      for (size_t i = 0; i < xn.size(); ++i) logit += l.shared_router[i] * xn[i];
      gate = 1.0 / (1.0 + std::exp(-logit));
    }
    const std::vector<double> y = swiglu_ffn(l.shared_gate, l.shared_up, l.shared_down, xn);
    for (size_t i = 0; i < out.size(); ++i) out[i] += gate * y[i];
  }
  return out;
}

void ReferenceModel::feed_forward(const Layer& l, int64_t il, Rows& x, const ExpertChoice& choose) const {
  const ReferenceConfig& c = config_;
  for (size_t t = 0; t < x.size(); ++t) {
    std::vector<double>& row = x[t];
    const std::vector<double> xn = rms_norm(row, l.ffn_norm, c.rms_eps);
    if (has_experts(il)) {
      std::vector<double> o = mixture_of_experts(l, il, static_cast<int64_t>(t), xn, choose);
      for (double& value : o) value *= c.traits.residual_scale;
      add_in_place(row, o);
      continue;
    }
    const std::vector<double> gate = matvec(l.w_gate, xn);
    std::vector<double> hidden = matvec(l.w_up, xn);
    for (size_t i = 0; i < hidden.size(); ++i) {
      hidden[i] *= c.traits.ffn == ReferenceTraits::Ffn::kSwiGLU ? silu(gate[i]) : gelu_tanh(gate[i]);
    }
    std::vector<double> o = matvec(l.w_down, hidden);
    if (c.traits.post_norms) rms_norm_in_place(o.data(), o.size(), l.post_ffn_norm, c.rms_eps);
    for (double& value : o) value *= c.traits.residual_scale;
    add_in_place(row, o);
  }
}

std::vector<int32_t> ReferenceModel::greedy(const std::vector<int32_t>& prompt, int64_t n_new,
                                            std::span<const int32_t> draft) const {
  if (prompt.empty()) fail(ErrorCode::kInvalidArgument, "greedy decoding needs a non-empty prompt");
  std::vector<int32_t> out;  // accepted greedy tokens
  while (static_cast<int64_t>(out.size()) < n_new) {
    // The sequence: prompt, accepted tokens, then the rest of the draft as a guess.
    std::vector<int32_t> seq = prompt;
    seq.insert(seq.end(), out.begin(), out.end());
    const size_t n_known = seq.size();
    const size_t from = std::min(out.size(), draft.size());
    const size_t n_guess = std::min(draft.size() - from, static_cast<size_t>(n_new) - out.size() - 1);
    seq.insert(seq.end(), draft.begin() + static_cast<std::ptrdiff_t>(from),
               draft.begin() + static_cast<std::ptrdiff_t>(from + n_guess));
    const Rows logits = forward(seq);
    // Logits at position p predict token p+1: accept while the guess agrees, then one more token.
    for (size_t p = n_known - 1; p < seq.size() && static_cast<int64_t>(out.size()) < n_new; ++p) {
      const int32_t next = reference_argmax(logits[p]);
      out.push_back(next);
      if (p + 1 >= seq.size() || seq[p + 1] != next) break;
    }
  }
  return out;
}

}  // namespace ember
