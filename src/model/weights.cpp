// Weights::bind: the GGUF tensor names of llama.cpp's converters, looked up and checked.
#include "model/weights.h"

#include <fmt/format.h>

#include <initializer_list>
#include <string>
#include <unordered_set>

#include "ember/error.h"
#include "quant/quant_traits.h"

namespace ember {
namespace {

enum class Kind {
  kNorm,    // a vector of F32 (norm weights, biases)
  kMatmul,  // a matrix the CPU backend multiplies in its stored type
  kRows,    // a matrix whose rows are gathered (token embeddings): any dequantizable type
};

class Binder {
 public:
  explicit Binder(const GgufModelFiles& model) : model_(model), file_(model.metadata_file()) {}

  bool has(const std::string& name) const { return model_.find_tensor(name) != nullptr; }
  std::string_view file_name() const { return file_.name(); }

  TensorView bind(const std::string& name, Kind kind, std::initializer_list<int64_t> shape) {
    const GgufModelFiles::Tensor* found = model_.find_tensor(name);
    if (found == nullptr) fail(ErrorCode::kNotFound, "{}: the model has no tensor {}", file_.name(), name);
    const GgufTensorInfo* info = found->info;
    used_.insert(info->name);
    bool same = static_cast<size_t>(info->n_dims) == shape.size();
    size_t d = 0;
    for (int64_t n : shape) same = same && info->ne[d++] == n;
    if (!same) {
      fail(ErrorCode::kFormat, "{}: tensor {} has shape [{}], the model's hyper-parameters want [{}]", file_.name(),
           name, fmt::join(info->shape(), ", "), fmt::join(shape, ", "));
    }
    const QuantTraits* traits = find_quant_traits(info->dtype);
    const bool usable = kind == Kind::kNorm     ? info->dtype == DType::kF32
                        : kind == Kind::kMatmul ? traits != nullptr && traits->vec_dot != nullptr
                                                : traits != nullptr;
    if (!usable) {
      fail(ErrorCode::kUnsupported, "{}: tensor {} is {}, which ember cannot use there ({})", file_.name(), name,
           dtype_name(info->dtype),
           kind == Kind::kNorm ? "norm weights and biases must be f32" : "no matrix kernels for that type");
    }
    return found->file->tensor_view(*info);
  }

  // Every tensor of the file must have been bound (or read by the config): one left over means a
  // variant of the architecture ember would silently run wrong (an output bias, say).
  void check_all_used(std::string_view arch) const {
    for (const GgufModelFiles::Tensor& tensor : model_.tensors()) {
      const GgufTensorInfo& t = *tensor.info;
      if (used_.contains(t.name) || t.name == "rope_freqs.weight" || t.name == "rope_factors_long.weight" ||
          t.name == "rope_factors_short.weight") {
        continue;
      }
      fail(ErrorCode::kUnsupported,
           "{}: tensor {} is not used by ember's {} (a variant of the architecture ember "
           "does not support)",
           tensor.file->name(), t.name, arch);
    }
  }

