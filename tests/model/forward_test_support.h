// Helpers of the forward-pass tests: a random model loaded in ember and in the float64 reference,
// and runs of token sequences through both.
#pragma once

#include <cmath>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/random_model.h"
#include "reference/reference_model.h"

namespace ember::test {

using Logits = std::vector<std::vector<float>>;
using RefLogits = std::vector<std::vector<double>>;

struct TwinOptions {
  DType kv_type = DType::kF32;
  int64_t kv_tokens = 256;       // the KV cache's capacity
  int32_t max_step_tokens = 64;  // ember's internal step size
  std::optional<Isa> isa = std::nullopt;
  int32_t context_size = 0;  // ember's ModelOptions::context_size, the reference's n_ctx_seq
  // Adjusts the reference's config (a trait ember reads where llama.cpp does not, say).
  std::function<void(ReferenceConfig&)> edit_reference = nullptr;
};

// A random model in memory, loaded by ember (on its own backend and KV cache) and the reference.
struct TwinModels {
  std::vector<std::byte> bytes;
  std::unique_ptr<CpuBackend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<KvCache> kv;
  std::unique_ptr<ReferenceModel> reference;

  static TwinModels make(const RandomModelSpec& spec, const TwinOptions& options = {});
};

// Logits of every row of `tokens` as a new sequence of `kv` (removed afterwards): in one forward()
// (prefill) or one per token (decode).
Logits run_tokens(Model& model, KvCache& kv, const std::vector<int32_t>& tokens, bool decode);
// The same on the ember side of twin models.
Logits run_sequence(TwinModels& m, const std::vector<int32_t>& tokens, bool decode);

// The experts ember chooses, recorded by a kRouterLogits hook on `model` while this lives: per
// layer, position by position (a layer sees one sequence's rows in order, whatever the steps), the
// experts the CPU's routing picks from the logits (gate_router_logits, then select_experts with the
// layer's selection bias). choice() hands them
// to ReferenceModel::forward, so a quantized model is held to the reference through the experts it
// ran, whichever way a router near-tie fell under its quantization noise; it also counts how often
// they are the reference's own (agreement()), so a wrong routing still fails.
class ExpertRecorder {
 public:
  explicit ExpertRecorder(Model& model);
  ~ExpertRecorder();
  ExpertRecorder(const ExpertRecorder&) = delete;
  ExpertRecorder& operator=(const ExpertRecorder&) = delete;

  // Forgets the recorded sequence: the next rows start at position 0.
  void clear();
  // Valid while this lives. A position not recorded fails the test.
  ReferenceModel::ExpertChoice choice();
  // The fraction of the reference's choices so far (since clear()) that were ember's, as sets; 1
  // when there were none.
  double agreement() const;

 private:
  Model& model_;
  uint64_t handle_ = 0;
  std::vector<std::vector<std::vector<int32_t>>> chosen_;  // [layer][position][n_used]
  int64_t decisions_ = 0, agreed_ = 0;
};

// ember's logits of `tokens` as a new sequence (one forward(), or one per token when `decode`)
// against the reference's: for a mixture of experts, the reference runs the experts ember chose.
struct ReferenceComparison {
  double max_abs_diff;  // over every row
  double scale;         // max |reference logit|
  double agreement;     // ExpertRecorder::agreement(); 1 for a dense model
  Logits logits;        // ember's
  double relative() const { return max_abs_diff / scale; }
};
ReferenceComparison compare_to_reference(Model& model, KvCache& kv, const ReferenceModel& reference,
                                         const std::vector<int32_t>& tokens, bool decode);

// Every architecture ember supports, by GGUF name (the X-macro list): a new one is tested on day one.
const std::vector<std::string>& architecture_names();
// Whether architecture a (index into architecture_names()) runs with type t (index into a test's
// type list) in a cross-section of the a x t pairs, for builds where every pair costs too much:
// every type on the first architecture, and on each other the types t with t % period == a %
// period (one, or more when the list is longer than period), so every architecture and every type
// still runs.
bool in_cross_section(size_t a, size_t t, size_t period);
// The reference tests' model of `arch` with `type` weights: k a multiple of 256 (the K-quants),
// sliding windows shorter than the test sequences, soft-caps that bend without saturating, Gemma 3
// with a global layer, Phi-3 partial rotary.
RandomModelSpec reference_spec(const std::string& arch, DType type);
// deepseek2 of V2-Lite's kind (q straight from x, a softmax router with weights as they are, no
// bias, groups or YaRN), in the MLA layout or the one before (attn_kv_b, whose value length then
// differs from the key's: a swap would show).
RandomModelSpec deepseek2_lite_spec(DType type, bool merged_kv_b);

// n random token ids below n_vocab.
std::vector<int32_t> random_tokens(size_t n, int64_t n_vocab, uint64_t seed);

// max |a - b| over every row, and max |b| (the scale tolerances are relative to); a shape mismatch
// gives infinity.
double max_abs_diff(const Logits& a, const RefLogits& b);
double max_abs(const RefLogits& b);

// The rows [begin, end) of a logits span of n_vocab columns.
Logits rows_of(std::span<const float> logits, int64_t n_vocab, size_t begin, size_t end);

// Batch::kToken's rule written out: the first index of the largest of the n values above -inf (NaN
// never), -1 when there is none.
int32_t greedy_of(const float* row, int64_t n);

}  // namespace ember::test
