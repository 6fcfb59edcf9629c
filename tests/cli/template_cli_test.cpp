// End-to-end tests of `ember template`: a template file and a context, --now, a model's own template
// and BOS / EOS texts (-m, with GGUF files written here), --chat-template presets, a real template
// against Python Jinja2's rendering, and failures: raise_exception, syntax errors, bad JSON, bad
// options.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli_run.h"
#include "gguf/gguf_writer.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::count_lines;
using test::ember;
using test::write_text;
using ordered_json = nlohmann::ordered_json;

// A vocab-only GGUF with BOS "<|begin|>" and EOS "<|end|>", and the given chat template if any.
void write_model(const fs::path& path, const std::string* chat_template) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  const std::vector<std::string> tokens = {"<unk>", "<|begin|>", "<|end|>", "a"};
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add<uint32_t>("tokenizer.ggml.bos_token_id", 1);
  w.add<uint32_t>("tokenizer.ggml.eos_token_id", 2);
  if (chat_template != nullptr) w.add_string("tokenizer.chat_template", *chat_template);
  w.write_file(path.string());
}

class TemplateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_dir("template_cli");
    context_ = dir_ / "context.json";
    write_text(context_, R"({"bos_token": "<s>", "add_generation_prompt": true, "messages": [
      {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]})");
  }
  fs::path dir_, context_;
};

