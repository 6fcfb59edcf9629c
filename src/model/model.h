// Model: a GGUF transformer ready to run on the CPU backend — config, weights bound to the mapped
// file (matmul weights prepared, and repacked for the GEMM where the backend does so), RoPE
// tables, step scratch sized once for the largest step — and its batch-first forward pass
// (DESIGN.md §2-3): one call runs any mix of prefill chunks and decode tokens of several
// sequences over the paged KV cache.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/rope.h"
#include "gguf/gguf_reader.h"
#include "model/batch.h"
#include "model/gpu_layers.h"
#include "model/hooks.h"
#include "model/kv_cache.h"
#include "model/latent_attention.h"
#include "model/model_config.h"
#include "model/moe.h"
#include "model/transformer_layer.h"
#include "model/weights.h"

namespace ember {

// The context a run gets when none is asked for: the model's training context, but no more than
// this (a 128k context would allocate gigabytes of KV cache for a short run).
inline constexpr int32_t kDefaultMaxContext = 4096;
// `requested` when > 0, else the training context (`trained`, 0 when unknown) capped at
// kDefaultMaxContext.
inline int32_t resolve_context(int32_t requested, int32_t trained) noexcept {
  if (requested > 0) return requested;
  return trained > 0 && trained < kDefaultMaxContext ? trained : kDefaultMaxContext;
}

struct ModelOptions {
  // Rows one internal step processes (a longer Batch runs as consecutive steps of this many); all
  // step scratch is sized for it at load.
  int32_t max_step_tokens = 512;
  // The context the caller will run (tokens per sequence); 0 = the model's training context. Picks
  // Phi-3 LongRoPE's long factors when it exceeds the original context, as llama.cpp does.
  int32_t context_size = 0;
  // Every row's outputs (logits, hidden states) bit-identical whatever else shares its batch and
  // however its sequence was chunked into steps — alone or beside other sequences' decode rows and
  // prefill chunks — so a seeded request reproduces under any server load. Costs: the matmul
  // weights whose packed GEMM differs from the GEMV by row count (F16 / BF16 panels, and every
  // packed type off avx512) are not repacked, so prefill runs them on the GEMV path; attention
  // never splits a long decode context across threads (split-K). See prepare_weights().
  bool batch_invariant = false;
  // Repack the output matrix (the LM head) for the GEMM too. Off, a step's logits rows run the GEMV:
  // right when a step wants one or a few (one per sequence of a session); a server decoding dozens
  // of sequences per step wants the GEMM (measured: 64 decode rows of smollm-135m Q8_0 spent ~45 % of
  // the step in the LM head's GEMV). Costs a packed copy of the matrix (n_vocab x n_embd).
  bool repack_output = false;
  // Hybrid offload (llama.cpp's -ngl): the last gpu_layers layers run on the CUDA backend, the rest
  // on the CPU; more than n_layer (or kGpuLayersAll) offloads the output norm and LM head too.
  // 0: CPU only. Needs a build with CUDA and a usable GPU (else Error(kUnsupported)).
  int32_t gpu_layers = 0;
  int32_t gpu_device = 0;  // CUDA device index
  MapOptions map;          // mlock / populate of the weights mapping
};
// ModelOptions::gpu_layers for every layer and the output head.
inline constexpr int32_t kGpuLayersAll = -1;

// One layer's matmul weights as the CPU backend runs them.
using LayerLinears = LayerLinearsOf<Linear>;

class Model {
 public:
  // Maps and validates `path` (any part of a split model opens every part). Throws Error naming the
  // file and the key or tensor at fault.
  static std::unique_ptr<Model> load(const std::string& path, CpuBackend& backend, const ModelOptions& options = {});
  // The same over opened files (a split model's parts, or one file).
  static std::unique_ptr<Model> from_files(GgufModelFiles files, CpuBackend& backend, const ModelOptions& options = {});
  // The same over a parsed file (tests build models in memory; its bytes must outlive the Model).
  static std::unique_ptr<Model> from_file(GgufFile file, CpuBackend& backend, const ModelOptions& options = {});

  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // The model's metadata (the first part of a split model).
  const GgufFile& file() const noexcept { return files_.metadata_file(); }
  // Every part.
  const GgufModelFiles& files() const noexcept { return files_; }
  const ModelConfig& config() const noexcept { return config_; }
  const Weights& weights() const noexcept { return weights_; }
  const ModelOptions& options() const noexcept { return options_; }
  CpuBackend& backend() const noexcept { return backend_; }
  Hooks& hooks() noexcept { return hooks_; }
  // The offloaded layers (nullptr when the model runs on the CPU only).
  const GpuLayers* gpu() const noexcept { return gpu_.get(); }

