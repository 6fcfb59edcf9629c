// detect_tool_format over every real chat template in ../shared/data/templates.
#include "tool_calls/tool_format.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <string>

#include "support/test_data.h"
#include "tokenizer/chat_template/chat_template.h"

namespace ember::tool_calls {
namespace {

using F = ToolFormat;

// Decided by reading each template: what follows <tool_call> (JSON or key/value markup), whether
// the ipython role is rendered, which Mistral control tokens appear.
const std::map<std::string, ToolFormat>& expected_formats() {
  static const std::map<std::string, ToolFormat> table = {
      {"Apriel-1.6-15b-Thinker-fixed.jinja", F::kGeneric},  // <tool_calls>[...] markup
      {"Bielik-11B-v3.0-Instruct.jinja", F::kHermes},
      {"ByteDance-Seed-OSS.jinja", F::kGeneric},  // <seed:tool_call><function=...>
      {"CohereForAI-c4ai-command-r-plus-tool_use.jinja", F::kGeneric},
      {"CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", F::kGeneric},  // <|START_ACTION|>
      {"GLM-4.6.jinja", F::kGeneric},                                        // <tool_call>f<arg_key>
      {"GigaChat3-10B-A1.8B.jinja", F::kGeneric},
      {"HuggingFaceTB-SmolLM3-3B.jinja", F::kGeneric},  // no tools variable
      {"Kimi-K2-Instruct.jinja", F::kGeneric},
      {"LFM2-8B-A1B.jinja", F::kGeneric},
      {"LFM2.5-8B-A1B.jinja", F::kGeneric},
      {"MiMo-VL.jinja", F::kHermes},
      {"MiniMax-M2.jinja", F::kGeneric},
      {"Mistral-Small-3.2-24B-Instruct-2506.jinja", F::kMistralSmall},
      {"NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.jinja", F::kGeneric},  // <tool_call><function=...>
      {"NVIDIA-Nemotron-Nano-v2.jinja", F::kGeneric},
      {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", F::kHermes},
      {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", F::kHermes},
      {"Qwen-QwQ-32B.jinja", F::kHermes},
      {"Qwen-Qwen2.5-7B-Instruct.jinja", F::kHermes},
      {"Qwen-Qwen3-0.6B.jinja", F::kHermes},
      {"Qwen3-Coder.jinja", F::kGeneric},  // <tool_call><function=...>
      {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", F::kDeepSeekR1},
      {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", F::kDeepSeekR1},
      {"deepseek-ai-DeepSeek-V3.1.jinja", F::kDeepSeekV31},
      {"deepseek-ai-DeepSeek-V4-Flash-0731.jinja", F::kGeneric},  // DSML markup
      {"deepseek-ai-DeepSeek-V4.jinja", F::kGeneric},
      {"fireworks-ai-llama-3-firefunction-v2.jinja", F::kGeneric},  // " functools[" (no handler here)
      {"google-gemma-2-2b-it.jinja", F::kGeneric},
      {"google-gemma-4-31B-it.jinja", F::kGeneric},
      {"ibm-granite-granite-3.3-2B-Instruct.jinja", F::kGeneric},  // <|tool_call|>
      {"ibm-granite-granite-4.0.jinja", F::kHermes},
      {"llama-cpp-deepseek-r1.jinja", F::kDeepSeekR1},
      {"llama-cpp-rwkv-world.jinja", F::kGeneric},
      {"meetkai-functionary-medium-v3.1.jinja", F::kGeneric},  // ipython role, but <function=...> calls
      {"meta-llama-Llama-3.1-8B-Instruct.jinja", F::kLlama3},
      {"meta-llama-Llama-3.2-3B-Instruct.jinja", F::kLlama3},
      {"meta-llama-Llama-3.3-70B-Instruct.jinja", F::kLlama3},
      {"microsoft-Phi-3.5-mini-instruct.jinja", F::kGeneric},
      {"mistralai-Mistral-Nemo-Instruct-2407.jinja", F::kMistralNemo},
      {"moonshotai-Kimi-K2.jinja", F::kGeneric},
      {"openai-gpt-oss-120b.jinja", F::kGeneric},    // harmony
      {"poolside-Laguna-S-2.1.jinja", F::kGeneric},  // <tool_call>f<arg_key>
      {"poolside-Laguna-XS-2.1.jinja", F::kGeneric},
      {"unsloth-mistral-Devstral-Small-2507.jinja", F::kDevstral},
  };
  return table;
}

TEST(ToolFormat, EveryTemplateInSharedData) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::filesystem::path dir = data / "templates";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  size_t seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".jinja") continue;
    const std::string file = entry.path().filename().string();
    const auto it = expected_formats().find(file);
    // A new template must get a row: its format is a decision, not a default.
    ASSERT_NE(it, expected_formats().end()) << "no expected format for " << file;
    const std::string source = test::read_file(entry.path());
    ASSERT_FALSE(source.empty()) << file;
    EXPECT_EQ(tool_format_name(detect_tool_format(source)), tool_format_name(it->second)) << file;
    ++seen;
  }
  EXPECT_EQ(seen, expected_formats().size()) << "a template in the table is missing from " << dir;
}

TEST(ToolFormat, Substrings) {
  EXPECT_EQ(detect_tool_format(""), F::kGeneric);
  EXPECT_EQ(detect_tool_format("{{ '<tool_call>\\n{\"name\": ' }}"), F::kHermes);
  EXPECT_EQ(detect_tool_format("<tool_call>{{ name }}<arg_key>"), F::kGeneric);
  EXPECT_EQ(detect_tool_format("<tool_call>\n<function={{ name }}>"), F::kGeneric);
  EXPECT_EQ(detect_tool_format("<|start_header_id|>ipython<|end_header_id|>"), F::kLlama3);
  EXPECT_EQ(detect_tool_format("{% if message.role == 'ipython' %}"), F::kLlama3);
  EXPECT_EQ(detect_tool_format("Environment: ipython"), F::kGeneric);
  EXPECT_EQ(detect_tool_format("[TOOL_CALLS]["), F::kMistralNemo);
  EXPECT_EQ(detect_tool_format("[TOOL_CALLS]{{ n }}[CALL_ID]{{ id }}[ARGS]"), F::kMistralSmall);
  EXPECT_EQ(detect_tool_format("[TOOL_CALLS]{{ n }}[ARGS]"), F::kDevstral);
  EXPECT_EQ(detect_tool_format("<｜tool▁call▁begin｜>{{ n }}<｜tool▁sep｜>{{ a }}"), F::kDeepSeekV31);
  EXPECT_EQ(detect_tool_format("{{ t }}<｜tool▁sep｜>{{ n }}\n```json\n{{ a }}"), F::kDeepSeekR1);
}

// Mistral's templates raise on ids that are not 9 letters and digits: other ids map to such ids,
// stable per id, so a call and its result still pair; other formats keep their ids.
TEST(ToolFormat, TemplateCallIds) {
  for (const F f : {F::kMistralNemo, F::kMistralSmall}) {
    const std::string a = template_call_id(f, "call_9f8e7d6c5b4a3210");
    EXPECT_EQ(a.size(), 9u);
    EXPECT_TRUE(std::all_of(a.begin(), a.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); }));
    EXPECT_EQ(template_call_id(f, "call_9f8e7d6c5b4a3210"), a);
    EXPECT_NE(template_call_id(f, "call_9f8e7d6c5b4a3211"), a);
    EXPECT_EQ(template_call_id(f, "abcDEF123"), "abcDEF123");  // already fits
    EXPECT_NE(template_call_id(f, "abc-EF123"), "abc-EF123");  // 9, but not all alphanumeric
    EXPECT_EQ(template_call_id(f, ""), "");                    // missing: the template says so
  }
  for (const F f : {F::kHermes, F::kLlama3, F::kDevstral, F::kGeneric}) {
    EXPECT_EQ(template_call_id(f, "call_9f8e7d6c5b4a3210"), "call_9f8e7d6c5b4a3210");
  }
}

// The real Mistral templates render a tool round trip whose ids came from another API.
TEST(ToolFormat, MistralTemplatesRenderMappedIds) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  for (const char* name : {"mistralai-Mistral-Nemo-Instruct-2407.jinja", "Mistral-Small-3.2-24B-Instruct-2506.jinja"}) {
    SCOPED_TRACE(name);
    const std::string source = test::read_file(data / "templates" / name);
    ASSERT_FALSE(source.empty());
    const F format = detect_tool_format(source);
    const std::string id = template_call_id(format, "call_Xy7-openai-style");
    using J = nlohmann::ordered_json;
    J call = {{"id", id}, {"type", "function"}};
    call["function"] = {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}}}};
    J messages = J::array();
    messages.push_back({{"role", "user"}, {"content", "Weather in Paris?"}});
    messages.push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", J::array({call})}});
    messages.push_back({{"role", "tool"}, {"tool_call_id", id}, {"content", "18 C"}});
    J tool = {{"type", "function"}};
    tool["function"] = {{"name", "get_weather"}, {"description", "Current weather"}};
    tool["function"]["parameters"] = {{"type", "object"}};
    tool["function"]["parameters"]["properties"]["city"] = {{"type", "string"}};
    J context = {{"messages", messages}, {"tools", J::array({tool})}};
    context["add_generation_prompt"] = true;
    context["bos_token"] = "<s>";
    context["eos_token"] = "</s>";
    const std::string text = ChatTemplate::parse(source).render(context);
    EXPECT_NE(text.find(id), std::string::npos) << text;
    // The original id would have been refused.
    J raw = context;
    raw["messages"][2]["tool_call_id"] = "call_Xy7-openai-style";
    EXPECT_THROW(ChatTemplate::parse(source).render(raw), TemplateError);
  }
}

TEST(ToolFormat, Names) {
  EXPECT_EQ(tool_format_name(F::kLlama3), "llama3");
  EXPECT_EQ(tool_format_name(F::kHermes), "hermes");
  EXPECT_EQ(tool_format_name(F::kMistralNemo), "mistral-nemo");
  EXPECT_EQ(tool_format_name(F::kMistralSmall), "mistral-small");
  EXPECT_EQ(tool_format_name(F::kDevstral), "devstral");
  EXPECT_EQ(tool_format_name(F::kGeneric), "generic");
  EXPECT_EQ(tool_format_name(F::kDeepSeekV31), "deepseek-v3.1");
  EXPECT_EQ(tool_format_name(F::kDeepSeekR1), "deepseek-r1");
}

}  // namespace
}  // namespace ember::tool_calls
