// The model quantizer against llama.cpp: quantizing its F32 witness model into each of the 18 file
// types, mixed and --pure, yields the same tensor types and the same bytes as llama-quantize.
#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "convert/model_quantizer.h"
#include "ember/error.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "quant/fp16.h"
#include "support/sha256.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;

struct ExpectedTensor {
  uint32_t type_id;
  std::string raw_sha256;
};

std::map<std::string, ExpectedTensor> expected_tensors(const fs::path& json_path) {
  std::ifstream in(json_path);
  const auto expected = nlohmann::json::parse(in);
  std::map<std::string, ExpectedTensor> out;
  for (const auto& t : expected["tensors"]) out[t["name"]] = {t["type_id"], t["raw_sha256"]};
  return out;
}

class ModelQuantizerFileTypes : public testing::TestWithParam<bool> {};

TEST_P(ModelQuantizerFileTypes, ReproduceLlamaQuantizeTensorForTensor) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const bool pure = GetParam();
  const GgufModelFiles model = GgufModelFiles::open((data / "quant/tiny-llama-f32.gguf").string());
  const fs::path dir = test::temp_dir(pure ? "quantizer_pure" : "quantizer_mixed");
  ASSERT_EQ(file_types().size(), 18u);
  for (const FileTypeInfo& type : file_types()) {
    SCOPED_TRACE(type.name);
    const std::string stem = fmt::format("tiny-llama-{}{}.gguf", pure ? "pure-" : "", type.name);
    const auto expected = expected_tensors(data / "quant" / (stem + ".expected.json"));
    QuantizeOptions options;
    options.file_type = type.id;
    options.pure = pure;
    const QuantPlan plan = plan_model_quantization(model, options);
    const std::string out = (dir / stem).string();
    write_quantized_model(model, plan, type.id, out, /*n_threads=*/3);

    const GgufFile written = GgufFile::open(out);
    EXPECT_EQ(written.get<uint32_t>("general.file_type"), static_cast<uint32_t>(type.id));
    EXPECT_EQ(written.get<uint32_t>("general.quantization_version"), 2u);
    EXPECT_EQ(written.get<std::string>("tokenizer.ggml.model"), "llama");  // metadata copied
    ASSERT_EQ(written.tensors().size(), expected.size());
    for (const GgufTensorInfo& t : written.tensors()) {
      const ExpectedTensor& e = expected.at(std::string(t.name));
      EXPECT_EQ(static_cast<uint32_t>(t.dtype), e.type_id) << t.name;
      const std::span<const std::byte> bytes(written.tensor_data(t), t.n_bytes);
      EXPECT_EQ(test::sha256_hex(bytes), e.raw_sha256) << t.name;
    }
    fs::remove(out);
  }
}

INSTANTIATE_TEST_SUITE_P(MixedAndPure, ModelQuantizerFileTypes, testing::Bool(),
                         [](const testing::TestParamInfo<bool>& p) { return p.param ? "Pure" : "Mixed"; });

// A model whose rows do not fit 32-element blocks keeps them in F32 for legacy types (as
// llama.cpp's stories260K-Q4_0 does), and its output falls back from Q6_K to Q8_0.
TEST(ModelQuantizer, StoriesFallbacksMatchLlamaCpp) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = data / "models/stories260K";
  const GgufModelFiles model = GgufModelFiles::open((dir / "stories260K.gguf").string());
  const GgufFile witness = GgufFile::open((dir / "stories260K-Q4_0.gguf").string());
  QuantizeOptions options;
  options.file_type = FileType::kQ4_0;
  const QuantPlan plan = plan_model_quantization(model, options);
  EXPECT_EQ(plan.n_fallback, 6);  // 5 ffn_down + output
  const std::string out = (test::temp_dir("quantizer_stories") / "q4_0.gguf").string();
  write_quantized_model(model, plan, options.file_type, out, 2);
  const GgufFile written = GgufFile::open(out);
  for (const GgufTensorInfo& t : witness.tensors()) {
    const GgufTensorInfo* ours = written.find_tensor(t.name);
    ASSERT_NE(ours, nullptr) << t.name;
    EXPECT_EQ(ours->dtype, t.dtype) << t.name;
    EXPECT_EQ(test::sha256_hex({written.tensor_data(*ours), ours->n_bytes}),
              test::sha256_hex({witness.tensor_data(t), t.n_bytes}))
        << t.name;
  }
}

// Hostile files the fuzzer found: planning them for every file type is an Error or a plan, never
// a crash or undefined behaviour (the sanitize build checks).
TEST(ModelQuantizer, FuzzRegressionsPlan) {
  int planned = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(EMBER_SOURCE_DIR) / "fuzz" / "regressions")) {
    if (entry.path().extension() != ".gguf") continue;
    try {
      const GgufModelFiles model = GgufModelFiles::open(entry.path().string());
      for (const FileTypeInfo& type : file_types()) {
        QuantizeOptions options;
        options.file_type = type.id;
        options.allow_requantize = true;
        try {
          (void)plan_model_quantization(model, options);
          ++planned;
        } catch (const Error&) {
        }
      }
    } catch (const Error&) {
      // not a readable file: the reader's tests cover it
    }
  }
  EXPECT_GT(planned, 0);
}