  // Bytes of the tensors the model reads in place from the mapping, and of its total parameters.
  uint64_t weight_bytes() const noexcept { return weight_bytes_; }
  // Bytes of the weights the CPU layers made at load from the file's, beside the mapping (an older
  // DeepSeek file's attn_kv_b: each head's transposed k_b); repacked copies are the backend's.
  uint64_t derived_weight_bytes() const noexcept;
  uint64_t parameter_count() const noexcept { return parameter_count_; }

  // A KV cache for this model: `n_tokens` positions in total (rounded up to whole blocks) shared by
  // every sequence.
  KvCacheOptions kv_options(int64_t n_tokens, DType k_dtype = DType::kF16, DType v_dtype = DType::kF16) const;

  // Runs the batch: stores every row's K/V in `kv` (sequences grow by their rows) and returns the
  // logits of the rows that asked for them (Batch::kLogits), [n_logits][n_vocab] in batch order,
  // valid until the next forward(); the Batch::kHidden rows' hidden states are in hidden(), the
  // Batch::kToken rows' greedy tokens in tokens(), the Batch::kTopK rows' best logits in top_k().
  // Each sequence's rows must continue it: positions kv.n_tokens(seq), +1, ... in batch order.
  // Throws Error(kInvalidArgument) for an inconsistent batch (bad token id, unknown sequence, a
  // position that does not continue its sequence, an output kind other than 0 to 4, kTopK rows with
  // top_k outside 1..min(kMaxTopK, n_vocab)) and Error(kOutOfMemory) when the KV cache has no room;
  // both before anything is computed or stored. Should a hook throw mid-batch, every sequence is
  // truncated back to its length before the batch and the exception propagates.
  std::span<const float> forward(const Batch& batch, KvCache& kv);
  // The final-normed hidden states (after the output norm and any kFinalNorm hook, before the LM
  // head) of the last forward()'s Batch::kHidden rows, [n_hidden][n_embd] in batch order; valid
  // until the next forward(). Embeddings pool these (mean / last / cls) in the engine.
  std::span<const float> hidden() const noexcept {
    return {final_hidden_.data(), n_hidden_ * static_cast<size_t>(config_.n_embd)};
  }
  // The greedy tokens of the last forward()'s Batch::kToken rows, in batch order; valid until the
  // next forward().
  std::span<const int32_t> tokens() const noexcept { return {tokens_.data(), n_tokens_}; }
  // The best logits of the last forward()'s Batch::kTopK rows, [n_top_rows][batch.top_k] in batch
  // order; valid until the next forward().
  std::span<const TopCandidate> top_k() const noexcept { return {top_.data(), n_top_}; }

 private:
  Model(GgufModelFiles files, CpuBackend& backend, const ModelOptions& options);
  void prepare_weights();
  int32_t gpu_first_layer() const noexcept;  // n_layer when no layer is offloaded
  bool gpu_output() const noexcept;
  void size_scratch();
  void check_batch(const Batch& batch, const KvCache& kv);
  void reserve_cache(KvCache& kv) const;
  void run_step(const Batch& batch, size_t r0, size_t r1, KvCache& kv);
  void output_rows(const Batch& batch, size_t r0, size_t r1);
  void gpu_output_rows(const Batch& batch, size_t r0, size_t r1);
  void run_hook(HookPoint point, int32_t layer, float* data, int64_t n_rows, int64_t n_cols,
                std::span<const int32_t> rows);

