/* ember's C API: load a GGUF model, tokenize, detokenize, generate text with a callback per token.
 *
 * - Handles are opaque; every ember_*_new / ember_model_load has its ember_*_free.
 * - Functions return an ember_status; on failure ember_last_error() holds a message for the
 *   calling thread (valid until its next call into ember, which clears it when it succeeds).
 * - Structs passed in and out start with a `struct_size` field: set it with the *_init macro (or
 *   sizeof), so a newer library works with a program built against older headers: fields past
 *   struct_size keep their defaults, and the library writes no further than struct_size (and sets
 *   it to what it wrote). An unset struct_size is EMBER_ERROR_INVALID_ARGUMENT. New fields are
 *   only ever added at offsets at or past the old sizeof (tail padding included). The *_init
 *   macros pass the caller's sizeof to the *_init_sized functions, which write no further; the
 *   plain *_init functions they shadow are the first release's and fill its layout only.
 * - A model may be shared by several sessions and threads; a session is used by one thread at a
 *   time, except ember_session_cancel(), which any thread may call.
 */
#ifndef EMBER_EMBER_H
#define EMBER_EMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define EMBER_C_API
#else
#define EMBER_C_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ember_status {
  EMBER_OK = 0,
  EMBER_ERROR_INVALID_ARGUMENT = 1, /* an impossible option or value */
  EMBER_ERROR_IO = 2,               /* a file could not be opened, read or mapped */
  EMBER_ERROR_FORMAT = 3,           /* a malformed file */
  EMBER_ERROR_UNSUPPORTED = 4,      /* well-formed but not supported (architecture, tensor type) */
  EMBER_ERROR_NOT_FOUND = 5,        /* a missing key, tensor or file */
  EMBER_ERROR_TYPE_MISMATCH = 6,    /* a value of another type than expected */
  EMBER_ERROR_OUT_OF_MEMORY = 7,
  EMBER_ERROR_BUFFER_TOO_SMALL = 8, /* the output did not fit; the size needed is reported */
  EMBER_ERROR_INTERNAL = 9          /* a bug in ember: please report it with the message */
} ember_status;

typedef enum ember_finish_reason {
  EMBER_FINISH_NONE = 0,
  EMBER_FINISH_END_OF_GENERATION = 1, /* the model ended its turn */
  EMBER_FINISH_MAX_TOKENS = 2,
  EMBER_FINISH_STOP_STRING = 3,
  EMBER_FINISH_MAX_TIME = 4,
  EMBER_FINISH_CONTEXT_FULL = 5,
  EMBER_FINISH_CANCELLED = 6, /* ember_session_cancel() or the callback returned false */
  EMBER_FINISH_ERROR = 7      /* the generation failed (ember_generate returned an error) */
} ember_finish_reason;

typedef struct ember_model ember_model;
typedef struct ember_session ember_session;

/* "0.1.0" */
EMBER_C_API const char* ember_version(void);
/* The message of the calling thread's last call, if it failed ("" after a success). */
EMBER_C_API const char* ember_last_error(void);
/* "ok", "invalid_argument", ... */
EMBER_C_API const char* ember_status_name(ember_status status);

/* ---- Models -------------------------------------------------------------------------------- */

typedef struct ember_load_params {
  size_t struct_size;
  int32_t n_threads;         /* 0: every CPU the process may use */
  int32_t n_ctx;             /* tokens per session, prompt included; 0: the model's, at most 4096 */
  int32_t kv_f32;            /* nonzero: F32 KV cache instead of F16 (unless kv_type is set) */
  int32_t mlock;             /* nonzero: lock the weights in RAM */
  const char* chat_template; /* Jinja source, a preset name or a template file; NULL: the model's, else ChatML */
  /* nonzero: each token's logits bit-identical however tokens share a forward step, so greedy
   * speculative decoding gives plain decoding's text exactly (slower prefill of F16 / BF16, and of
   * every type without AVX-512; slower decode of quantized weights on AMD AVX-512 CPUs) */
  int32_t deterministic;
  /* the KV cache's type, any case: "f16", "f32" or "q8_0" (17/32 of f16's memory; the model's head
   * size must be a multiple of 32, else EMBER_ERROR_UNSUPPORTED); NULL: kv_f32 decides */
  const char* kv_type;
} ember_load_params;

