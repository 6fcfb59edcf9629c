// StagedUpload (cuda/staged_upload.h): inputs of odd sizes land aligned, in order, in one copy; the
// buffer is reused across uploads without a copy reading the next upload's bytes; staging past the
// capacity, or again after a send without begin(), aborts.
#include "cuda/staged_upload.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "cuda_test_util.h"

namespace ember::cuda {
namespace {

std::vector<uint8_t> bytes_of(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + 37 * i + (i >> 8));
  return v;
}

TEST(StagedUpload, PackedBytesRoundEachStartUp) {
  EXPECT_EQ(StagedUpload::packed_bytes({}), 0u);
  EXPECT_EQ(StagedUpload::packed_bytes({1}), 1u);
  EXPECT_EQ(StagedUpload::packed_bytes({1, 1}), 257u);
  EXPECT_EQ(StagedUpload::packed_bytes({256, 1}), 257u);
  EXPECT_EQ(StagedUpload::packed_bytes({300, 0, 5}), 517u);
}

TEST(StagedUpload, InputsLandAlignedInOrderAndTheBufferIsReused) {
  EMBER_REQUIRE_GPU();
  const std::vector<size_t> sizes = {4100, 3, 0, 257, 1024, 1};
  const size_t capacity = StagedUpload::packed_bytes({4100, 3, 0, 257, 1024, 1});
  StagedUpload upload(capacity, "a test upload");
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  // Each round's copy waits behind a long device copy, and what it delivered is copied aside on
  // the stream: on a GPU, a begin() that did not wait for the copy would let the next round's
  // staging overwrite the host bytes before the copy read them.
  const size_t kBusyBytes = size_t{256} << 20;
  DeviceBuffer busy_from(kBusyBytes, "busy source"), busy_to(kBusyBytes, "busy target");
  std::vector<DeviceBuffer> delivered;
  for (uint8_t round = 0; round < 3; ++round) {  // begin() again at once: no synchronize between
    ASSERT_EQ(cudaMemcpyAsync(busy_to.data(), busy_from.data(), kBusyBytes, cudaMemcpyDeviceToDevice, stream),
              cudaSuccess);
    upload.begin();
    std::vector<std::vector<uint8_t>> inputs;
    std::vector<uint8_t*> at;
    for (size_t i = 0; i < sizes.size(); ++i) {
      inputs.push_back(bytes_of(sizes[i], static_cast<uint8_t>(round * 50 + i)));
      at.push_back(upload.stage(std::span<const uint8_t>(inputs.back())));
      EXPECT_EQ(reinterpret_cast<uintptr_t>(at.back()) % StagedUpload::kAlignment, 0u) << i;
      if (i > 0) {
        EXPECT_GE(at[i], at[i - 1] + sizes[i - 1]) << i;
      }
    }
    EXPECT_EQ(at.at(0), upload.device());  // (at(): GCC -O1 sees [0] on a maybe-empty vector)
    // The host copies go now: what was staged is what lands.
    for (auto& input : inputs) std::fill(input.begin(), input.end(), uint8_t{0});
    upload.send(stream);
    delivered.emplace_back(capacity, "a round's delivery");
    ASSERT_EQ(cudaMemcpyAsync(delivered.back().data(), upload.device(), capacity, cudaMemcpyDeviceToDevice, stream),
              cudaSuccess);
    if (round < 2) continue;
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    for (uint8_t r = 0; r <= round; ++r) {
      const std::vector<uint8_t> all = delivered[r].to_vector<uint8_t>(capacity);
      for (size_t i = 0; i < sizes.size(); ++i) {
        const auto offset = static_cast<size_t>(at[i] - static_cast<uint8_t*>(upload.device()));
        const std::vector<uint8_t> got(all.begin() + static_cast<std::ptrdiff_t>(offset),
                                       all.begin() + static_cast<std::ptrdiff_t>(offset + sizes[i]));
        EXPECT_EQ(got, bytes_of(sizes[i], static_cast<uint8_t>(r * 50 + i))) << "round " << int{r} << " input " << i;
      }
    }
  }
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

TEST(StagedUploadDeathTest, StagingPastTheCapacityOrBeforeBeginAborts) {
  EMBER_REQUIRE_GPU();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::vector<uint8_t> data(300);
  EXPECT_DEATH(
      {
        StagedUpload upload(StagedUpload::packed_bytes({200, 99}), "a test upload");
        upload.begin();
        upload.stage(data.data(), 200);
        upload.stage(data.data(), 100);
      },
      "past its capacity");
  EXPECT_DEATH(
      {
        StagedUpload upload(512, "a test upload");
        upload.begin();
        upload.stage(data.data(), 10);
        upload.send(nullptr);
        upload.stage(data.data(), 10);
      },
      "in_flight_");
}

}  // namespace
}  // namespace ember::cuda
