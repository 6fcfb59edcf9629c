// The reference's mixtures of experts against dense models computed independently: with a router
// of zeros every expert is equally probable, the tie goes to the lowest n_used experts, and their
// weights are fixed (1/n_used renormalized, 1/n_expert not), so the layer's FFN is exactly a dense
// FFN whose gate and up stack those experts' rows and whose down concatenates their columns, each
// scaled by its weight; Qwen2-MoE's shared expert joins the stack at sigmoid(0) = 1/2, Granite MoE's
// (no gate) at 1.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "reference/reference_test_util.h"

namespace ember::reference_test {
namespace {

constexpr int64_t kExperts = 5, kUsed = 2, kExpertFf = 6, kSharedFf = 7;

struct MoeCase {
  std::string dense_arch, moe_arch;
  bool normalized;  // the chosen experts' weights rescaled to sum to 1
  bool shared;      // a shared expert (Qwen2-MoE, Granite MoE)
  bool gated;       // the shared expert times sigmoid(x·ffn_gate_inp_shexp) (Qwen2-MoE)
};

// [n_in, rows] tensor's rows [first, first + n) (ggml order: a row is n_in contiguous values).
std::vector<float> rows_of(const TinyTensor& t, int64_t first, int64_t n) {
  const int64_t n_in = t.shape[0];
  return {t.data.begin() + first * n_in, t.data.begin() + (first + n) * n_in};
}

// Columns [first, first + n) of each row of a [n_cols, rows] tensor, times `scale`.
std::vector<float> columns_of(const TinyTensor& t, int64_t first, int64_t n, float scale) {
  std::vector<float> out;
  for (int64_t r = 0; r < t.shape[1]; ++r) {
    for (int64_t c = first; c < first + n; ++c) out.push_back(scale * t.data[static_cast<size_t>(r * t.shape[0] + c)]);
  }
  return out;
}

TEST(ReferenceMoe, ZeroRouterEqualsTheStackedDenseFfn) {
  const MoeCase cases[] = {{"llama", "llama", true, false, false},
                           {"qwen3", "qwen3moe", true, false, false},
                           {"qwen2", "qwen2moe", false, true, true},
                           {"granite", "granitemoe", true, true, false},
                           {"granite", "granite", true, false, false}};  // granite with expert_count: the same
  for (const MoeCase& c : cases) {
    SCOPED_TRACE(c.moe_arch);
    // The dense model: n_ff = the used experts' widths (+ the shared expert's).
    TinySpec dense;
    dense.arch = c.dense_arch;
    dense.n_ff = kUsed * kExpertFf + (c.shared ? kSharedFf : 0);
    dense.qkv_bias = c.dense_arch == "qwen2";
    dense.qk_norm = c.dense_arch == "qwen3";
    const bool granite = c.dense_arch == "granite";
    if (granite) {  // its multipliers, the same in both files
      dense.more_keys = [](GgufWriter& g, const std::string& p) {
        g.add<float>(p + "logit_scale", 2.0f);
        g.add<float>(p + "residual_scale", 0.5f);
      };
    }
    const TinyWeights dense_w = tiny_weights(dense);
    const float weight = c.normalized ? 1.0f / kUsed : 1.0f / kExperts;

    TinySpec moe = dense;
    moe.arch = c.moe_arch;
    // Mixtral's and Granite's experts are n_ff wide; the Qwen ones' width is their key.
    const bool width_is_n_ff = c.moe_arch == "llama" || granite;
    moe.n_ff = width_is_n_ff ? kExpertFf : 64;
    moe.more_keys = [&c, dense_keys = dense.more_keys, width_is_n_ff](GgufWriter& g, const std::string& p) {
      if (dense_keys) dense_keys(g, p);
      g.add<uint32_t>(p + "expert_count", kExperts);
      g.add<uint32_t>(p + "expert_used_count", kUsed);
      // Mixtral's and Granite's loaders read no width key: a wrong one must not matter.
      g.add<uint32_t>(p + "expert_feed_forward_length", width_is_n_ff ? 2 * kExpertFf : kExpertFf);
      if (c.shared) g.add<uint32_t>(p + "expert_shared_feed_forward_length", kSharedFf);
    };
    TinyWeights moe_w = dense_w;
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> other(-0.5f, 0.5f);
    for (int64_t il = 0; il < dense.n_layer; ++il) {
      const std::string b = "blk." + std::to_string(il) + ".";
      const TinyTensor gate = moe_w.at(b + "ffn_gate.weight"), up = moe_w.at(b + "ffn_up.weight"),
                       down = moe_w.at(b + "ffn_down.weight");
      for (const char* name : {"ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"}) moe_w.erase(b + name);
      TinyTensor gate_exps{{dense.n_embd, kExpertFf, kExperts}, {}}, up_exps = gate_exps;
      TinyTensor down_exps{{kExpertFf, dense.n_embd, kExperts}, {}};
      for (int64_t e = 0; e < kExperts; ++e) {
        if (e < kUsed) {  // the chosen ones: the dense FFN's slices, down undoing the weight
          const std::vector<float> g = rows_of(gate, e * kExpertFf, kExpertFf),
                                   u = rows_of(up, e * kExpertFf, kExpertFf);
          const std::vector<float> d = columns_of(down, e * kExpertFf, kExpertFf, 1.0f / weight);
          gate_exps.data.insert(gate_exps.data.end(), g.begin(), g.end());
          up_exps.data.insert(up_exps.data.end(), u.begin(), u.end());
          down_exps.data.insert(down_exps.data.end(), d.begin(), d.end());
          continue;
        }
        // The others, never chosen: anything (random, so choosing one would show).
        for (TinyTensor* t : {&gate_exps, &up_exps, &down_exps}) {
          for (int64_t i = 0; i < dense.n_embd * kExpertFf; ++i) t->data.push_back(other(rng));
        }
      }
      moe_w[b + "ffn_gate_exps.weight"] = gate_exps;
      moe_w[b + "ffn_up_exps.weight"] = up_exps;
      moe_w[b + "ffn_down_exps.weight"] = down_exps;
      moe_w[b + "ffn_gate_inp.weight"] = {{dense.n_embd, kExperts}, std::vector<float>(dense.n_embd * kExperts, 0.0f)};
      if (c.shared) {  // the last kSharedFf of the dense FFN, down times 1 / sigmoid(0) where gated
        const int64_t first = kUsed * kExpertFf;
        const float undo_gate = c.gated ? 2.0f : 1.0f;
        moe_w[b + "ffn_gate_shexp.weight"] = {{dense.n_embd, kSharedFf}, rows_of(gate, first, kSharedFf)};
        moe_w[b + "ffn_up_shexp.weight"] = {{dense.n_embd, kSharedFf}, rows_of(up, first, kSharedFf)};
        moe_w[b + "ffn_down_shexp.weight"] = {{kSharedFf, dense.n_embd}, columns_of(down, first, kSharedFf, undo_gate)};
        if (c.gated) {
          moe_w[b + "ffn_gate_inp_shexp.weight"] = {{dense.n_embd}, std::vector<float>(dense.n_embd, 0.0f)};
        }
      }
    }
    const ReferenceModel dense_model = load_tiny(dense, dense_w);
    const ReferenceModel moe_model = load_tiny(moe, moe_w);
    EXPECT_EQ(moe_model.config().n_expert, kExperts);
    EXPECT_EQ(moe_model.config().expert_weights_norm, c.normalized);
    EXPECT_EQ(moe_model.config().n_ff_shared_expert, c.shared ? kSharedFf : 0);
    if (c.shared) {
      EXPECT_EQ(moe_model.config().shared_expert_gated, c.gated);
    }
    // 1/weight and 2 are powers of two or 5 (qwen2moe): the scaled columns round in float, so
    // the two agree to float precision of the down weights, not bit for bit.
    const double diff = reference_max_abs_diff(moe_model.forward(kTinyTokens), dense_model.forward(kTinyTokens));
    EXPECT_LT(diff, 1e-5);
  }
}

// With a router that prefers the unused experts, the same file differs from the dense model (the
// test above would pass for a reference that ignored its router).
TEST(ReferenceMoe, TheRouterChoosesTheExperts) {
  TinySpec moe;
  moe.n_ff = kExpertFf;
  moe.more_keys = [](GgufWriter& g, const std::string& p) {
    g.add<uint32_t>(p + "expert_count", kExperts);
    g.add<uint32_t>(p + "expert_used_count", kUsed);
  };
  TinySpec dense = moe;
  dense.more_keys = nullptr;
  TinyWeights w = tiny_weights(dense);
  TinyWeights with_router = w, zero_router = w;
  for (int64_t il = 0; il < dense.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    for (TinyWeights* m : {&with_router, &zero_router}) {
      for (const char* name : {"ffn_gate", "ffn_up", "ffn_down"}) {
        TinyTensor t = m->at(b + name + ".weight");
        m->erase(b + name + ".weight");
        TinyTensor merged{{t.shape[0], t.shape[1], kExperts}, {}};
        for (int64_t e = 0; e < kExperts; ++e) {  // expert e = the dense FFN times (e + 1)
          for (float v : t.data)
            merged.data.push_back(std::string(name) == "ffn_down" ? v * static_cast<float>(e + 1) : v);
        }
        (*m)[b + name + "_exps.weight"] = merged;
      }
    }
    std::vector<float> router(static_cast<size_t>(dense.n_embd * kExperts), 0.0f);
    zero_router[b + "ffn_gate_inp.weight"] = {{dense.n_embd, kExperts}, router};
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (float& v : router) v = u(rng);
    with_router[b + "ffn_gate_inp.weight"] = {{dense.n_embd, kExperts}, router};
  }
  const Logits zero = load_tiny(moe, zero_router).forward(kTinyTokens);
  const Logits routed = load_tiny(moe, with_router).forward(kTinyTokens);
  EXPECT_GT(reference_max_abs_diff(zero, routed), 1e-3);
}

}  // namespace
}  // namespace ember::reference_test
