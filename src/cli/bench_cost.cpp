// ModelCost: the weight bytes and FLOPs `ember bench` divides its timings by.
#include "cli/bench_cost.h"

namespace ember::cli {

ModelCost model_cost(const Model& model, const KvCache* kv) {
  ModelCost cost;
  const auto add = [&cost](const TensorView& t) {
    if (t.data() == nullptr) return;
    cost.matmul_bytes += t.n_bytes();
    cost.matmul_params += static_cast<uint64_t>(t.n_elements());
  };
  // A token of a mixture of experts reads (and multiplies by) only the experts it is routed to.
  const auto add_used_experts = [&cost, n_used = model.config().moe.n_used](const TensorView& t) {
    if (t.data() == nullptr) return;
    cost.matmul_bytes += t.nb(2) * static_cast<uint64_t>(n_used);
    cost.matmul_params += static_cast<uint64_t>(t.ne(0) * t.ne(1)) * static_cast<uint64_t>(n_used);
  };
  for (const LayerWeights& l : model.weights().layers) {
    for (const TensorView* t :
         {&l.wq, &l.wk, &l.wv, &l.wqkv, &l.wq_a, &l.wq_b, &l.wkv_a, &l.wk_b, &l.wv_b, &l.wkv_b, &l.wo, &l.w_gate,
          &l.w_up, &l.w_down, &l.router, &l.shared_router, &l.shared_gate, &l.shared_up, &l.shared_down}) {
      add(*t);
    }
    for (const TensorView* t : {&l.expert_gate, &l.expert_up, &l.expert_down}) add_used_experts(*t);
  }
  add(model.weights().output);
  if (model.weights().output.data() != nullptr) {
    cost.output_params = static_cast<uint64_t>(model.weights().output.n_elements());
  }
  const ModelConfig& c = model.config();
  const auto per_position = static_cast<uint64_t>(c.n_head) *
                            (2u * static_cast<uint64_t>(c.head_dim) + 2u * static_cast<uint64_t>(c.head_dim_v));
  for (size_t l = 0; l < c.layers.size(); ++l) {
    uint64_t kv_bytes = 0;
    if (kv != nullptr) {
      const PagedKvView view = kv->layer(static_cast<int32_t>(l));
      // Latent attention keeps no V pool (V is read from the K rows: v == k): one row per position.
      const size_t v_bytes = view.v != view.k ? view.v_layout().block_bytes() : 0;
      kv_bytes = (view.k_layout().block_bytes() + v_bytes) / kKvBlockTokens;
    }
    cost.attention.push_back({per_position, c.layers[l].sliding_window, kv_bytes});
  }
  return cost;
}

double positions_seen(int64_t window, int64_t first, int64_t n) {
  // Sum over p in [0, m) of min(p + 1, window): a triangle, then a flat run of `window`s.
  const auto prefix = [window](int64_t m) {
    const auto md = static_cast<double>(m);
    if (window <= 0 || m <= window) return md * (md + 1) / 2;
    const auto w = static_cast<double>(window);
    return w * (w + 1) / 2 + (md - w) * w;
  };
  return prefix(first + n) - prefix(first);
}

double prefill_flop_per_token(const ModelCost& cost, int64_t n, int64_t depth) {
  double flop = 2.0 * (static_cast<double>(cost.matmul_params) - static_cast<double>(cost.output_params));
  if (n <= 0) return flop;
  for (const ModelCost::Layer& layer : cost.attention) {
    flop +=
        static_cast<double>(layer.flop_per_position) * positions_seen(layer.window, depth, n) / static_cast<double>(n);
  }
  return flop;
}

double decode_bytes_per_token(const ModelCost& cost, int64_t n, int64_t depth) {
  double bytes = static_cast<double>(cost.matmul_bytes);
  if (n <= 0) return bytes;
  for (const ModelCost::Layer& layer : cost.attention) {
    bytes += static_cast<double>(layer.kv_bytes_per_position) * positions_seen(layer.window, depth, n) /
             static_cast<double>(n);
  }
  return bytes;
}

}  // namespace ember::cli
