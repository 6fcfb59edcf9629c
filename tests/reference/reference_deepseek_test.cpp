// The reference's DeepSeek mappings on hand-made tiny files: deepseek2's latent attention equals
// ordinary multi-head attention whose heads are the decompressed latent (a llama file built from the
// same weights), with and without the low-rank q, and from the older attn_kv_b layout; its YaRN scale is llama.cpp's;
// DeepSeek's routing (sigmoid, a bias that chooses but does not weigh, expert groups, normalization then scale) equals
// the dense FFN of the experts it must choose; deepseek's leading layers are dense.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "reference/reference_test_util.h"

namespace ember::reference_test {
namespace {

// llama: 16 dims, 4 heads of 6 (the first 4 rotated), as many kv heads; deepseek2's latent is the
// normed input itself (kv_a's first 16 rows the identity), so each llama head h is decompressed
// exactly: k_nope from k_b[h]ᵀ, v from v_b[h], the rope key shared by every head.
constexpr int64_t kEmbd = 16, kHeads = 4, kHeadDim = 6, kRot = 4, kNope = kHeadDim - kRot, kLatent = kEmbd;

TinySpec llama_spec() {
  TinySpec s;
  s.n_embd = kEmbd, s.n_head = kHeads, s.n_head_kv = kHeads, s.head_dim = kHeadDim, s.n_rot = kRot;
  return s;
}

// deepseek2's keys for the latent attention above, dense layers only (leading_dense_block_count =
// n_layer: the expert keys it must have are then unused) unless `experts` writes its own.
// merged_kv_b: the layout before April 2025 (attn_kv_b; key / value_length are the heads' sizes,
// as many kv heads as heads, no _mla keys).
TinySpec deepseek2_spec(int64_t n_layer, int64_t q_lora_rank,
                        const std::function<void(GgufWriter&, const std::string&)>& experts = {},
                        bool merged_kv_b = false) {
  TinySpec s = llama_spec();
  s.arch = "deepseek2";
  s.n_head_kv = merged_kv_b ? kHeads : 1;
  s.head_dim = merged_kv_b ? kHeadDim : kLatent + kRot;  // the heads', or the cached row's
  const bool s_mla_keys = !merged_kv_b;
  s.more_keys = [n_layer, q_lora_rank, experts, s_mla_keys](GgufWriter& g, const std::string& p) {
    g.add<uint32_t>(p + "attention.kv_lora_rank", kLatent);
    if (q_lora_rank > 0) g.add<uint32_t>(p + "attention.q_lora_rank", static_cast<uint32_t>(q_lora_rank));
    if (s_mla_keys) {
      g.add<uint32_t>(p + "attention.key_length_mla", kHeadDim);
      g.add<uint32_t>(p + "attention.value_length_mla", kHeadDim);
    }
    if (experts) {
      experts(g, p);
      return;
    }
    g.add<uint32_t>(p + "expert_count", 2);
    g.add<uint32_t>(p + "expert_used_count", 1);
    g.add<uint32_t>(p + "expert_feed_forward_length", 4);
    g.add<uint32_t>(p + "expert_shared_count", 1);
    g.add<uint32_t>(p + "leading_dense_block_count", static_cast<uint32_t>(n_layer));
  };
  return s;
}

std::vector<float> row_of(const TinyTensor& t, int64_t r) {
  const int64_t n = t.shape[0];
  return {t.data.begin() + r * n, t.data.begin() + (r + 1) * n};
}

void append(std::vector<float>& to, const std::vector<float>& from) { to.insert(to.end(), from.begin(), from.end()); }

// The llama weights with every attn_norm 1 (so the latent, norm(xn), is xn to ~eps) and every
// head's rope rows of attn_k equal (deepseek2 has one rope key for all heads).
TinyWeights llama_weights(const TinySpec& s) {
  TinyWeights w = tiny_weights(s);
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    for (float& v : w.at(b + "attn_norm.weight").data) v = 1.0f;
    std::vector<float>& wk = w.at(b + "attn_k.weight").data;
    for (int64_t h = 1; h < kHeads; ++h) {
      std::copy_n(wk.begin(), kRot * kEmbd, wk.begin() + h * kHeadDim * kEmbd);
    }
  }
  return w;
}

// The same model in deepseek2's tensors. `transpose_k_b`: k_b as W_UK instead of W_UKᵀ (a wrong
// reading of the layout, which must show).
TinyWeights deepseek2_weights(const TinySpec& s, const TinyWeights& llama, int64_t q_lora_rank,
                              bool transpose_k_b = false, bool merged_kv_b = false) {
  TinyWeights w = llama;
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    const TinyTensor wq = w.at(b + "attn_q.weight"), wk = w.at(b + "attn_k.weight"), wv = w.at(b + "attn_v.weight");
    for (const char* name : {"attn_q.weight", "attn_k.weight", "attn_v.weight"}) w.erase(b + name);
    // q per head [nope | rope]: llama's head rows [rope (rotated first) | nope] reordered.
    TinyTensor q{{kEmbd, kHeads * kHeadDim}, {}};
    for (int64_t h = 0; h < kHeads; ++h) {
      for (int64_t r = kRot; r < kHeadDim; ++r) append(q.data, row_of(wq, h * kHeadDim + r));
      for (int64_t r = 0; r < kRot; ++r) append(q.data, row_of(wq, h * kHeadDim + r));
    }
    if (q_lora_rank > 0) {  // through an identity of q_lora_rank = n_embd and a norm of ones
      TinyTensor a{{kEmbd, kEmbd}, std::vector<float>(kEmbd * kEmbd, 0.0f)};
      for (int64_t i = 0; i < kEmbd; ++i) a.data[static_cast<size_t>(i * kEmbd + i)] = 1.0f;
      w[b + "attn_q_a.weight"] = a;
      w[b + "attn_q_a_norm.weight"] = {{kEmbd}, std::vector<float>(kEmbd, 1.0f)};
      w[b + "attn_q_b.weight"] = {{kEmbd, kHeads * kHeadDim}, q.data};
    } else {
      w[b + "attn_q.weight"] = q;
    }
    // [latent | k_pe] = [identity | head 0's rope rows] · xn
    TinyTensor kv_a{{kEmbd, kLatent + kRot}, std::vector<float>((kLatent + kRot) * kEmbd, 0.0f)};
    for (int64_t i = 0; i < kLatent; ++i) kv_a.data[static_cast<size_t>(i * kEmbd + i)] = 1.0f;
    for (int64_t r = 0; r < kRot; ++r) {
      const std::vector<float> row = row_of(wk, r);
      std::copy(row.begin(), row.end(), kv_a.data.begin() + (kLatent + r) * kEmbd);
    }
    w[b + "attn_kv_a_mqa.weight"] = kv_a;
    w[b + "attn_kv_a_norm.weight"] = {{kLatent}, std::vector<float>(kLatent, 1.0f)};
    // k_b[h]: kv_lora_rank rows of nope, W_UKᵀ: k_b[h][j][i] = llama's k row (h, rope + i), column j.
    TinyTensor k_b{{kNope, kLatent, kHeads}, {}};
    for (int64_t h = 0; h < kHeads; ++h) {
      const auto w_uk = [&](int64_t i, int64_t j) {
        return wk.data[static_cast<size_t>((h * kHeadDim + kRot + i) * kEmbd + j)];
      };
      if (transpose_k_b) {  // W_UK's own row-major order written where W_UKᵀ's belongs
        for (int64_t i = 0; i < kNope; ++i) {
          for (int64_t j = 0; j < kLatent; ++j) k_b.data.push_back(w_uk(i, j));
        }
        continue;
      }
      for (int64_t j = 0; j < kLatent; ++j) {
        for (int64_t i = 0; i < kNope; ++i) k_b.data.push_back(w_uk(i, j));
      }
    }
    if (merged_kv_b) {  // head h's rows: W_UK's (llama's k rows of its nope part), then W_UV's (its v rows)
      TinyTensor kv_b{{kLatent, kHeads * (kNope + kHeadDim)}, {}};
      for (int64_t h = 0; h < kHeads; ++h) {
        for (int64_t i = 0; i < kNope; ++i) append(kv_b.data, row_of(wk, h * kHeadDim + kRot + i));
        for (int64_t r = 0; r < kHeadDim; ++r) append(kv_b.data, row_of(wv, h * kHeadDim + r));
      }
      w[b + "attn_kv_b.weight"] = kv_b;
      continue;
    }
    w[b + "attn_k_b.weight"] = k_b;
    // v_b[h]: head_dim rows of kv_lora_rank = llama's v rows of head h.
    TinyTensor v_b{{kLatent, kHeadDim, kHeads}, wv.data};
    w[b + "attn_v_b.weight"] = v_b;
  }
  return w;
}

