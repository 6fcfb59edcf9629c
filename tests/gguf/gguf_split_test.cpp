// Split GGUF models (-0000K-of-0000N.gguf) open as one set of tensors; broken sets fail clearly.
#include <gtest/gtest.h>

#include "gguf/gguf_split.h"
#include "gguf/gguf_writer.h"
#include "support/test_data.h"

namespace ember {
namespace {

struct PartSpec {
  int split_no;
  int split_count;
  std::vector<std::string> tensors;
  int tensors_count_key = 4;  // split.tensors.count written in part 0
};

void write_part(const std::string& path, const PartSpec& spec) {
  GgufWriter w;
  if (spec.split_no == 0) {
    w.add_string("general.architecture", "llama");
    w.add<int32_t>(std::string(kSplitTensorsCountKey), spec.tensors_count_key);
  }
  w.add<uint16_t>(std::string(kSplitNoKey), static_cast<uint16_t>(spec.split_no));
  w.add<uint16_t>(std::string(kSplitCountKey), static_cast<uint16_t>(spec.split_count));
  for (size_t i = 0; i < spec.tensors.size(); ++i) {
    std::vector<float> values(8);
    for (size_t k = 0; k < values.size(); ++k) values[k] = static_cast<float>(spec.split_no * 100 + i * 10 + k) + 0.5f;
    const int64_t shape[] = {8};
    w.add_tensor(spec.tensors[i], DType::kF32, shape, std::as_bytes(std::span(values)));
  }
  w.write_file(path);
}

// Three parts holding a, b | c | d.
std::string write_model(const std::filesystem::path& dir, int tensors_count_key = 4) {
  const std::string prefix = (dir / "model").string();
  write_part(gguf_split_path(prefix, 0, 3), {0, 3, {"a", "b"}, tensors_count_key});
  write_part(gguf_split_path(prefix, 1, 3), {1, 3, {"c"}});
  write_part(gguf_split_path(prefix, 2, 3), {2, 3, {"d"}});
  return prefix;
}

void expect_open_error(const std::string& path, std::string_view fragment) {
  try {
    GgufModelFiles::open(path);
    ADD_FAILURE() << "opened " << path;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(GgufSplit, PathNaming) {
  EXPECT_EQ(gguf_split_path("dir/m", 0, 3), "dir/m-00001-of-00003.gguf");
  const auto parsed = parse_gguf_split_path("dir/m-00002-of-00003.gguf");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->prefix, "dir/m");
  EXPECT_EQ(parsed->index, 1);
  EXPECT_EQ(parsed->count, 3);
  for (const char* bad : {"m.gguf", "m-00004-of-00003.gguf", "m-00000-of-00003.gguf", "m-0001-of-00003.gguf",
                          "m-00001-of-00003.bin", "m-0000a-of-00003.gguf", ""}) {
    EXPECT_FALSE(parse_gguf_split_path(bad)) << bad;
  }
}

TEST(GgufSplit, AnyPartOpensTheWholeModel) {
  const auto dir = test::temp_dir("gguf_split_ok");
  const std::string prefix = write_model(dir);
  for (int part = 0; part < 3; ++part) {
    const GgufModelFiles m = GgufModelFiles::open(gguf_split_path(prefix, part, 3));
    ASSERT_EQ(m.n_files(), 3u);
    EXPECT_EQ(m.metadata_file().get<std::string>("general.architecture"), "llama");
    ASSERT_EQ(m.tensors().size(), 4u);
    const std::vector<std::string> names = {"a", "b", "c", "d"};
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(m.tensors()[i].info->name, names[i]);
    const auto* d = m.find_tensor("d");
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->file, &m.file(2));
    EXPECT_EQ(d->file->tensor_view(*d->info).data_as<float>()[3], 203.5f);
    EXPECT_EQ(m.find_tensor("e"), nullptr);
  }
}

TEST(GgufSplit, SingleFileIsAModelOfOnePart) {
  const auto dir = test::temp_dir("gguf_split_single");
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  const float v[] = {1.f};
  const int64_t shape[] = {1};
  w.add_tensor("x", DType::kF32, shape, std::as_bytes(std::span(v)));
  w.write_file((dir / "m.gguf").string());
  const GgufModelFiles m = GgufModelFiles::open((dir / "m.gguf").string());
  EXPECT_EQ(m.n_files(), 1u);
  EXPECT_EQ(m.tensors().size(), 1u);
  EXPECT_EQ(m.total_bytes(), std::filesystem::file_size(dir / "m.gguf"));
}

TEST(GgufSplit, BrokenSetsFail) {
  {
    const auto dir = test::temp_dir("gguf_split_missing");
    const std::string prefix = write_model(dir);
    std::filesystem::remove(gguf_split_path(prefix, 1, 3));
    expect_open_error(gguf_split_path(prefix, 0, 3), "model-00002-of-00003.gguf");
  }
  {
    const auto dir = test::temp_dir("gguf_split_count");
    const std::string prefix = write_model(dir, 5);
    expect_open_error(gguf_split_path(prefix, 0, 3), "split.tensors.count is 5 but the 3 parts hold 4 tensors");
  }
  {
    const auto dir = test::temp_dir("gguf_split_wrong_no");
    const std::string prefix = write_model(dir);
    write_part(gguf_split_path(prefix, 2, 3), {1, 3, {"d"}});  // claims to be part 2 of 3 (no = 1)
    expect_open_error(gguf_split_path(prefix, 0, 3), "expected split.no = 2");
  }
  {
    const auto dir = test::temp_dir("gguf_split_dup");
    const std::string prefix = write_model(dir);
    write_part(gguf_split_path(prefix, 2, 3), {2, 3, {"a"}});
    expect_open_error(gguf_split_path(prefix, 0, 3), "tensor 'a' appears in more than one split part");
  }
  {
    const auto dir = test::temp_dir("gguf_split_renamed");
    const std::string prefix = write_model(dir);
    std::filesystem::rename(gguf_split_path(prefix, 0, 3), dir / "renamed.gguf");
    expect_open_error((dir / "renamed.gguf").string(), "does not end in -NNNNN-of-00003.gguf");
  }
}

}  // namespace
}  // namespace ember
