// The C API (ember/ember.h): status codes and messages, buffer sizing, size-versioned structs,
// generation through the callback on stories260K, and speculative decoding on the bundled models.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ember/ember.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::kStories;
using test::kStoriesPrompt;

struct Collected {
  std::string text;
  int calls = 0;
  int stop_after = -1;  // return false from this call on
  std::vector<float> logprobs;
  std::vector<std::pair<size_t, size_t>> offsets;  // each token's byte_offset, and the text's length before it
};

bool collect(const ember_token* token, void* user_data) {
  auto* c = static_cast<Collected*>(user_data);
  if (token->token >= 0) c->offsets.emplace_back(token->byte_offset, c->text.size());
  c->text.append(token->text, token->text_length);
  if (token->token >= 0 && token->n_top > 0) c->logprobs.push_back(token->logprob);
  return ++c->calls != c->stop_after;
}

class CApi : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto data = test::shared_data_dir();
    if (!data && test::shared_data_required()) FAIL() << "../shared/data not found (EMBER_REQUIRE_SHARED_DATA=1)";
    if (!data) GTEST_SKIP() << "../shared/data not found beside the checkout; test data absent";
    path_ = (*data / kStories).string();
    ember_load_params params;
    ember_load_params_init(&params);
    params.n_threads = 2;
    params.n_ctx = 128;
    ASSERT_EQ(ember_model_load(path_.c_str(), &params, &model_), EMBER_OK) << ember_last_error();
    ASSERT_EQ(ember_session_new(model_, &session_), EMBER_OK) << ember_last_error();
  }
  void TearDown() override {
    ember_session_free(session_);
    ember_model_free(model_);
  }

  std::string path_;
  ember_model* model_ = nullptr;
  ember_session* session_ = nullptr;
};

