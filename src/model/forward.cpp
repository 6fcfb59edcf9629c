// Model::forward: the batch-first forward pass (DESIGN.md §2-3). Every row of a step goes through
// the same matmuls; attention reads each row's own sequence through the paged KV cache. Reads top
// to bottom like the math: embeddings, then per layer x += attn(norm(x)), x += ffn(norm(x)), then
// the output norm and the logits (or greedy tokens, best logits, or hidden states) of the rows that
// want them.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "core/check.h"
#include "ember/error.h"
#include "model/decoder_layer.h"
#include "model/model.h"
#include "model/top_candidates.h"

namespace ember {
namespace {

int64_t index_of(const std::vector<SeqId>& ids, SeqId id) {
  const auto it = std::find(ids.begin(), ids.end(), id);
  return it == ids.end() ? -1 : it - ids.begin();
}

// Batch::kToken's rule over the backend's argmax (the first of the largest; NaN only when every
// value is): a row with no number above -inf gives -1.
int32_t greedy_token(const CpuBackend& backend, const float* row, int64_t n) {
  const int64_t best = backend.argmax(row, n);
  return row[best] > -std::numeric_limits<float>::infinity() ? static_cast<int32_t>(best) : -1;
}

}  // namespace

void Model::check_batch(const Batch& batch, const KvCache& kv) {
  const size_t n = batch.size();
  if (batch.pos.size() != n || batch.seq.size() != n || batch.logits.size() != n) {
    fail(ErrorCode::kInvalidArgument, "batch: {} tokens but {} positions, {} sequence ids and {} output kinds", n,
         batch.pos.size(), batch.seq.size(), batch.logits.size());
  }
  const int32_t device_layers = gpu_ ? gpu_->first_layer() : config_.n_layer;
  if (kv.first_device_layer() != device_layers) {
    fail(ErrorCode::kInvalidArgument,
         "the KV cache keeps layers {}.. on the GPU but the model runs layers {}.. there (make it with "
         "Model::kv_options)",
         kv.first_device_layer(), device_layers);
  }
  // The batch's sequences, their length before it and their rows in it (a sequence's rows must
  // continue it in order).
  batch_seqs_.clear();
  batch_start_.clear();
  batch_rows_.clear();
  for (size_t i = 0; i < n; ++i) {
    if (batch.tokens[i] < 0 || batch.tokens[i] >= config_.n_vocab) {
      fail(ErrorCode::kInvalidArgument, "batch row {}: token id {} is outside the vocabulary [0, {})", i,
           batch.tokens[i], config_.n_vocab);
    }
    if (batch.logits[i] > Batch::kTopK) {
      fail(ErrorCode::kInvalidArgument,
           "batch row {}: output kind {} is not 0 (none), 1 (logits), 2 (hidden state), 3 (greedy token) or 4 (top "
           "k)",
           i, batch.logits[i]);
    }
    if (batch.logits[i] == Batch::kTopK &&
        (batch.top_k < 1 || batch.top_k > std::min(Batch::kMaxTopK, config_.n_vocab))) {
      fail(ErrorCode::kInvalidArgument, "batch row {}: top_k {} is not 1 to {}", i, batch.top_k,
           std::min(Batch::kMaxTopK, config_.n_vocab));
    }
    const SeqId seq = batch.seq[i];
    int64_t at = index_of(batch_seqs_, seq);
    if (at < 0) {
      if (!kv.contains(seq)) fail(ErrorCode::kInvalidArgument, "batch row {}: no sequence {} in the KV cache", i, seq);
      batch_seqs_.push_back(seq);
      batch_start_.push_back(kv.n_tokens(seq));
      batch_rows_.push_back(0);
      at = static_cast<int64_t>(batch_seqs_.size()) - 1;
    }
    const auto a = static_cast<size_t>(at);
    const int64_t expected = int64_t{batch_start_[a]} + batch_rows_[a];
    if (batch.pos[i] != expected) {
      fail(ErrorCode::kInvalidArgument, "batch row {}: sequence {} continues at position {}, not {}", i, seq, expected,
           batch.pos[i]);
    }
    ++batch_rows_[a];
  }
}

// All or nothing: the blocks every sequence needs are counted first (conservatively: two forks
// sharing a partial block each count a copy), so a batch that does not fit reserves nothing.
void Model::reserve_cache(KvCache& kv) const {
  int64_t needed = 0;
  for (size_t i = 0; i < batch_seqs_.size(); ++i) needed += kv.blocks_to_reserve(batch_seqs_[i], batch_rows_[i]);
  if (needed > kv.free_blocks()) {
    fail(ErrorCode::kOutOfMemory, "KV cache full: the batch needs {} more blocks of {} tokens, {} of {} are free",
         needed, kKvBlockTokens, kv.free_blocks(), kv.n_blocks());
  }
  for (size_t i = 0; i < batch_seqs_.size(); ++i) EMBER_CHECK(kv.reserve(batch_seqs_[i], batch_rows_[i]));
}

std::span<const float> Model::forward(const Batch& batch, KvCache& kv) {
  check_batch(batch, kv);
  reserve_cache(kv);
  const auto rows_of = [&](Batch::RowOutput kind) {
    return static_cast<size_t>(std::count(batch.logits.begin(), batch.logits.end(), uint8_t{kind}));
  };
  const size_t token_rows = rows_of(Batch::kToken);
  const size_t top_rows = rows_of(Batch::kTopK);
  const size_t logit_floats = rows_of(Batch::kLogits) * static_cast<size_t>(config_.n_vocab);
  const size_t hidden_floats = rows_of(Batch::kHidden) * static_cast<size_t>(config_.n_embd);
  n_logits_ = 0;
  n_hidden_ = 0;
  n_tokens_ = 0;
  n_top_ = 0;
  try {
    // Each grows to the largest request only (the host path grows logits_ further for the token
    // and top-k rows' logits, which pass through it: output_rows).
    if (logits_.size() < logit_floats) logits_.resize(logit_floats);
    if (final_hidden_.size() < hidden_floats) final_hidden_.resize(hidden_floats);
    if (tokens_.size() < token_rows) tokens_.resize(token_rows);
    const size_t top_entries = top_rows * static_cast<size_t>(std::max(batch.top_k, 0));
    if (top_.size() < top_entries) top_.resize(top_entries);
    const auto step = static_cast<size_t>(options_.max_step_tokens);
    for (size_t r0 = 0; r0 < batch.size(); r0 += step) run_step(batch, r0, std::min(batch.size(), r0 + step), kv);
  } catch (...) {
    // A hook (or an allocation) threw mid-batch: every sequence goes back to its length before the
    // batch, so the caller can retry or drop it.
    for (size_t i = 0; i < batch_seqs_.size(); ++i) kv.truncate(batch_seqs_[i], batch_start_[i]);
    throw;
  }
  return {logits_.data(), logit_floats};
}

void Model::run_hook(HookPoint point, int32_t layer, float* data, int64_t n_rows, int64_t n_cols,
                     std::span<const int32_t> rows) {
  hooks_.run({.point = point, .layer = layer, .data = data, .n_rows = n_rows, .n_cols = n_cols, .batch_rows = rows});
}

void Model::run_step(const Batch& batch, size_t r0, size_t r1, KvCache& kv) {
  const auto n = static_cast<int64_t>(r1 - r0);
  const ModelConfig& c = config_;

  // The step's sequences (their KV views extended by the step's rows) and rows.
  kv_seq_ids_.clear();
  kv_seqs_.clear();
  kv_rows_.clear();
  positions_.clear();
  row_ids_.clear();
  for (size_t r = r0; r < r1; ++r) {
    int64_t at = index_of(kv_seq_ids_, batch.seq[r]);
    if (at < 0) {
      kv_seq_ids_.push_back(batch.seq[r]);
      kv_seqs_.push_back(kv.view(batch.seq[r]));
      at = static_cast<int64_t>(kv_seqs_.size()) - 1;
    }
    ++kv_seqs_[static_cast<size_t>(at)].n_tokens;
    kv_rows_.push_back({static_cast<int32_t>(at), batch.pos[r]});
    positions_.push_back(batch.pos[r]);
    row_ids_.push_back(static_cast<int32_t>(r));
  }

  const TensorView& embd = weights_.token_embd;
  backend_.get_rows(embd.dtype(), embd.data(), c.n_vocab, c.n_embd, batch.tokens.data() + r0, n, x_.data());
  if (c.embedding_scale != 0.0f) backend_.scale(x_.data(), x_.data(), n * c.n_embd, c.embedding_scale);
  if (hooks_.active(HookPoint::kEmbeddings)) [[unlikely]] {
    run_hook(HookPoint::kEmbeddings, -1, x_.data(), n, c.n_embd, row_ids_);
  }
  if (rope_) rope_->cos_sin(positions_.data(), n, cos_sin_.data());
  if (rope_local_) rope_local_->cos_sin(positions_.data(), n, cos_sin_local_.data());

  const auto active = [&](HookPoint point) { return hooks_.active(point); };
  const auto hook = [&](HookPoint point, int32_t layer, float* data, int64_t n_rows, int64_t n_cols) {
    run_hook(point, layer, data, n_rows, n_cols, row_ids_);
  };
  const LayerBuffers buffers{.x = x_.data(),
                             .xn = xn_.data(),
                             .qkv = qkv_.data(),
                             .q = q_.data(),
                             .k = k_.data(),
                             .v = v_.data(),
                             .attn = attn_.data(),
                             .proj = proj_.data(),
                             .gate_up = gate_up_.data(),
                             .hidden = hidden_.data(),
                             .cos_sin = cos_sin_.data(),
                             .cos_sin_local = cos_sin_local_.data()};
  LayerStep step = layer_step_;
  step.n = n;
  const CpuStepKv step_kv{kv_seqs_, kv_rows_};
  const int32_t gpu_first = gpu_ ? gpu_->first_layer() : c.n_layer;
  for (int32_t il = 0; il < gpu_first; ++il) {
    const auto l = static_cast<size_t>(il);
    const LayerVectors vectors = host_vectors(weights_.layers[l]);
    const auto experts = [&](const float* xn, int64_t rows, float* out, const auto& on_router_logits) {
      moe_ffn(backend_, c, moe_[l], xn, rows, moe_scratch_, out, on_router_logits);
    };
    const LatentLinearsOf<Linear>* latent = c.mla.kv_lora_rank > 0 ? &latent_[l] : nullptr;
    decoder_layer(backend_, c, il, vectors, linears_[l], latent, buffers, latent_buffers_, step, kv.layer(il), step_kv,
                  experts, active, hook);
  }
  // The GPU layers take the residual stream from here; with the head offloaded too (and nothing
  // asking for host-side final states) the logits come from the device.
  bool logits_on_gpu = false;
  if (gpu_) {
    logits_on_gpu = gpu_->runs_output() && !hooks_.active(HookPoint::kFinalNorm) &&
                    !hooks_.active(HookPoint::kLogits) &&
                    std::none_of(batch.logits.begin() + static_cast<std::ptrdiff_t>(r0),
                                 batch.logits.begin() + static_cast<std::ptrdiff_t>(r1),
                                 [](uint8_t kind) { return kind == Batch::kHidden; });
    const GpuStep gpu_step{.n = n,
                           .seqs = kv_seqs_,
                           .rows = kv_rows_,
                           .cos_sin = cos_sin_.data(),
                           .cos_sin_local = cos_sin_local_.data(),
                           .kv = &kv};
    gpu_->run(gpu_step, x_.data(), logits_on_gpu, active, hook);
  }
  for (size_t i = 0; i < kv_seq_ids_.size(); ++i) {
    kv.commit(kv_seq_ids_[i], kv_seqs_[i].n_tokens - kv.n_tokens(kv_seq_ids_[i]));
  }
  if (logits_on_gpu) {
    gpu_output_rows(batch, r0, r1);
  } else {
    output_rows(batch, r0, r1);
  }
}

// Called after every GPU step that kept its rows on the device, with or without outputs: it also
// waits for the step.
void Model::gpu_output_rows(const Batch& batch, size_t r0, size_t r1) {
  row_ids_.clear();  // step-local indices of the rows by what they want
  token_rows_.clear();
  top_rows_.clear();
  for (size_t r = r0; r < r1; ++r) {
    const auto local = static_cast<int32_t>(r - r0);
    if (batch.logits[r] == Batch::kLogits) row_ids_.push_back(local);
    if (batch.logits[r] == Batch::kToken) token_rows_.push_back(local);
    if (batch.logits[r] == Batch::kTopK) top_rows_.push_back(local);
  }
  gpu_->outputs({.logit_rows = row_ids_,
                 .logits = logits_.data() + n_logits_ * static_cast<size_t>(config_.n_vocab),
                 .token_rows = token_rows_,
                 .tokens = tokens_.data() + n_tokens_,
                 .top_rows = top_rows_,
                 .top_k = batch.top_k,
                 .top = top_.data() + n_top_});
  n_logits_ += row_ids_.size();
  n_tokens_ += token_rows_.size();
  n_top_ += top_rows_.size() * static_cast<size_t>(std::max(batch.top_k, 0));
}

void Model::output_rows(const Batch& batch, size_t r0, size_t r1) {
  const ModelConfig& c = config_;
  const auto n_embd = static_cast<size_t>(c.n_embd);
  const size_t row_bytes = sizeof(float) * n_embd;
  // The rows that want an output (logits or hidden state), gathered into xn_ (compact, batch order)
  // and normed; the kFinalNorm hook sees them all.
  row_ids_.clear();
  for (size_t r = r0; r < r1; ++r) {
    if (batch.logits[r] == Batch::kNoOutput) continue;
    std::memcpy(xn_.data() + row_ids_.size() * n_embd, x_.data() + (r - r0) * n_embd, row_bytes);
    row_ids_.push_back(static_cast<int32_t>(r));
  }
  const auto n_out = static_cast<int64_t>(row_ids_.size());
  if (n_out == 0) return;
  backend_.rms_norm(xn_.data(), weights_.output_norm.data_as<float>(), xn_.data(), n_out, c.n_embd, c.norm_eps);
  if (hooks_.active(HookPoint::kFinalNorm)) [[unlikely]] {
    run_hook(HookPoint::kFinalNorm, -1, xn_.data(), n_out, c.n_embd, row_ids_);
  }
  // Hidden-state rows are done: copied out in batch order. The logits and token rows close up in
  // xn_ and row_ids_ (in place: a row only moves to a lower index) for the LM head, which the
  // hidden rows skip — an n_vocab-wide matmul per row is what embedding requests must not pay.
  size_t m_logits = 0;
  for (size_t i = 0; i < static_cast<size_t>(n_out); ++i) {
    const float* row = xn_.data() + i * n_embd;
    if (batch.logits[static_cast<size_t>(row_ids_[i])] == Batch::kHidden) {
      std::memcpy(final_hidden_.data() + n_hidden_ * n_embd, row, row_bytes);
      ++n_hidden_;
      continue;
    }
    if (m_logits != i) {
      std::memcpy(xn_.data() + m_logits * n_embd, row, row_bytes);
      row_ids_[m_logits] = row_ids_[i];
    }
    ++m_logits;
  }
  row_ids_.resize(m_logits);  // shrinks: no allocation
  const auto m = static_cast<int64_t>(m_logits);
  if (m == 0) return;
  // Room after the rows kept so far for all m (token and top-k rows' logits only pass through).
  const size_t needed = (n_logits_ + m_logits) * static_cast<size_t>(c.n_vocab);
  if (logits_.size() < needed) logits_.resize(needed);
  float* logits = logits_.data() + n_logits_ * static_cast<size_t>(c.n_vocab);
  backend_.matmul(output_, xn_.data(), m, logits);
  finish_logits(backend_, c, logits, m * c.n_vocab);
  if (hooks_.active(HookPoint::kLogits)) [[unlikely]] {
    run_hook(HookPoint::kLogits, -1, logits, m, c.n_vocab, row_ids_);
  }
  // Token rows give their greedy token, top-k rows their best logits; logits rows close up after
  // the rows kept before them.
  const auto n_vocab = static_cast<size_t>(c.n_vocab);
  size_t kept = 0;
  for (size_t i = 0; i < m_logits; ++i) {
    const float* row = logits + i * n_vocab;
    const uint8_t kind = batch.logits[static_cast<size_t>(row_ids_[i])];
    if (kind == Batch::kToken) {
      tokens_[n_tokens_++] = greedy_token(backend_, row, c.n_vocab);
      continue;
    }
    if (kind == Batch::kTopK) {
      select_top_candidates({row, static_cast<size_t>(c.n_vocab)}, static_cast<size_t>(batch.top_k),
                            top_.data() + n_top_);
      n_top_ += static_cast<size_t>(batch.top_k);
      continue;
    }
    if (kept != i) std::memmove(logits + kept * n_vocab, row, sizeof(float) * n_vocab);
    ++kept;
  }
  n_logits_ += kept;
}

}  // namespace ember
