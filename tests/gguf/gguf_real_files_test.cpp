// The reader on every real GGUF in ../shared/data: llama.cpp's files parse, with the expected
// keys, values, tensor shapes, offsets and data bytes (sha256 from the quant/ expected files).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gguf/gguf_reader.h"
#include "gguf/gguf_split.h"
#include "support/sha256.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;

TEST(GgufRealFiles, EveryFileParsesConsistently) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto files = test::gguf_files_under(data);
  ASSERT_GE(files.size(), 50u) << "expected the vocab, models and quant files of ../shared/data";
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    const GgufModelFiles model = GgufModelFiles::open(path.string());
    const GgufFile& f = model.metadata_file();
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.file_size(), fs::file_size(path));
    EXPECT_FALSE(f.get<std::string>("general.architecture").empty());
    EXPECT_EQ(f.tensors().size(), model.tensors().size());
    // Tokenizer arrays, where present, agree in length.
    if (f.contains("tokenizer.ggml.tokens")) {
      const size_t n_vocab = f.get_strings("tokenizer.ggml.tokens").size();
      EXPECT_GT(n_vocab, 100u);
      if (f.contains("tokenizer.ggml.scores")) {
        EXPECT_EQ(f.get_array<float>("tokenizer.ggml.scores").size(), n_vocab);
      }
      if (f.contains("tokenizer.ggml.token_type")) {
        EXPECT_EQ(f.get_array<int32_t>("tokenizer.ggml.token_type").size(), n_vocab);
      }
      for (const char* key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"}) {
        if (f.contains(key)) {
          EXPECT_LT(f.get<uint32_t>(key), n_vocab) << key;
        }
      }
    }
  }
}

TEST(GgufRealFiles, VocabFilesMatchTheirTestVectors) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::map<std::string, std::string> expected_model = {
      {"llama-spm", "llama"}, {"llama-bpe", "gpt2"}, {"qwen2", "gpt2"},  {"phi-3", "llama"},
      {"gpt-2", "gpt2"},      {"bert-bge", "bert"},  {"falcon", "gpt2"}, {"starcoder", "gpt2"}};
  int checked = 0;
  for (const auto& path : test::gguf_files_under(data / "vocab")) {
    SCOPED_TRACE(path.string());
    const GgufFile f = GgufFile::open(path.string());
    const std::string name = path.stem().string().substr(std::string("ggml-vocab-").size());
    if (auto it = expected_model.find(name); it != expected_model.end()) {
      EXPECT_EQ(f.get<std::string>("tokenizer.ggml.model"), it->second);
    }
    EXPECT_TRUE(f.tensors().empty());
    const size_t n_vocab = f.get_strings("tokenizer.ggml.tokens").size();
    // Every expected token id of the test vectors lies inside the vocabulary.
    std::ifstream out(path.string() + ".out");
    if (!out) continue;
    std::string line;
    int64_t max_id = -1;
    while (std::getline(out, line)) {
      std::istringstream ids(line);
      int64_t id;
      while (ids >> id) max_id = std::max(max_id, id);
    }
    EXPECT_GE(max_id, 0);
    EXPECT_LT(max_id, static_cast<int64_t>(n_vocab));
    ++checked;
  }
  EXPECT_GE(checked, 10);
  const GgufFile spm = GgufFile::open((data / "vocab/ggml-vocab-llama-spm.gguf").string());
  EXPECT_EQ(spm.get_strings("tokenizer.ggml.tokens").size(), 32000u);
  EXPECT_EQ(spm.get_strings("tokenizer.ggml.tokens")[1], "<s>");
  EXPECT_EQ(spm.get<uint32_t>("tokenizer.ggml.bos_token_id"), 1u);
  const GgufFile gpt2 = GgufFile::open((data / "vocab/ggml-vocab-gpt-2.gguf").string());
  EXPECT_EQ(gpt2.get_strings("tokenizer.ggml.tokens").size(), 50257u);
  EXPECT_EQ(gpt2.get_strings("tokenizer.ggml.merges").size(), 50000u);
  const GgufFile bert = GgufFile::open((data / "vocab/ggml-vocab-bert-bge.gguf").string());
  EXPECT_EQ(bert.get_strings("tokenizer.ggml.tokens").size(), 30522u);
}

