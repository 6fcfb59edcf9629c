// `ember run --device cuda` end to end on stories260K: llama.cpp's greedy text with every layer on
// the GPU and with a hybrid split, the stats panel's gpu line, and a model that does not fit the
// device refused with the numbers (the emulator's device size is set per process, so that part
// runs under the CUDA emulator only).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "cli/cli_run.h"
#include "cuda/cuda_test_util.h"
#include "support/test_data.h"

namespace ember {
namespace {

const char* const kStories = "models/stories260K/stories260K.gguf";
const std::string kGreedyText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

test::RunResult run_cuda(const std::string& model, std::vector<std::string> flags) {
  std::vector<std::string> args = {"run", "-m", model, "--temp", "0", "-p", "Once upon a time", "-n", "40"};
  args.insert(args.end(), flags.begin(), flags.end());
  return test::ember(args);
}

TEST(CudaCli, GreedyTextOnTheGpuAndHybridIsLlamaCpps) {
  EMBER_REQUIRE_GPU();
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string model = (data / kStories).string();
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--device", "cuda"}, std::vector<std::string>{"-ngl", "3"}}) {
    const test::RunResult r = run_cuda(model, flags);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind(kGreedyText, 0), 0u) << flags[0] << ": " << r.out;
    EXPECT_NE(r.err.find("  gpu "), std::string::npos) << r.err;
  }
}

TEST(CudaCli, AModelThatDoesNotFitIsRefusedWithTheNumbers) {
  EMBER_REQUIRE_GPU();
#ifndef EMBER_CUDA_EMULATED
  GTEST_SKIP() << "needs the CUDA emulator's configurable device size";
#else
  EMBER_SHARED_DATA_OR_SKIP(data);
  ASSERT_EQ(setenv("EMBER_CUDA_EMULATOR_MEMORY", "256", 1), 0);  // MiB: less than the headroom alone
  const test::RunResult r = run_cuda((data / kStories).string(), {"--device", "cuda"});
  unsetenv("EMBER_CUDA_EMULATOR_MEMORY");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("MiB free of 256 MiB: offload fewer layers (--gpu-layers N)"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("Assertion"), std::string::npos) << r.err;
#endif
}

}  // namespace
}  // namespace ember
