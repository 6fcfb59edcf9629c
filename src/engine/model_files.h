// Opening a model to generate with: its files (every part of a split model), hyper-parameters
// and tokenizer, checked against each other before any weight is read.
#pragma once

#include <string>

#include "gguf/gguf_split.h"
#include "model/model_config.h"
#include "tokenizer/tokenizer.h"

namespace ember {

struct ModelWithTokenizer {
  GgufModelFiles files;
  ModelConfig config;
  Tokenizer tokenizer;
};

// `path` may name any part of a split model. Throws the GGUF and config errors, Error(kNotFound)
// when the model has no tokenizer, and Error(kFormat) when the tokenizer's vocabulary and the
// model's (its embedding rows) differ in size: a token the model emits must be one the tokenizer
// can write, and a token the tokenizer makes one the model can embed (llama.cpp refuses such
// files too).
ModelWithTokenizer open_model_with_tokenizer(const std::string& path, const MapOptions& map = {});

}  // namespace ember
