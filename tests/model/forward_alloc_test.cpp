// A loaded model's forward steps allocate nothing once warm: prefill chunks and decode tokens of
// two sequences, across KV block boundaries, on the AMX / VNNI / FMA GEMMs and the GEMV, for a
// dense model and a mixture of experts. Its own
// executable, because it links counting_new.cpp (a replacement global operator new).
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "model/model.h"
#include "model/random_model.h"
#include "support/counting_new.h"

namespace ember {
namespace {

TEST(Forward, StepsAfterLoadDoNotAllocate) {
  // Decode rows on the GEMV and on the packed panels, whatever this CPU's default.
  // The last two: a mixture of experts (qwen2moe: 8 experts, 2 per token, and the shared one).
  struct Case {
    DType type;
    bool decode_on_packed;
    const char* arch;
  };
  for (const auto& [type, decode_on_packed, arch] : {Case{DType::kQ8_0, false, "llama"},
                                                     {DType::kQ8_0, true, "llama"},
                                                     {DType::kF16, false, "llama"},
                                                     {DType::kQ4_K, false, "llama"},
                                                     {DType::kQ4_K, true, "llama"},
                                                     {DType::kQ8_0, true, "qwen2moe"},
                                                     {DType::kQ4_K, false, "qwen2moe"}}) {
    SCOPED_TRACE(std::string(arch) + " " + std::string(dtype_name(type)) +
                 (decode_on_packed ? " decode on packed" : ""));
    test::RandomModelSpec spec;
    spec.arch = arch;
    spec.n_expert = spec.arch == "qwen2moe" ? 8 : 0;
    spec.n_ff_expert = 256;
    spec.weight_type = type;
    spec.n_embd = 256;  // whole K-quant super-blocks
    spec.n_ff = 512;
    spec.n_head = 4;
    spec.n_head_kv = 2;
    const std::vector<std::byte> bytes = test::write_random_model(spec);
    CpuBackendOptions backend_options;
    backend_options.n_threads = 2;
    backend_options.decode_on_packed = decode_on_packed;
    CpuBackend backend(backend_options);
    ModelOptions options;
    options.max_step_tokens = 24;
    const std::unique_ptr<Model> model = Model::from_file(GgufFile::parse(bytes, "random.gguf"), backend, options);
    KvCache kv(model->config(), model->kv_options(128));
    Batch batch;
    batch.tokens.reserve(64), batch.pos.reserve(64), batch.seq.reserve(64), batch.logits.reserve(64);
    // A 20-row prefill of a (16+ rows: the AMX kernels where the CPU has them; past a KV block),
    // a 30-row one of b in two steps, 20 decode steps of both, 3 of a alone (one-row matmuls: the
    // GEMV or the packed one-row kernels), a prefill chunk beside a decode row, a truncation.
    const auto scenario = [&](SeqId a, SeqId b) {
      batch.clear();
      for (int32_t i = 0; i < 20; ++i) batch.add(i % 90, i, a, i == 19);
      model->forward(batch, kv);
      batch.clear();
      for (int32_t i = 0; i < 30; ++i) batch.add((i * 7) % 90, i, b, i == 29);
      model->forward(batch, kv);
      for (int32_t step = 0; step < 20; ++step) {
        batch.clear();
        batch.add(step % 90, 20 + step, a, true);
        batch.add(step % 80, 30 + step, b, true);
        model->forward(batch, kv);
      }
      for (int32_t step = 0; step < 3; ++step) {
        batch.clear();
        batch.add(step, 40 + step, a, true);
        model->forward(batch, kv);
      }
      batch.clear();
      for (int32_t i = 0; i < 17; ++i) batch.add(i, 43 + i, a, true);
      batch.add(3, 50, b, true);
      model->forward(batch, kv);
      kv.truncate(a, 10);
    };
    // The first pass grows the logits buffer to the largest request (it is sized by use, not by
    // the worst case of max_step_tokens × n_vocab); the second, on new sequences, must not allocate.
    SeqId a = kv.add_sequence(), b = kv.add_sequence();
    scenario(a, b);
    kv.remove_sequence(a);
    kv.remove_sequence(b);
    a = kv.add_sequence(), b = kv.add_sequence();  // (creating a sequence may allocate: not a step)
    const int64_t before = test::allocation_count();
    scenario(a, b);
    EXPECT_EQ(test::allocation_count() - before, 0) << "allocations inside forward steps";
  }
}

}  // namespace
}  // namespace ember
