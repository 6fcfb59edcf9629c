/* Example: the C API — load a model, generate with a callback per token, print the stats.
 * Usage: generate_c MODEL.gguf [PROMPT] */
#include <stdio.h>

#include <ember/ember.h>

static bool print_token(const ember_token* token, void* user_data) {
  (void)user_data;
  fwrite(token->text, 1, token->text_length, stdout);
  fflush(stdout);
  return true; /* false would stop the generation */
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.gguf [PROMPT]\n", argv[0]);
    return 2;
  }
  ember_load_params load;
  ember_load_params_init(&load);
  load.n_threads = 2;
  load.n_ctx = 512;
  ember_model* model = NULL;
  if (ember_model_load(argv[1], &load, &model) != EMBER_OK) {
    fprintf(stderr, "error: %s\n", ember_last_error());
    return 1;
  }
  ember_session* session = NULL;
  if (ember_session_new(model, &session) != EMBER_OK) {
    fprintf(stderr, "error: %s\n", ember_last_error());
    ember_model_free(model);
    return 1;
  }

  ember_generate_params params;
  ember_generate_params_init(&params);
  params.temperature = 0.0f; /* greedy */
  params.max_tokens = 32;
  const char* stops[] = {"\n\n"};
  params.stop = stops;
  params.n_stop = 1;

  ember_generate_stats stats;
  ember_generate_stats_init(&stats);
  const char* prompt = argc > 2 ? argv[2] : "Once upon a time";
  fputs(prompt, stdout);
  const ember_status status = ember_generate(session, prompt, &params, print_token, NULL, &stats);
  putchar('\n');
  if (status != EMBER_OK) {
    fprintf(stderr, "error: %s\n", ember_last_error());
  } else {
    fprintf(stderr, "[%d prompt + %d generated tokens in %.1f ms, finish %d]\n", stats.prompt_tokens,
            stats.generated_tokens, stats.total_ms, (int)stats.finish);
  }
  ember_session_free(session);
  ember_model_free(model);
  return status == EMBER_OK ? 0 : 1;
}