  GgufModelFiles files_;
  CpuBackend& backend_;
  ModelOptions options_;
  ModelConfig config_;
  Weights weights_;
  std::vector<LayerLinears> linears_;                   // the attention's, and a dense FFN's
  std::vector<MoeLinears> moe_;                         // per CPU layer: its experts (empty for a dense layer)
  std::vector<LatentLinearsOf<Linear>> latent_;         // per CPU layer: latent attention's (empty otherwise)
  std::vector<std::vector<std::byte>> owned_matrices_;  // weights made at load (a merged attn_kv_b's k_b)
  Linear output_;
  std::optional<RopeTable> rope_;        // nullopt: no rotary dims
  std::optional<RopeTable> rope_local_;  // Gemma 3's local layers
  LayerStep layer_step_;                 // the RoPE and invariance traits every step shares
  std::unique_ptr<GpuLayers> gpu_;       // the offloaded layers (nullptr: CPU only)
  uint64_t weight_bytes_ = 0;
  uint64_t parameter_count_ = 0;
  Hooks hooks_;

  // Batch state: its sequences, their lengths before it and their rows in it.
  std::vector<SeqId> batch_seqs_;
  std::vector<int32_t> batch_start_;
  std::vector<int32_t> batch_rows_;
  // Step state: the sequences of the current step (their KV views) and its rows.
  std::vector<KvSeq> kv_seqs_;
  std::vector<SeqId> kv_seq_ids_;
  std::vector<KvRow> kv_rows_;
  std::vector<int32_t> positions_;
  std::vector<int32_t> row_ids_;  // batch row of each step row / each wanted row

  // Step scratch, [max_step_tokens] rows each (floats).
  std::vector<float> x_;    // residual stream [n_embd]
  std::vector<float> xn_;   // normed input [n_embd]
  std::vector<float> qkv_;  // fused projection output [q + k + v]
  std::vector<float> q_, k_, v_;
  std::vector<float> attn_;            // attention output [n_head * head_dim]
  std::vector<float> proj_;            // block output [n_embd]
  std::vector<float> gate_up_;         // [2 * n_ff]
  std::vector<float> hidden_;          // [n_ff]
  std::vector<float> latent_scratch_;  // latent attention's LatentBuffers, one block (carve_latent_buffers)
  LatentBuffers latent_buffers_;
  MoeScratch moe_scratch_;            // a mixture-of-experts FFN's (unsized for a dense model)
  std::vector<float> cos_sin_;        // [rows][n_rot] of rope_
  std::vector<float> cos_sin_local_;  // [rows][n_rot] of rope_local_
  std::vector<float> logits_;         // [logits rows (+ token and top-k rows on the host path)][n_vocab], grows
  size_t n_logits_ = 0;               // rows of logits_ filled by this forward()
  std::vector<float> final_hidden_;   // [hidden rows][n_embd], grows to the largest request
  size_t n_hidden_ = 0;               // rows of final_hidden_ filled by this forward()
  std::vector<int32_t> tokens_;       // [token rows], grows to the largest request
  size_t n_tokens_ = 0;               // entries of tokens_ filled by this forward()
  std::vector<int32_t> token_rows_;   // gpu_output_rows' step-local kToken rows
  std::vector<TopCandidate> top_;     // [top rows][batch top_k], grows to the largest request
  size_t n_top_ = 0;                  // entries of top_ filled by this forward()
  std::vector<int32_t> top_rows_;     // gpu_output_rows' step-local kTopK rows
};

}  // namespace ember