// Layer `b`'s dense FFN (n_ff 20) as experts of kWidth: expert chosen[i] is the dense FFN's i-th
// slice of kWidth, its down columns divided by `weight` (what routing must give it); the others are
// anything but zeros; the last slice is the shared expert (at weight 1). The router is the caller's.
constexpr int64_t kWidth = 5, kDenseFf = 20;
TinyWeights with_experts(TinyWeights w, const std::string& b, int64_t n_experts, const std::vector<int64_t>& chosen,
                         float weight) {
  const TinyTensor gate = w.at(b + "ffn_gate.weight"), up = w.at(b + "ffn_up.weight"),
                   down = w.at(b + "ffn_down.weight");
  for (const char* name : {"ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"}) w.erase(b + name);
  const auto rows = [&](const TinyTensor& t, int64_t first) {
    return std::vector<float>(t.data.begin() + first * kEmbd, t.data.begin() + (first + kWidth) * kEmbd);
  };
  const auto columns = [&](int64_t first, float scale) {
    std::vector<float> out;
    for (int64_t r = 0; r < kEmbd; ++r) {
      for (int64_t c = first; c < first + kWidth; ++c) {
        out.push_back(scale * down.data[static_cast<size_t>(r * kDenseFf + c)]);
      }
    }
    return out;
  };
  TinyTensor gate_exps{{kEmbd, kWidth, n_experts}, {}}, up_exps = gate_exps, down_exps{{kWidth, kEmbd, n_experts}, {}};
  for (int64_t e = 0; e < n_experts; ++e) {
    const auto slot = std::find(chosen.begin(), chosen.end(), e);
    if (slot != chosen.end()) {
      const int64_t first = (slot - chosen.begin()) * kWidth;
      append(gate_exps.data, rows(gate, first));
      append(up_exps.data, rows(up, first));
      append(down_exps.data, columns(first, 1.0f / weight));
      continue;
    }
    for (TinyTensor* t : {&gate_exps, &up_exps, &down_exps}) {
      for (int64_t i = 0; i < kEmbd * kWidth; ++i)
        t->data.push_back(0.3f * static_cast<float>((i * 7 + e) % 11) - 1.5f);
    }
  }
  w[b + "ffn_gate_exps.weight"] = gate_exps;
  w[b + "ffn_up_exps.weight"] = up_exps;
  w[b + "ffn_down_exps.weight"] = down_exps;
  const int64_t shared = static_cast<int64_t>(chosen.size()) * kWidth;
  EXPECT_EQ(shared + kWidth, kDenseFf);
  w[b + "ffn_gate_shexp.weight"] = {{kEmbd, kWidth}, rows(gate, shared)};
  w[b + "ffn_up_shexp.weight"] = {{kEmbd, kWidth}, rows(up, shared)};
  w[b + "ffn_down_shexp.weight"] = {{kWidth, kEmbd}, columns(shared, 1.0f)};
  return w;
}

