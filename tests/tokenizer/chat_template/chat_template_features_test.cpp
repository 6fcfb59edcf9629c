// The interpreter feature by feature: the crafted templates of tests/data/chat_templates/features.json
// (whitespace control, literals, operators and their errors, scoping, loops, macros, filters, tests,
// str / dict / list methods, globals) against Python Jinja2's results in features_expected.json.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "support/test_data.h"
#include "tokenizer/chat_template/chat_template.h"

namespace ember {
namespace {

namespace fs = std::filesystem;

const fs::path kDataDir = fs::path(EMBER_SOURCE_DIR) / "tests" / "data" / "chat_templates";

TEST(ChatTemplateFeatures, CraftedTemplatesRenderLikePythonJinja2) {
  const auto spec = nlohmann::ordered_json::parse(test::read_file(kDataDir / "features.json"));
  const auto expected = nlohmann::ordered_json::parse(test::read_file(kDataDir / "features_expected.json"));
  ChatTemplateRenderOptions options;
  options.now = parse_template_clock(spec["now"].get<std::string>());
  size_t ok = 0;
  for (const auto& c : spec["cases"]) {
    const std::string name = c["name"].get<std::string>();
    SCOPED_TRACE(name + ": " + c["template"].get<std::string>());
    ASSERT_TRUE(expected.contains(name)) << "run render_expected.py";
    const auto& want = expected[name];
    std::string got, error;
    try {
      got = ChatTemplate::parse(c["template"].get<std::string>()).render(c["context"], options);
    } catch (const TemplateError& e) {
      error = e.message();
    }
    if (want.contains("output")) {
      EXPECT_EQ(error, "");
      EXPECT_EQ(got, want["output"].get<std::string>());
      ok += error.empty() && got == want["output"].get<std::string>();
    } else {
      EXPECT_EQ(error, want["error"].get<std::string>()) << "rendered: " << got;
      ok += error == want["error"].get<std::string>();
    }
  }
  std::printf("[ chat templates ] %zu/%zu crafted cases identical to Python Jinja2\n", ok, spec["cases"].size());
}

}  // namespace
}  // namespace ember
