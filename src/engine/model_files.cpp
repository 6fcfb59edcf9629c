// open_model_with_tokenizer (see model_files.h).
#include "engine/model_files.h"

#include <utility>

#include "ember/error.h"

namespace ember {

ModelWithTokenizer open_model_with_tokenizer(const std::string& path, const MapOptions& map) {
  GgufModelFiles files = GgufModelFiles::open(path, map);
  const GgufFile& metadata = files.metadata_file();
  if (!metadata.contains("tokenizer.ggml.model")) {
    fail(ErrorCode::kNotFound, "'{}' has no tokenizer (no tokenizer.ggml.model key)", metadata.name());
  }
  ModelConfig config = ModelConfig::from_gguf(files);
  Tokenizer tokenizer = Tokenizer::from_gguf(metadata);
  if (tokenizer.vocab().size() != config.n_vocab) {
    fail(ErrorCode::kFormat, "'{}': the tokenizer has {} tokens but the model's vocabulary has {}", metadata.name(),
         tokenizer.vocab().size(), config.n_vocab);
  }
  return {.files = std::move(files), .config = std::move(config), .tokenizer = std::move(tokenizer)};
}

}  // namespace ember
