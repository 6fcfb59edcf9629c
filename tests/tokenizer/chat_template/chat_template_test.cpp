// ChatTemplate's API: syntax and render errors with line and column, raise_exception as its own
// kind, the render limits against hostile templates, the clock, thread safety, the presets and
// resolve_chat_template() on GGUF files written here.
#include "tokenizer/chat_template/chat_template.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "support/test_data.h"
#include "tokenizer/chat_template/chat_template_presets.h"

namespace ember {
namespace {

using json = nlohmann::ordered_json;

std::string render(std::string_view source, const json& context = json::object(),
                   const ChatTemplateRenderOptions& options = {}) {
  return ChatTemplate::parse(source).render(context, options);
}

// The TemplateError a parse or render throws (fails the test when none is thrown).
TemplateError error_of(std::string_view source, const json& context = json::object(),
                       const ChatTemplateRenderOptions& options = {}) {
  try {
    render(source, context, options);
  } catch (const TemplateError& e) {
    return e;
  }
  ADD_FAILURE() << "no error from " << source;
  return TemplateError(TemplateErrorKind::kRender, "", 0, 0);
}

TEST(ChatTemplate, SyntaxErrorsNameLineAndColumn) {
  struct Case {
    std::string source;
    uint32_t line, column;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"Hello\n{% if x %}\n  {{ x +* 2 }}\n{% endif %}", 3, 9, "unexpected '*'"},
      {"{% for x in y %}\nno end", 2, 7, "Jinja was looking for the following tags: 'endfor' or 'else'"},
      {"{{ x|nosuch }}", 1, 6, "No filter named 'nosuch'."},
      {"{{ x is nosuch }}", 1, 9, "No test named 'nosuch'."},
      {"a\n{% frobnicate %}", 2, 4, "Encountered unknown tag 'frobnicate'."},
      {"{{ 'unterminated }}", 1, 4, "unexpected char"},
      {"{# unclosed comment", 1, 1, "Missing end of comment tag"},
      {"{{ 1 + }}", 1, 8, "unexpected 'end of print statement'"},
      {"{% set x = [1, 2 %}", 1, 19, "unexpected '}', expected ']'"},
      {"{% break %}", 1, 4, "'break' outside loop"},
      {"{% for x in y %}{% macro m() %}{% continue %}{% endmacro %}{% endfor %}", 1, 35, "'continue' outside loop"},
      {"{% include 'x.jinja' %}", 1, 4, "not supported"},
      {"{{ 'é' }}{{ \n 99999999999999999999 }}", 2, 2, "outside the supported range"},
      {"{% set 1 = 2 %}", 1, 8, "can't assign"},
      {"{% macro m(a=1, b) %}{% endmacro %}", 1, 17, "non-default argument follows default argument"},
      {"{{ x is defined is defined }}", 1, 17, "You cannot chain multiple tests with is"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.source);
    const TemplateError e = error_of(c.source);
    EXPECT_EQ(e.kind(), TemplateErrorKind::kSyntax);
    EXPECT_EQ(e.code(), ErrorCode::kFormat);
    EXPECT_EQ(e.line(), c.line);
    EXPECT_EQ(e.column(), c.column);
    EXPECT_NE(e.message().find(c.message), std::string::npos) << e.message();
    EXPECT_EQ(std::string(e.what()).rfind(
                  "chat template line " + std::to_string(c.line) + ", column " + std::to_string(c.column) + ": ", 0),
              0u)
        << e.what();
  }
}

TEST(ChatTemplate, InvalidUtf8IsASyntaxError) {
  const TemplateError e = error_of("ok\n{{ 'a\xff' }}");
  EXPECT_EQ(e.kind(), TemplateErrorKind::kSyntax);
  EXPECT_EQ(e.line(), 2u);
  EXPECT_EQ(e.column(), 6u);
}

TEST(ChatTemplate, RenderErrorsKeepPythonsMessageAndAddTheLine) {
  const TemplateError e = error_of("line1\nline2 {{ d.missing.attr }}", json{{"d", json::object()}});
  EXPECT_EQ(e.kind(), TemplateErrorKind::kRender);
  EXPECT_EQ(e.message(), "'dict object' has no attribute 'missing'");  // what Python says, exactly
  EXPECT_EQ(e.line(), 2u);
  EXPECT_EQ(std::string(e.what()), "chat template line 2, column 19: 'dict object' has no attribute 'missing'");
}

TEST(ChatTemplate, RaiseExceptionIsItsOwnKindWithTheTemplatesMessage) {
  const TemplateError e =
      error_of("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}",
               json{{"messages", json::array({json{{"role", "system"}}})}});
  EXPECT_EQ(e.kind(), TemplateErrorKind::kRaised);
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.message(), "System role not supported");
  EXPECT_EQ(std::string(e.what()), "System role not supported");
  EXPECT_EQ(e.line(), 1u);
}

TEST(ChatTemplate, ContextMustBeAnObject) {
  const ChatTemplate t = ChatTemplate::parse("x");
  EXPECT_THROW(t.render(json::array()), Error);
  EXPECT_EQ(t.render(json::object()), "x");
}

