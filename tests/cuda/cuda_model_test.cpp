// Whole models on the CUDA backend: every architecture and weight type against the float64
// reference, hybrid offload at every split point, batches of several sequences with a forked
// prefix in device KV pools, and stories260K against llama2.c's run.c. Skipped without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "core/log.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_test_util.h"
#include "ember/hooks.h"
#include "engine/sampler_math.h"
#include "model/forward_test_support.h"
#include "support/scoped_env.h"
#include "support/stories_data.h"
#include "support/test_data.h"

namespace ember {
namespace {

using test::Logits;
using test::RandomModelSpec;
using test::ScopedEnv;

// The same file loaded a second time with `gpu_layers` offloaded, with its own KV cache.
struct GpuModel {
  std::unique_ptr<CpuBackend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<KvCache> kv;
};

GpuModel load_gpu(const std::vector<std::byte>& bytes, int32_t gpu_layers, int32_t max_step_tokens, DType kv_type,
                  int64_t kv_tokens = 256) {
  GpuModel g;
  CpuBackendOptions backend_options;
  backend_options.n_threads = 2;
  g.backend = std::make_unique<CpuBackend>(backend_options);
  ModelOptions options;
  options.max_step_tokens = max_step_tokens;
  options.gpu_layers = gpu_layers;
  g.model = Model::from_file(GgufFile::parse(bytes, "random.gguf"), *g.backend, options);
  g.kv = std::make_unique<KvCache>(g.model->config(), g.model->kv_options(kv_tokens, kv_type, kv_type));
  return g;
}

double relative_to_reference(const Logits& got, const test::RefLogits& expected) {
  return test::max_abs_diff(got, expected) / test::max_abs(expected);
}

// Decode rows run the GEMV on the exact dequantized weights with float activations; prefill rows
// beyond kGemvMaxRows run cuBLAS on f16 weights and activations (about 2^-11 relative per operand).
constexpr double kDecodeTolerance = 2e-5;  // float32 throughout, like the CPU's F32 path (2e-6)
constexpr double kPrefillTolerance = 1e-2;

// Whether architecture a (index into architecture_names()) runs with type t (index into the type
// list) here. On a GPU: every pair. On the CUDA emulator, where a case takes seconds (minutes
// under ASan): a cross-section, every type on the first architecture and one or two types on each
// other, rotating, so every architecture and every type still runs (the kernel tests cover each
// type).
bool every_pair_or_cross_section([[maybe_unused]] size_t a, [[maybe_unused]] size_t t) {
#ifdef EMBER_CUDA_EMULATED
  return test::in_cross_section(a, t, 7);
#else
  return true;
#endif
}

// How many of n tokens EveryArchitectureAndTypeAgainstTheReference decodes one step at a time.
size_t decode_tokens(size_t n) {
#ifdef EMBER_CUDA_EMULATED
  return std::min<size_t>(n, 8);
#else
  return n;
#endif
}

TEST(CudaModel, EveryArchitectureAndTypeAgainstTheReference) {
  EMBER_REQUIRE_GPU();
  // The 21-row prefill through the tensor-core attention (these small models' few heads would
  // otherwise leave it to the per-row kernel).
  const ScopedEnv tiled("EMBER_CUDA_TILED_ATTENTION", "always");
  const std::vector<int32_t> tokens = test::random_tokens(21, 80, 3);
  const std::vector<DType> types = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0,   DType::kQ4_0,
                                    DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ2_K,   DType::kQ3_K,
                                    DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kIQ4_NL, DType::kIQ4_XS};
  const std::vector<std::string>& archs = test::architecture_names();
  for (size_t a = 0; a < archs.size(); ++a) {
    const std::string& arch = archs[a];
    for (size_t t = 0; t < types.size(); ++t) {
      if (!every_pair_or_cross_section(a, t)) continue;
      const DType type = types[t];
      SCOPED_TRACE(arch + " " + std::string(dtype_name(type)));
      test::TwinModels m = test::TwinModels::make(test::reference_spec(arch, type), {.max_step_tokens = 32});
      // Steps of 32 rows: the 21-row prefill takes the GEMM path, decode the GEMV. A mixture of
      // experts is compared through the experts it chose (test::compare_to_reference).
      GpuModel g = load_gpu(m.bytes, kGpuLayersAll, 32, DType::kF32);
      const test::ReferenceComparison prefill =
          test::compare_to_reference(*g.model, *g.kv, *m.reference, tokens, false);
      // Decode: every token on a GPU, the first 8 on the emulator (a step per token is its cost; each
      // type's GEMV is checked in full by matmul_kernels_test).
      const std::vector<int32_t> decoded(tokens.begin(), tokens.begin() + decode_tokens(tokens.size()));
      const test::ReferenceComparison decode = test::compare_to_reference(*g.model, *g.kv, *m.reference, decoded, true);
      std::printf("cuda %-6s %-5s relative error prefill %.2e decode %.2e, experts as the reference's %.3f %.3f\n",
                  arch.c_str(), std::string(dtype_name(type)).c_str(), prefill.relative(), decode.relative(),
                  prefill.agreement, decode.agreement);
      EXPECT_LE(prefill.relative(), kPrefillTolerance);
      EXPECT_LE(decode.relative(), kDecodeTolerance);
      // Decode runs the exact weights with float activations, about 1e-7 from the reference: a
      // near-tie that close is not expected, so every choice is the reference's. A prefill's f16
      // GEMM (1e-3) may tip one (ForwardReference's bound).
      EXPECT_GE(prefill.agreement, type == DType::kF32 ? 1.0 : 0.9);
      EXPECT_EQ(decode.agreement, 1.0);
    }
  }
}

// deepseek2 beyond the every-architecture test's V3 kind, on the GPU: V2-Lite's (q straight from x,
// a softmax router), and the layout before April 2025 (attn_kv_b: k_b transposed on the host
// for the upload, v_b its rows), whose value width differs from the key's; with two of the three
// layers offloaded too (the CPU's dense layer, then the GPU's latent attention).
TEST(CudaModel, DeepSeek2VariantsAgainstTheReference) {
  EMBER_REQUIRE_GPU();
  struct Variant {
    const char* name;
    bool merged_kv_b;
    DType type;
    int32_t gpu_layers;
    double decode_tolerance;
  };
  // The attn_kv_b q8_0 file's k_b is requantized (its transposed values regrouped into new Q8_0
  // blocks): about 2e-3 from the reference's own weights, as on the CPU. With a CPU layer, its F16 activations set
  // the bound (the CPU's F16 tolerance).
  const Variant variants[] = {{"v2-lite q8_0", false, DType::kQ8_0, kGpuLayersAll, kDecodeTolerance},
                              {"v2-lite attn_kv_b q8_0", true, DType::kQ8_0, kGpuLayersAll, 1e-2},
                              {"v2-lite attn_kv_b f16, 2 layers", true, DType::kF16, 2, 2e-3}};
  const std::vector<int32_t> tokens = test::random_tokens(19, 80, 14);
  for (const Variant& v : variants) {
    SCOPED_TRACE(v.name);
    test::TwinModels m =
        test::TwinModels::make(test::deepseek2_lite_spec(v.type, v.merged_kv_b), {.max_step_tokens = 32});
    ASSERT_EQ(m.model->config().mla.merged_kv_b, v.merged_kv_b);
    GpuModel g = load_gpu(m.bytes, v.gpu_layers, 32, DType::kF32);
    const test::ReferenceComparison prefill = test::compare_to_reference(*g.model, *g.kv, *m.reference, tokens, false);
    const std::vector<int32_t> decoded(tokens.begin(), tokens.begin() + decode_tokens(tokens.size()));
    const test::ReferenceComparison decode = test::compare_to_reference(*g.model, *g.kv, *m.reference, decoded, true);
    std::printf("cuda deepseek2 %-32s relative error prefill %.2e decode %.2e, experts as the reference's %.3f %.3f\n",
                v.name, prefill.relative(), decode.relative(), prefill.agreement, decode.agreement);
    EXPECT_LE(prefill.relative(), kPrefillTolerance);
    EXPECT_LE(decode.relative(), v.decode_tolerance);
    EXPECT_GE(std::min(prefill.agreement, decode.agreement), 0.9);
  }
}

// A prefill's attention on tensor cores (EMBER_CUDA_TILED_ATTENTION=always) against the per-row
// kernel (=0): logits within 3e-3, and not the same bits (the tiled path ran); llama, and gemma2
// (soft-cap, a sliding window): a 100-token prompt in steps of 64 and 36 rows, and a step mixing a
// prompt with another sequence's decode row.
TEST(CudaModel, TiledPrefillAttentionAgreesWithRowByRow) {
  EMBER_REQUIRE_GPU();
  const std::vector<int32_t> tokens = test::random_tokens(100, 80, 31);
  for (const std::string arch : {"llama", "gemma2"}) {
    SCOPED_TRACE(arch);
    test::TwinModels m = test::TwinModels::make(test::reference_spec(arch, DType::kF16), {.max_step_tokens = 64});
    Logits got[2];
    for (const char* mode : {"always", "0"}) {
      const ScopedEnv env("EMBER_CUDA_TILED_ATTENTION", mode);
      GpuModel g = load_gpu(m.bytes, kGpuLayersAll, 64, DType::kF16);
      got[mode[0] == '0'] = test::run_tokens(*g.model, *g.kv, tokens, false);
    }
    // Then a mixed step: a second sequence's 30-token prompt (a tile) with the first's next token
    // (a lone row, through the per-row kernel in the same attention call).
    Logits mixed[2];
    for (const char* mode : {"always", "0"}) {
      const ScopedEnv env("EMBER_CUDA_TILED_ATTENTION", mode);
      GpuModel g = load_gpu(m.bytes, kGpuLayersAll, 64, DType::kF16);
      const SeqId a = g.kv->add_sequence(), b = g.kv->add_sequence();
      Batch batch;
      for (int32_t i = 0; i < 40; ++i) batch.add(tokens[static_cast<size_t>(i)], i, a, false);
      g.model->forward(batch, *g.kv);
      batch.clear();
      for (int32_t i = 0; i < 30; ++i) batch.add(tokens[static_cast<size_t>(50 + i)], i, b, true);
      batch.add(tokens[40], 40, a, true);
      mixed[mode[0] == '0'] = test::rows_of(g.model->forward(batch, *g.kv), g.model->config().n_vocab, 0, 31);
    }
    for (int i = 0; i < 2; ++i) got[i].insert(got[i].end(), mixed[i].begin(), mixed[i].end());
    test::RefLogits rowwise;
    for (const auto& row : got[1]) rowwise.emplace_back(row.begin(), row.end());
    const double error = relative_to_reference(got[0], rowwise);
    std::printf("cuda %-6s tiled prefill attention vs row by row: relative %.2e\n", arch.c_str(), error);
    // The attention's own difference is ~5e-5 (attention_kernels_test); the f16 GEMMs after it turn
    // any change of their input into f16 rounding flips, the prefill's ~1e-3 against the reference.
    EXPECT_LE(error, 3e-3);
    EXPECT_NE(got[0], got[1]);
  }
}

// Prefill through the int8 GEMM (EMBER_CUDA_INT8_GEMM=1): Q8_1 activations, as the CPU's for the
// 32-value formats (the super-blocks' CPU dots take Q8_K), so within the CPU's own tolerance for
// them against the reference, and not the f16 cuBLAS path's bits (the int8 GEMM ran). Not compared
// with the CPU's logits: on these small random models any change of a layer's input (the tiled
// attention's 5e-5 does it too) flips some activation roundings, which moves the logits by ~1.5e-2
// whichever path runs; the kernel tests compare the GEMM with the CPU's dot products (or, for the
// super-blocks, the formula written out) exactly.
TEST(CudaModel, Int8GemmPrefillAgreesWithTheReference) {
  EMBER_REQUIRE_GPU();
  const std::vector<int32_t> tokens = test::random_tokens(40, 80, 12);
  // Ten types on llama (Q5_1 and Q5_K are Q4_1's and Q4_K's code plus a fifth bit, which the
  // kernel test covers); three on qwen2 (its biases after the GEMM), to keep the test's time down;
  // one on qwen3moe (each expert's rows through the int8 GEMM, compared through the experts chosen).
  const std::vector<DType> all = {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ8_0, DType::kIQ4_NL,
                                  DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ6_K, DType::kIQ4_XS};
  for (const std::string arch : {"llama", "qwen2", "qwen3moe"}) {
    const std::vector<DType> types = arch == "llama"   ? all
                                     : arch == "qwen2" ? std::vector<DType>{DType::kQ4_0, DType::kQ4_K, DType::kQ6_K}
                                                       : std::vector<DType>{DType::kQ4_K};
    for (const DType type : types) {
      SCOPED_TRACE(arch + " " + std::string(dtype_name(type)));
      test::TwinModels m = test::TwinModels::make(test::reference_spec(arch, type), {.max_step_tokens = 64});
      const double cpu = test::compare_to_reference(*m.model, *m.kv, *m.reference, tokens, false).relative();
      test::ReferenceComparison got[2];
      for (const char* mode : {"1", "0"}) {
        const ScopedEnv env("EMBER_CUDA_INT8_GEMM", mode);
        GpuModel g = load_gpu(m.bytes, kGpuLayersAll, 64, DType::kF32);
        got[mode[0] == '0'] = test::compare_to_reference(*g.model, *g.kv, *m.reference, tokens, false);
      }
      const double int8 = got[0].relative(), f16 = got[1].relative();
      std::printf("cuda %-6s %-5s prefill vs the reference: int8 GEMM %.2e, f16 cuBLAS %.2e, cpu %.2e\n", arch.c_str(),
                  std::string(dtype_name(type)).c_str(), int8, f16, cpu);
      EXPECT_LE(int8, 0.06);  // the CPU's Q8_0-activation tolerance (HybridAtEverySplitPoint)
      EXPECT_GE(got[0].agreement, 0.9);
      EXPECT_NE(got[0].logits, got[1].logits);
    }
  }
}

// The EMBER_CUDA_* A/B switches take their listed values; another is ignored with a warning that
// names the switch and what it takes.
TEST(CudaModel, UnknownSwitchValuesAreIgnoredWithAWarning) {
  EMBER_REQUIRE_GPU();
  test::TwinModels m = test::TwinModels::make(test::reference_spec("llama", DType::kQ8_0), {.max_step_tokens = 16});
  const ScopedEnv graphs("EMBER_CUDA_GRAPHS", "off"), int8("EMBER_CUDA_INT8_GEMM", "yes"),
      tiled("EMBER_CUDA_TILED_ATTENTION", "2");
  const LogLevel level = log_level();  // warnings shown whatever EMBER_LOG_LEVEL says
  set_log_level(LogLevel::kWarn);
  testing::internal::CaptureStderr();
  GpuModel g = load_gpu(m.bytes, kGpuLayersAll, 16, DType::kF32);
  const std::string log = testing::internal::GetCapturedStderr();
  set_log_level(level);
  EXPECT_NE(log.find("EMBER_CUDA_GRAPHS=off is not one of 0|1: ignored"), std::string::npos) << log;
  EXPECT_NE(log.find("EMBER_CUDA_INT8_GEMM=yes is not one of 0|1: ignored"), std::string::npos) << log;
  EXPECT_NE(log.find("EMBER_CUDA_TILED_ATTENTION=2 is not one of 0|1|always: ignored"), std::string::npos) << log;
  EXPECT_EQ(test::run_tokens(*g.model, *g.kv, test::random_tokens(3, 80, 5), true).size(), 3u);
}

// F16 and Q8_0 caches: the GPU stores the same bits as the CPU would from the same K/V rows, and
// reads the same values; all on the GPU, and split (each side's pools in its own memory).
TEST(CudaModel, NarrowKvCachesMatchTheCpuOnTheSameCache) {
  EMBER_REQUIRE_GPU();
  const std::vector<int32_t> tokens = test::random_tokens(40, 80, 9);
  for (DType kv_type : {DType::kF16, DType::kQ8_0}) {
    test::TwinModels m =
        test::TwinModels::make(test::reference_spec("llama", DType::kF32), {.kv_type = kv_type, .max_step_tokens = 8});
    const Logits cpu = test::run_sequence(m, tokens, true);
    test::RefLogits cpu64;
    for (const auto& row : cpu) cpu64.emplace_back(row.begin(), row.end());
    const auto n_layer = static_cast<int32_t>(m.model->config().n_layer);
    for (int32_t gpu_layers : {kGpuLayersAll, n_layer / 2}) {
      SCOPED_TRACE(std::string(dtype_name(kv_type)) + " gpu layers " + std::to_string(gpu_layers));
      GpuModel g = load_gpu(m.bytes, gpu_layers, 8, kv_type);
      const double error = relative_to_reference(test::run_tokens(*g.model, *g.kv, tokens, true), cpu64);
      std::printf("cuda %s KV (gpu layers %d) vs cpu %s KV: relative %.2e\n", std::string(dtype_name(kv_type)).c_str(),
                  gpu_layers, std::string(dtype_name(kv_type)).c_str(), error);
      // Q8_0: K/V rows that differ in their last bits (GEMV vs CPU sum order) can land one int8
      // step (1/127 of their block's absmax) apart; the emulator measured 3e-7, F16 3e-5.
      EXPECT_LE(error, kv_type == DType::kQ8_0 ? 1e-3 : 1e-4);
    }
  }
}

// Hybrid offload: the last N layers on the GPU for every N from 0 (all on the CPU) to n_layer + 1
// (the output head too). Each must agree with the reference as well as the CPU does; a mixture of
// experts (qwen2moe, with its gated shared expert) through the experts it chose.
TEST(CudaModel, HybridAtEverySplitPoint) {
  EMBER_REQUIRE_GPU();
  const std::vector<int32_t> tokens = test::random_tokens(19, 80, 4);
  for (const std::string arch : {"qwen2", "gemma3", "qwen2moe"}) {
    RandomModelSpec spec = test::reference_spec(arch, DType::kQ8_0);
    test::TwinModels m = test::TwinModels::make(spec, {.max_step_tokens = 32});
    const auto n_layer = static_cast<int32_t>(m.model->config().n_layer);
    for (int32_t n_gpu = 0; n_gpu <= n_layer + 1; ++n_gpu) {
      SCOPED_TRACE(arch + " gpu layers " + std::to_string(n_gpu));
      GpuModel g = load_gpu(m.bytes, n_gpu, 32, DType::kF32);
      EXPECT_EQ(g.model->gpu() != nullptr, n_gpu > 0);
      const test::ReferenceComparison prefill =
          test::compare_to_reference(*g.model, *g.kv, *m.reference, tokens, false);
      const test::ReferenceComparison decode = test::compare_to_reference(*g.model, *g.kv, *m.reference, tokens, true);
      std::printf(
          "cuda hybrid %-8s %d of %d layers%s: prefill %.2e decode %.2e, experts as the reference's %.3f %.3f\n",
          arch.c_str(), std::min(n_gpu, n_layer), n_layer, n_gpu > n_layer ? " + head" : "", prefill.relative(),
          decode.relative(), prefill.agreement, decode.agreement);
      EXPECT_LE(prefill.relative(), 0.06);  // the CPU's Q8_0 tolerance (Q8_0 activations on its layers)
      EXPECT_LE(decode.relative(), 0.06);
      EXPECT_GE(std::min(prefill.agreement, decode.agreement), 0.9);  // ForwardReference's bound
    }
  }
}

// Two sequences decoding in one batch beside a third's prefill chunk, then a fork of the first
// (copy-on-write of its partial block in the device pools) that diverges: every logits row equals
// the CPU model's for the same batches.
TEST(CudaModel, MixedBatchesAndForksEqualTheCpu) {
  EMBER_REQUIRE_GPU();
  for (int32_t n_gpu : {kGpuLayersAll, 1}) {
    SCOPED_TRACE("gpu layers " + std::to_string(n_gpu));
    test::TwinModels m = test::TwinModels::make(test::reference_spec("llama", DType::kF32), {.max_step_tokens = 64});
    // Steps of 8 rows: every GPU matmul is the float GEMV, so 1e-4 means something (the f16 GEMM of
    // larger steps is ~1e-3 from the CPU and would leave that in the cache).
    GpuModel g = load_gpu(m.bytes, n_gpu, 8, DType::kF32);
    const std::vector<int32_t> a = test::random_tokens(37, 80, 11);
    const std::vector<int32_t> b = test::random_tokens(5, 80, 12);
    const std::vector<int32_t> c = test::random_tokens(23, 80, 13);
    double worst = 0;
    double scale = 0;
    const auto run_both = [&](const Batch& batch) {
      const std::span<const float> cpu_logits = m.model->forward(batch, *m.kv);
      const Logits cpu = test::rows_of(cpu_logits, 80, 0, cpu_logits.size() / 80);
      const std::span<const float> gpu_logits = g.model->forward(batch, *g.kv);
      const Logits gpu = test::rows_of(gpu_logits, 80, 0, gpu_logits.size() / 80);
      ASSERT_EQ(cpu.size(), gpu.size());
      for (size_t r = 0; r < cpu.size(); ++r) {
        for (size_t i = 0; i < cpu[r].size(); ++i) {
          worst = std::max(worst, std::abs(double{cpu[r][i]} - gpu[r][i]));
          scale = std::max(scale, std::abs(double{cpu[r][i]}));
        }
      }
    };
    // Both caches hand out the same sequence ids and blocks (same calls in the same order).
    const SeqId sa = m.kv->add_sequence();
    const SeqId sb = m.kv->add_sequence();
    const SeqId sc = m.kv->add_sequence();
    ASSERT_EQ(g.kv->add_sequence(), sa);
    ASSERT_EQ(g.kv->add_sequence(), sb);
    ASSERT_EQ(g.kv->add_sequence(), sc);
    Batch batch;
    for (size_t i = 0; i < a.size(); ++i) batch.add(a[i], static_cast<int32_t>(i), sa, i + 1 == a.size());
    for (size_t i = 0; i < b.size(); ++i) batch.add(b[i], static_cast<int32_t>(i), sb, true);
    run_both(batch);
    // Decode rows of a and b beside c's whole prompt.
    for (int step = 0; step < 3; ++step) {
      batch.clear();
      batch.add(c[static_cast<size_t>(step)], static_cast<int32_t>(a.size()) + step, sa, true);
      batch.add(c[static_cast<size_t>(step) + 1], static_cast<int32_t>(b.size()) + step, sb, true);
      if (step == 0) {
        for (size_t i = 0; i < c.size(); ++i) batch.add(c[i], static_cast<int32_t>(i), sc, i + 1 == c.size());
      } else {
        batch.add(a[static_cast<size_t>(step)], static_cast<int32_t>(c.size()) + step - 1, sc, true);
      }
      run_both(batch);
    }
    // a holds 40 tokens: its third block is partial. The fork shares it until one of them writes.
    const SeqId fa = m.kv->fork(sa, 40);
    ASSERT_EQ(g.kv->fork(sa, 40), fa);
    for (int step = 0; step < 4; ++step) {
      batch.clear();
      batch.add(b[static_cast<size_t>(step)], 40 + step, sa, true);
      batch.add(c[static_cast<size_t>(step)], 40 + step, fa, true);
      run_both(batch);
    }
    std::printf("cuda mixed batches (gpu layers %d): max |cpu - gpu| %.2e of max |logit| %.2f\n", n_gpu, worst, scale);
    EXPECT_LE(worst / scale, 1e-4);
  }
}

// The paths besides plain logits: hooks on GPU layers (copied down and back; a steering hook's
// change must reach the logits), hidden-state rows with the head on the GPU (the host fallback),
// batches longer than a step, and a sequence past the context the GPU workspace was sized for.
TEST(CudaModel, HooksHiddenRowsLongBatchesAndLongSequences) {
  EMBER_REQUIRE_GPU();
  test::TwinModels m = test::TwinModels::make(test::reference_spec("qwen2", DType::kF32), {.max_step_tokens = 8});
  GpuModel g = load_gpu(m.bytes, kGpuLayersAll, 8, DType::kF32);
  // Halve the residual stream after layer 0 on both: the logits must move the same way.
  for (Model* model : {m.model.get(), g.model.get()}) {
    model->hooks().add(HookPoint::kResidual, [](const HookTensor& t) {
      if (t.layer != 0) return;
      for (int64_t i = 0; i < t.n_rows * t.n_cols; ++i) t.data[i] *= 0.5f;
    });
  }
  const std::vector<int32_t> tokens = test::random_tokens(21, 80, 21);
  const auto run = [&](Model& model, KvCache& kv) {
    const SeqId seq = kv.add_sequence();
    Batch batch;  // 21 rows in steps of 8; rows alternate logits / hidden state
    for (size_t i = 0; i < tokens.size(); ++i) {
      batch.add(tokens[i], static_cast<int32_t>(i), seq, i % 2 == 0 ? Batch::kLogits : Batch::kHidden);
    }
    const std::span<const float> logits = model.forward(batch, kv);
    std::vector<float> out(logits.begin(), logits.end());
    const std::span<const float> hidden = model.hidden();
    out.insert(out.end(), hidden.begin(), hidden.end());
    kv.remove_sequence(seq);
    return out;
  };
  const std::vector<float> cpu = run(*m.model, *m.kv);
  const std::vector<float> gpu = run(*g.model, *g.kv);
  const double error = cuda_test::relative_error(gpu, cpu);
  std::printf("cuda hooks + hidden rows + 21-row batch: relative %.2e\n", error);
  EXPECT_LE(error, 1e-5);

  // A 600-token sequence on a model loaded for a 64-token context: the block tables and the
  // attention workspace grow between steps.
  RandomModelSpec spec = test::reference_spec("llama", DType::kF32);
  const std::vector<std::byte> bytes = test::write_random_model(spec);
  CpuBackendOptions backend_options;
  backend_options.n_threads = 2;
  CpuBackend backend(backend_options);
  ModelOptions options;
  options.max_step_tokens = 8;
  options.context_size = 64;
  options.gpu_layers = kGpuLayersAll;
  const auto gpu_model = Model::from_file(GgufFile::parse(bytes, "random.gguf"), backend, options);
  options.gpu_layers = 0;
  const auto cpu_model = Model::from_file(GgufFile::parse(bytes, "random.gguf"), backend, options);
  KvCache gpu_kv(gpu_model->config(), gpu_model->kv_options(640, DType::kF32, DType::kF32));
  KvCache cpu_kv(cpu_model->config(), cpu_model->kv_options(640, DType::kF32, DType::kF32));
  const std::vector<int32_t> long_tokens = test::random_tokens(600, 80, 22);
  Logits a = test::run_tokens(*gpu_model, gpu_kv, long_tokens, false);
  Logits b = test::run_tokens(*cpu_model, cpu_kv, long_tokens, false);
  test::RefLogits b64;
  for (const auto& row : b) b64.emplace_back(row.begin(), row.end());
  const double long_error = relative_to_reference(a, b64);
  std::printf("cuda 600 tokens past a 64-token context: relative %.2e\n", long_error);
  EXPECT_LE(long_error, 1e-4);
}

// Token rows (Batch::kToken) and top-k rows (Batch::kTopK) with the head on the GPU: the greedy
// choice and the top-k selection run on the device and equal the sampler's rules applied to the
// logits the same rows return when they ask for logits instead (the same kernels, the same bits).
// Prefill chunks with token, top-k and logits rows, then decode steps (replayed from graphs) of two
// sequences; on every GPU layer, and on a split that leaves the head on the CPU; and a vocabulary
// of 5000, whose top-k rows the device cuts into slices.
TEST(CudaModel, TokenAndTopKRowsFollowTheirLogits) {
  EMBER_REQUIRE_GPU();
  RandomModelSpec spec = test::reference_spec("llama", DType::kQ8_0);
  const std::vector<std::byte> small_vocab = test::write_random_model(spec);
  spec.n_vocab = 5000;
  const std::vector<std::byte> large_vocab = test::write_random_model(spec);
  constexpr int32_t kTop = 7;
  struct Case {
    int32_t n_gpu;
    bool large;
  };
  for (const Case& c : {Case{kGpuLayersAll, false}, Case{1, false}, Case{kGpuLayersAll, true}}) {
    const int32_t n_gpu = c.n_gpu;
    const bool large = c.large;
    const std::vector<std::byte>& bytes = large ? large_vocab : small_vocab;
    SCOPED_TRACE("gpu layers " + std::to_string(n_gpu) + (large ? ", vocabulary 5000" : ""));
    struct Outputs {
      std::vector<int32_t> tokens;
      std::vector<TopCandidate> top;
      std::vector<float> logits;
    };
    // The same batches on a fresh load: with their kinds, or with every token and top-k row asking
    // for logits.
    const auto run = [&](bool as_logits) {
      GpuModel g = load_gpu(bytes, n_gpu, 8, DType::kF16);
      const int64_t n_vocab = g.model->config().n_vocab;
      const std::vector<int32_t> tokens = test::random_tokens(40, n_vocab, 41);
      const Batch::RowOutput token_kind = as_logits ? Batch::kLogits : Batch::kToken;
      const Batch::RowOutput top_kind = as_logits ? Batch::kLogits : Batch::kTopK;
      Outputs out;
      const auto forward = [&](Batch& batch) {
        batch.top_k = kTop;
        const std::span<const float> logits = g.model->forward(batch, *g.kv);
        out.logits.insert(out.logits.end(), logits.begin(), logits.end());
        out.tokens.insert(out.tokens.end(), g.model->tokens().begin(), g.model->tokens().end());
        out.top.insert(out.top.end(), g.model->top_k().begin(), g.model->top_k().end());
      };
      const SeqId s0 = g.kv->add_sequence(), s1 = g.kv->add_sequence();
      Batch batch;
      for (int32_t i = 0; i < 13; ++i) {  // two steps of 8 rows
        const Batch::RowOutput kind = i == 5 || i == 12 ? token_kind
                                      : i == 9          ? Batch::kLogits
                                      : i == 10         ? top_kind
                                                        : Batch::kNoOutput;
        batch.add(tokens[static_cast<size_t>(i)], i, s0, kind);
      }
      forward(batch);
      for (int32_t step = 0; step < 6; ++step) {
        batch.clear();
        batch.add(tokens[static_cast<size_t>(13 + step)], 13 + step, s0, step % 2 == 0 ? token_kind : top_kind);
        batch.add(tokens[static_cast<size_t>(20 + step)], step, s1, step % 3 == 0 ? Batch::kLogits : top_kind);
        forward(batch);
      }
      if (n_gpu == kGpuLayersAll) {
        EXPECT_GT(g.model->gpu()->graph_replays(), 0u);
      }
      return out;
    };
    const Outputs mixed = run(false);
    const Outputs all = run(true);
    const int64_t n_vocab = large ? 5000 : 80;
    // Output rows in order and what each asked for in the mixed run.
    std::vector<Batch::RowOutput> kinds = {Batch::kToken, Batch::kLogits, Batch::kTopK, Batch::kToken};
    for (int step = 0; step < 6; ++step) {
      kinds.push_back(step % 2 == 0 ? Batch::kToken : Batch::kTopK);
      kinds.push_back(step % 3 == 0 ? Batch::kLogits : Batch::kTopK);
    }
    ASSERT_EQ(all.logits.size(), kinds.size() * static_cast<size_t>(n_vocab));
    const auto count = [&](Batch::RowOutput kind) {
      return static_cast<size_t>(std::count(kinds.begin(), kinds.end(), kind));
    };
    ASSERT_EQ(mixed.tokens.size(), count(Batch::kToken));
    ASSERT_EQ(mixed.top.size(), count(Batch::kTopK) * kTop);
    std::vector<int32_t> distinct;
    std::vector<sampling::Candidate> best;
    for (size_t o = 0, t = 0, k = 0, l = 0; o < kinds.size(); ++o) {
      const float* want = all.logits.data() + o * static_cast<size_t>(n_vocab);
      if (kinds[o] == Batch::kToken) {
        EXPECT_EQ(mixed.tokens[t], test::greedy_of(want, n_vocab)) << "output row " << o;
        distinct.push_back(mixed.tokens[t++]);
      } else if (kinds[o] == Batch::kTopK) {
        sampling::select_top_k(std::span<const float>(want, static_cast<size_t>(n_vocab)), kTop, best);
        for (int32_t i = 0; i < kTop; ++i, ++k) {
          EXPECT_EQ(mixed.top[k].id, best[static_cast<size_t>(i)].id) << "output row " << o << " place " << i;
          EXPECT_EQ(std::memcmp(&mixed.top[k].logit, &best[static_cast<size_t>(i)].logit, sizeof(float)), 0)
              << "output row " << o << " place " << i;
        }
      } else {
        EXPECT_EQ(0, std::memcmp(mixed.logits.data() + l++ * static_cast<size_t>(n_vocab), want,
                                 sizeof(float) * static_cast<size_t>(n_vocab)))
            << "output row " << o;
      }
    }
    std::sort(distinct.begin(), distinct.end());
    EXPECT_GT(std::unique(distinct.begin(), distinct.end()) - distinct.begin(), 2);  // not one constant token
  }
}

// CUDA graphs: decode steps replayed from a captured graph give the bits of the same steps run
// kernel by kernel (EMBER_CUDA_GRAPHS=0), over batches of 1-3 rows and back to 1, a fork (a new
// shape, so a new capture), prefill chunks between decode steps (not graphed) and a context past one attention
// chunk (the split and its merge inside the graph), with separate and fused q/k/v, on every GPU
// layer and on a split; deepseek2 (every layer) for latent attention and V3's routing in a graph.
TEST(CudaModel, GraphReplaysEqualDirectSteps) {
  EMBER_REQUIRE_GPU();
  for (const std::string arch : {"qwen2", "phi3", "qwen2moe", "deepseek2"}) {
    for (int32_t n_gpu : {kGpuLayersAll, 1}) {
      if (arch == "deepseek2" && n_gpu != kGpuLayersAll) continue;  // (the emulator's time: ~10 s a case)
      SCOPED_TRACE(arch + " gpu layers " + std::to_string(n_gpu));
      test::TwinModels m = test::TwinModels::make(test::reference_spec(arch, DType::kQ8_0), {.max_step_tokens = 32});
      GpuModel direct = [&] {
        const ScopedEnv off("EMBER_CUDA_GRAPHS", "0");
        return load_gpu(m.bytes, n_gpu, 32, DType::kF16);
      }();
      GpuModel graphed = [&] {
        const ScopedEnv unset("EMBER_CUDA_GRAPHS", nullptr);
        return load_gpu(m.bytes, n_gpu, 32, DType::kF16);
      }();
      const std::vector<int32_t> a = test::random_tokens(70, 80, 21);
      const std::vector<int32_t> c = test::random_tokens(14, 80, 22);
      size_t compared = 0;
      const auto both = [&](const Batch& batch) {
        const std::span<const float> x = direct.model->forward(batch, *direct.kv);
        const std::vector<float> want(x.begin(), x.end());
        const std::span<const float> got = graphed.model->forward(batch, *graphed.kv);
        ASSERT_EQ(got.size(), want.size());
        // (A prefill chunk may want no logits: empty spans, which memcmp must not see.)
        ASSERT_TRUE(want.empty() || std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0)
            << "step " << compared;
        ++compared;
      };
      std::vector<SeqId> seqs;
      for (GpuModel* g : {&direct, &graphed}) {
        const SeqId s0 = g->kv->add_sequence();
        const SeqId s1 = g->kv->add_sequence();
        if (g == &direct) seqs = {s0, s1};
      }
      Batch batch;
      for (size_t begin = 0; begin < a.size(); begin += 32) {  // prefill chunks: the GEMM path, not graphed
        batch.clear();
        for (size_t i = begin; i < std::min(a.size(), begin + 32); ++i) {
          batch.add(a[i], static_cast<int32_t>(i), seqs[0], i + 1 == a.size());
        }
        both(batch);
      }
      int32_t len0 = static_cast<int32_t>(a.size()), len1 = 0;
      for (int step = 0; step < 6; ++step) {  // one row, then two
        batch.clear();
        batch.add(c[static_cast<size_t>(step)], len0++, seqs[0], true);
        if (step >= 3) batch.add(a[static_cast<size_t>(step)], len1++, seqs[1], true);
        both(batch);
      }
      const SeqId fork_direct = direct.kv->fork(seqs[0], len0);
      ASSERT_EQ(graphed.kv->fork(seqs[0], len0), fork_direct);
      for (int step = 0; step < 4; ++step) {  // three rows: a new shape
        batch.clear();
        batch.add(c[static_cast<size_t>(step + 6)], len0 + step, seqs[0], true);
        batch.add(a[static_cast<size_t>(step + 6)], len1 + step, seqs[1], true);
        batch.add(c[static_cast<size_t>(step)], len0 + step, fork_direct, true);
        both(batch);
      }
      // Back to one row: the first graph again, whose baked input addresses must still be where a
      // one-row step stages its inputs after steps of other shapes.
      for (int step = 0; step < 2; ++step) {
        batch.clear();
        batch.add(a[static_cast<size_t>(step + 10)], len1 + 4 + step, seqs[1], true);
        both(batch);
      }
      EXPECT_EQ(compared, 15u);
      EXPECT_EQ(direct.model->gpu()->graph_replays(), 0u);
      EXPECT_EQ(graphed.model->gpu()->graph_captures(), 3u);  // shapes of 1, 2 and 3 rows
      EXPECT_EQ(graphed.model->gpu()->graph_replays(), 12u);
    }
  }
}

// --deterministic on the GPU: a decode row's logits are bit-identical alone and beside 11 other
// rows (every matmul on the GEMV, attention unsplit). Alone, the row runs the fused launches
// (q/k/v in one GEMV, the residual add and the GLU in the GEMVs' stores; phi3: fused q/k/v and
// [gate; up] matrices; qwen2: the q/k/v biases in the GEMV's store); beside 11 rows, the separate
// ones: the same bits. A mixture of experts (qwen2moe): alone, every (row, expert) GEMV in one
// launch; beside 11 rows, the rows grouped by expert and each expert's run in GEMV chunks.
TEST(CudaModel, BatchInvariantRowsAreBitIdentical) {
  EMBER_REQUIRE_GPU();
  for (const std::string arch : {"llama", "phi3", "qwen2", "qwen2moe"}) {
    SCOPED_TRACE(arch);
    const std::vector<std::byte> bytes = test::write_random_model(test::reference_spec(arch, DType::kQ8_0));
    CpuBackendOptions backend_options;
    backend_options.n_threads = 2;
    CpuBackend backend(backend_options);
    ModelOptions options;
    options.max_step_tokens = 64;
    options.batch_invariant = true;
    options.gpu_layers = kGpuLayersAll;
    const auto model = Model::from_file(GgufFile::parse(bytes, "random.gguf"), backend, options);
    KvCache kv(model->config(), model->kv_options(512, DType::kF16, DType::kF16));
    const std::vector<int32_t> prompt = test::random_tokens(30, 80, 31);
    const SeqId a = kv.add_sequence();
    const SeqId b = kv.add_sequence();
    Batch batch;
    for (size_t i = 0; i < prompt.size(); ++i) batch.add(prompt[i], static_cast<int32_t>(i), a, false);
    for (size_t i = 0; i < prompt.size(); ++i) batch.add(prompt[i], static_cast<int32_t>(i), b, false);
    (void)model->forward(batch, kv);
    batch.clear();
    batch.add(7, 30, a, true);  // alone
    const std::span<const float> first = model->forward(batch, kv);
    const std::vector<float> alone(first.begin(), first.end());
    kv.truncate(a, 30);
    batch.clear();
    batch.add(7, 30, a, true);  // beside 11 rows of b (more than the GEMV's 8: the GEMM would differ)
    const std::vector<int32_t> more = test::random_tokens(11, 80, 32);
    for (size_t i = 0; i < more.size(); ++i) batch.add(more[i], 30 + static_cast<int32_t>(i), b, true);
    const std::span<const float> crowded = model->forward(batch, kv);
    ASSERT_GE(crowded.size(), alone.size());
    EXPECT_EQ(std::memcmp(alone.data(), crowded.data(), alone.size() * sizeof(float)), 0);
  }
}

// The router_logits hook on GPU layers: its writes reach the device (the logits go down to the
// host and back) and a step with it runs kernel by kernel, not as a graph. One expert per token
// forced by -inf masks (qwen3moe normalizes, so the one left weighs exactly 1), decoded token by
// token, against the reference running the same experts; without the hook the same steps replay
// graphs.
TEST(CudaModel, RouterLogitsHookSteersGpuLayers) {
  EMBER_REQUIRE_GPU();
  RandomModelSpec spec = test::reference_spec("qwen3moe", DType::kF32);
  spec.n_expert = 6;
  spec.n_expert_used = 1;
  test::TwinModels m = test::TwinModels::make(spec);
  GpuModel g = load_gpu(m.bytes, kGpuLayersAll, 8, DType::kF32);
  const auto forced = [](int64_t layer, int64_t position) { return static_cast<int32_t>((position * 5 + layer) % 6); };
  std::vector<int64_t> rows_seen(static_cast<size_t>(g.model->config().n_layer));
  const auto handle = g.model->hooks().add(HookPoint::kRouterLogits, [&](const HookTensor& t) {
    for (int64_t r = 0; r < t.n_rows; ++r) {
      const int64_t position = rows_seen[static_cast<size_t>(t.layer)]++;
      for (int64_t e = 0; e < t.n_cols; ++e) {
        if (e != forced(t.layer, position)) t.data[r * t.n_cols + e] = -INFINITY;
      }
    }
  });
  const std::vector<int32_t> tokens = test::random_tokens(9, 80, 41);
  const test::RefLogits expected =
      m.reference->forward(tokens, [&](int64_t layer, int64_t position, std::span<const int32_t>) {
        return std::vector<int32_t>{forced(layer, position)};
      });
  const double error = relative_to_reference(test::run_tokens(*g.model, *g.kv, tokens, true), expected);
  std::printf("cuda steered experts: relative error %.2e\n", error);
  EXPECT_LE(error, kDecodeTolerance);
  EXPECT_EQ(g.model->gpu()->graph_replays(), 0u);
  g.model->hooks().remove(handle);
  const double unsteered = relative_to_reference(test::run_tokens(*g.model, *g.kv, tokens, true), expected);
  EXPECT_GT(unsteered, 1e-2);  // the steering changed the outcome
  EXPECT_GT(g.model->gpu()->graph_replays(), 0u);
}

// stories260K (F32, a real llama2.c export) against run.c's logits at every position.
TEST(CudaModel, Stories260KEqualsRunC) {
  EMBER_REQUIRE_GPU();
  EMBER_SHARED_DATA_OR_SKIP(data);
  const test::StoriesRunC run_c = test::load_stories_run_c(data);
  const std::string bytes = test::read_file(data / "models/stories260K/stories260K.gguf");
  std::vector<std::byte> file(bytes.size());
  std::memcpy(file.data(), bytes.data(), bytes.size());
  for (int32_t step : {8, 64}) {
    GpuModel g = load_gpu(file, kGpuLayersAll, step, DType::kF32, 512);
    const Logits prefill = test::run_tokens(*g.model, *g.kv, run_c.inputs, false);
    const Logits decode = test::run_tokens(*g.model, *g.kv, run_c.inputs, true);
    const double d_prefill = test::max_abs_diff(prefill, run_c.logits);
    const double d_decode = test::max_abs_diff(decode, run_c.logits);
    std::printf("cuda stories260K (steps of %d): max |logit - run.c| prefill %.3g, decode %.3g\n", step, d_prefill,
                d_decode);
    EXPECT_LE(d_decode, 1e-4);
    EXPECT_LE(d_prefill, 1e-4);  // 64-row steps: an F32 model's GEMM is cuBLAS's FP32 one
  }
}

TEST(CudaModel, OffloadArgumentsAreChecked) {
  EMBER_REQUIRE_GPU();
  const std::vector<std::byte> bytes = test::write_random_model(test::reference_spec("llama", DType::kF32));
  CpuBackendOptions backend_options;
  backend_options.n_threads = 1;
  CpuBackend backend(backend_options);
  ModelOptions options;
  options.gpu_layers = -2;
  EXPECT_THROW(Model::from_file(GgufFile::parse(bytes, "random.gguf"), backend, options), Error);
  // Every weight type the CPU runs has GPU kernels; a type without them (an activation format here)
  // is refused at upload naming the tensor and its type, not a crash.
  cuda::CudaBackend gpu;
  const std::vector<std::byte> q8_k(292, std::byte{0});  // one Q8_K block
  try {
    (void)gpu.upload({q8_k.data(), DType::kQ8_K, 1, 256}, "blk.0.attn_q");
    FAIL() << "a Q8_K matrix uploaded without an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("blk.0.attn_q is q8_K, a type without GPU matmul kernels"), std::string::npos)
        << e.what();
  }
  // Experts whose gate and up tensors differ in type run on the CPU but not on the GPU (one fused
  // gate/up GEMV type): refused at load with the layer and the types, when that layer is offloaded.
  test::RandomModelSpec moe = test::reference_spec("qwen3moe", DType::kF32);
  moe.tensor_type = [](const std::string& name, DType chosen) {
    return name == "blk.0.ffn_up_exps.weight" ? DType::kF16 : chosen;
  };
  const std::vector<std::byte> mixed = test::write_random_model(moe);
  ModelOptions last_layer;
  last_layer.gpu_layers = 1;  // blk.1 only: blk.0 stays on the CPU, which runs it
  EXPECT_NO_THROW((void)Model::from_file(GgufFile::parse(mixed, "mixed.gguf"), backend, last_layer));
  ModelOptions all_layers;
  all_layers.gpu_layers = kGpuLayersAll;
  try {
    (void)Model::from_file(GgufFile::parse(mixed, "mixed.gguf"), backend, all_layers);
    FAIL() << "experts of two types loaded on the GPU without an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("blk.0.ffn_gate_exps is f32 but ffn_up_exps is f16"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace ember
