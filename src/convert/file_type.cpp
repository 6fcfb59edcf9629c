// The table of file types: names, llama.cpp ids and base tensor types.
#include "convert/file_type.h"

#include <algorithm>
#include <array>

#include "core/check.h"
#include "core/strings.h"

namespace ember {
namespace {

constexpr std::array kFileTypes = {
    FileTypeInfo{FileType::kF16, "F16", DType::kF16, "16-bit float, lossless for most models"},
    FileTypeInfo{FileType::kBF16, "BF16", DType::kBF16, "bfloat16, the training format of most models"},
    FileTypeInfo{FileType::kQ8_0, "Q8_0", DType::kQ8_0, "8.5 bits/weight, near lossless"},
    FileTypeInfo{FileType::kQ6_K, "Q6_K", DType::kQ6_K, "6.56 bits/weight, near lossless"},
    FileTypeInfo{FileType::kQ5_K_M, "Q5_K_M", DType::kQ5_K, "Q5_K, Q6_K for attn_v/ffn_down in part of the layers"},
    FileTypeInfo{FileType::kQ5_K_S, "Q5_K_S", DType::kQ5_K, "Q5_K everywhere but the output (Q6_K)"},
    FileTypeInfo{FileType::kQ5_1, "Q5_1", DType::kQ5_1, "legacy 6 bits/weight with a min"},
    FileTypeInfo{FileType::kQ5_0, "Q5_0", DType::kQ5_0, "legacy 5.5 bits/weight"},
    FileTypeInfo{FileType::kQ4_K_M, "Q4_K_M", DType::kQ4_K,
                 "Q4_K, Q6_K for attn_v/ffn_down in part of the layers; the usual default"},
    FileTypeInfo{FileType::kQ4_K_S, "Q4_K_S", DType::kQ4_K, "Q4_K, Q5_K for the first attn_v/ffn_down"},
    FileTypeInfo{FileType::kIQ4_NL, "IQ4_NL", DType::kIQ4_NL, "4.5 bits/weight, non-linear levels"},
    FileTypeInfo{FileType::kIQ4_XS, "IQ4_XS", DType::kIQ4_XS, "4.25 bits/weight, non-linear levels"},
    FileTypeInfo{FileType::kQ4_1, "Q4_1", DType::kQ4_1, "legacy 5 bits/weight with a min"},
    FileTypeInfo{FileType::kQ4_0, "Q4_0", DType::kQ4_0, "legacy 4.5 bits/weight"},
    FileTypeInfo{FileType::kQ3_K_L, "Q3_K_L", DType::kQ3_K, "Q3_K, Q5_K for attn_v/attn_output/ffn_down"},
    FileTypeInfo{FileType::kQ3_K_M, "Q3_K_M", DType::kQ3_K, "Q3_K, Q4_K/Q5_K for attn_v/attn_output/ffn_down"},
    FileTypeInfo{FileType::kQ3_K_S, "Q3_K_S", DType::kQ3_K, "Q3_K everywhere but the output (Q6_K)"},
    FileTypeInfo{FileType::kQ2_K, "Q2_K", DType::kQ2_K, "Q2_K, Q3_K/Q4_K for attn_v/attn_output/ffn_down"},
};

}  // namespace

std::span<const FileTypeInfo> file_types() noexcept { return kFileTypes; }

const FileTypeInfo* find_file_type(std::string_view name) noexcept {
  for (const FileTypeInfo& info : kFileTypes) {
    if (iequals(info.name, name)) return &info;
  }
  return nullptr;
}

const FileTypeInfo& file_type_info(FileType id) noexcept {
  for (const FileTypeInfo& info : kFileTypes) {
    if (info.id == id) return info;
  }
  EMBER_CHECK_MSG(false, "FileType without a table row");
  __builtin_unreachable();
}

}  // namespace ember