/* Sets struct_size to min(size, the library's sizeof) and the defaults of the fields within it. */
EMBER_C_API void ember_load_params_init_sized(ember_load_params* params, size_t size);
EMBER_C_API void ember_load_params_init(ember_load_params* params); /* the first layout's fields only */
#define ember_load_params_init(params) ember_load_params_init_sized((params), sizeof *(params))
/* params may be NULL (defaults). On success *model is a new handle; on failure it is NULL. */
EMBER_C_API ember_status ember_model_load(const char* path, const ember_load_params* params, ember_model** model);
EMBER_C_API void ember_model_free(ember_model* model); /* NULL is fine */

typedef struct ember_model_info {
  size_t struct_size;
  const char* name;         /* valid while the model lives */
  const char* architecture; /* "llama", "qwen2", ... */
  const char* type;         /* "Q8_0", "F16", ... */
  uint64_t n_params;
  uint64_t weight_bytes;
  int32_t n_vocab;
  int32_t n_ctx;       /* tokens per session, as loaded */
  int32_t n_ctx_train; /* the model's training context (0: unknown) */
  int32_t n_threads;
} ember_model_info;

EMBER_C_API void ember_model_info_init(ember_model_info* info);
EMBER_C_API ember_status ember_model_get_info(const ember_model* model, ember_model_info* info);

/* Text (UTF-8, `length` bytes) to tokens. Writes at most `capacity` ids and sets *n_tokens to the
 * count; EMBER_ERROR_BUFFER_TOO_SMALL when capacity is short (*n_tokens is then the size needed). */
EMBER_C_API ember_status ember_tokenize(const ember_model* model, const char* text, size_t length, bool add_special,
                                        bool parse_special, int32_t* tokens, size_t capacity, size_t* n_tokens);
/* Tokens to text, NUL-terminated. *length is the text's size without the NUL; when `capacity` is
 * short: EMBER_ERROR_BUFFER_TOO_SMALL and *length is the size needed (without the NUL). */
EMBER_C_API ember_status ember_detokenize(const ember_model* model, const int32_t* tokens, size_t n_tokens,
                                          bool render_special, char* text, size_t capacity, size_t* length);
EMBER_C_API bool ember_is_end_of_generation(const ember_model* model, int32_t token);

typedef struct ember_chat_message {
  const char* role; /* "system", "user", "assistant", "tool" */
  const char* content;
} ember_chat_message;

/* The model's chat template (or ember_load_params.chat_template) applied to a conversation, as a
 * NUL-terminated text; sizes as ember_detokenize. A template that raises gives
 * EMBER_ERROR_INVALID_ARGUMENT with its message; one that does not parse, or fails while rendering,
 * EMBER_ERROR_FORMAT with the line and column. */
EMBER_C_API ember_status ember_apply_chat_template(const ember_model* model, const ember_chat_message* messages,
                                                   size_t n_messages, bool add_generation_prompt, char* text,
                                                   size_t capacity, size_t* length);

/* ---- Sessions and generation -------------------------------------------------------------- */

EMBER_C_API ember_status ember_session_new(ember_model* model, ember_session** session);
/* A session whose speculative decoding (ember_generate_params.draft_max) takes its drafts from
 * `draft`, a smaller model of the same vocabulary (NULL: prompt lookup, as ember_session_new).
 * The session holds both models (their handles may be freed first). EMBER_ERROR_INVALID_ARGUMENT
 * when the vocabularies differ.
 * A small draft (tens of millions of parameters) runs fastest loaded with n_threads = 1. */
EMBER_C_API ember_status ember_session_new_with_draft(ember_model* model, ember_model* draft, ember_session** session);
EMBER_C_API void ember_session_free(ember_session* session); /* NULL is fine */
/* Any thread: the running generation stops before its next step (EMBER_FINISH_CANCELLED). */
EMBER_C_API void ember_session_cancel(ember_session* session);
/* Forgets the conversation held in the session's KV cache. */
EMBER_C_API ember_status ember_session_reset(ember_session* session);

