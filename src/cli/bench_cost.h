// What one token costs a model in `ember bench`'s units: the bytes a decode step reads (matmul
// weights and, at a depth, the KV cache: GB/s) and the FLOPs of a prefill token (GFLOP/s),
// attention windows included.
#pragma once

#include <cstdint>
#include <vector>

#include "model/kv_cache.h"
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
    uint64_t kv_bytes_per_position = 0;  // one position's K and V rows in the cache (0: not counted)
  };
  std::vector<Layer> attention;  // one per layer
};

// The model's costs; with `kv`, each layer's K and V bytes per position in that cache.
ModelCost model_cost(const Model& model, const KvCache* kv = nullptr);

// Positions the tokens at positions [first, first + n) attend to, summed: min(p + 1, window) each
// (window 0: p + 1).
double positions_seen(int64_t window, int64_t first, int64_t n);

// FLOPs per prompt token of a prefill of n tokens after `depth` tokens already in the cache: 2 per
// matmul weight (less the output matrix) plus each layer's attention over the positions a token
// sees, on average.
double prefill_flop_per_token(const ModelCost& cost, int64_t n, int64_t depth = 0);

// Bytes per token of n decode steps after `depth` tokens: the matmul weights plus each layer's K
// and V rows of the positions a token attends to, on average.
double decode_bytes_per_token(const ModelCost& cost, int64_t n, int64_t depth = 0);

}  // namespace ember::cli
