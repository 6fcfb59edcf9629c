// FileType: the whole-model quantization recipes users know from llama.cpp (Q4_K_M, Q8_0, ...),
// with the `general.file_type` id llama.cpp writes (llama_ftype) and each one's base tensor type.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "ember/dtype.h"

namespace ember {

// Values are llama.cpp's llama_ftype ids, written as general.file_type.
enum class FileType : uint32_t {
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 7,
  kQ5_0 = 8,
  kQ5_1 = 9,
  kQ2_K = 10,
  kQ3_K_S = 11,
  kQ3_K_M = 12,
  kQ3_K_L = 13,
  kQ4_K_S = 14,
  kQ4_K_M = 15,
  kQ5_K_S = 16,
  kQ5_K_M = 17,
  kQ6_K = 18,
  kIQ4_NL = 25,
  kIQ4_XS = 30,
  kBF16 = 32,
};

struct FileTypeInfo {
  FileType id;
  std::string_view name;     // "Q4_K_M"
  DType base;                // the type most 2-D tensors get
  std::string_view summary;  // one line for --help
};

// Every file type `ember quantize` writes, in the order of --help.
std::span<const FileTypeInfo> file_types() noexcept;
// Case-insensitive lookup by name; nullptr when unknown.
const FileTypeInfo* find_file_type(std::string_view name) noexcept;
const FileTypeInfo& file_type_info(FileType id) noexcept;

}  // namespace ember