TEST(ChatTemplate, LimitsStopHostileTemplates) {
  ChatTemplateRenderOptions small;
  small.limits.max_string_bytes = 1 << 16;
  small.limits.max_steps = 100'000;
  small.limits.max_call_depth = 20;
  struct Case {
    std::string source;
    TemplateErrorKind kind;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"{% for i in range(100000) %}{{ 'xxxxxxxxxx' }}{% endfor %}", TemplateErrorKind::kLimit,
       "exceeds the render limit"},
      {"{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
       TemplateErrorKind::kLimit, "exceeds the render limit"},
      {"{{ 'x' * 100000000000 }}", TemplateErrorKind::kLimit, "exceeds the render limit"},
      {"{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", TemplateErrorKind::kLimit,
       "steps"},
      {"{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", TemplateErrorKind::kLimit, "recursion"},
      {"{{ range(1000000)|list }}", TemplateErrorKind::kRender, "Range too big"},
      {"{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", TemplateErrorKind::kLimit, "recursion"},
      // Work on big values counts: comparing two 60,000-item lists is thousands of steps.
      {"{% set big = [0] * 60000 %}{% for i in range(100000) %}{{ big == big }}{% endfor %}", TemplateErrorKind::kLimit,
       "steps"},
      {"{% set ns = namespace(v=[]) %}{% for i in range(1000) %}{% set ns.v = [ns.v] %}{% endfor %}",
       TemplateErrorKind::kLimit, "nest deeper"},
      // |center past the string limit fails (it used to cut the output there); |unique's linear
      // search is charged, so a long list fails on steps instead of running for minutes.
      {"{{ 'a'|center(1000000000) }}", TemplateErrorKind::kLimit, "exceeds the render limit"},
      {"{{ range(20000)|unique|list|length }}", TemplateErrorKind::kLimit, "steps"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.source);
    const TemplateError e = error_of(c.source, json::object(), small);
    EXPECT_EQ(e.kind(), c.kind) << e.what();
    EXPECT_NE(e.message().find(c.message), std::string::npos) << e.message();
  }
}

TEST(ChatTemplate, DeepNestingFailsCleanly) {
  // Parentheses, filter chains and statement nesting deep enough to overflow a naive recursive
  // parser or evaluator are syntax errors.
  for (const std::string& source :
       {"{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}", "{{ x" + std::string(20000, '|') + " }}",
        [] {
          std::string s = "{{ x";
          for (int i = 0; i < 5000; ++i) s += "|trim";
          return s + " }}";
        }(),
        [] {
          std::string s;
          for (int i = 0; i < 1000; ++i) s += "{% if true %}";
          return s;
        }(),
        "{{ " + std::string(3000, '-') + "1 }}", "{{ [" + std::string(3000, '[') + " }}"}) {
    SCOPED_TRACE(source.substr(0, 40));
    EXPECT_EQ(error_of(source).kind(), TemplateErrorKind::kSyntax);
  }
}

TEST(ChatTemplate, NowFixesTheClockAndDefaultsToTheCurrentTime) {
  ChatTemplateRenderOptions options;
  options.now = parse_template_clock("2026-11-29T12:00:00");
  ASSERT_TRUE(options.now);
  EXPECT_EQ(render("{{ strftime_now('%A %d %B %Y, %H:%M') }}", json::object(), options),
            "Sunday 29 November 2026, 12:00");
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y') }}", json::object(), options), "29 Nov 2026");
  const std::string year = render("{{ strftime_now('%Y') }}");
  EXPECT_GE(std::stoi(year), 2025);

  EXPECT_TRUE(parse_template_clock("2024-02-29 23:59"));
  for (const char* bad : {"2023-02-29T00:00:00", "2026-13-01T00:00:00", "2026-11-29", "2026-11-29T25:00:00", "x"}) {
    EXPECT_FALSE(parse_template_clock(bad)) << bad;
  }
}

TEST(ChatTemplate, RendersConcurrently) {
  const ChatTemplate t = ChatTemplate::parse(
      "{% for m in messages %}{{ m.role }}:{{ m.content|upper }}{% if not loop.last %}|{% endif %}{% endfor %}");
  std::vector<std::thread> threads;
  std::vector<std::string> results(8);
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      const json context = {{"messages", json::array({json{{"role", "user"}, {"content", "t" + std::to_string(i)}}})}};
      for (int k = 0; k < 200; ++k) results[i] = t.render(context);
    });
  }
  for (auto& th : threads) th.join();
  for (size_t i = 0; i < results.size(); ++i) EXPECT_EQ(results[i], "user:T" + std::to_string(i));
}

const json kPresetConversation = json::parse(R"({"bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true,
  "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " Hi! "},
               {"role": "assistant", "content": "Hello."}, {"role": "user", "content": [{"type": "text", "text": "Bye"}]}]})");

