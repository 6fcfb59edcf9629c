/* A downstream C program: the installed C API's version, and a load error's status and message. */
#include <stdio.h>
#include <string.h>

#include <ember/ember.h>

int main(void) {
  ember_model* model = NULL;
  const ember_status status = ember_model_load("/nonexistent.gguf", NULL, &model);
  printf("ember %s: %s: %s\n", ember_version(), ember_status_name(status), ember_last_error());
  return status == EMBER_ERROR_IO && model == NULL && strstr(ember_last_error(), "/nonexistent.gguf") ? 0 : 1;
}