typedef struct ember_generate_params {
  size_t struct_size;
  /* Sampling (llama.cpp's defaults; see include/ember/sampling.h for each step's meaning). */
  float temperature; /* <= 0: greedy */
  int32_t top_k;     /* 0: off */
  float top_p;       /* 1: off */
  float min_p;       /* 0: off */
  float typical_p;   /* 1: off */
  float repeat_penalty;
  float presence_penalty;
  float frequency_penalty;
  int32_t penalty_last_n;
  uint64_t seed;
  /* Stopping. */
  int32_t max_tokens;      /* -1: no limit */
  const char* const* stop; /* n_stop NUL-terminated stop strings, never part of the output */
  size_t n_stop;
  double max_time_ms; /* 0: no limit */
  int32_t n_logprobs; /* -1: no logprobs; else the chosen token's and this many alternatives */
  bool add_special;   /* add BOS to the prompt where the vocabulary asks */
  bool parse_special; /* control-token text in the prompt becomes control tokens */
  /* Speculative decoding (docs/engine.md): up to draft_max tokens (0: off, at most 64) proposed per
   * step by the session's draft model, else by prompt lookup, and checked in one forward pass; the
   * output's distribution is plain decoding's. Not with mirostat. */
  int32_t draft_max;
  int32_t draft_min;  /* the adaptive draft length's floor (1); shorter lookup drafts are not checked */
  int32_t spec_ngram; /* prompt lookup matches this many last tokens first, then fewer (3; 1 to 16) */
  /* nonzero: greedy speculation goes on when it measures slower per token than plain steps (by
   * default it pauses then; sampled speculation never decides on timing) */
  int32_t draft_always;
  float draft_p_min; /* a draft model's draft ends where it is less sure than this (0.75; 0: off) */
} ember_generate_params;

EMBER_C_API void ember_generate_params_init_sized(ember_generate_params* params, size_t size);
EMBER_C_API void ember_generate_params_init(ember_generate_params* params); /* the first layout's only */
#define ember_generate_params_init(params) ember_generate_params_init_sized((params), sizeof *(params))

typedef struct ember_token_logprob {
  int32_t token;
  float logprob;
} ember_token_logprob;

/* One generated token, valid during the callback. `text` (not NUL-terminated: use text_length) is
 * what may be shown now; it can be empty while a character or a possible stop string is
 * incomplete. The last piece may have token -1: text held back until the end. */
typedef struct ember_token {
  size_t struct_size;
  int32_t token;
  const char* text;
  size_t text_length;
  float logprob;                  /* when n_logprobs >= 0 */
  const ember_token_logprob* top; /* n_top alternatives, best first */
  size_t n_top;
  /* Where the token's bytes begin in the generation's whole text, held-back bytes counted: its bytes
   * are shown once more than byte_offset bytes have been; after a stop string, a token at or past
   * the end of the text shown made only the stop string (GeneratedToken::byte_offset). */
  size_t byte_offset;
} ember_token;

/* Return false to stop the generation (EMBER_FINISH_CANCELLED). */
typedef bool (*ember_token_callback)(const ember_token* token, void* user_data);

typedef struct ember_generate_stats {
  size_t struct_size;
  int32_t prompt_tokens;
  int32_t cached_tokens; /* of the prompt, reused from the session's cache */
  int32_t generated_tokens;
  double prefill_ms;
  double decode_ms;
  double sample_ms;
  double first_token_ms;
  double total_ms;
  ember_finish_reason finish;
  int32_t reserved0;       /* the first layout's tail padding: unused */
  int32_t draft_tokens;    /* speculative decoding: tokens proposed ... */
  int32_t accepted_tokens; /* ... and kept */
} ember_generate_stats;

EMBER_C_API void ember_generate_stats_init_sized(ember_generate_stats* stats, size_t size);
EMBER_C_API void ember_generate_stats_init(ember_generate_stats* stats); /* the first layout's only */
#define ember_generate_stats_init(stats) ember_generate_stats_init_sized((stats), sizeof *(stats))

/* Generates after `prompt` (the whole context; the prefix shared with the session's cache is not
 * computed again), calling `callback` per token. params and stats may be NULL. */
EMBER_C_API ember_status ember_generate(ember_session* session, const char* prompt, const ember_generate_params* params,
                                        ember_token_callback callback, void* user_data, ember_generate_stats* stats);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_EMBER_H */