TEST(ChatTemplatePresets, RenderTheirModelsFormat) {
  // Expected texts: Python Jinja2's renderings of the same sources.
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"chatml",
       "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n Hi! <|im_end|>\n<|im_start|>assistant\nHello."
       "<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"},
      {"llama3",
       "<s><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>"
       "\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user"
       "<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
      {"llama2", "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi! [/INST] Hello. </s><s>[INST] Bye [/INST]"},
      {"mistral", "<s>[INST] Be brief.\n\n Hi!  [/INST]Hello.</s>[INST] Bye [/INST]"},
      {"gemma",
       "<s><start_of_turn>user\nBe brief.\n\nHi!<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
       "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"},
      {"phi3",
       "<|system|>\nBe brief.<|end|>\n<|user|>\n Hi! <|end|>\n<|assistant|>\nHello.<|end|>\n<|user|>\nBye<|end|>\n"
       "<|assistant|>\n"},
      {"qwen",
       "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n Hi! <|im_end|>\n<|im_start|>assistant\nHello."
       "<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"},
  };
  ASSERT_EQ(chat_template_presets().size(), expected.size());
  for (const auto& [name, text] : expected) {
    SCOPED_TRACE(name);
    const ChatTemplatePreset* preset = find_chat_template_preset(name);
    ASSERT_NE(preset, nullptr);
    EXPECT_EQ(render(preset->source, kPresetConversation), text);
  }
  EXPECT_EQ(find_chat_template_preset("nope"), nullptr);
  EXPECT_EQ(chat_template_preset_names(), "chatml, llama3, llama2, mistral, gemma, phi3, qwen");
  // Without a system message Qwen adds its default one.
  EXPECT_EQ(render(find_chat_template_preset("qwen")->source,
                   json::parse(R"({"messages": [{"role": "user", "content": "x"}]})")),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nx<|im_end|>\n");
}

void write_model(const std::string& path, const std::string* chat_template) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  const std::vector<std::string> tokens = {"<unk>", "<|begin|>", "<|end|>", "a"};
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add<uint32_t>("tokenizer.ggml.bos_token_id", 1);
  w.add<uint32_t>("tokenizer.ggml.eos_token_id", 2);
  if (chat_template != nullptr) w.add_string("tokenizer.chat_template", *chat_template);
  w.write_file(path);
}

TEST(ChatTemplatePresets, ResolveOverrideThenModelThenChatml) {
  const auto dir = test::temp_dir("chat_template_resolve");
  const std::string with = (dir / "with.gguf").string(), without = (dir / "without.gguf").string();
  const std::string own = "{{ bos_token }}own{{ eos_token }}";
  write_model(with, &own);
  write_model(without, nullptr);
  const GgufFile with_file = GgufFile::open(with), without_file = GgufFile::open(without);

  ResolvedChatTemplate r = resolve_chat_template(&with_file, "");
  EXPECT_EQ(r.source, own);
  EXPECT_NE(r.origin.find("tokenizer.chat_template"), std::string::npos);
  EXPECT_EQ(r.bos_token, "<|begin|>");
  EXPECT_EQ(r.eos_token, "<|end|>");

  r = resolve_chat_template(&without_file, "");
  EXPECT_EQ(r.source, find_chat_template_preset("chatml")->source);
  EXPECT_NE(r.origin.find("ChatML"), std::string::npos);

  r = resolve_chat_template(&with_file, "llama3");
  EXPECT_EQ(r.source, find_chat_template_preset("llama3")->source);
  EXPECT_EQ(r.bos_token, "<|begin|>");

  const std::string file = (dir / "t.jinja").string();
  std::ofstream(file) << "from file";
  r = resolve_chat_template(nullptr, file);
  EXPECT_EQ(r.source, "from file");
  EXPECT_EQ(r.bos_token, "");

  r = resolve_chat_template(nullptr, "");
  EXPECT_EQ(r.source, find_chat_template_preset("chatml")->source);

  try {
    resolve_chat_template(nullptr, "no-such-template");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("chatml, llama3, llama2, mistral, gemma, phi3, qwen"), std::string::npos);
  }
  // A directory opens but reads nothing: an error, not an empty template.
  try {
    resolve_chat_template(&with_file, dir.string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_NE(std::string(e.what()).find("Is a directory"), std::string::npos) << e.what();
  }
}

// Hostile templates from fuzz/regressions/chat_template render to an error or a text, never a
// crash, hang or leak (the sanitizer build runs this).
TEST(ChatTemplateFuzz, Regressions) {
  const auto dir = std::filesystem::path(EMBER_SOURCE_DIR) / "fuzz" / "regressions" / "chat_template";
  const json context =
      json::parse(R"({"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": true})");
  ChatTemplateRenderOptions options;
  options.limits.max_steps = 1'000'000;
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".jinja") continue;
    SCOPED_TRACE(entry.path().filename().string());
    ++n;
    try {
      (void)ChatTemplate::parse(test::read_file(entry.path())).render(context, options);
    } catch (const TemplateError& e) {
      EXPECT_NE(e.kind(), TemplateErrorKind::kRaised) << e.what();
    }
  }
  EXPECT_GE(n, 5) << "the regression inputs in " << dir << " are missing";
}

}  // namespace
}  // namespace ember
