// Weights::bind: real files (every type of stories260K), hand-made models of each tensor layout
// (separate / fused q-k-v and gate-up, biases, q/k norms, post-norms, tied output), and an error
// naming the tensor for each missing, misshapen or unusable one.
#include "model/weights.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <functional>
#include <string>

#include "ember/error.h"
#include "gguf/gguf_writer.h"
#include "support/test_data.h"

namespace ember {
namespace {

TEST(Weights, Stories260KInEveryType) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  for (const char* file_name :
       {"stories260K.gguf", "stories260K-F16.gguf", "stories260K-Q8_0.gguf", "stories260K-Q4_0.gguf"}) {
    SCOPED_TRACE(file_name);
    const GgufFile file = GgufFile::open((data / "models" / "stories260K" / file_name).string());
    const ModelConfig config = ModelConfig::from_gguf(file);
    const Weights w = Weights::bind(file, config);
    ASSERT_EQ(w.layers.size(), 5u);
    EXPECT_EQ(w.token_embd.ne(0), 64);
    EXPECT_EQ(w.token_embd.ne(1), 512);
    EXPECT_EQ(w.layers[4].wk.ne(1), 32);  // 4 kv heads of 8
    EXPECT_EQ(w.layers[4].w_down.ne(0), 172);
    EXPECT_EQ(w.layers[0].wqkv.data(), nullptr);
    EXPECT_NE(w.output.data(), nullptr);
  }
}

// A tiny model of `arch` written with the project's GGUF writer; `edit` may drop or change tensors.
struct TinyModel {
  std::vector<std::byte> bytes;
  GgufFile file() const { return GgufFile::parse(bytes, "tiny.gguf"); }
};

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::kF32;
};

