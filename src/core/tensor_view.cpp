// TensorView construction and contiguity check.
#include "ember/tensor_view.h"

#include "core/check.h"

namespace ember {

TensorView::TensorView(const void* data, DType dtype, std::span<const int64_t> shape, std::string_view name)
    : data_(data), dtype_(dtype), n_dims_(static_cast<int>(shape.size())), name_(name) {
  EMBER_CHECK(shape.size() <= kMaxDims);  // 0 dims: a scalar
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    EMBER_CHECK(shape[i] >= 1);
    EMBER_CHECK_MSG(!__builtin_mul_overflow(n, shape[i], &n), "tensor element count overflows int64");
    ne_[i] = shape[i];
  }
  const DTypeTraits& t = dtype_traits(dtype);
  EMBER_CHECK(ne_[0] % t.block_size == 0);
  nb_[0] = t.block_bytes;
  nb_[1] = static_cast<size_t>(ne_[0] / t.block_size) * t.block_bytes;
  for (int i = 2; i < kMaxDims; ++i) nb_[i] = nb_[i - 1] * static_cast<size_t>(ne_[i - 1]);
}

bool TensorView::is_contiguous() const noexcept {
  const DTypeTraits& t = dtype_traits(dtype_);
  if (nb_[0] != t.block_bytes) return false;
  if (nb_[1] != static_cast<size_t>(ne_[0] / t.block_size) * t.block_bytes) return false;
  for (int i = 2; i < kMaxDims; ++i) {
    if (nb_[i] != nb_[i - 1] * static_cast<size_t>(ne_[i - 1])) return false;
  }
  return true;
}

}  // namespace ember
