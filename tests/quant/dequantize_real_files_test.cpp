// Our reference dequantization of every tensor of every llama.cpp-quantized file in
// ../shared/data/quant equals llama.cpp's values bit for bit (sha256 of the float32 bytes, and the
// stored values where quant/*.expected.bin has them).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gguf/gguf_reader.h"
#include "quant/quant_traits.h"
#include "support/sha256.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;

std::vector<char> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(DequantizeRealFiles, EveryTensorMatchesLlamaCppBitForBit) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  std::map<std::string, std::vector<char>> bins;  // expected.bin files, loaded once
  int files = 0, tensors = 0, tensors_with_stored_values = 0;
  for (const auto& path : test::gguf_files_under(data / "quant")) {
    const fs::path json_path = path.string() + ".expected.json";
    if (!fs::exists(json_path)) continue;
    SCOPED_TRACE(path.filename().string());
    std::ifstream json_in(json_path);
    const auto expected = nlohmann::json::parse(json_in);
    const GgufFile f = GgufFile::open(path.string());
    ASSERT_EQ(f.tensors().size(), expected["tensors"].size());
    for (size_t i = 0; i < f.tensors().size(); ++i) {
      const GgufTensorInfo& t = f.tensors()[i];
      const auto& e = expected["tensors"][i];
      std::vector<float> values(t.n_elements);
      dequantize(t.dtype, f.tensor_data(t), values.data(), static_cast<int64_t>(t.n_elements));
      const auto bytes = std::as_bytes(std::span(values));
      EXPECT_EQ(test::sha256_hex(bytes), e["values_sha256"].get<std::string>())
          << t.name << " (" << dtype_name(t.dtype) << ")";
      if (!e["bin"].is_null()) {
        const std::string bin_name = e["bin"].get<std::string>();
        if (!bins.count(bin_name)) bins[bin_name] = read_bytes(data / "quant" / bin_name);
        const std::vector<char>& bin = bins[bin_name];
        const size_t offset = e["offset"].get<size_t>();
        ASSERT_LE(offset + bytes.size(), bin.size()) << t.name;
        // On a mismatch, name the first differing element rather than just the digest.
        for (size_t k = 0; k < values.size(); ++k) {
          float want;
          std::memcpy(&want, bin.data() + offset + 4 * k, 4);
          if (std::memcmp(&want, &values[k], 4) != 0) {
            ADD_FAILURE() << t.name << " element " << k << ": got " << values[k] << ", llama.cpp " << want;
            break;
          }
        }
        ++tensors_with_stored_values;
      }
      ++tensors;
    }
    ++files;
  }
  EXPECT_EQ(files, 36);
  EXPECT_EQ(tensors, 36 * 21);
  EXPECT_GT(tensors_with_stored_values, 200);
}

}  // namespace
}  // namespace ember