TinyModel tiny(std::string_view arch, const std::function<void(std::vector<TensorSpec>&)>& edit = {},
               int64_t head_dim = 0) {
  constexpr int64_t kEmbd = 64, kHead = 4, kHeadKv = 2, kHeadDim = 16, kFf = 96, kVocab = 40, kLayers = 2;
  const std::string a(arch);
  GgufWriter w;
  w.add_string("general.architecture", arch);
  w.add<uint32_t>(a + ".embedding_length", kEmbd);
  w.add<uint32_t>(a + ".block_count", kLayers);
  w.add<uint32_t>(a + ".feed_forward_length", kFf);
  w.add<uint32_t>(a + ".attention.head_count", kHead);
  const bool latent = arch == "deepseek2";  // a latent of 32, rope 8; heads of 16 (+ 8) q/k and 16 values
  constexpr int64_t kLatent = 32, kRope = 8, kNope = 16, kV = 16;
  w.add<uint32_t>(a + ".attention.head_count_kv", latent ? 1 : kHeadKv);
  if (latent) {
    w.add<uint32_t>(a + ".attention.key_length", kLatent + kRope);
    w.add<uint32_t>(a + ".attention.value_length", kLatent);
    w.add<uint32_t>(a + ".attention.key_length_mla", kNope + kRope);
    w.add<uint32_t>(a + ".attention.value_length_mla", kV);
    w.add<uint32_t>(a + ".attention.kv_lora_rank", kLatent);
    w.add<uint32_t>(a + ".rope.dimension_count", kRope);
  }
  w.add<float>(a + ".attention.layer_norm_rms_epsilon", 1e-6f);
  if (head_dim > 0) w.add<uint32_t>(a + ".attention.key_length", static_cast<uint32_t>(head_dim));
  if (arch.starts_with("granite")) w.add<float>(a + ".logit_scale", 8.0f);  // required
  std::vector<TensorSpec> specs = {{"token_embd.weight", {kEmbd, kVocab}}, {"output_norm.weight", {kEmbd}}};
  const bool qwen2 = arch == "qwen2" || arch == "qwen2moe", qwen3 = arch == "qwen3" || arch == "qwen3moe";
  const bool deepseek = arch == "deepseek" || latent;
  const bool phi3 = arch == "phi3", gemma = arch.starts_with("gemma"), moe = arch.ends_with("moe") || deepseek;
  // 2 of 4 experts per token, 32 wide (granitemoe: n_ff, whatever the width key says: llama.cpp does
  // not read it for granite); the shared experts (qwen2moe's gated, granitemoe's not) are kFf wide.
  constexpr int64_t kExperts = 4;
  const int64_t kFfExpert = arch == "granitemoe" ? kFf : 32;
  if (arch == "granitemoe") w.add<uint32_t>(a + ".expert_shared_feed_forward_length", kFf);
  if (moe) {
    w.add<uint32_t>(a + ".expert_count", kExperts);
    w.add<uint32_t>(a + ".expert_used_count", 2);
    w.add<uint32_t>(a + ".expert_feed_forward_length", 32);
  }
  if (deepseek) {  // layer 0 dense; layer 1 experts and one shared expert, 32 wide
    w.add<uint32_t>(a + ".expert_shared_count", 1);
    w.add<uint32_t>(a + ".leading_dense_block_count", 1);
  }
  for (int64_t i = 0; i < kLayers; ++i) {
    const auto n = [i](const char* what) { return fmt::format("blk.{}.{}", i, what); };
    specs.push_back({n("attn_norm.weight"), {kEmbd}});
    if (latent) {
      specs.push_back({n("attn_q.weight"), {kEmbd, kHead * (kNope + kRope)}});
      specs.push_back({n("attn_kv_a_mqa.weight"), {kEmbd, kLatent + kRope}});
      specs.push_back({n("attn_kv_a_norm.weight"), {kLatent}});
      specs.push_back({n("attn_k_b.weight"), {kNope, kLatent, kHead}});
      specs.push_back({n("attn_v_b.weight"), {kLatent, kV, kHead}});
      specs.push_back({n("attn_output.weight"), {kHead * kV, kEmbd}});
    } else if (phi3) {
      specs.push_back({n("attn_qkv.weight"), {kEmbd, (kHead + 2 * kHeadKv) * kHeadDim}});
      specs.push_back({n("ffn_up.weight"), {kEmbd, 2 * kFf}});
    } else {
      specs.push_back({n("attn_q.weight"), {kEmbd, kHead * kHeadDim}});
      specs.push_back({n("attn_k.weight"), {kEmbd, kHeadKv * kHeadDim}});
      specs.push_back({n("attn_v.weight"), {kEmbd, kHeadKv * kHeadDim}});
    }
    const bool experts = moe && !(deepseek && i == 0);
    if (experts) {
      specs.push_back({n("ffn_gate_inp.weight"), {kEmbd, kExperts}});
      specs.push_back({n("ffn_gate_exps.weight"), {kEmbd, kFfExpert, kExperts}});
      specs.push_back({n("ffn_up_exps.weight"), {kEmbd, kFfExpert, kExperts}});
      specs.push_back({n("ffn_down_exps.weight"), {kFfExpert, kEmbd, kExperts}});
    } else if (!phi3) {
      specs.push_back({n("ffn_gate.weight"), {kEmbd, kFf}});
      specs.push_back({n("ffn_up.weight"), {kEmbd, kFf}});
      specs.push_back({n("ffn_down.weight"), {kFf, kEmbd}});
    }
    if (arch == "qwen2moe" || arch == "granitemoe") {
      if (arch == "qwen2moe") specs.push_back({n("ffn_gate_inp_shexp.weight"), {kEmbd}});
      specs.push_back({n("ffn_gate_shexp.weight"), {kEmbd, kFf}});
      specs.push_back({n("ffn_up_shexp.weight"), {kEmbd, kFf}});
      specs.push_back({n("ffn_down_shexp.weight"), {kFf, kEmbd}});
    }
    if (deepseek && experts) {
      specs.push_back({n("ffn_gate_shexp.weight"), {kEmbd, kFfExpert}});
      specs.push_back({n("ffn_up_shexp.weight"), {kEmbd, kFfExpert}});
      specs.push_back({n("ffn_down_shexp.weight"), {kFfExpert, kEmbd}});
    }
    if (qwen2) {
      specs.push_back({n("attn_q.bias"), {kHead * kHeadDim}});
      specs.push_back({n("attn_k.bias"), {kHeadKv * kHeadDim}});
      specs.push_back({n("attn_v.bias"), {kHeadKv * kHeadDim}});
    }
    if (qwen3 || arch == "gemma3") {
      specs.push_back({n("attn_q_norm.weight"), {kHeadDim}});
      specs.push_back({n("attn_k_norm.weight"), {kHeadDim}});
    }
    if (arch == "gemma2" || arch == "gemma3") {
      specs.push_back({n("post_attention_norm.weight"), {kEmbd}});
      specs.push_back({n("post_ffw_norm.weight"), {kEmbd}});
    }
    if (!latent) specs.push_back({n("attn_output.weight"), {kHead * kHeadDim, kEmbd}});
    specs.push_back({n("ffn_norm.weight"), {kEmbd}});
    if (phi3) specs.push_back({n("ffn_down.weight"), {kFf, kEmbd}});
  }
  if (!gemma) specs.push_back({"output.weight", {kEmbd, kVocab}});  // Gemma ties its output
  if (edit) edit(specs);
  for (const TensorSpec& t : specs) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    std::vector<std::byte> data(static_cast<size_t>(n) * dtype_traits(t.dtype).block_bytes /
                                    static_cast<size_t>(dtype_traits(t.dtype).block_size),
                                std::byte{0x11});
    w.add_tensor(t.name, t.dtype, t.shape, data);
  }
  return {w.write_to_memory()};
}

