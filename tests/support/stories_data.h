// The stories260K reference data of ../shared/data/models/stories260K/reference: llama2.c run.c's
// greedy run with its logits, and llama.cpp's llama-simple greedy texts (tests of the reference
// transformer and of the forward pass share them).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace ember::test {

// run.c's float32 run of "Once upon a time": the inputs of each step (prompt, then greedy tokens)
// and its logits after each.
struct StoriesRunC {
  std::vector<int32_t> prompt, greedy, inputs;
  std::vector<std::vector<double>> logits;  // [step][512]
};
StoriesRunC load_stories_run_c(const std::filesystem::path& data);

// llama-simple's greedy text per model file name (its "### name" sections, trailing newlines
// removed): "<s>" then every piece, the first one's space included.
std::map<std::string, std::string> load_stories_llama_cpp_texts(const std::filesystem::path& data);

}  // namespace ember::test
