// GgufValue accessors and GgufType names.
#include "gguf/gguf_value.h"

#include <limits>

namespace ember {

std::string_view gguf_type_name(GgufType type) noexcept {
  switch (type) {
    case GgufType::kUint8: return "uint8";
    case GgufType::kInt8: return "int8";
    case GgufType::kUint16: return "uint16";
    case GgufType::kInt16: return "int16";
    case GgufType::kUint32: return "uint32";
    case GgufType::kInt32: return "int32";
    case GgufType::kFloat32: return "float32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kUint64: return "uint64";
    case GgufType::kInt64: return "int64";
    case GgufType::kFloat64: return "float64";
  }
  return "invalid";
}

size_t gguf_scalar_size(GgufType type) noexcept {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool: return 1;
    case GgufType::kUint16:
    case GgufType::kInt16: return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32: return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64: return 8;
    case GgufType::kString:
    case GgufType::kArray: return 0;
  }
  return 0;
}

bool gguf_type_is_integer(GgufType type) noexcept {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kUint16:
    case GgufType::kInt16:
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kUint64:
    case GgufType::kInt64: return true;
    default: return false;
  }
}

namespace {

// Sign-extends the low `bytes` bytes of `bits`.
int64_t sign_extend(uint64_t bits, size_t bytes) noexcept {
  const unsigned shift = static_cast<unsigned>(64 - 8 * bytes);
  return static_cast<int64_t>(bits << shift) >> shift;
}

bool is_signed(GgufType type) noexcept {
  return type == GgufType::kInt8 || type == GgufType::kInt16 || type == GgufType::kInt32 || type == GgufType::kInt64;
}

}  // namespace

bool GgufValue::to_int64(int64_t* out) const noexcept {
  if (!gguf_type_is_integer(type_)) return false;
  if (is_signed(type_)) {
    *out = sign_extend(bits_, gguf_scalar_size(type_));
    return true;
  }
  if (bits_ > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
  *out = static_cast<int64_t>(bits_);
  return true;
}

bool GgufValue::to_uint64(uint64_t* out) const noexcept {
  if (!gguf_type_is_integer(type_)) return false;
  if (is_signed(type_)) {
    const int64_t v = sign_extend(bits_, gguf_scalar_size(type_));
    if (v < 0) return false;
    *out = static_cast<uint64_t>(v);
    return true;
  }
  *out = bits_;
  return true;
}

bool GgufValue::to_double(double* out) const noexcept {
  if (type_ == GgufType::kFloat32) {
    float f;
    const auto low = static_cast<uint32_t>(bits_);
    std::memcpy(&f, &low, sizeof f);
    *out = f;
    return true;
  }
  if (type_ == GgufType::kFloat64) {
    std::memcpy(out, &bits_, sizeof *out);
    return true;
  }
  return false;
}

}  // namespace ember
