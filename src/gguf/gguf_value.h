// GgufValue: one metadata value of a GGUF file (scalar, string or array), viewing the file's bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ember {

// Metadata value types, ids as on disk (gguf_type).
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

inline constexpr uint32_t kGgufTypeCount = 13;

// "uint32", "string", "array", ...; "invalid" for ids outside the enum.
std::string_view gguf_type_name(GgufType type) noexcept;
// Encoded size of a fixed-size scalar type; 0 for string and array.
size_t gguf_scalar_size(GgufType type) noexcept;
bool gguf_type_is_integer(GgufType type) noexcept;

// The GgufType that stores a C++ scalar type T (uint8_t ... double, bool).
template <typename T>
constexpr GgufType gguf_type_of() {
  if constexpr (std::is_same_v<T, bool>)
    return GgufType::kBool;
  else if constexpr (std::is_same_v<T, uint8_t>)
    return GgufType::kUint8;
  else if constexpr (std::is_same_v<T, int8_t>)
    return GgufType::kInt8;
  else if constexpr (std::is_same_v<T, uint16_t>)
    return GgufType::kUint16;
  else if constexpr (std::is_same_v<T, int16_t>)
    return GgufType::kInt16;
  else if constexpr (std::is_same_v<T, uint32_t>)
    return GgufType::kUint32;
  else if constexpr (std::is_same_v<T, int32_t>)
    return GgufType::kInt32;
  else if constexpr (std::is_same_v<T, uint64_t>)
    return GgufType::kUint64;
  else if constexpr (std::is_same_v<T, int64_t>)
    return GgufType::kInt64;
  else if constexpr (std::is_same_v<T, float>)
    return GgufType::kFloat32;
  else if constexpr (std::is_same_v<T, double>)
    return GgufType::kFloat64;
  else
    static_assert(!sizeof(T), "no GGUF type for this C++ type");
}

// A read-only view of a packed little-endian numeric array inside the file. Elements may be
// unaligned in the file, so they are read with memcpy instead of through a T*.
template <typename T>
class GgufArrayView {
 public:
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = T;
    Iterator() = default;
    explicit Iterator(const std::byte* p) : p_(p) {}
    T operator*() const noexcept {
      T v;
      std::memcpy(&v, p_, sizeof(T));
      return v;
    }
    Iterator& operator++() noexcept {
      p_ += sizeof(T);
      return *this;
    }
    Iterator operator++(int) noexcept {
      Iterator old = *this;
      p_ += sizeof(T);
      return old;
    }
    bool operator==(const Iterator& other) const noexcept { return p_ == other.p_; }

   private:
    const std::byte* p_ = nullptr;
  };

  GgufArrayView() = default;
  GgufArrayView(const std::byte* data, size_t size) : data_(data), size_(size) {}

  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  T operator[](size_t i) const noexcept {
    T v;
    std::memcpy(&v, data_ + i * sizeof(T), sizeof(T));
    return v;
  }
  Iterator begin() const noexcept { return Iterator(data_); }
  Iterator end() const noexcept { return Iterator(data_ + size_ * sizeof(T)); }
  std::vector<T> to_vector() const { return std::vector<T>(begin(), end()); }
  const std::byte* raw() const noexcept { return data_; }

 private:
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

class GgufValue {
 public:
  GgufValue() = default;

  GgufType type() const noexcept { return type_; }
  bool is_array() const noexcept { return type_ == GgufType::kArray; }

  // Scalars. Integer and float getters return false when the type does not hold such a value or
  // the value does not fit the requested type (e.g. a negative int into uint32_t).
  bool to_int64(int64_t* out) const noexcept;
  bool to_uint64(uint64_t* out) const noexcept;
  bool to_double(double* out) const noexcept;  // float32 or float64 only
  bool as_bool() const noexcept { return bits_ != 0; }
  // The scalar's little-endian bytes, zero-extended to 64 bits (for copying values verbatim).
  uint64_t raw_scalar() const noexcept { return bits_; }
  std::string_view as_string() const noexcept { return string_; }

  // Arrays.
  GgufType array_type() const noexcept { return elem_type_; }
  uint64_t array_size() const noexcept { return count_; }
  // Numeric elements; precondition: array_type() == gguf_type_of<T>().
  template <typename T>
  GgufArrayView<T> numbers() const noexcept {
    return GgufArrayView<T>(raw_, count_);
  }
  // String elements (array_type() == kString): views into the file.
  std::span<const std::string_view> strings() const noexcept { return strings_; }
  // Nested array elements (array_type() == kArray).
  std::span<const GgufValue> items() const noexcept { return items_; }

 private:
  friend class GgufParser;

  GgufType type_ = GgufType::kUint8;
  uint64_t bits_ = 0;                      // scalar value, zero-extended little-endian bytes
  std::string_view string_;                // kString
  GgufType elem_type_ = GgufType::kUint8;  // kArray: element type
  uint64_t count_ = 0;                     // kArray: element count
  const std::byte* raw_ = nullptr;         // kArray of numbers: packed elements in the file
  std::vector<std::string_view> strings_;  // kArray of strings
  std::vector<GgufValue> items_;           // kArray of arrays
};

}  // namespace ember
