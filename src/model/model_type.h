// What users call a model's quantization: llama.cpp's file-type names ("Q4_K_M") from
// general.file_type, else the type holding the most bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gguf/gguf_reader.h"
#include "gguf/gguf_split.h"

namespace ember {

// llama.cpp's llama_ftype name for general.file_type ("MOSTLY_Q4_K_M"); nullopt when unknown.
std::optional<std::string_view> llama_ftype_name(int64_t file_type) noexcept;
// The model's quantization as users know it: "Q4_K_M" from general.file_type (without llama.cpp's
// MOSTLY_ / ALL_ prefix), else the tensor type holding the most bytes ("F32") over every part.
std::string model_type_label(const GgufModelFiles& model);
std::string model_type_label(const GgufFile& file);

}  // namespace ember
