// Loading the stories260K reference data.
#include "support/stories_data.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "support/test_data.h"

namespace ember::test {

namespace {
const char* const kReference = "models/stories260K/reference/";
}  // namespace

StoriesRunC load_stories_run_c(const std::filesystem::path& data) {
  std::ifstream in(data / kReference / "llama2c_run_c_greedy_once_upon_a_time.json");
  const auto j = nlohmann::json::parse(in);
  StoriesRunC r;
  r.prompt = j["prompt_tokens"].get<std::vector<int32_t>>();
  r.greedy = j["greedy_tokens"].get<std::vector<int32_t>>();
  for (const auto& step : j["steps"]) {
    EXPECT_EQ(step["pos"].get<size_t>(), r.inputs.size());
    r.inputs.push_back(step["input"].get<int32_t>());
    r.logits.push_back(step["logits"].get<std::vector<double>>());
  }
  return r;
}

std::map<std::string, std::string> load_stories_llama_cpp_texts(const std::filesystem::path& data) {
  const std::string all = read_file(data / kReference / "llama_cpp_llama-simple_greedy_once_upon_a_time.txt");
  std::map<std::string, std::string> texts;
  size_t at = all.find("### ");
  while (at != std::string::npos) {
    const size_t name_end = all.find('\n', at);
    const size_t next = all.find("\n### ", name_end);
    std::string body = all.substr(name_end + 1, next == std::string::npos ? std::string::npos : next - name_end - 1);
    while (!body.empty() && body.back() == '\n') body.pop_back();
    texts[all.substr(at + 4, name_end - at - 4)] = body;
    at = next == std::string::npos ? next : next + 1;
  }
  return texts;
}

}  // namespace ember::test
