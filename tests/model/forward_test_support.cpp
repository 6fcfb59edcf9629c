// Helpers of the forward-pass tests.
#include "model/forward_test_support.h"

#include <random>

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

Logits rows_of(std::span<const float> logits, int64_t n_vocab, size_t begin, size_t end) {
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