TEST(ReferenceDeepseek, LatentAttentionEqualsTheDecompressedHeads) {
  const TinySpec llama = llama_spec();
  const TinyWeights llama_w = llama_weights(llama);
  const Logits want = load_tiny(llama, llama_w).forward(kTinyTokens);
  double scale = 0;
  for (const auto& row : want) {
    for (double v : row) scale = std::max(scale, std::abs(v));
  }
  for (const auto& [q_lora, merged] : {std::pair{int64_t{0}, false}, {16, false}, {0, true}}) {
    SCOPED_TRACE(std::to_string(q_lora) + (merged ? " attn_kv_b" : ""));
    const TinySpec ds = deepseek2_spec(llama.n_layer, q_lora, {}, merged);
    const TinyWeights ds_w = deepseek2_weights(ds, llama_w, q_lora, false, merged);
    const ReferenceModel model = load_tiny(ds, ds_w);
    EXPECT_EQ(model.config().kv_lora_rank, kLatent);
    EXPECT_EQ(model.config().q_lora_rank, q_lora);
    EXPECT_EQ(model.config().mla_merged_kv_b, merged);
    EXPECT_NEAR(model.config().attn_scale, 1.0 / std::sqrt(6.0), 1e-12);
    // The latent is norm(xn) = xn up to rms_eps (1e-5), and so are the q_lora path's norm(xn).
    EXPECT_LT(reference_max_abs_diff(model.forward(kTinyTokens), want), 1e-4 * scale);
    // Teeth: k_b read the other way round changes the logits.
    if (merged) continue;  // (its k_b comes out of attn_kv_b's rows)
    const TinyWeights wrong = deepseek2_weights(ds, llama_w, q_lora, /*transpose_k_b=*/true);
    EXPECT_GT(reference_max_abs_diff(load_tiny(ds, wrong).forward(kTinyTokens), want), 1e-2 * scale);
  }
}

