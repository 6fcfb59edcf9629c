// Helpers of the forward-pass tests.
#include "model/forward_test_support.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

namespace ember::test {

TwinModels TwinModels::make(const RandomModelSpec& spec, const TwinOptions& o) {
  TwinModels m;
  m.bytes = write_random_model(spec);
  m.backend = std::make_unique<CpuBackend>(CpuBackendOptions{.n_threads = 2, .isa = o.isa});
  ModelOptions options;
  options.max_step_tokens = o.max_step_tokens;
  options.context_size = o.context_size;
  m.model = Model::from_file(GgufFile::parse(m.bytes, "random.gguf"), *m.backend, options);
  m.kv = std::make_unique<KvCache>(m.model->config(), m.model->kv_options(o.kv_tokens, o.kv_type, o.kv_type));
  const GgufFile file = GgufFile::parse(m.bytes, "random.gguf");
  ReferenceConfig config = reference_config_from_gguf(file);
  config.n_ctx_seq = o.context_size > 0 ? o.context_size : config.n_ctx_train;
  if (o.edit_reference) o.edit_reference(config);
  m.reference = std::make_unique<ReferenceModel>(ReferenceModel::load(file, config));
  return m;
}

ExpertRecorder::ExpertRecorder(Model& model) : model_(model) {
  const MoeConfig& moe = model.config().moe;
  chosen_.resize(static_cast<size_t>(model.config().n_layer));
  handle_ = model.hooks().add(HookPoint::kRouterLogits, [this, moe](const HookTensor& t) {
    EXPECT_EQ(t.n_cols, moe.n_expert);
    std::vector<int32_t> experts(static_cast<size_t>(moe.n_used));
    std::vector<float> weights(experts.size());
    // ember's own routing of each row (the CPU's gating and choice: biases and groups included).
    const TensorView& bias = model_.weights().layers.at(static_cast<size_t>(t.layer)).selection_bias;
    const ExpertRouting routing = ExpertRouting::of(moe, bias.data() ? bias.data_as<float>() : nullptr);
    std::vector<float> probs(static_cast<size_t>(t.n_cols));
    for (int64_t r = 0; r < t.n_rows; ++r) {
      std::copy_n(t.data + r * t.n_cols, t.n_cols, probs.begin());
      gate_router_logits(model_.backend(), moe.gating, probs.data(), 1, moe.n_expert);
      select_experts(probs.data(), 1, routing, experts.data(), weights.data());
      chosen_.at(static_cast<size_t>(t.layer)).push_back(experts);
    }
  });
}

ExpertRecorder::~ExpertRecorder() { model_.hooks().remove(handle_); }

void ExpertRecorder::clear() {
  for (auto& layer : chosen_) layer.clear();
  decisions_ = agreed_ = 0;
}

ReferenceModel::ExpertChoice ExpertRecorder::choice() {
  return [this](int64_t layer, int64_t position, std::span<const int32_t> own) -> std::vector<int32_t> {
    const auto& positions = chosen_.at(static_cast<size_t>(layer));
    if (position >= static_cast<int64_t>(positions.size())) {
      ADD_FAILURE() << "no experts recorded for layer " << layer << " position " << position;
      return {};
    }
    std::vector<int32_t> ours = positions[static_cast<size_t>(position)];
    std::vector<int32_t> theirs(own.begin(), own.end());
    std::vector<int32_t> ours_sorted = ours;
    std::sort(ours_sorted.begin(), ours_sorted.end());
    std::sort(theirs.begin(), theirs.end());
    ++decisions_;
    if (ours_sorted == theirs) ++agreed_;
    return ours;
  };
}

double ExpertRecorder::agreement() const {
  return decisions_ == 0 ? 1.0 : static_cast<double>(agreed_) / static_cast<double>(decisions_);
}

ReferenceComparison compare_to_reference(Model& model, KvCache& kv, const ReferenceModel& reference,
                                         const std::vector<int32_t>& tokens, bool decode) {
  if (model.config().moe.n_expert == 0) {
    const RefLogits expected = reference.forward(tokens);
    Logits got = run_tokens(model, kv, tokens, decode);
    const double diff = max_abs_diff(got, expected);
    return {.max_abs_diff = diff, .scale = max_abs(expected), .agreement = 1.0, .logits = std::move(got)};
  }
  ExpertRecorder recorder(model);
  Logits got = run_tokens(model, kv, tokens, decode);
  const RefLogits expected = reference.forward(tokens, recorder.choice());
  const double diff = max_abs_diff(got, expected);
  return {
      .max_abs_diff = diff, .scale = max_abs(expected), .agreement = recorder.agreement(), .logits = std::move(got)};
}

int32_t greedy_of(const float* row, int64_t n) {
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (row[i] > -INFINITY && (best < 0 || row[i] > row[best])) best = i;
  }
  return static_cast<int32_t>(best);
}

Logits rows_of(std::span<const float> logits, int64_t n_vocab, size_t begin, size_t end) {
  // forward() returns only the rows that asked for logits: asking for more is a test bug that would
  // compare whatever the buffer held past them.
  EXPECT_GT(n_vocab, 0);
  EXPECT_LE(begin, end);
  if (n_vocab <= 0 || begin > end) return {};
  const size_t n_rows = logits.size() / static_cast<size_t>(n_vocab);
  if (end > n_rows) {
    ADD_FAILURE() << "rows_of: rows [" << begin << ", " << end << ") of " << n_rows << " logits rows";
    end = n_rows;
  }
  Logits out;
  for (size_t r = begin; r < end; ++r) {
    out.emplace_back(logits.begin() + static_cast<int64_t>(r) * n_vocab,
                     logits.begin() + static_cast<int64_t>(r + 1) * n_vocab);
  }
  return out;
}