// Facts from ../shared/data/README.md: Llama-2 arch, dim 64, 5 layers, 8 heads / 4 KV heads,
// hidden 172, vocab 512, context_length 128 as stored by the converter.
TEST(GgufRealFiles, Stories260KHyperParameters) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  for (const char* file :
       {"stories260K.gguf", "stories260K-F16.gguf", "stories260K-Q8_0.gguf", "stories260K-Q4_0.gguf"}) {
    SCOPED_TRACE(file);
    const GgufFile f = GgufFile::open((data / "models/stories260K" / file).string());
    EXPECT_EQ(f.get<std::string>("general.architecture"), "llama");
    EXPECT_EQ(f.get<uint32_t>("llama.embedding_length"), 64u);
    EXPECT_EQ(f.get<uint32_t>("llama.block_count"), 5u);
    EXPECT_EQ(f.get<uint32_t>("llama.attention.head_count"), 8u);
    EXPECT_EQ(f.get<uint32_t>("llama.attention.head_count_kv"), 4u);
    EXPECT_EQ(f.get<uint32_t>("llama.feed_forward_length"), 172u);
    EXPECT_EQ(f.get<uint32_t>("llama.context_length"), 128u);
    EXPECT_EQ(f.get_strings("tokenizer.ggml.tokens").size(), 512u);
    EXPECT_EQ(f.get<std::string>("tokenizer.ggml.model"), "llama");
    const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
    ASSERT_NE(embd, nullptr);
    EXPECT_EQ(embd->n_dims, 2);
    EXPECT_EQ(embd->ne[0], 64);
    EXPECT_EQ(embd->ne[1], 512);
    const GgufTensorInfo* down = f.find_tensor("blk.4.ffn_down.weight");
    ASSERT_NE(down, nullptr);
    EXPECT_EQ(down->ne[0], 172);
    EXPECT_EQ(down->dtype, std::string(file) == "stories260K-F16.gguf" ? DType::kF16 : DType::kF32);
    EXPECT_NE(f.find_tensor("output.weight"), nullptr);  // the converter writes an untied output
    EXPECT_EQ(f.tensors().size(), 3u + 5u * 9u);         // embd, output_norm, output + 9 per layer
  }
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Tensor infos and raw data bytes against the llama.cpp-side records in quant/*.expected.json.
TEST(GgufRealFiles, QuantFilesMatchExpectedTensorData) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  int files = 0;
  for (const auto& path : test::gguf_files_under(data / "quant")) {
    const fs::path json_path = path.string() + ".expected.json";
    if (!fs::exists(json_path)) continue;
    SCOPED_TRACE(path.string());
    const auto expected = nlohmann::json::parse(read_text(json_path));
    const GgufFile f = GgufFile::open(path.string());
    EXPECT_EQ(f.file_size(), expected["file_size"].get<uint64_t>());
    EXPECT_EQ(test::sha256_hex(f.bytes()), expected["file_sha256"].get<std::string>());
    const auto& tensors = expected["tensors"];
    ASSERT_EQ(f.tensors().size(), tensors.size());
    ASSERT_EQ(f.tensors().size(), expected["n_tensors"].get<size_t>());
    uint64_t n_elements = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const GgufTensorInfo& t = f.tensors()[i];
      const auto& e = tensors[i];
      EXPECT_EQ(t.name, e["name"].get<std::string>());
      EXPECT_EQ(static_cast<uint32_t>(t.dtype), e["type_id"].get<uint32_t>()) << t.name;
      EXPECT_EQ(dtype_name(t.dtype), e["type"].get<std::string>()) << t.name;
      EXPECT_EQ(std::vector<int64_t>(t.shape().begin(), t.shape().end()), e["shape"].get<std::vector<int64_t>>());
      EXPECT_EQ(t.n_elements, e["n_elements"].get<uint64_t>());
      EXPECT_EQ(f.data_offset() + t.offset, e["gguf_data_offset"].get<uint64_t>()) << t.name;
      EXPECT_EQ(t.n_bytes, e["raw_nbytes"].get<uint64_t>()) << t.name;
      EXPECT_EQ(test::sha256_hex({f.tensor_data(t), t.n_bytes}), e["raw_sha256"].get<std::string>()) << t.name;
      n_elements += t.n_elements;
    }
    EXPECT_EQ(n_elements, expected["n_elements"].get<uint64_t>());
    ++files;
  }
  EXPECT_EQ(files, 36);
}

TEST(Sha256, StandardVectors) {
  auto hex = [](std::string_view s) { return test::sha256_hex(std::as_bytes(std::span(s.data(), s.size()))); };
  EXPECT_EQ(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

}  // namespace
}  // namespace ember