// V3's YaRN (factor 40, mscale_all_dim 1 stored as 0.1): q·k scaled by (1 + 0.1·ln 40)² / sqrt(6),
// the rope itself not rescaled; without the multiplier key, llama.cpp's rope magnitude and scale
// both keep get_mscale(40, 1).
TEST(ReferenceDeepseek, YarnScaleIsLlamaCpps) {
  const TinySpec llama = llama_spec();
  const TinyWeights llama_w = llama_weights(llama);
  TinySpec ds = deepseek2_spec(llama.n_layer, 0);
  ds.rope_scaling_type = "yarn";
  ds.rope_scaling_factor = 40;
  ds.rope_orig_ctx = 4;
  const TinyWeights ds_w = deepseek2_weights(ds, llama_w, 0);
  const double m = 1.0 + 0.1 * std::log(40.0);
  const ReferenceConfig plain = tiny_config(ds, ds_w);
  EXPECT_NEAR(plain.rope_scaling.attn_factor, 1.0, 1e-12);  // get_mscale(40, 1) / (1 + 0.1·ln 40)
  EXPECT_NEAR(plain.attn_scale, m * m / std::sqrt(6.0), 1e-12);
  TinySpec v3 = ds;
  v3.more_keys = [keys = ds.more_keys](GgufWriter& g, const std::string& p) {
    keys(g, p);
    g.add<float>(p + "rope.scaling.yarn_log_multiplier", 0.1f);
  };
  const ReferenceConfig c = tiny_config(v3, ds_w);
  EXPECT_NEAR(c.rope_scaling.attn_factor * m, 1.0, 1e-12);  // the rope's magnitude cancelled
  EXPECT_NEAR(c.attn_scale, m * m / std::sqrt(6.0), 1e-6);  // (0.1f / 0.1 is 1 to float precision)
  // A multiplier of 0 is as none (llama.cpp tests the value, not the key).
  TinySpec zero = ds;
  zero.more_keys = [keys = ds.more_keys](GgufWriter& g, const std::string& p) {
    keys(g, p);
    g.add<float>(p + "rope.scaling.yarn_log_multiplier", 0.0f);
  };
  const ReferenceConfig z = tiny_config(zero, ds_w);
  EXPECT_NEAR(z.rope_scaling.attn_factor, plain.rope_scaling.attn_factor, 1e-12);
  EXPECT_NEAR(z.attn_scale, plain.attn_scale, 1e-12);
}

