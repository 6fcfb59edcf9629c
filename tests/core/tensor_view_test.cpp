// TensorView shapes and byte strides for plain and block-quantized types.
#include <gtest/gtest.h>

#include <vector>

#include "ember/tensor_view.h"

namespace ember {
namespace {

TEST(TensorView, F32Strides) {
  std::vector<float> data(5 * 3 * 2);
  const TensorView v(data.data(), DType::kF32, {5, 3, 2}, "x");
  EXPECT_EQ(v.n_dims(), 3);
  EXPECT_EQ(v.ne(0), 5);
  EXPECT_EQ(v.ne(3), 1);
  EXPECT_EQ(v.nb(0), 4u);
  EXPECT_EQ(v.nb(1), 20u);
  EXPECT_EQ(v.nb(2), 60u);
  EXPECT_EQ(v.nb(3), 120u);
  EXPECT_EQ(v.n_elements(), 30);
  EXPECT_EQ(v.n_rows(), 6);
  EXPECT_EQ(v.n_bytes(), 120u);
  EXPECT_TRUE(v.is_contiguous());
  EXPECT_EQ(v.name(), "x");
  EXPECT_EQ(v.row(2, 1), reinterpret_cast<const std::byte*>(data.data() + 5 * 3 + 2 * 5));
}

TEST(TensorView, QuantizedRowsAreBlocks) {
  std::vector<std::byte> data(4 * 2 * 18);  // 4 rows of 64 elements = 2 Q4_0 blocks each
  const TensorView v(data.data(), DType::kQ4_0, {64, 4});
  EXPECT_EQ(v.nb(0), 18u);
  EXPECT_EQ(v.row_bytes(), 36u);
  EXPECT_EQ(v.n_bytes(), data.size());
  EXPECT_EQ(v.row(3), data.data() + 3 * 36);
  const TensorView k(data.data(), DType::kQ4_K, {256, 1});
  EXPECT_EQ(k.row_bytes(), 144u);
}

TEST(TensorViewDeathTest, RejectsRowsThatAreNotWholeBlocks) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::vector<std::byte> data(64);
  EXPECT_DEATH(TensorView(data.data(), DType::kQ8_0, {33}), "block_size");
}

}  // namespace
}  // namespace ember
