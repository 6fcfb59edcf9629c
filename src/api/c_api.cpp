// The C API (include/ember/ember.h) over the C++ API: handles, status codes, size-versioned structs.
#include "ember/ember.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "core/check.h"
#include "ember/error.h"
#include "ember/llm.h"
#include "ember/session.h"
#include "model/kv_cache.h"

struct ember_model {
  std::shared_ptr<ember::Llm> llm;
};

struct ember_session {
  std::unique_ptr<ember::Session> session;
};

namespace {

static_assert(EMBER_FINISH_ERROR == static_cast<int>(ember::FinishReason::kError) &&
                  EMBER_FINISH_CANCELLED == static_cast<int>(ember::FinishReason::kCancelled) &&
                  EMBER_FINISH_CONTEXT_FULL == static_cast<int>(ember::FinishReason::kContextFull) &&
                  EMBER_FINISH_MAX_TIME == static_cast<int>(ember::FinishReason::kMaxTime) &&
                  EMBER_FINISH_STOP_STRING == static_cast<int>(ember::FinishReason::kStopString) &&
                  EMBER_FINISH_MAX_TOKENS == static_cast<int>(ember::FinishReason::kMaxTokens) &&
                  EMBER_FINISH_END_OF_GENERATION == static_cast<int>(ember::FinishReason::kEndOfGeneration),
              "ember_finish_reason mirrors ember::FinishReason");

thread_local std::string t_last_error;

ember_status status_of(ember::ErrorCode code) {
  switch (code) {
    case ember::ErrorCode::kInvalidArgument: return EMBER_ERROR_INVALID_ARGUMENT;
    case ember::ErrorCode::kIo: return EMBER_ERROR_IO;
    case ember::ErrorCode::kFormat: return EMBER_ERROR_FORMAT;
    case ember::ErrorCode::kUnsupported: return EMBER_ERROR_UNSUPPORTED;
    case ember::ErrorCode::kNotFound: return EMBER_ERROR_NOT_FOUND;
    case ember::ErrorCode::kTypeMismatch: return EMBER_ERROR_TYPE_MISMATCH;
    case ember::ErrorCode::kOutOfMemory: return EMBER_ERROR_OUT_OF_MEMORY;
  }
  return EMBER_ERROR_INTERNAL;
}

ember_status set_error(ember_status status, std::string message) {
  t_last_error = std::move(message);
  return status;
}

// Runs `body`, turning every exception into a status and the thread's last error: no exception
// crosses into C.
template <typename Body>
ember_status guarded(Body&& body) noexcept {
  try {
    t_last_error.clear();
    return body();
  } catch (const ember::Error& e) {
    return set_error(status_of(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    return set_error(EMBER_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return set_error(EMBER_ERROR_INTERNAL, e.what());
  } catch (...) {
    return set_error(EMBER_ERROR_INTERNAL, "unknown exception");
  }
}

ember_status null_argument(const char* name) {
  return set_error(EMBER_ERROR_INVALID_ARGUMENT, std::string(name) + " is NULL");
}

// Copies the caller's struct into a default-initialized one of ours: fields past its struct_size
// (a program built against older headers) keep their defaults.
template <typename T>
bool read_versioned(const T* in, T& out) {
  if (in == nullptr) return true;
  const size_t size = in->struct_size;
  if (size < sizeof(size_t) || size > (size_t{1} << 20)) return false;  // unset, or garbage
  std::memcpy(&out, in, std::min(size, sizeof(T)));
  out.struct_size = sizeof(T);
  return true;
}

// Fills the caller's struct with `defaults` no further than `size` bytes (its sizeof, or an older
// layout's), and sets struct_size to what was written.
template <typename T>
void init_versioned(T* out, size_t size, T defaults) {
  if (out == nullptr || size < sizeof(size_t)) return;
  defaults.struct_size = std::min(size, sizeof(T));
  std::memcpy(out, &defaults, defaults.struct_size);
}

// The first release's layouts: what the unsized *_init entry points (built into programs of that
// release) may write. New fields start at or past them.
constexpr size_t kLoadParamsV1 = offsetof(ember_load_params, deterministic);
constexpr size_t kGenerateParamsV1 = offsetof(ember_generate_params, draft_max);
constexpr size_t kGenerateStatsV1 = offsetof(ember_generate_stats, reserved0) + sizeof(int32_t);
static_assert(kGenerateStatsV1 % alignof(ember_generate_stats) == 0 &&
                  kGenerateStatsV1 == offsetof(ember_generate_stats, draft_tokens),
              "ember_generate_stats' new fields start past the first layout's tail padding");
static_assert(kLoadParamsV1 % alignof(ember_load_params) == 0 &&
                  kGenerateParamsV1 % alignof(ember_generate_params) == 0,
              "new fields start past the first layouts' tail padding");

// Whether an output struct's struct_size is set (to at least the field itself).
template <typename T>
bool writable(const T* out) {
  return out == nullptr || (out->struct_size >= sizeof(size_t) && out->struct_size <= (size_t{1} << 20));
}

// Writes ours into the caller's, no further than its struct_size, and sets struct_size to what was
// written (a newer program learns which fields an older library filled).
template <typename T>
void write_versioned(const T& in, T* out) {
  if (out == nullptr) return;
  const size_t size = std::min(out->struct_size, sizeof(T));
  std::memcpy(out, &in, size);
  out->struct_size = size;
}

// A NUL-terminated copy of `out` into the caller's buffer, or the size it needs.
ember_status copy_text(const std::string& out, char* text, size_t capacity, size_t* length) {
  *length = out.size();
  if (out.size() + 1 > capacity) {
    return set_error(EMBER_ERROR_BUFFER_TOO_SMALL, "the text is " + std::to_string(out.size()) +
                                                       " bytes and its NUL; the buffer holds " +
                                                       std::to_string(capacity));
  }
  std::memcpy(text, out.data(), out.size());
  text[out.size()] = '\0';
  return EMBER_OK;
}

ember::GenerateOptions to_options(const ember_generate_params& p) {
  ember::GenerateOptions o;
  ember::SamplingParams& s = o.sampling;
  s.temperature = p.temperature;
  s.top_k = p.top_k;
  s.top_p = p.top_p;
  s.min_p = p.min_p;
  s.typical_p = p.typical_p;
  s.repeat_penalty = p.repeat_penalty;
  s.presence_penalty = p.presence_penalty;
  s.frequency_penalty = p.frequency_penalty;
  s.penalty_last_n = p.penalty_last_n;
  s.seed = p.seed;
  o.stop.max_tokens = p.max_tokens;
  o.stop.max_time_ms = p.max_time_ms;
  if (p.n_stop > 0 && p.stop == nullptr)
    ember::fail(ember::ErrorCode::kInvalidArgument, "stop is NULL but n_stop is {}", p.n_stop);
  for (size_t i = 0; i < p.n_stop; ++i) {
    if (p.stop[i] == nullptr) ember::fail(ember::ErrorCode::kInvalidArgument, "stop[{}] is NULL", i);
    o.stop.strings.emplace_back(p.stop[i]);
  }
  o.logprobs = p.n_logprobs;
  o.add_special = p.add_special;
  o.parse_special = p.parse_special;
  o.speculative.draft_max = p.draft_max;
  o.speculative.draft_min = p.draft_min;
  o.speculative.ngram_max = p.spec_ngram;
  o.speculative.pause_when_slower = p.draft_always == 0;
  o.speculative.p_min = p.draft_p_min;
  return o;
}

}  // namespace

extern "C" {

const char* ember_version(void) { return EMBER_VERSION_STRING; }
const char* ember_last_error(void) { return t_last_error.c_str(); }

const char* ember_status_name(ember_status status) {
  switch (status) {
    case EMBER_OK: return "ok";
    case EMBER_ERROR_INVALID_ARGUMENT: return "invalid_argument";
    case EMBER_ERROR_IO: return "io";
    case EMBER_ERROR_FORMAT: return "format";
    case EMBER_ERROR_UNSUPPORTED: return "unsupported";
    case EMBER_ERROR_NOT_FOUND: return "not_found";
    case EMBER_ERROR_TYPE_MISMATCH: return "type_mismatch";
    case EMBER_ERROR_OUT_OF_MEMORY: return "out_of_memory";
    case EMBER_ERROR_BUFFER_TOO_SMALL: return "buffer_too_small";
    case EMBER_ERROR_INTERNAL: return "internal";
  }
  return "unknown";
}

void ember_load_params_init_sized(ember_load_params* params, size_t size) {
  init_versioned(params, size, ember_load_params{});
}

void(ember_load_params_init)(ember_load_params* params) { ember_load_params_init_sized(params, kLoadParamsV1); }

ember_status ember_model_load(const char* path, const ember_load_params* params, ember_model** model) {
  if (model != nullptr) *model = nullptr;
  return guarded([&] {
    if (path == nullptr) return null_argument("path");
    if (model == nullptr) return null_argument("model");
    ember_load_params p;
    ember_load_params_init(&p);
    if (!read_versioned(params, p)) return set_error(EMBER_ERROR_INVALID_ARGUMENT, "params->struct_size is not set");
    ember::LoadOptions o;
    o.threads = p.n_threads;
    o.context = p.n_ctx;
    o.kv_type = p.kv_f32 != 0 ? ember::DType::kF32 : ember::DType::kF16;
    if (p.kv_type != nullptr) {
      const std::optional<ember::DType> kv_type = ember::kv_type_from_name(p.kv_type);
      if (!kv_type) {
        return set_error(EMBER_ERROR_INVALID_ARGUMENT, "params->kv_type must be \"f16\", \"f32\" or \"q8_0\", got \"" +
                                                           std::string(p.kv_type) + "\"");
      }
      o.kv_type = *kv_type;
    }
    o.mlock = p.mlock != 0;
    o.batch_invariant = p.deterministic != 0;
    if (p.chat_template != nullptr) o.chat_template = p.chat_template;
    auto handle = std::make_unique<ember_model>();
    handle->llm = ember::Llm::load(path, o);
    *model = handle.release();
    return EMBER_OK;
  });
}

void ember_model_free(ember_model* model) { delete model; }

void ember_model_info_init(ember_model_info* info) {
  if (info == nullptr) return;
  *info = ember_model_info{};
  info->struct_size = sizeof(ember_model_info);
}

ember_status ember_model_get_info(const ember_model* model, ember_model_info* info) {
  return guarded([&] {
    if (model == nullptr) return null_argument("model");
    if (info == nullptr) return null_argument("info");
    if (!writable(info)) return set_error(EMBER_ERROR_INVALID_ARGUMENT, "info->struct_size is not set");
    const ember::ModelInfo& m = model->llm->info();
    ember_model_info out;
    ember_model_info_init(&out);
    out.name = m.name.c_str();
    out.architecture = m.architecture.c_str();
    out.type = m.type.c_str();
    out.n_params = m.parameters;
    out.weight_bytes = m.weight_bytes;
    out.n_vocab = m.n_vocab;
    out.n_ctx = m.context;
    out.n_ctx_train = m.trained_context;
    out.n_threads = m.threads;
    write_versioned(out, info);
    return EMBER_OK;
  });
}

ember_status ember_tokenize(const ember_model* model, const char* text, size_t length, bool add_special,
                            bool parse_special, int32_t* tokens, size_t capacity, size_t* n_tokens) {
  return guarded([&] {
    if (model == nullptr) return null_argument("model");
    if (text == nullptr && length > 0) return null_argument("text");
    if (tokens == nullptr && capacity > 0) return null_argument("tokens");
    if (n_tokens == nullptr) return null_argument("n_tokens");
    const std::vector<int32_t> ids =
        model->llm->tokenize(std::string_view(text == nullptr ? "" : text, length), add_special, parse_special);
    *n_tokens = ids.size();
    if (ids.size() > capacity) {
      return set_error(EMBER_ERROR_BUFFER_TOO_SMALL, "the text is " + std::to_string(ids.size()) +
                                                         " tokens; the buffer holds " + std::to_string(capacity));
    }
    if (!ids.empty()) std::memcpy(tokens, ids.data(), ids.size() * sizeof(int32_t));
    return EMBER_OK;
  });
}

ember_status ember_detokenize(const ember_model* model, const int32_t* tokens, size_t n_tokens, bool render_special,
                              char* text, size_t capacity, size_t* length) {
  return guarded([&] {
    if (model == nullptr) return null_argument("model");
    if (tokens == nullptr && n_tokens > 0) return null_argument("tokens");
    if (text == nullptr && capacity > 0) return null_argument("text");
    if (length == nullptr) return null_argument("length");
    return copy_text(model->llm->detokenize(std::span<const int32_t>(tokens, n_tokens), render_special), text, capacity,
                     length);
  });
}

ember_status ember_apply_chat_template(const ember_model* model, const ember_chat_message* messages, size_t n_messages,
                                       bool add_generation_prompt, char* text, size_t capacity, size_t* length) {
  return guarded([&] {
    if (model == nullptr) return null_argument("model");
    if (messages == nullptr && n_messages > 0) return null_argument("messages");
    if (text == nullptr && capacity > 0) return null_argument("text");
    if (length == nullptr) return null_argument("length");
    std::vector<ember::ChatMessage> conversation;
    for (size_t i = 0; i < n_messages; ++i) {
      if (messages[i].role == nullptr || messages[i].content == nullptr) {
        return set_error(EMBER_ERROR_INVALID_ARGUMENT,
                         "messages[" + std::to_string(i) + "] has a NULL role or content");
      }
      conversation.push_back({messages[i].role, messages[i].content});
    }
    return copy_text(model->llm->apply_chat_template(conversation, add_generation_prompt), text, capacity, length);
  });
}

bool ember_is_end_of_generation(const ember_model* model, int32_t token) {
  if (model == nullptr) return false;
  try {
    return model->llm->is_end_of_generation(token);
  } catch (...) {
    return false;  // an id outside the vocabulary ends nothing
  }
}

ember_status ember_session_new(ember_model* model, ember_session** session) {
  return ember_session_new_with_draft(model, nullptr, session);
}

ember_status ember_session_new_with_draft(ember_model* model, ember_model* draft, ember_session** session) {
  if (session != nullptr) *session = nullptr;
  return guarded([&] {
    if (model == nullptr) return null_argument("model");
    if (session == nullptr) return null_argument("session");
    auto handle = std::make_unique<ember_session>();
    handle->session = std::make_unique<ember::Session>(
        model->llm, ember::SessionOptions{.draft_model = draft != nullptr ? draft->llm : nullptr});
    *session = handle.release();
    return EMBER_OK;
  });
}

void ember_session_free(ember_session* session) { delete session; }

void ember_session_cancel(ember_session* session) {
  if (session != nullptr) session->session->cancel();
}

ember_status ember_session_reset(ember_session* session) {
  return guarded([&] {
    if (session == nullptr) return null_argument("session");
    session->session->reset();
    return EMBER_OK;
  });
}

void ember_generate_params_init_sized(ember_generate_params* params, size_t size) {
  const ember::SamplingParams s;
  ember_generate_params d{};
  d.temperature = s.temperature;
  d.top_k = s.top_k;
  d.top_p = s.top_p;
  d.min_p = s.min_p;
  d.typical_p = s.typical_p;
  d.repeat_penalty = s.repeat_penalty;
  d.presence_penalty = s.presence_penalty;
  d.frequency_penalty = s.frequency_penalty;
  d.penalty_last_n = s.penalty_last_n;
  d.seed = s.seed;
  d.max_tokens = -1;
  d.n_logprobs = -1;
  d.add_special = true;
  d.parse_special = true;
  const ember::GenerateOptions::Speculative spec;
  d.draft_max = spec.draft_max;
  d.draft_min = spec.draft_min;
  d.spec_ngram = spec.ngram_max;
  d.draft_p_min = spec.p_min;
  init_versioned(params, size, d);
}

void(ember_generate_params_init)(ember_generate_params* params) {
  ember_generate_params_init_sized(params, kGenerateParamsV1);
}

void ember_generate_stats_init_sized(ember_generate_stats* stats, size_t size) {
  init_versioned(stats, size, ember_generate_stats{});
}

void(ember_generate_stats_init)(ember_generate_stats* stats) {
  ember_generate_stats_init_sized(stats, kGenerateStatsV1);
}

ember_status ember_generate(ember_session* session, const char* prompt, const ember_generate_params* params,
                            ember_token_callback callback, void* user_data, ember_generate_stats* stats) {
  return guarded([&] {
    if (session == nullptr) return null_argument("session");
    if (prompt == nullptr) return null_argument("prompt");
    ember_generate_params p;
    ember_generate_params_init(&p);
    if (!read_versioned(params, p)) return set_error(EMBER_ERROR_INVALID_ARGUMENT, "params->struct_size is not set");
    if (!writable(stats)) return set_error(EMBER_ERROR_INVALID_ARGUMENT, "stats->struct_size is not set");
    std::vector<ember_token_logprob> top;
    const auto on_token = [&](const ember::GeneratedToken& t) {
      if (callback == nullptr) return true;
      top.clear();
      for (const ember::TokenLogprob& alt : t.top) top.push_back({alt.token, alt.logprob});
      const ember_token token{sizeof(ember_token), t.id,       t.text.data(), t.text.size(),
                              t.logprob,           top.data(), top.size(),    t.byte_offset};
      return callback(&token, user_data);
    };
    const ember::GenerationStats s = session->session->generate(prompt, to_options(p), on_token);
    ember_generate_stats out;
    ember_generate_stats_init(&out);
    out.prompt_tokens = s.prompt_tokens;
    out.cached_tokens = s.cached_tokens;
    out.generated_tokens = s.generated_tokens;
    out.prefill_ms = s.prefill_ms;
    out.decode_ms = s.decode_ms;
    out.sample_ms = s.sample_ms;
    out.first_token_ms = s.first_token_ms;
    out.total_ms = s.total_ms;
    out.finish = static_cast<ember_finish_reason>(s.finish);
    out.draft_tokens = s.draft_tokens;
    out.accepted_tokens = s.accepted_tokens;
    write_versioned(out, stats);
    return EMBER_OK;
  });
}

}  // extern "C"
