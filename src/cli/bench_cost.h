// What one token costs a model in `ember bench`'s units: the matmul weight bytes a decode step
// reads (GB/s) and the FLOPs of a prefill token (GFLOP/s), attention windows included.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model.h"

namespace ember::cli {

struct ModelCost {
  // Every layer's matrices (of a mixture of experts: the n_used experts a token takes) and the
  // output matrix.
  uint64_t matmul_bytes = 0;
  uint64_t matmul_params = 0;  // the same in weights (2 FLOP each per token)
  uint64_t output_params = 0;  // the output matrix's share (prefill computes it for one row only)
  struct Layer {
    uint64_t flop_per_position = 0;  // n_head · (2 · head_dim + 2 · head_dim_v): QKᵀ and PV
    int64_t window = 0;              // positions a token attends to at most, its own included (0: all up to its own)
  };
  std::vector<Layer> attention;  // one per layer
};

ModelCost model_cost(const Model& model);

// FLOPs per prompt token of a prefill of n tokens from position 0: 2 per matmul weight (less the
// output matrix) plus each layer's attention over the positions a token sees, on average.
double prefill_flop_per_token(const ModelCost& cost, int64_t n);

}  // namespace ember::cli