Weights bind(const TinyModel& model) {
  const GgufFile file = model.file();
  return Weights::bind(file, ModelConfig::from_gguf(file));
}

void expect_error(const TinyModel& model, std::string_view text) {
  try {
    bind(model);
    ADD_FAILURE() << "no error mentioning " << text;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(Weights, EveryArchitecturesLayoutBinds) {
  for (std::string_view arch : {
#define EMBER_ARCH(id, gguf_name, reader) std::string_view(gguf_name),
#include "model/arch/arch_list.inc"
#undef EMBER_ARCH
       }) {
    SCOPED_TRACE(arch);
    const TinyModel model = tiny(arch);
    const Weights w = bind(model);
    ASSERT_EQ(w.layers.size(), 2u);
    const LayerWeights& l = w.layers[1];
    EXPECT_EQ(l.wqkv.data() != nullptr, arch == "phi3");
    EXPECT_EQ(l.wq.data() != nullptr, arch != "phi3");
    EXPECT_EQ(l.wk.data() != nullptr, arch != "phi3" && arch != "deepseek2");
    if (arch == "deepseek2") {  // latent attention: the per-head k_b / v_b tensors
      EXPECT_EQ(l.wk_b.ne(2), 4);
      EXPECT_EQ(l.wv_b.ne(1), 16);
      EXPECT_EQ(l.wo.ne(0), 64);
    }
    const bool moe = arch.ends_with("moe") || arch.starts_with("deepseek");
    EXPECT_EQ(l.w_gate.data() != nullptr, arch != "phi3" && !moe);
    EXPECT_EQ(l.w_down.data() != nullptr, !moe);
    EXPECT_EQ(l.bq.data() != nullptr, arch.starts_with("qwen2"));
    EXPECT_EQ(l.q_norm.data() != nullptr, arch.starts_with("qwen3") || arch == "gemma3");
    EXPECT_EQ(l.router.data() != nullptr, moe);
    EXPECT_EQ(l.shared_gate.data() != nullptr,
              arch == "qwen2moe" || arch == "granitemoe" || arch.starts_with("deepseek"));
    if (arch.starts_with("deepseek")) {  // expert_shared_count experts wide; layer 0 is a leading dense one
      EXPECT_EQ(l.shared_gate.ne(1), 32);
      EXPECT_NE(w.layers[0].w_down.data(), nullptr);
      EXPECT_EQ(w.layers[0].router.data(), nullptr);
    }
    EXPECT_EQ(l.shared_router.data() != nullptr, arch == "qwen2moe");
    if (moe) {
      EXPECT_EQ(l.expert_down.ne(0), arch == "granitemoe" ? 96 : 32);  // granitemoe: n_ff
      EXPECT_EQ(l.expert_down.ne(2), 4);
    }
    EXPECT_EQ(l.post_ffn_norm.data() != nullptr, arch == "gemma2" || arch == "gemma3");
    // Tied output: the output matrix is the embedding matrix itself, not a copy.
    EXPECT_EQ(w.output.data() == w.token_embd.data(), arch.starts_with("gemma"));
  }
}

TEST(Weights, QuantizedMatricesBind) {
  const TinyModel model = tiny("llama", [](std::vector<TensorSpec>& specs) {
    for (TensorSpec& t : specs) {
      if (t.shape.size() == 2 && t.name != "token_embd.weight") t.dtype = DType::kQ8_0;
    }
  });
  EXPECT_EQ(bind(model).layers[0].wq.dtype(), DType::kQ8_0);
}

TEST(Weights, HeadSizeOtherThanEmbdOverHeads) {
  // Qwen 3 style: 4 heads of 32 on a 64-wide model, so q is 128 wide and the output 128 -> 64.
  const TinyModel model = tiny(
      "qwen3",
      [](std::vector<TensorSpec>& specs) {
        for (TensorSpec& t : specs) {
          if (t.name.ends_with("attn_q.weight")) t.shape = {64, 128};
          if (t.name.ends_with("attn_k.weight") || t.name.ends_with("attn_v.weight")) t.shape = {64, 64};
          if (t.name.ends_with("attn_output.weight")) t.shape = {128, 64};
          if (t.name.ends_with("attn_q_norm.weight") || t.name.ends_with("attn_k_norm.weight")) t.shape = {32};
        }
      },
      /*head_dim=*/32);
  const Weights w = bind(model);
  EXPECT_EQ(w.layers[0].wq.ne(1), 128);
  EXPECT_EQ(w.layers[0].wo.ne(0), 128);
  EXPECT_EQ(w.layers[0].q_norm.ne(0), 32);
}

TEST(Weights, BadTensorsAreAnErrorNamingThem) {
  // A tensor ember would not use (here an output bias) is an error, not silently ignored.
  expect_error(tiny("llama",
                    [](std::vector<TensorSpec>& s) {
                      s.push_back({"blk.0.attn_output.bias", {64}});
                    }),
               "tensor blk.0.attn_output.bias is not used by ember's llama");
  expect_error(tiny("llama",
                    [](std::vector<TensorSpec>& s) {
                      std::erase_if(s, [](const TensorSpec& t) { return t.name == "blk.1.attn_k.weight"; });
                    }),
               "no tensor blk.1.attn_k.weight");
  expect_error(tiny("llama",
                    [](std::vector<TensorSpec>& s) {
                      for (TensorSpec& t : s) {
                        if (t.name == "blk.0.ffn_down.weight") t.shape = {64, 96};  // transposed
                      }
                    }),
               "blk.0.ffn_down.weight has shape [64, 96], the model's hyper-parameters want [96, 64]");
  expect_error(tiny("llama",
                    [](std::vector<TensorSpec>& s) {
                      for (TensorSpec& t : s) {
                        if (t.name == "blk.0.attn_norm.weight") t.dtype = DType::kF16;
                      }
                    }),
               "blk.0.attn_norm.weight is f16");
  expect_error(tiny("qwen2",
                    [](std::vector<TensorSpec>& s) {
                      std::erase_if(s, [](const TensorSpec& t) { return t.name == "blk.0.attn_v.bias"; });
                    }),
               "blk.0.attn_v.bias");
  expect_error(tiny("llama",
                    [](std::vector<TensorSpec>& s) {
                      std::erase_if(s, [](const TensorSpec& t) { return t.name == "output_norm.weight"; });
                    }),
               "output_norm.weight");
}

TEST(Weights, BadExpertTensorsAreAnErrorNamingThem) {
  expect_error(tiny("qwen3moe",
                    [](std::vector<TensorSpec>& s) {
                      for (TensorSpec& t : s) {
                        if (t.name == "blk.1.ffn_down_exps.weight") t.shape = {64, 32, 4};  // gate's shape
                      }
                    }),
               "blk.1.ffn_down_exps.weight has shape [64, 32, 4], the model's hyper-parameters want [32, 64, 4]");
  expect_error(tiny("qwen3moe",
                    [](std::vector<TensorSpec>& s) {
                      for (TensorSpec& t : s) {
                        if (t.name == "blk.0.ffn_gate_inp.weight") t.shape = {64, 8};  // 8 experts, not 4
                      }
                    }),
               "blk.0.ffn_gate_inp.weight has shape [64, 8]");
  expect_error(tiny("qwen2moe",
                    [](std::vector<TensorSpec>& s) {
                      std::erase_if(s, [](const TensorSpec& t) { return t.name == "blk.0.ffn_up_shexp.weight"; });
                    }),
               "no tensor blk.0.ffn_up_shexp.weight");
  // Old conversions kept one tensor per expert (blk.N.ffn_gate.E.weight): say so, not just "missing".
  expect_error(tiny("qwen3moe",
                    [](std::vector<TensorSpec>& s) {
                      std::erase_if(s, [](const TensorSpec& t) { return t.name == "blk.0.ffn_gate_exps.weight"; });
                      s.push_back({"blk.0.ffn_gate.0.weight", {64, 32}});
                    }),
               "blk.0.ffn_gate.0.weight is one expert's own tensor (an old conversion)");
  // Newer conversions may merge the experts' gate and up: a clear refusal, not "missing".
  expect_error(tiny("qwen3moe",
                    [](std::vector<TensorSpec>& s) {
                      std::erase_if(s, [](const TensorSpec& t) {
                        return t.name == "blk.0.ffn_gate_exps.weight" || t.name == "blk.0.ffn_up_exps.weight";
                      });
                      s.push_back({"blk.0.ffn_gate_up_exps.weight", {64, 64, 4}});
                    }),
               "blk.0.ffn_gate_up_exps.weight holds the experts' gate and up in one tensor");
  // A dense FFN beside the experts is a variant ember does not run.
  expect_error(tiny("qwen3moe",
                    [](std::vector<TensorSpec>& s) {
                      s.push_back({"blk.1.ffn_down.weight", {96, 64}});
                    }),
               "tensor blk.1.ffn_down.weight is not used by ember's qwen3moe");
}

}  // namespace
}  // namespace ember