Logits run_sequence(TwinModels& m, const std::vector<int32_t>& tokens, bool decode) {
  return run_tokens(*m.model, *m.kv, tokens, decode);
}

Logits run_tokens(Model& model, KvCache& kv, const std::vector<int32_t>& tokens, bool decode) {
  const SeqId seq = kv.add_sequence();
  const int64_t n_vocab = model.config().n_vocab;
  Logits out;
  Batch batch;
  for (size_t i = 0; i < tokens.size(); ++i) {
    batch.add(tokens[i], static_cast<int32_t>(i), seq, true);
    if (!decode && i + 1 < tokens.size()) continue;
    const Logits rows = rows_of(model.forward(batch, kv), n_vocab, 0, batch.size());
    out.insert(out.end(), rows.begin(), rows.end());
    batch.clear();
  }
  kv.remove_sequence(seq);
  return out;
}

// Every architecture ember supports (the X-macro list): a new one is tested on day one.
const std::vector<std::string>& architecture_names() {
  static const std::vector<std::string> names = {
#define EMBER_ARCH(id, gguf_name, reader) gguf_name,
#include "model/arch/arch_list.inc"
#undef EMBER_ARCH
  };
  return names;
}

bool in_cross_section(size_t a, size_t t, size_t period) { return a == 0 || t % period == a % period; }

RandomModelSpec deepseek2_lite_spec(DType type, bool merged_kv_b) {
  RandomModelSpec spec = reference_spec("deepseek2", type);
  spec.merged_kv_b = merged_kv_b;
  if (merged_kv_b) spec.v_dim = 96;  // key_length 64 + 64
  spec.q_lora_rank = 0;
  spec.selection_bias = false;
  spec.extra_keys = nullptr;
  return spec;
}

// K-quants want rows of 256: every matmul's k is a multiple of it. Windows shorter than the test
// sequences, so the sliding-window layers mask something; Gemma 3 with 6 layers has a global one.
RandomModelSpec reference_spec(const std::string& arch, DType type) {
  RandomModelSpec s;
  s.arch = arch;
  // Soft-caps near the scores' and logits' size, so the tanh bends them without saturating.
  if (arch == "gemma2" || arch == "gemma3") {
    s.extra_keys = [arch](GgufWriter& w) {
      w.add<uint32_t>(arch + ".attention.sliding_window", 6);
      w.add<float>(arch + ".final_logit_softcapping", 3.0f);
      if (arch == "gemma2") w.add<float>(arch + ".attn_logit_softcapping", 2.0f);
    };
  }
  if (arch == "gemma3") {  // a global layer with its own rope base (real Gemma 3: 1e6)
    s.n_layer = 6;
    s.rope_freq_base = 1e6f;
  }
  if (arch == "smollm3") s.n_layer = 4;  // the last layer without rope
  if (arch == "phi3") s.n_rot = 32;      // partial rotary
  if (arch == "qwen2moe" || arch == "qwen3moe" || arch == "deepseek") s.n_ff_expert = 256;  // 4 experts, 2 per token
  if (arch == "deepseek" || arch == "deepseek2") s.n_layer = 3;  // a dense layer, then two of experts
  if (arch == "deepseek2") {  // V3's kind: q through a low rank, a sigmoid router with a bias and groups, YaRN
    s.n_rot = 64;
    s.q_lora_rank = 256;
    s.selection_bias = true;
    s.extra_keys = [](GgufWriter& w) {
      w.add<uint32_t>("deepseek2.expert_gating_func", 2);
      w.add<bool>("deepseek2.expert_weights_norm", true);
      w.add<float>("deepseek2.expert_weights_scale", 2.5f);
      w.add<uint32_t>("deepseek2.expert_group_count", 2);
      w.add<uint32_t>("deepseek2.expert_group_used_count", 1);
      w.add_string("deepseek2.rope.scaling.type", "yarn");
      w.add<float>("deepseek2.rope.scaling.factor", 4.0f);
      w.add<uint32_t>("deepseek2.rope.scaling.original_context_length", 128);
      w.add<float>("deepseek2.rope.scaling.yarn_log_multiplier", 0.0707f);
    };
  }
  s.n_embd = 256;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.head_dim = 64;
  s.n_ff = 512;
  s.n_vocab = 80;
  s.weight_type = type;
  s.embd_type = type;
  s.seed = 7 + static_cast<uint64_t>(type);
  if (arch == "granitemoe") s.n_ff_shared = 256;  // the ungated shared expert (Granite 3 MoE has none)
  return s;
}

std::vector<int32_t> random_tokens(size_t n, int64_t n_vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> tokens(n);
  for (int32_t& t : tokens) t = id(rng);
  return tokens;
}

double max_abs_diff(const Logits& a, const RefLogits& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (size_t t = 0; t < a.size(); ++t) {
    if (a[t].size() != b[t].size()) return INFINITY;
    for (size_t i = 0; i < a[t].size(); ++i) m = std::max(m, std::abs(double{a[t][i]} - b[t][i]));
  }
  return m;
}

double max_abs(const RefLogits& b) {
  double m = 0;
  for (const auto& row : b) {
    for (double v : row) m = std::max(m, std::abs(v));
  }
  return m;
}

}  // namespace ember::test