// A NaN or infinity is refused wherever it sits: in a tensor being converted, and in one the plan
// copies unchanged (a norm kept in F32, or every tensor when the file type is the input's).
TEST(ModelQuantizer, NonFiniteValuesAreRefusedInConvertedAndCopiedTensors) {
  const fs::path dir = test::temp_dir("quantizer_non_finite");
  // bad_at > 0: matrix element bad_at is `bad`; < 0: norm element -bad_at - 1; -1000: the scalar
  // tensor blk.0.scale (0 dimensions: the reader accepts them, the plan copies them). The matrix in F16
  // for `f16` (so that an F16 file type copies it), else F32.
  const auto write_model = [&](const std::string& name, int64_t bad_at, float bad, bool f16 = false) {
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add<uint32_t>("llama.block_count", 1);
    w.add<uint32_t>("llama.attention.head_count", 2);
    std::vector<float> matrix(64 * 4), norm(64);
    for (size_t i = 0; i < matrix.size(); ++i) matrix[i] = 0.01f * static_cast<float>(i % 17) - 0.07f;
    for (size_t i = 0; i < norm.size(); ++i) norm[i] = 1.0f + 0.001f * static_cast<float>(i);
    if (bad_at < 0 && bad_at != -1000) norm[static_cast<size_t>(-bad_at - 1)] = bad;
    if (bad_at > 0) matrix[static_cast<size_t>(bad_at)] = bad;
    const int64_t matrix_shape[] = {64, 4}, norm_shape[] = {64};
    std::vector<uint16_t> halves(matrix.size());
    for (size_t i = 0; i < matrix.size(); ++i) halves[i] = fp32_to_fp16(matrix[i]);
    w.add_tensor("blk.0.attn_q.weight", f16 ? DType::kF16 : DType::kF32, matrix_shape,
                 f16 ? std::as_bytes(std::span(halves)) : std::as_bytes(std::span(matrix)));
    w.add_tensor("blk.0.attn_norm.weight", DType::kF32, norm_shape, std::as_bytes(std::span(norm)));
    const float scale = bad_at == -1000 ? bad : 0.5f;  // a 0-dimensional tensor, copied (one value)
    w.add_tensor("blk.0.scale", DType::kF32, {}, std::as_bytes(std::span(&scale, 1)));
    const std::string path = (dir / name).string();
    w.write_file(path);
    return path;
  };
  const auto quantize_error = [&](const std::string& path, FileType type) -> std::string {
    const GgufModelFiles model = GgufModelFiles::open(path);
    QuantizeOptions options;
    options.file_type = type;
    const QuantPlan plan = plan_model_quantization(model, options);
    const std::string out = (dir / "out.gguf").string();
    try {
      write_quantized_model(model, plan, type, out, /*n_threads=*/2);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_FALSE(fs::exists(out));  // nothing half-written
      return e.what();
    }
    fs::remove(out);
    return "no error";
  };
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(quantize_error(write_model("finite.gguf", 0, 0.0f), FileType::kQ8_0), "no error");
  EXPECT_EQ(quantize_error(write_model("finite16.gguf", 0, 0.0f, true), FileType::kF16), "no error");
  // Converted: row 2 of the matrix (element 130).
  EXPECT_NE(quantize_error(write_model("matrix-nan.gguf", 130, nan), FileType::kQ8_0)
                .find("tensor 'blk.0.attn_q.weight' holds nan in row 2"),
            std::string::npos);
  // Copied: the F32 norm under Q8_0, and an F16 matrix under F16 (the input's own type).
  const std::string norm_inf = write_model("norm-inf.gguf", -5, -inf);
  EXPECT_NE(quantize_error(norm_inf, FileType::kQ8_0).find("tensor 'blk.0.attn_norm.weight' holds -inf in row 0"),
            std::string::npos);
  EXPECT_NE(quantize_error(write_model("scalar-nan.gguf", -1000, nan), FileType::kQ8_0)
                .find("tensor 'blk.0.scale' holds nan in row 0"),
            std::string::npos);
  EXPECT_NE(quantize_error(write_model("matrix-inf.gguf", 200, inf, true), FileType::kF16)
                .find("tensor 'blk.0.attn_q.weight' holds inf in row 3"),
            std::string::npos);
}

// Hyper-parameters come from the architecture's keys; per-layer arrays give layer 0's value.
TEST(ModelQuantizer, ModelFactsFromMetadata) {
  GgufWriter w;
  w.add_string("general.architecture", "deci");
  w.add<uint32_t>("deci.block_count", 80);
  const int32_t heads[] = {64, 64, 64};
  const int32_t kv_heads[] = {8, 0, 8};
  w.add_array<int32_t>("deci.attention.head_count", heads);
  w.add_array<int32_t>("deci.attention.head_count_kv", kv_heads);
  const auto bytes = w.write_to_memory();
  const ModelFacts facts = model_facts(GgufFile::parse(bytes, "deci.gguf"));
  EXPECT_EQ(facts.arch, "deci");
  EXPECT_EQ(facts.n_layer, 80);
  EXPECT_EQ(facts.n_head, 64);
  EXPECT_EQ(facts.n_head_kv, 8);
  EXPECT_EQ(facts.n_gqa(), 8);
  EXPECT_EQ(facts.n_expert, 0);
}

}  // namespace
}  // namespace ember