TEST_F(TemplateCli, RendersAFileForAContextExactly) {
  const fs::path tpl = dir_ / "t.jinja";
  write_text(tpl,
             "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
             "{% if add_generation_prompt %}[assistant]{% endif %}\n");
  const auto r = ember({"template", tpl.string(), context_.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  // Byte for byte: the template's trailing newline is dropped, as Jinja2 does, and none is added.
  EXPECT_EQ(r.out, "<s>[system] Be brief.\n[user] Hi\n[assistant]");

  // The context from standard input.
  const auto s = test::ember_with_stdin({"template", tpl.string(), "-"}, R"({"messages": []})");
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_EQ(s.out, "");
}

TEST_F(TemplateCli, NowFixesStrftimeNow) {
  const fs::path tpl = dir_ / "date.jinja";
  write_text(tpl, "Today: {{ strftime_now('%d %B %Y (%A)') }}");
  const auto r = ember({"template", tpl.string(), context_.string(), "--now", "2026-11-29T12:00:00"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Today: 29 November 2026 (Sunday)");
  const auto bad = ember({"template", tpl.string(), context_.string(), "--now", "29/11/2026"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--now: expected YYYY-MM-DDTHH:MM[:SS]"), std::string::npos) << bad.err;
}

TEST_F(TemplateCli, ModelTemplateAndTokens) {
  const fs::path with = dir_ / "with.gguf", without = dir_ / "without.gguf";
  const std::string own = "{{ bos_token }}|{% for m in messages %}{{ m.content }}{% endfor %}|{{ eos_token }}";
  write_model(with, &own);
  write_model(without, nullptr);
  const fs::path no_bos = dir_ / "no_bos.json";
  write_text(no_bos, R"({"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": false})");

  // The model's template, BOS and EOS from its vocabulary.
  auto r = ember({"template", "-m", with.string(), no_bos.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<|begin|>|Hi|<|end|>");
  // The context's bos_token wins over the model's.
  r = ember({"template", "-m", with.string(), context_.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<s>|Be brief.Hi|<|end|>");
  // No template in the model: ChatML.
  r = ember({"template", "-m", without.string(), no_bos.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<|im_start|>user\nHi<|im_end|>\n");
  // --chat-template overrides the model's template; the tokens still come from the model.
  r = ember({"template", "-m", with.string(), "--chat-template", "llama3", no_bos.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<|begin|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
  const fs::path file = dir_ / "override.jinja";
  write_text(file, "override {{ eos_token }}");
  r = ember({"template", "-m", with.string(), "--chat-template", file.string(), no_bos.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "override <|end|>");
}

TEST_F(TemplateCli, PresetsWithoutAModel) {
  const auto r = ember({"template", "--chat-template", "chatml", context_.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  for (const char* name : {"chatml", "llama3", "llama2", "mistral", "gemma", "phi3", "qwen"}) {
    const auto p = ember({"template", "--chat-template", name, context_.string()});
    EXPECT_EQ(p.exit_code, 0) << name << ": " << p.err;
    EXPECT_NE(p.out.find("Hi"), std::string::npos) << name;
  }
}

TEST_F(TemplateCli, RealTemplateMatchesPythonJinja2) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path source = fs::path(EMBER_SOURCE_DIR) / "tests" / "data" / "chat_templates";
  const ordered_json spec = ordered_json::parse(test::read_file(source / "conversations.json"));
  const ordered_json expected =
      ordered_json::parse(test::read_file(source / "expected" / "meta-llama-Llama-3.1-8B-Instruct.json"));
  for (const auto& conversation : spec["conversations"]) {
    ordered_json context = conversation["context"];
    context["add_generation_prompt"] = true;
    const fs::path path = dir_ / "conversation.json";
    write_text(path, context.dump());
    const std::string key = conversation["name"].get<std::string>() + "/gen";
    SCOPED_TRACE(key);
    const auto r = ember({"template", (data / "templates" / "meta-llama-Llama-3.1-8B-Instruct.jinja").string(),
                          path.string(), "--now", spec["now"].get<std::string>()});
    const auto& want = expected["renders"][key];
    if (want.contains("output")) {
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(r.out, want["output"].get<std::string>());
    } else {
      EXPECT_EQ(r.exit_code, 1);
      EXPECT_NE(r.err.find(want["error"].get<std::string>()), std::string::npos) << r.err;
    }
  }
}

TEST_F(TemplateCli, RaisingTemplatePrintsItsMessage) {
  const fs::path tpl = dir_ / "raise.jinja";
  write_text(tpl,
             "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}ok");
  const auto r = ember({"template", tpl.string(), context_.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "System role not supported\n");
}

TEST_F(TemplateCli, FailuresAreOneLine) {
  const fs::path syntax = dir_ / "syntax.jinja", undefined = dir_ / "undefined.jinja", ok = dir_ / "ok.jinja";
  write_text(syntax, "line one\n{% frobnicate %}");
  write_text(undefined, "a\nb {{ messages[0].content.nope.x }}");
  write_text(ok, "ok");
  const fs::path bad_json = dir_ / "bad.json", array_json = dir_ / "array.json";
  write_text(bad_json, "{\"messages\": [}");
  write_text(array_json, "[1, 2]");
  const std::string missing = (dir_ / "missing.json").string();
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"template", syntax.string(), context_.string()},
       1,
       "syntax.jinja': chat template line 2, column 4: Encountered unknown tag 'frobnicate'."},
      {{"template", undefined.string(), context_.string()},
       1,
       "chat template line 2, column 30: 'str object' has no attribute 'nope'"},
      {{"template", ok.string(), bad_json.string()}, 1, "is not valid JSON: parse error at line 1, column 15"},
      {{"template", ok.string(), array_json.string()}, 1, "must be a JSON object"},
      {{"template", ok.string(), missing}, 1, "cannot open context"},
      {{"template", context_.string()}, 2, "no template: give TEMPLATE.jinja before CONTEXT"},
      {{"template"}, 2, "expected [TEMPLATE.jinja] CONTEXT.json"},
      {{"template", "--chat-template", "nope", context_.string()},
       2,
       "'nope' is neither a preset (chatml, llama3, llama2, mistral, gemma, phi3, qwen) nor a file"},
      {{"template", ok.string(), context_.string(), "--chat-template", "chatml"}, 2, "not both"},
      {{"template", "-m", missing, context_.string()}, 1, "cannot open"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args.back());
    const auto r = ember(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("ember: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace ember
