// ModelCost: the weight bytes and FLOPs `ember bench` divides its timings by.
#include "cli/bench_cost.h"

#include <algorithm>

namespace ember::cli {

ModelCost model_cost(const Model& model) {
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
  for (const LayerConfig& layer : c.layers) cost.attention.push_back({per_position, layer.sliding_window});
  return cost;
}

double prefill_flop_per_token(const ModelCost& cost, int64_t n) {
  double flop = 2.0 * (static_cast<double>(cost.matmul_params) - static_cast<double>(cost.output_params));
  if (n <= 0) return flop;
  const auto nd = static_cast<double>(n);
  for (const ModelCost::Layer& layer : cost.attention) {
    // Token i (from 0) sees min(i + 1, window) positions: the mean over the n tokens.
    const double w = layer.window > 0 ? static_cast<double>(std::min(layer.window, n)) : nd;
    const double seen = (w * (w + 1) / 2 + (nd - w) * w) / nd;
    flop += static_cast<double>(layer.flop_per_position) * seen;
  }
  return flop;
}

}  // namespace ember::cli
