// The model's quantization as users know it, from general.file_type or its tensors.
#include "model/model_type.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>

namespace ember {
namespace {

// llama_ftype values (llama.h); empty names are ids llama.cpp never assigned.
constexpr std::array<std::string_view, 39> kFtypeNames = {
    "ALL_F32",       "MOSTLY_F16",     "MOSTLY_Q4_0",      "MOSTLY_Q4_1",     "MOSTLY_Q4_1_SOME_F16", "MOSTLY_Q4_2",
    "MOSTLY_Q4_3",   "MOSTLY_Q8_0",    "MOSTLY_Q5_0",      "MOSTLY_Q5_1",     "MOSTLY_Q2_K",          "MOSTLY_Q3_K_S",
    "MOSTLY_Q3_K_M", "MOSTLY_Q3_K_L",  "MOSTLY_Q4_K_S",    "MOSTLY_Q4_K_M",   "MOSTLY_Q5_K_S",        "MOSTLY_Q5_K_M",
    "MOSTLY_Q6_K",   "MOSTLY_IQ2_XXS", "MOSTLY_IQ2_XS",    "MOSTLY_Q2_K_S",   "MOSTLY_IQ3_XS",        "MOSTLY_IQ3_XXS",
    "MOSTLY_IQ1_S",  "MOSTLY_IQ4_NL",  "MOSTLY_IQ3_S",     "MOSTLY_IQ3_M",    "MOSTLY_IQ2_S",         "MOSTLY_IQ2_M",
    "MOSTLY_IQ4_XS", "MOSTLY_IQ1_M",   "MOSTLY_BF16",      "MOSTLY_Q4_0_4_4", "MOSTLY_Q4_0_4_8",      "MOSTLY_Q4_0_8_8",
    "MOSTLY_TQ1_0",  "MOSTLY_TQ2_0",   "MOSTLY_MXFP4_MOE",
};

}  // namespace

std::optional<std::string_view> llama_ftype_name(int64_t file_type) noexcept {
  if (file_type < 0 || file_type >= static_cast<int64_t>(kFtypeNames.size())) return std::nullopt;
  return kFtypeNames[static_cast<size_t>(file_type)];
}

// "Q4_K_M" from general.file_type, else the tensor type holding the most bytes ("F32").
std::string model_type_label(const GgufFile& file) { return model_type_label(GgufModelFiles::view(file)); }

std::string model_type_label(const GgufModelFiles& model) {
  const GgufFile& file = model.metadata_file();
  int64_t id = 0;
  const GgufValue* v = file.find("general.file_type");
  if (v != nullptr && !v->is_array() && v->to_int64(&id)) {
    if (const auto name = llama_ftype_name(id)) {
      std::string_view s = *name;
      for (std::string_view prefix : {"MOSTLY_", "ALL_"}) {
        if (s.starts_with(prefix)) s.remove_prefix(prefix.size());
      }
      return std::string(s);
    }
  }
  std::map<DType, uint64_t> bytes;
  for (const GgufModelFiles::Tensor& t : model.tensors()) bytes[t.info->dtype] += t.info->n_bytes;
  if (bytes.empty()) return "?";
  const auto top = std::ranges::max_element(bytes, {}, [](const auto& kv) { return kv.second; });
  std::string name(dtype_name(top->first));
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

}  // namespace ember
