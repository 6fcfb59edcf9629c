// GgufFile: a validated, read-only GGUF v2/v3 file (metadata, tensor infos, tensor data in place).
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/check.h"
#include "core/mapped_file.h"
#include "ember/dtype.h"
#include "ember/tensor_view.h"
#include "gguf/gguf_value.h"

namespace ember {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as little-endian uint32
inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr int kGgufMaxDims = 4;
inline constexpr int kGgufMaxArrayNesting = 16;
inline constexpr size_t kGgufParseBufferAlignment =
    8;  // the widest tensor element (f64/i64)  // deeper nesting is rejected (bounded recursion)

struct GgufKeyValue {
  std::string_view key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string_view name;
  DType dtype = DType::kF32;
  int n_dims = 0;
  std::array<int64_t, kGgufMaxDims> ne{1, 1, 1, 1};  // ggml order: ne[0] is the row length
  uint64_t offset = 0;                               // relative to the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  std::span<const int64_t> shape() const noexcept { return {ne.data(), static_cast<size_t>(n_dims)}; }
};

class GgufFile {
 public:
  // Maps and validates `path`. Throws ember::Error naming the file and what is wrong.
  static GgufFile open(const std::string& path, const MapOptions& options = {});
  // Validates `bytes` (not copied: they must outlive the GgufFile, and start 8-byte aligned, as
  // any malloc'd buffer does, so tensor data aligned within the file is aligned in memory).
  // `name` is used in messages.
  static GgufFile parse(std::span<const std::byte> bytes, std::string name);

  GgufFile(GgufFile&&) noexcept = default;
  GgufFile& operator=(GgufFile&&) noexcept = default;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& name() const noexcept { return name_; }
  uint32_t version() const noexcept { return version_; }
  uint32_t alignment() const noexcept { return alignment_; }
  uint64_t file_size() const noexcept { return bytes_.size(); }
  uint64_t data_offset() const noexcept { return data_offset_; }  // absolute start of the data section
  std::span<const std::byte> bytes() const noexcept { return bytes_; }

  // Metadata in file order.
  std::span<const GgufKeyValue> metadata() const noexcept { return metadata_; }
  const GgufValue* find(std::string_view key) const noexcept;
  bool contains(std::string_view key) const noexcept { return find(key) != nullptr; }

  // Typed getters. Integers accept any integer type whose value fits T; floating types accept
  // float32/float64; std::string_view/std::string accept strings. Missing key -> Error(kNotFound);
  // other type or out of range -> Error(kTypeMismatch); both messages name the file and the key.
  template <typename T>
  T get(std::string_view key) const;
  template <typename T>
  std::optional<T> get_optional(std::string_view key) const;
  template <typename T>
  T get_or(std::string_view key, T fallback) const {
    std::optional<T> v = get_optional<T>(key);
    return v ? *v : fallback;
  }
  // Numeric arrays without copying; the element type must be exactly T.
  template <typename T>
  GgufArrayView<T> get_array(std::string_view key) const;
  std::span<const std::string_view> get_strings(std::string_view key) const;

  // Tensors in file order.
  std::span<const GgufTensorInfo> tensors() const noexcept { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const noexcept;
  const std::byte* tensor_data(const GgufTensorInfo& info) const noexcept {
    return bytes_.data() + data_offset_ + info.offset;
  }
  TensorView tensor_view(const GgufTensorInfo& info) const {
    return TensorView(tensor_data(info), info.dtype, info.shape(), info.name);
  }

 private:
  friend class GgufParser;
  GgufFile() = default;

  const GgufValue& require(std::string_view key) const;
  [[noreturn]] void type_mismatch(std::string_view key, const GgufValue& v, std::string_view expected) const;

  std::string name_;
  MappedFile mapping_;  // empty when parsed from caller-owned bytes
  std::span<const std::byte> bytes_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<GgufKeyValue> metadata_;
  std::unordered_map<std::string_view, size_t> metadata_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

template <typename T>
std::optional<T> GgufFile::get_optional(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if constexpr (std::is_same_v<T, bool>) {
    if (v->type() != GgufType::kBool) type_mismatch(key, *v, "bool");
    return v->as_bool();
  } else if constexpr (std::is_integral_v<T>) {
    if constexpr (std::is_signed_v<T>) {
      int64_t x;
      if (!v->to_int64(&x) || x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max())
        type_mismatch(key, *v, "an integer that fits the requested type");
      return static_cast<T>(x);
    } else {
      uint64_t x;
      if (!v->to_uint64(&x) || x > std::numeric_limits<T>::max())
        type_mismatch(key, *v, "a non-negative integer that fits the requested type");
      return static_cast<T>(x);
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    double x;
    if (!v->to_double(&x)) type_mismatch(key, *v, "float32 or float64");
    return static_cast<T>(x);
  } else if constexpr (std::is_same_v<T, std::string_view> || std::is_same_v<T, std::string>) {
    if (v->type() != GgufType::kString) type_mismatch(key, *v, "string");
    return T(v->as_string());
  } else {
    static_assert(!sizeof(T), "unsupported type for GgufFile::get");
  }
}

template <typename T>
T GgufFile::get(std::string_view key) const {
  require(key);
  return *get_optional<T>(key);
}

template <typename T>
GgufArrayView<T> GgufFile::get_array(std::string_view key) const {
  const GgufValue& v = require(key);
  if (!v.is_array() || v.array_type() != gguf_type_of<T>()) {
    type_mismatch(key, v, fmt::format("array of {}", gguf_type_name(gguf_type_of<T>())));
  }
  return v.numbers<T>();
}

}  // namespace ember
