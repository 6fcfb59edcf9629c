// Every real chat template of ../shared/data/templates rendered for the fixed conversations of
// tests/data/chat_templates/conversations.json must equal Python Jinja2's rendering byte for byte
// (tests/data/chat_templates/expected/, made by render_expected.py); a template Python raises on must
// raise the same message. A second test re-runs the script and checks the committed files are current.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "support/test_data.h"
#include "tokenizer/chat_template/chat_template.h"

namespace ember {
namespace {

namespace fs = std::filesystem;

const fs::path kTemplatesDir = fs::path(EMBER_SOURCE_DIR) / "tests" / "data" / "chat_templates";
const fs::path kScript = fs::path(EMBER_SOURCE_DIR) / "tests" / "tokenizer" / "chat_template" / "render_expected.py";

nlohmann::ordered_json read_json(const fs::path& path) { return nlohmann::ordered_json::parse(test::read_file(path)); }

// The first line where two texts differ, for a readable failure.
std::string first_difference(const std::string& expected, const std::string& actual) {
  size_t i = 0;
  while (i < expected.size() && i < actual.size() && expected[i] == actual[i]) ++i;
  const size_t from = i < 60 ? 0 : i - 60;
  return "first difference at byte " + std::to_string(i) + "\n  expected: ..." + expected.substr(from, 120) +
         "\n  actual:   ..." + actual.substr(from, 120);
}

TEST(ChatTemplateOracle, RealTemplatesRenderLikePythonJinja2) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path templates = data / "templates";
  const nlohmann::ordered_json spec = read_json(kTemplatesDir / "conversations.json");
  ChatTemplateRenderOptions options;
  options.now = parse_template_clock(spec["now"].get<std::string>());
  ASSERT_TRUE(options.now.has_value());

  std::set<std::string> template_files;
  for (const auto& entry : fs::directory_iterator(templates)) {
    if (entry.path().extension() == ".jinja") template_files.insert(entry.path().filename().string());
  }
  ASSERT_FALSE(template_files.empty());

  size_t templates_ok = 0, renders = 0, renders_ok = 0, raises = 0;
  for (const std::string& name : template_files) {
    SCOPED_TRACE(name);
    const fs::path expected_path = kTemplatesDir / "expected" / (fs::path(name).stem().string() + ".json");
    ASSERT_TRUE(fs::exists(expected_path)) << "no expected renderings for " << name << ": run render_expected.py";
    const nlohmann::ordered_json expected = read_json(expected_path);
    const std::string source = test::read_file(templates / name);
    bool all_ok = true;
    std::optional<ChatTemplate> chat_template;
    std::string parse_error;
    try {
      chat_template = ChatTemplate::parse(source);
    } catch (const TemplateError& e) {
      parse_error = e.message();
    }
    for (const auto& conversation : spec["conversations"]) {
      for (const bool generation : {true, false}) {
        const std::string key = conversation["name"].get<std::string>() + (generation ? "/gen" : "/nogen");
        SCOPED_TRACE(key);
        ASSERT_TRUE(expected["renders"].contains(key));
        const auto& want = expected["renders"][key];
        nlohmann::ordered_json context = conversation["context"];
        context["add_generation_prompt"] = generation;
        ++renders;
        bool ok = false;
        if (want.contains("error")) ++raises;
        if (!chat_template) {
          ok = want.contains("error") && want["error"].get<std::string>() == parse_error;
          EXPECT_TRUE(ok) << "parse failed: " << parse_error;
        } else {
          try {
            const std::string got = chat_template->render(context, options);
            ok = want.contains("output") && want["output"].get<std::string>() == got;
            if (want.contains("error")) {
              ADD_FAILURE() << "Python raised " << want["error"].get<std::string>() << ", ember rendered:\n" << got;
            } else if (!ok) {
              ADD_FAILURE() << first_difference(want["output"].get<std::string>(), got);
            }
          } catch (const TemplateError& e) {
            ok = want.contains("error") && want["error"].get<std::string>() == e.message();
            if (!ok) {
              ADD_FAILURE() << "ember raised: " << e.what() << "\nPython: "
                            << (want.contains("error") ? want["error"].get<std::string>() : std::string("rendered"));
            }
          }
        }
        renders_ok += ok;
        all_ok = all_ok && ok;
      }
    }
    templates_ok += all_ok;
  }
  std::printf(
      "[ chat templates ] %zu/%zu templates identical to Python Jinja2; %zu/%zu renders (%zu expected errors)\n",
      templates_ok, template_files.size(), renders_ok, renders, raises);
  EXPECT_EQ(templates_ok, template_files.size());
}

// /usr/bin/python3 with jinja2 (Debian's python3-jinja2) re-renders everything into a temporary
// directory; the committed expected files must be identical, so they cannot go stale.
TEST(ChatTemplateOracle, ExpectedFilesAreUpToDate) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string python = "/usr/bin/python3";
  if (!fs::exists(python) || std::system((python + " -c 'import jinja2' 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "/usr/bin/python3 with jinja2 (python3-jinja2) is not installed";
  }
  const fs::path out = test::temp_dir("chat_template_oracle");
  // Everything into the temporary directory: the committed files are only read.
  const fs::path features_out = test::temp_dir("chat_template_oracle_features") / "features_expected.json";
  const std::string command = python + " '" + kScript.string() + "' --templates '" + (data / "templates").string() +
                              "' --out '" + out.string() + "' --features-out '" + features_out.string() +
                              "' > /dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  EXPECT_EQ(test::read_file(features_out), test::read_file(kTemplatesDir / "features_expected.json"))
      << "features_expected.json is stale: run " << kScript;
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(out)) {
    ++files;
    const fs::path committed = kTemplatesDir / "expected" / entry.path().filename();
    ASSERT_TRUE(fs::exists(committed)) << committed << " is missing: run " << kScript;
    EXPECT_EQ(test::read_file(entry.path()), test::read_file(committed)) << committed << " is stale: run " << kScript;
  }
  size_t committed_files = 0;
  for (const auto& entry : fs::directory_iterator(kTemplatesDir / "expected"))
    committed_files += entry.path().extension() == ".json";
  EXPECT_EQ(files, committed_files) << "expected/ holds files for templates that no longer exist";
}

}  // namespace
}  // namespace ember