TEST_F(CApi, ErrorsHaveAStatusAndAMessage) {
  ember_model* model = reinterpret_cast<ember_model*>(0x1);
  EXPECT_EQ(ember_model_load("/no/such/model.gguf", nullptr, &model), EMBER_ERROR_IO);
  EXPECT_EQ(model, nullptr);
  EXPECT_NE(std::string(ember_last_error()).find("/no/such/model.gguf"), std::string::npos) << ember_last_error();
  EXPECT_STREQ(ember_status_name(EMBER_ERROR_IO), "io");

  EXPECT_EQ(ember_model_load(nullptr, nullptr, &model), EMBER_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("path"), std::string::npos);
  ember_load_params unset{};  // struct_size 0: a caller that forgot ember_load_params_init
  EXPECT_EQ(ember_model_load(path_.c_str(), &unset, &model), EMBER_ERROR_INVALID_ARGUMENT);
  ember_load_params bad;
  ember_load_params_init(&bad);
  bad.n_threads = -3;
  EXPECT_EQ(ember_model_load(path_.c_str(), &bad, &model), EMBER_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("threads"), std::string::npos) << ember_last_error();
  ember_load_params kv;
  ember_load_params_init(&kv);
  kv.kv_type = "q4_0";
  EXPECT_EQ(ember_model_load(path_.c_str(), &kv, &model), EMBER_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("kv_type"), std::string::npos) << ember_last_error();
  kv.kv_type = "q8_0";  // stories260K's heads are 8 values: no Q8_0 block fits
  EXPECT_EQ(ember_model_load(path_.c_str(), &kv, &model), EMBER_ERROR_UNSUPPORTED);
  EXPECT_NE(std::string(ember_last_error()).find("multiple of 32"), std::string::npos) << ember_last_error();
  EXPECT_EQ(model, nullptr);
  kv.kv_type = "Q8_0";  // any case, and it wins over kv_f32
  kv.kv_f32 = 1;
  EXPECT_EQ(ember_model_load(path_.c_str(), &kv, &model), EMBER_ERROR_UNSUPPORTED);
  kv.kv_type = "f32";
  ASSERT_EQ(ember_model_load(path_.c_str(), &kv, &model), EMBER_OK) << ember_last_error();
  ember_model_free(model);

  // A successful call clears the message.
  size_t n = 0;
  int32_t ids[64];
  EXPECT_EQ(ember_tokenize(model_, "hi", 2, true, false, ids, 64, &n), EMBER_OK);
  EXPECT_STREQ(ember_last_error(), "");
  EXPECT_EQ(ember_generate(nullptr, kStoriesPrompt, nullptr, nullptr, nullptr, nullptr), EMBER_ERROR_INVALID_ARGUMENT);
  ember_session* session = reinterpret_cast<ember_session*>(0x1);
  EXPECT_EQ(ember_session_new(nullptr, &session), EMBER_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(session, nullptr);
  ember_model_free(nullptr);
  ember_session_free(nullptr);
  ember_session_cancel(nullptr);
}

TEST_F(CApi, TokenizeAndDetokenizeReportTheSizeTheyNeed) {
  size_t n = 0;
  EXPECT_EQ(ember_tokenize(model_, kStoriesPrompt, std::strlen(kStoriesPrompt), true, false, nullptr, 0, &n),
            EMBER_ERROR_BUFFER_TOO_SMALL);
  ASSERT_GT(n, 2u);
  std::vector<int32_t> ids(n);
  ASSERT_EQ(
      ember_tokenize(model_, kStoriesPrompt, std::strlen(kStoriesPrompt), true, false, ids.data(), ids.size(), &n),
      EMBER_OK);
  EXPECT_EQ(ids[0], 1);

  size_t length = 0;
  EXPECT_EQ(ember_detokenize(model_, ids.data(), ids.size(), false, nullptr, 0, &length), EMBER_ERROR_BUFFER_TOO_SMALL);
  EXPECT_EQ(length, std::strlen(kStoriesPrompt));
  std::vector<char> text(length);  // no room for the NUL
  EXPECT_EQ(ember_detokenize(model_, ids.data(), ids.size(), false, text.data(), text.size(), &length),
            EMBER_ERROR_BUFFER_TOO_SMALL);
  text.resize(length + 1);
  ASSERT_EQ(ember_detokenize(model_, ids.data(), ids.size(), false, text.data(), text.size(), &length), EMBER_OK);
  EXPECT_STREQ(text.data(), kStoriesPrompt);

  const int32_t bad = 100000;
  EXPECT_EQ(ember_detokenize(model_, &bad, 1, false, text.data(), text.size(), &length), EMBER_ERROR_INVALID_ARGUMENT);
  EXPECT_FALSE(ember_is_end_of_generation(model_, bad));
  EXPECT_TRUE(ember_is_end_of_generation(model_, 2));  // </s>
}

TEST_F(CApi, AppliesTheChatTemplate) {
  const ember_chat_message messages[] = {{"system", "Be kind."}, {"user", "Hi"}};
  size_t length = 0;
  EXPECT_EQ(ember_apply_chat_template(model_, messages, 2, true, nullptr, 0, &length), EMBER_ERROR_BUFFER_TOO_SMALL);
  std::vector<char> text(length + 1);
  ASSERT_EQ(ember_apply_chat_template(model_, messages, 2, true, text.data(), text.size(), &length), EMBER_OK);
  EXPECT_STREQ(text.data(),
               "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  const ember_chat_message bad[] = {{"user", nullptr}};
  EXPECT_EQ(ember_apply_chat_template(model_, bad, 1, true, text.data(), text.size(), &length),
            EMBER_ERROR_INVALID_ARGUMENT);
}

TEST_F(CApi, ModelInfoIsSizeVersioned) {
  ember_model_info info;
  ember_model_info_init(&info);
  ASSERT_EQ(ember_model_get_info(model_, &info), EMBER_OK);
  EXPECT_STREQ(info.architecture, "llama");
  EXPECT_EQ(info.n_vocab, 512);
  EXPECT_EQ(info.n_ctx, 128);
  EXPECT_EQ(info.n_threads, 2);

  // A caller built against an older, shorter struct: nothing past its size is written.
  struct {
    ember_model_info old;
    char guard[64];
  } small;
  std::memset(&small, 0xAB, sizeof small);
  small.old.struct_size = offsetof(ember_model_info, n_params);
  ASSERT_EQ(ember_model_get_info(model_, &small.old), EMBER_OK);
  EXPECT_STREQ(small.old.architecture, "llama");
  const auto* bytes = reinterpret_cast<const unsigned char*>(&small.old);
  for (size_t i = offsetof(ember_model_info, n_params); i < sizeof small; ++i) ASSERT_EQ(bytes[i], 0xAB) << i;
}

// Bytes of `s` from `from` on still hold the 0xAB fill.
template <typename T>
void expect_untouched_from(const T& s, size_t from) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(&s);
  for (size_t i = from; i < sizeof s; ++i) ASSERT_EQ(bytes[i], 0xAB) << i;
}

// The *_init macros pass the caller's sizeof; the first release's unsized entry points (which its
// programs call) fill only the first layout, so they never write past an old program's struct.
TEST(CApiStructs, InitWritesNoFurtherThanTheCallersLayout) {
  const size_t load_v1 = offsetof(ember_load_params, deterministic);
  const size_t params_v1 = offsetof(ember_generate_params, draft_max);
  const size_t stats_v1 = offsetof(ember_generate_stats, draft_tokens);
  // New fields start at or past the first layouts' sizeof, tail padding included.
  EXPECT_EQ(load_v1 % alignof(ember_load_params), 0u);
  EXPECT_EQ(params_v1 % alignof(ember_generate_params), 0u);
  EXPECT_EQ(stats_v1 % alignof(ember_generate_stats), 0u);
  EXPECT_GE(stats_v1, offsetof(ember_generate_stats, finish) + sizeof(ember_finish_reason));
  if (sizeof(void*) == 8 && alignof(double) == 8) {  // the first release's sizes on LP64 (x86-64, aarch64)
    EXPECT_EQ(load_v1, 32u);
    EXPECT_EQ(params_v1, 96u);
    EXPECT_EQ(stats_v1, 72u);
  }

  ember_load_params load;
  std::memset(&load, 0xAB, sizeof load);
  (ember_load_params_init)(&load);  // the unsized entry point, as an old program calls it
  EXPECT_EQ(load.struct_size, load_v1);
  EXPECT_EQ(load.chat_template, nullptr);
  expect_untouched_from(load, load_v1);
  ember_load_params_init(&load);
  EXPECT_EQ(load.struct_size, sizeof load);
  EXPECT_EQ(load.deterministic, 0);
  EXPECT_EQ(load.kv_type, nullptr);

  ember_generate_params params;
  std::memset(&params, 0xAB, sizeof params);
  (ember_generate_params_init)(&params);
  EXPECT_EQ(params.struct_size, params_v1);
  EXPECT_EQ(params.max_tokens, -1);
  EXPECT_TRUE(params.parse_special);
  expect_untouched_from(params, params_v1);
  std::memset(&params, 0xAB, sizeof params);
  ember_generate_params_init_sized(&params, offsetof(ember_generate_params, n_logprobs));
  EXPECT_EQ(params.struct_size, offsetof(ember_generate_params, n_logprobs));
  expect_untouched_from(params, offsetof(ember_generate_params, n_logprobs));
  ember_generate_params_init(&params);
  EXPECT_EQ(params.struct_size, sizeof params);
  EXPECT_EQ(params.draft_max, 0);
  EXPECT_EQ(params.draft_p_min, 0.75f);

  ember_generate_stats stats;
  std::memset(&stats, 0xAB, sizeof stats);
  (ember_generate_stats_init)(&stats);
  EXPECT_EQ(stats.struct_size, stats_v1);
  EXPECT_EQ(stats.generated_tokens, 0);
  expect_untouched_from(stats, stats_v1);
  ember_generate_stats_init_sized(&stats, 2);  // too small for struct_size itself: nothing written
  EXPECT_EQ(stats.struct_size, stats_v1);
  ember_generate_stats_init(&stats);
  EXPECT_EQ(stats.struct_size, sizeof stats);
  EXPECT_EQ(stats.draft_tokens, 0);
  ember_generate_params_init_sized(nullptr, sizeof params);  // NULL is fine
}

TEST_F(CApi, GeneratesGreedyTextThroughTheCallback) {
  ember_generate_params params;
  ember_generate_params_init(&params);
  params.temperature = 0.0f;
  params.max_tokens = 40;
  params.n_logprobs = 2;
  Collected c;
  ember_generate_stats stats;
  ember_generate_stats_init(&stats);
  ASSERT_EQ(ember_generate(session_, kStoriesPrompt, &params, collect, &c, &stats), EMBER_OK) << ember_last_error();
  EXPECT_EQ(c.text.rfind(", there was a little girl named Lily. She loved to play outside in the park.", 0), 0u)
      << c.text;
  EXPECT_EQ(stats.generated_tokens, 40);
  EXPECT_EQ(stats.finish, EMBER_FINISH_MAX_TOKENS);
  EXPECT_EQ(c.logprobs.size(), 40u);
  for (const float lp : c.logprobs) EXPECT_LE(lp, 0.0f);
  // ASCII text and no stop strings: nothing is held back, each token starts where the text ends.
  ASSERT_EQ(c.offsets.size(), 40u);
  for (const auto& [byte_offset, shown] : c.offsets) EXPECT_EQ(byte_offset, shown);

  // An older params struct (no logprobs / special fields): their defaults apply.
  ember_generate_params old = params;
  old.struct_size = offsetof(ember_generate_params, n_logprobs);
  Collected again;
  ASSERT_EQ(ember_generate(session_, kStoriesPrompt, &old, collect, &again, &stats), EMBER_OK) << ember_last_error();
  EXPECT_EQ(again.text, c.text);
  EXPECT_TRUE(again.logprobs.empty());
  EXPECT_GT(stats.cached_tokens, 0);  // the same prompt: reused from the first call
}

TEST_F(CApi, StopStringsCallbackStopAndCancel) {
  ember_generate_params params;
  ember_generate_params_init(&params);
  params.temperature = 0.0f;
  params.max_tokens = 60;
  const char* stops[] = {" Lily."};
  params.stop = stops;
  params.n_stop = 1;
  Collected c;
  ember_generate_stats stats;
  ember_generate_stats_init(&stats);
  ASSERT_EQ(ember_generate(session_, kStoriesPrompt, &params, collect, &c, &stats), EMBER_OK);
  EXPECT_EQ(c.text, ", there was a little girl named");
  EXPECT_EQ(stats.finish, EMBER_FINISH_STOP_STRING);

  params.n_stop = 0;
  Collected stopping;
  stopping.stop_after = 3;
  ASSERT_EQ(ember_generate(session_, kStoriesPrompt, &params, collect, &stopping, &stats), EMBER_OK);
  EXPECT_EQ(stopping.calls, 3);
  EXPECT_EQ(stats.finish, EMBER_FINISH_CANCELLED);

  params.stop = nullptr;
  params.n_stop = 2;
  EXPECT_EQ(ember_generate(session_, kStoriesPrompt, &params, collect, &c, &stats), EMBER_ERROR_INVALID_ARGUMENT);
  params.n_stop = 0;
  params.top_p = 2.0f;
  EXPECT_EQ(ember_generate(session_, kStoriesPrompt, &params, collect, &c, &stats), EMBER_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("top_p"), std::string::npos) << ember_last_error();

  // A cancel with no generation running affects none.
  params.top_p = 0.95f;
  params.max_tokens = 20;
  ember_session_cancel(session_);
  Collected unaffected;
  ASSERT_EQ(ember_generate(session_, kStoriesPrompt, &params, collect, &unaffected, &stats), EMBER_OK);
  EXPECT_EQ(stats.finish, EMBER_FINISH_MAX_TOKENS);
}

struct CancelState {
  ember_session* session;
  std::atomic<int> tokens{0};
};

bool count_tokens(const ember_token* /*token*/, void* user_data) {
  static_cast<CancelState*>(user_data)->tokens.fetch_add(1);
  return true;
}

TEST_F(CApi, CancelFromAnotherThreadStopsTheGeneration) {
  ember_generate_params params;
  ember_generate_params_init(&params);
  params.temperature = 0.0f;
  params.max_tokens = -1;
  CancelState state{session_};
  std::thread canceller([&state] {
    while (state.tokens.load() < 3) std::this_thread::yield();
    ember_session_cancel(state.session);
  });
  ember_generate_stats stats;
  ember_generate_stats_init(&stats);
  // The context (128) would take 120+ tokens; greedy stories260K may also end its story first.
  ASSERT_EQ(ember_generate(session_, kStoriesPrompt, &params, count_tokens, &state, &stats), EMBER_OK);
  canceller.join();
  EXPECT_EQ(stats.finish, EMBER_FINISH_CANCELLED);
  EXPECT_LT(stats.generated_tokens, 100);

  ember_generate_stats unset{};  // struct_size 0: refused before anything runs
  EXPECT_EQ(ember_generate(session_, kStoriesPrompt, &params, count_tokens, &state, &unset),
            EMBER_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("stats"), std::string::npos);
  EXPECT_EQ(ember_session_reset(session_), EMBER_OK);
}

// Speculative decoding through the C API on the bundled models (always here): with a draft model
// and with prompt lookup, `deterministic` greedy text equals plain decoding's and the stats count
// the drafts; an older params struct leaves speculation off; bad settings and a draft of another
// vocabulary are errors with a message.
TEST(CApiSpeculative, DraftsKeepTheTextAndAreCounted) {
  const fs::path models = fs::path(EMBER_SOURCE_DIR) / "models";
  ember_load_params load;
  ember_load_params_init(&load);
  load.n_threads = 2;
  load.n_ctx = 256;
  load.deterministic = 1;
  ember_model* target = nullptr;
  ember_model* draft = nullptr;
  ASSERT_EQ(ember_model_load((models / "ember-tiny.gguf").c_str(), &load, &target), EMBER_OK) << ember_last_error();
  load.n_threads = 1;
  ASSERT_EQ(ember_model_load((models / "ember-tiny-draft.gguf").c_str(), &load, &draft), EMBER_OK)
      << ember_last_error();
  ember_session* plain_session = nullptr;
  ember_session* draft_session = nullptr;
  ASSERT_EQ(ember_session_new(target, &plain_session), EMBER_OK);
  ASSERT_EQ(ember_session_new_with_draft(target, draft, &draft_session), EMBER_OK) << ember_last_error();

  ember_generate_params params;
  ember_generate_params_init(&params);
  EXPECT_EQ(params.draft_max, 0);  // off unless asked
  EXPECT_EQ(params.draft_min, 1);
  EXPECT_EQ(params.spec_ngram, 3);
  EXPECT_EQ(params.draft_p_min, 0.75f);
  params.temperature = 0.0f;
  params.max_tokens = 60;
  const char* const prompt = "And the LORD said unto Moses";
  Collected plain;
  ember_generate_stats stats;
  ember_generate_stats_init(&stats);
  ASSERT_EQ(ember_generate(plain_session, prompt, &params, collect, &plain, &stats), EMBER_OK) << ember_last_error();
  EXPECT_EQ(stats.draft_tokens, 0);

  params.draft_max = 4;
  params.draft_always = 1;  // the steps taken must not depend on timing (this counts drafts)
  for (ember_session* session : {draft_session, plain_session}) {  // the draft model, then prompt lookup
    SCOPED_TRACE(session == draft_session ? "draft model" : "prompt lookup");
    ASSERT_EQ(ember_session_reset(session), EMBER_OK);
    Collected spec;
    ember_generate_stats_init(&stats);
    ASSERT_EQ(ember_generate(session, prompt, &params, collect, &spec, &stats), EMBER_OK) << ember_last_error();
    EXPECT_EQ(spec.text, plain.text);
    EXPECT_EQ(stats.generated_tokens, 60);
    EXPECT_GT(stats.draft_tokens, 0);
    EXPECT_GT(stats.accepted_tokens, 0);
    EXPECT_LE(stats.accepted_tokens, stats.draft_tokens);
  }

  // A caller built before the speculative fields: its params end at parse_special, so they are off.
  ember_generate_params old = params;
  old.struct_size = offsetof(ember_generate_params, draft_max);
  Collected again;
  ASSERT_EQ(ember_generate(draft_session, prompt, &old, collect, &again, &stats), EMBER_OK) << ember_last_error();
  EXPECT_EQ(again.text, plain.text);
  EXPECT_EQ(stats.draft_tokens, 0);

  ember_generate_params bad = params;
  bad.draft_min = 5;  // above draft_max
  EXPECT_EQ(ember_generate(draft_session, prompt, &bad, collect, &again, &stats), EMBER_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("draft_min"), std::string::npos) << ember_last_error();
  bad = params;
  bad.draft_max = 65;
  EXPECT_EQ(ember_generate(draft_session, prompt, &bad, collect, &again, &stats), EMBER_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("draft_max"), std::string::npos) << ember_last_error();
  ember_session_free(draft_session);
  ember_session_free(plain_session);
  ember_model_free(draft);

  ember_session* none = nullptr;
  EXPECT_EQ(ember_session_new_with_draft(nullptr, nullptr, &none), EMBER_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(none, nullptr);
  const auto data = test::shared_data_dir();
  if (data) {  // a draft of another vocabulary (stories260K: 512 tokens)
    ember_model* stories = nullptr;
    ASSERT_EQ(ember_model_load((*data / kStories).c_str(), nullptr, &stories), EMBER_OK) << ember_last_error();
    EXPECT_EQ(ember_session_new_with_draft(target, stories, &none), EMBER_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(none, nullptr);
    EXPECT_NE(std::string(ember_last_error()).find("vocabulary"), std::string::npos) << ember_last_error();
    ember_model_free(stories);
  }
  ember_model_free(target);
  if (!data) GTEST_SKIP() << "../shared/data not found beside the checkout: the vocabulary mismatch was not checked";
}

}  // namespace
}  // namespace ember