 private:
  const GgufModelFiles& model_;
  const GgufFile& file_;  // the first part: named in errors about the model as a whole
  std::unordered_set<std::string_view> used_;
};

// A mixture-of-experts layer's router, experts (merged into one tensor per matrix, expert e at
// index e of ne[2], as llama.cpp's converters write them) and shared expert.
void bind_experts(Binder& b, const ModelConfig& c, int32_t il, LayerWeights& l) {
  const auto name = [il](std::string_view what) { return fmt::format("blk.{}.{}", il, what); };
  const MoeConfig& moe = c.moe;
  const int64_t embd = c.n_embd;
  if (!b.has(name("ffn_gate_exps.weight")) && b.has(name("ffn_gate.0.weight"))) {
    fail(ErrorCode::kUnsupported,
         "{}: {} is one expert's own tensor (an old conversion); convert the model again with a current "
         "llama.cpp, which merges them into ffn_gate_exps / ffn_up_exps / ffn_down_exps",
         b.file_name(), name("ffn_gate.0.weight"));
  }
  if (b.has(name("ffn_gate_up_exps.weight"))) {
    fail(ErrorCode::kUnsupported,
         "{}: {} holds the experts' gate and up in one tensor, a layout ember does not read yet; convert the "
         "model without merging them (separate ffn_gate_exps / ffn_up_exps)",
         b.file_name(), name("ffn_gate_up_exps.weight"));
  }
  l.router = b.bind(name("ffn_gate_inp.weight"), Kind::kMatmul, {embd, moe.n_expert});
  if (moe.selection_bias) l.selection_bias = b.bind(name("exp_probs_b.bias"), Kind::kNorm, {moe.n_expert});
  l.expert_gate = b.bind(name("ffn_gate_exps.weight"), Kind::kMatmul, {embd, moe.n_ff_expert, moe.n_expert});
  l.expert_up = b.bind(name("ffn_up_exps.weight"), Kind::kMatmul, {embd, moe.n_ff_expert, moe.n_expert});
  l.expert_down = b.bind(name("ffn_down_exps.weight"), Kind::kMatmul, {moe.n_ff_expert, embd, moe.n_expert});
  if (moe.n_ff_shared > 0) {
    if (moe.shared_gated) l.shared_router = b.bind(name("ffn_gate_inp_shexp.weight"), Kind::kMatmul, {embd});
    l.shared_gate = b.bind(name("ffn_gate_shexp.weight"), Kind::kMatmul, {embd, moe.n_ff_shared});
    l.shared_up = b.bind(name("ffn_up_shexp.weight"), Kind::kMatmul, {embd, moe.n_ff_shared});
    l.shared_down = b.bind(name("ffn_down_shexp.weight"), Kind::kMatmul, {moe.n_ff_shared, embd});
  }
}

// Multi-head latent attention's tensors (MlaConfig), in llama.cpp's shapes.
void bind_latent_attention(Binder& b, const ModelConfig& c, int32_t i, LayerWeights& l) {
  const auto name = [i](std::string_view what) { return fmt::format("blk.{}.{}", i, what); };
  const MlaConfig& mla = c.mla;
  const int64_t embd = c.n_embd, n_rot = c.rope.n_rot;
  const int64_t q_rows = int64_t{c.n_head} * (mla.nope_dim + n_rot);
  if (mla.q_lora_rank > 0) {
    l.wq_a = b.bind(name("attn_q_a.weight"), Kind::kMatmul, {embd, mla.q_lora_rank});
    l.q_a_norm = b.bind(name("attn_q_a_norm.weight"), Kind::kNorm, {mla.q_lora_rank});
    l.wq_b = b.bind(name("attn_q_b.weight"), Kind::kMatmul, {mla.q_lora_rank, q_rows});
  } else {
    l.wq = b.bind(name("attn_q.weight"), Kind::kMatmul, {embd, q_rows});
  }
  l.wkv_a = b.bind(name("attn_kv_a_mqa.weight"), Kind::kMatmul, {embd, mla.kv_lora_rank + n_rot});
  l.kv_a_norm = b.bind(name("attn_kv_a_norm.weight"), Kind::kNorm, {mla.kv_lora_rank});
  if (mla.merged_kv_b) {  // head h's rows: nope_dim of W_UK, then v_dim of W_UV
    l.wkv_b = b.bind(name("attn_kv_b.weight"), Kind::kMatmul,
                     {mla.kv_lora_rank, int64_t{c.n_head} * (mla.nope_dim + mla.v_dim)});
  } else {
    l.wk_b = b.bind(name("attn_k_b.weight"), Kind::kMatmul, {mla.nope_dim, mla.kv_lora_rank, c.n_head});
    l.wv_b = b.bind(name("attn_v_b.weight"), Kind::kMatmul, {mla.kv_lora_rank, mla.v_dim, c.n_head});
  }
  l.wo = b.bind(name("attn_output.weight"), Kind::kMatmul, {int64_t{c.n_head} * mla.v_dim, embd});
}

}  // namespace

Weights Weights::bind(const GgufFile& file, const ModelConfig& c) { return bind(GgufModelFiles::view(file), c); }

Weights Weights::bind(const GgufModelFiles& model, const ModelConfig& c) {
  const GgufFile& file = model.metadata_file();
  Binder b(model);
  const int64_t embd = c.n_embd;
  const int64_t q_dim = int64_t{c.n_head} * c.head_dim;
  const int64_t k_dim = int64_t{c.n_head_kv} * c.head_dim;
  const int64_t v_dim = int64_t{c.n_head_kv} * c.head_dim_v;
  const int64_t o_dim = int64_t{c.n_head} * c.head_dim_v;

  Weights w;
  w.token_embd = b.bind("token_embd.weight", Kind::kRows, {embd, c.n_vocab});
  w.output_norm = b.bind("output_norm.weight", Kind::kNorm, {embd});
  w.output = c.tied_output ? w.token_embd : b.bind("output.weight", Kind::kMatmul, {embd, c.n_vocab});
  if (c.tied_output && find_quant_traits(w.token_embd.dtype())->vec_dot == nullptr) {
    fail(ErrorCode::kUnsupported,
         "{}: token_embd.weight doubles as the output matrix but is {}, which ember cannot "
         "multiply",
         file.name(), dtype_name(w.token_embd.dtype()));
  }

  w.layers.resize(static_cast<size_t>(c.n_layer));
  for (int32_t i = 0; i < c.n_layer; ++i) {
    LayerWeights& l = w.layers[static_cast<size_t>(i)];
    const auto name = [i](std::string_view what) { return fmt::format("blk.{}.{}", i, what); };
    l.attn_norm = b.bind(name("attn_norm.weight"), Kind::kNorm, {embd});
    if (c.mla.kv_lora_rank > 0) {
      bind_latent_attention(b, c, i, l);
    } else if (b.has(name("attn_qkv.weight"))) {
      l.wqkv = b.bind(name("attn_qkv.weight"), Kind::kMatmul, {embd, q_dim + k_dim + v_dim});
    } else {
      l.wq = b.bind(name("attn_q.weight"), Kind::kMatmul, {embd, q_dim});
      l.wk = b.bind(name("attn_k.weight"), Kind::kMatmul, {embd, k_dim});
      l.wv = b.bind(name("attn_v.weight"), Kind::kMatmul, {embd, v_dim});
    }
    if (c.attn_qkv_bias) {
      l.bq = b.bind(name("attn_q.bias"), Kind::kNorm, {q_dim});
      l.bk = b.bind(name("attn_k.bias"), Kind::kNorm, {k_dim});
      l.bv = b.bind(name("attn_v.bias"), Kind::kNorm, {v_dim});
    }
    if (c.attn_qk_norm) {
      l.q_norm = b.bind(name("attn_q_norm.weight"), Kind::kNorm, {c.head_dim});
      l.k_norm = b.bind(name("attn_k_norm.weight"), Kind::kNorm, {c.head_dim});
    }
    if (c.mla.kv_lora_rank == 0) l.wo = b.bind(name("attn_output.weight"), Kind::kMatmul, {o_dim, embd});
    l.ffn_norm = b.bind(name("ffn_norm.weight"), Kind::kNorm, {embd});
    const bool experts = c.layer_has_experts(static_cast<int32_t>(i));
    if (experts) {
      bind_experts(b, c, i, l);
    } else if (b.has(name("ffn_gate.weight"))) {
      l.w_gate = b.bind(name("ffn_gate.weight"), Kind::kMatmul, {embd, c.n_ff});
      l.w_up = b.bind(name("ffn_up.weight"), Kind::kMatmul, {embd, c.n_ff});
    } else {
      l.w_up = b.bind(name("ffn_up.weight"), Kind::kMatmul, {embd, 2 * int64_t{c.n_ff}});  // [gate; up]
    }
    if (!experts) l.w_down = b.bind(name("ffn_down.weight"), Kind::kMatmul, {c.n_ff, embd});
    if (c.post_norms) {
      l.post_attn_norm = b.bind(name("post_attention_norm.weight"), Kind::kNorm, {embd});
      l.post_ffn_norm = b.bind(name("post_ffw_norm.weight"), Kind::kNorm, {embd});
    }
  }
  b.check_all_used(arch_name(c.arch));
  return w;
}

}  // namespace ember
