// TensorView: a non-owning view of a tensor (data, dtype, up to 4 dims in ggml order, byte strides).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>

#include "ember/dtype.h"

namespace ember {

// Dims follow ggml: ne[0] is the row length and varies fastest; nb[i] is the byte stride of dim i
// (nb[0] = bytes of one block, nb[1] = bytes of one row). Valid while the owner of `data` lives
// (a MappedFile, an AlignedBuffer, a model). Unused trailing dims have ne = 1.
class TensorView {
 public:
  static constexpr int kMaxDims = 4;

  TensorView() = default;

  // A contiguous tensor. Precondition (EMBER_CHECK): 0..4 dims (0 = scalar), each >= 1, element
  // count within int64, and ne[0] a multiple of the dtype's block size; callers validate untrusted
  // shapes before (the GGUF reader does).
  TensorView(const void* data, DType dtype, std::span<const int64_t> shape, std::string_view name = {});
  TensorView(const void* data, DType dtype, std::initializer_list<int64_t> shape, std::string_view name = {})
      : TensorView(data, dtype, std::span<const int64_t>(shape.begin(), shape.size()), name) {}

  const void* data() const noexcept { return data_; }
  // Writable access for views over memory the caller owns (activations, scratch). Writing
  // through a view of a read-only mapping faults: weights are never written.
  void* mutable_data() const noexcept { return const_cast<void*>(data_); }
  template <typename T>
  const T* data_as() const noexcept {
    return static_cast<const T*>(data_);
  }

  DType dtype() const noexcept { return dtype_; }
  int n_dims() const noexcept { return n_dims_; }
  int64_t ne(int dim) const noexcept { return ne_[dim]; }
  size_t nb(int dim) const noexcept { return nb_[dim]; }
  const std::array<int64_t, kMaxDims>& shape() const noexcept { return ne_; }
  std::string_view name() const noexcept { return name_; }

  int64_t n_elements() const noexcept { return ne_[0] * ne_[1] * ne_[2] * ne_[3]; }
  int64_t n_rows() const noexcept { return ne_[1] * ne_[2] * ne_[3]; }
  size_t row_bytes() const noexcept { return nb_[1]; }
  // Bytes spanned by the tensor (equal to n_elements' worth when contiguous).
  size_t n_bytes() const noexcept { return nb_[3] * static_cast<size_t>(ne_[3]); }
  bool is_contiguous() const noexcept;

  // Start of row (i1, i2, i3).
  const std::byte* row(int64_t i1, int64_t i2 = 0, int64_t i3 = 0) const noexcept {
    return static_cast<const std::byte*>(data_) + i1 * nb_[1] + i2 * nb_[2] + i3 * nb_[3];
  }

 private:
  const void* data_ = nullptr;
  DType dtype_ = DType::kF32;
  int n_dims_ = 0;
  std::array<int64_t, kMaxDims> ne_{1, 1, 1, 1};
  std::array<size_t, kMaxDims> nb_{0, 0, 0, 0};
  std::string_view name_;
};

}  // namespace ember