// V3's routing with a router of zeros: every sigmoid probability is 1/2, so the bias alone chooses.
// Six experts in three groups of two, two groups used, three experts per token: the bias makes
// expert 0 the best single one but its group the worst pair, so experts 2, 3 and 5 are chosen, each
// weighing 1/2 (unbiased), normalized to 1/3, times the scale 2.5. The file must equal its dense twin
// whose FFN stacks those three experts (down scaled by 2.5/3) and the shared expert (at 1).
TEST(ReferenceDeepseek, V3RoutingEqualsTheStackedDenseFfn) {
  constexpr int64_t kExpertCount = 6, kUsedCount = 3;
  const std::vector<int64_t> chosen = {2, 3, 5};
  const std::vector<float> bias = {0.5f, -0.5f, 0.2f, 0.2f, 0.1f, 0.15f};
  constexpr float kWeight = 2.5f / 3.0f;
  const TinySpec llama = llama_spec();
  const TinySpec dense = deepseek2_spec(llama.n_layer, 0);
  const TinyWeights dense_w = deepseek2_weights(dense, llama_weights(llama), 0);
  const auto routing = [&](bool grouped, bool normalized) {
    return deepseek2_spec(llama.n_layer, 0, [grouped, normalized](GgufWriter& g, const std::string& p) {
      g.add<uint32_t>(p + "expert_count", kExpertCount);
      g.add<uint32_t>(p + "expert_used_count", kUsedCount);
      g.add<uint32_t>(p + "expert_feed_forward_length", kWidth);
      g.add<uint32_t>(p + "expert_shared_count", 1);
      g.add<uint32_t>(p + "leading_dense_block_count", 1);  // layer 1 has the experts
      g.add<uint32_t>(p + "expert_gating_func", 2);
      g.add<bool>(p + "expert_weights_norm", normalized);
      g.add<float>(p + "expert_weights_scale", 2.5f);
      g.add<uint32_t>(p + "expert_group_count", grouped ? 3 : 1);
      g.add<uint32_t>(p + "expert_group_used_count", grouped ? 2 : 1);
    });
  };
  TinyWeights moe_w = with_experts(dense_w, "blk.1.", kExpertCount, chosen, kWeight);
  moe_w["blk.1.exp_probs_b.bias"] = {{kExpertCount}, bias};
  moe_w["blk.1.ffn_gate_inp.weight"] = {{kEmbd, kExpertCount}, std::vector<float>(kEmbd * kExpertCount, 0.0f)};

  const Logits want = load_tiny(dense, dense_w).forward(kTinyTokens);
  const ReferenceModel moe = load_tiny(routing(true, true), moe_w);
  EXPECT_TRUE(moe.config().expert_gating_sigmoid);
  EXPECT_LT(reference_max_abs_diff(moe.forward(kTinyTokens), want), 1e-5);
  // Teeth: without the groups expert 0 joins; without the norm each weighs 1/2 · 2.5.
  EXPECT_GT(reference_max_abs_diff(load_tiny(routing(false, true), moe_w).forward(kTinyTokens), want), 1e-3);
  EXPECT_GT(reference_max_abs_diff(load_tiny(routing(true, false), moe_w).forward(kTinyTokens), want), 1e-3);
}

// deepseek (V1): llama's attention, layer 0 dense, layer 1 experts with a router of zeros: each of 4
// experts is 1/4 probable and the weights stay 1/4 (no norm; the file's expert_weights_scale of 2 is
// not applied, as llama.cpp's deepseek graph does not), ties to experts 0 and 1, plus the ungated
// shared expert. Equal to the dense twin (a deepseek file whose layers are all dense).
TEST(ReferenceDeepseek, V1LeadingDenseLayerAndUnnormalizedExperts) {
  constexpr int64_t kExpertCount = 4;
  TinySpec dense;
  dense.arch = "deepseek";
  const auto keys = [](int64_t n_dense) {
    return [n_dense](GgufWriter& g, const std::string& p) {
      g.add<uint32_t>(p + "expert_count", kExpertCount);
      g.add<uint32_t>(p + "expert_used_count", 3);
      g.add<uint32_t>(p + "expert_feed_forward_length", kWidth);
      g.add<uint32_t>(p + "expert_shared_count", 1);
      g.add<uint32_t>(p + "leading_dense_block_count", static_cast<uint32_t>(n_dense));
      g.add<float>(p + "expert_weights_scale", 2.0f);
    };
  };
  dense.n_embd = kEmbd, dense.n_ff = kDenseFf;
  dense.more_keys = keys(dense.n_layer);
  const TinyWeights dense_w = tiny_weights(dense);
  TinySpec moe = dense;
  moe.more_keys = keys(1);
  TinyWeights moe_w = with_experts(dense_w, "blk.1.", kExpertCount, {0, 1, 2}, 1.0f / kExpertCount);
  moe_w["blk.1.ffn_gate_inp.weight"] = {{kEmbd, kExpertCount}, std::vector<float>(kEmbd * kExpertCount, 0.0f)};
  const ReferenceModel model = load_tiny(moe, moe_w);
  EXPECT_EQ(model.config().n_layer_dense_lead, 1);
  EXPECT_FALSE(model.config().expert_weights_norm);
  EXPECT_LT(reference_max_abs_diff(model.forward(kTinyTokens), load_tiny(dense, dense_w).forward(kTinyTokens)), 1e-5);
}

}  // namespace
}  // namespace ember::reference_test
