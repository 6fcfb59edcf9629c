// The forward pass against the float64 reference transformer on small random models of every
// architecture and several weight types: prefill, decode token by token, every ISA.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "model/forward_test_support.h"

namespace ember {
namespace {

using test::RandomModelSpec;
using test::TwinModels;

// Architectures whose GGUF mapping the reference implements (tests/reference/README.md).
const std::vector<std::string> kArchs = {"llama", "qwen2", "qwen3"};

// K-quants want rows of 256: every matmul's k is a multiple of it.
RandomModelSpec spec_for(const std::string& arch, DType type) {
  RandomModelSpec s;
  s.arch = arch;
  s.n_embd = 256;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.head_dim = 64;
  s.n_ff = 512;
  s.n_vocab = 80;
  s.weight_type = type;
  s.embd_type = type;
  s.seed = 7 + static_cast<uint64_t>(type);
  return s;
}

struct TypeTolerance {
  DType type;
  double relative;  // of max |logit|: ember computes in float32 and quantizes activations
};

// About 3x the largest error measured over the architectures (the test prints them): float32
// arithmetic for F32; F16 activations in the F16 GEMV; Q8_0 / Q8_K activations for the others.
const TypeTolerance kTypes[] = {
    {DType::kF32, 2e-6},  {DType::kF16, 2e-3},   {DType::kQ8_0, 0.06},
    {DType::kQ4_0, 0.06}, {DType::kQ4_K, 0.075}, {DType::kQ6_K, 0.075},
};

TEST(ForwardReference, PrefillAndDecodeOfEveryArchitectureAndType) {
  const std::vector<int32_t> tokens = test::random_tokens(21, 80, 3);
  for (const std::string& arch : kArchs) {
    for (const TypeTolerance& t : kTypes) {
      SCOPED_TRACE(arch + " " + std::string(dtype_name(t.type)));
      TwinModels m = TwinModels::make(spec_for(arch, t.type), DType::kF32, 256, /*max_step_tokens=*/8);
      const test::RefLogits expected = m.reference->forward(tokens);
      const double scale = test::max_abs(expected);
      const double prefill = test::max_abs_diff(test::run_sequence(m, tokens, false), expected) / scale;
      const double decode = test::max_abs_diff(test::run_sequence(m, tokens, true), expected) / scale;
      std::printf("%-6s %-5s max |logit| %5.2f  relative error prefill %.2e decode %.2e\n", arch.c_str(),
                  std::string(dtype_name(t.type)).c_str(), scale, prefill, decode);
      EXPECT_LE(prefill, t.relative);
      EXPECT_LE(decode, t.relative);
    }
  }
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// Every ISA's kernels (scalar, avx2, avx512 where the CPU has them) on an F32 and a Q8_0 model.
TEST(ForwardReference, EveryIsa) {
  const std::vector<int32_t> tokens = test::random_tokens(13, 80, 5);
  for (Isa isa : supported_isas()) {
    for (const TypeTolerance& t : {kTypes[0], kTypes[2]}) {
      SCOPED_TRACE(std::string(isa_name(isa)) + " " + std::string(dtype_name(t.type)));
      TwinModels m = TwinModels::make(spec_for("qwen2", t.type), DType::kF32, 256, 8, isa);
      const test::RefLogits expected = m.reference->forward(tokens);
      const double scale = test::max_abs(expected);
      EXPECT_LE(test::max_abs_diff(test::run_sequence(m, tokens, false), expected) / scale, t.relative);
      EXPECT_LE(test::max_abs_diff(test::run_sequence(m, tokens, true), expected) / scale, t.relative);
    }
  }
}

// The default F16 cache rounds K and V to 11 significant bits: logits move by ~1e-3 of their scale.
TEST(ForwardReference, F16KvCache) {
  const std::vector<int32_t> tokens = test::random_tokens(21, 80, 9);
  TwinModels m = TwinModels::make(spec_for("llama", DType::kF32), DType::kF16);
  const test::RefLogits expected = m.reference->forward(tokens);
  const double error = test::max_abs_diff(test::run_sequence(m, tokens, false), expected) / test::max_abs(expected);
  std::printf("llama f32 weights, f16 KV cache: relative error %.2e\n", error);
  EXPECT_LE(error, 3e-3);
  EXPECT_GT(error, 1e-6);  // the cache really is F16
}

}  // namespace
}  // namespace ember
