// Malformed GGUF input: every defect yields ember::Error with a precise message, never a crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "gguf/raw_gguf.h"
#include "support/test_data.h"

namespace ember {
namespace {

using test::RawGguf;

constexpr uint32_t kTypeU32 = 4, kTypeBool = 7, kTypeString = 8, kTypeArray = 9;
constexpr uint32_t kF32 = 0, kQ4_0 = 2;

// Parses `bytes` expecting an Error whose message contains `fragment`.
void expect_error(std::span<const std::byte> bytes, std::string_view fragment, ErrorCode code = ErrorCode::kFormat) {
  try {
    GgufFile::parse(bytes, "bad.gguf");
    ADD_FAILURE() << "parsed; expected an error containing '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << "message: " << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.gguf"), std::string::npos) << "message must name the file: " << e.what();
  }
}

// A valid file exercising every value type, nested arrays and two tensors (for truncation).
std::vector<std::byte> valid_file() {
  GgufWriter w;
  w.add<uint8_t>("a.u8", 200);
  w.add<int8_t>("a.i8", -5);
  w.add<uint16_t>("a.u16", 60000);
  w.add<int16_t>("a.i16", -30000);
  w.add<uint32_t>("a.u32", 4000000000u);
  w.add<int32_t>("a.i32", -2000000000);
  w.add<float>("a.f32", 1.5f);
  w.add<bool>("a.bool", true);
  w.add_string("a.str", "h\xC3\xA9llo");
  w.add<uint64_t>("a.u64", 1ULL << 60);
  w.add<int64_t>("a.i64", -(1LL << 60));
  w.add<double>("a.f64", -2.25);
  const std::vector<std::string> tokens = {"<s>", "\xE2\x96\x81the", ""};
  w.add_string_array("a.tokens", tokens);
  const std::vector<int32_t> ints = {1, -2, 3};
  const GgufArrayValue inner[] = {GgufArrayValue::of(std::span<const int32_t>(ints)),
                                  GgufArrayValue::of_strings(tokens)};
  w.add_array("a.nested", GgufArrayValue::of_arrays(inner));
  std::vector<std::byte> data(2 * 18 * 3);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 13 + 1);
  const int64_t shape_q[] = {64, 3};
  w.add_tensor("blk.0.w", DType::kQ4_0, shape_q, data);
  const int64_t shape_f[] = {5};
  w.add_tensor("blk.0.b", DType::kF32, shape_f, std::span(data).first(20));
  return w.write_to_memory();
}

TEST(GgufMalformed, ValidFileParses) {
  const auto bytes = valid_file();
  const GgufFile f = GgufFile::parse(bytes, "ok.gguf");
  EXPECT_EQ(f.metadata().size(), 14u);
  EXPECT_EQ(f.tensors().size(), 2u);
}

// Every prefix of a valid file fails cleanly, except prefixes that still hold all tensor data
// (only trailing padding was cut), which must parse.
TEST(GgufMalformed, TruncatedAtEveryOffset) {
  const auto bytes = valid_file();
  const GgufFile full = GgufFile::parse(bytes, "ok.gguf");
  uint64_t data_end = 0;
  for (const auto& t : full.tensors()) data_end = std::max(data_end, full.data_offset() + t.offset + t.n_bytes);
  for (size_t n = 0; n < bytes.size(); ++n) {
    // A copy of exactly n bytes so ASan sees any read past the end.
    std::vector<std::byte> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    if (n >= data_end) {
      EXPECT_NO_THROW(GgufFile::parse(prefix, "cut.gguf")) << "prefix " << n;
      continue;
    }
    try {
      GgufFile::parse(prefix, "cut.gguf");
      ADD_FAILURE() << "prefix of " << n << " bytes parsed";
    } catch (const Error& e) {
      EXPECT_TRUE(e.code() == ErrorCode::kFormat) << e.what();
    }
  }
}

TEST(GgufMalformed, BadMagicAndVersion) {
  expect_error(RawGguf().bytes("GGUX").u32(3).u64(0).u64(0).span(), "not a GGUF file");
  expect_error(RawGguf().bytes("GG").span(), "too small");
  expect_error(RawGguf().header(0, 0, 1).span(), "version 1", ErrorCode::kUnsupported);
  expect_error(RawGguf().header(0, 0, 4).span(), "unsupported GGUF version 4", ErrorCode::kUnsupported);
  expect_error(RawGguf().header(0, 0, 0x03000000).span(), "big-endian", ErrorCode::kUnsupported);
  EXPECT_NO_THROW(GgufFile::parse(RawGguf().header(0, 0, 2).span(), "v2.gguf"));
}

TEST(GgufMalformed, AbsurdCountsFailBeforeAllocating) {
  expect_error(RawGguf().header(0, uint64_t{1} << 60).span(), "more than the");
  expect_error(RawGguf().header(uint64_t{1} << 60, 0).span(), "more than the");
  expect_error(RawGguf().header(~uint64_t{0}, ~uint64_t{0}).span(), "more than the");
  expect_error(RawGguf().header(0, 1).kv("k", kTypeArray).u32(kTypeU32).u64(uint64_t{1} << 61).data(64).span(),
               "claims 2305843009213693952 elements");
  expect_error(RawGguf().header(0, 1).kv("k", kTypeArray).u32(kTypeString).u64(1000).data(64).span(),
               "claims 1000 elements");
  expect_error(RawGguf().header(0, 1).kv("k", kTypeString).u64(uint64_t{1} << 62).data(16).span(), "truncated");
  expect_error(RawGguf().header(0, 1).u64(~uint64_t{0}).data(16).span(), "truncated");
}

TEST(GgufMalformed, BadValues) {
  expect_error(RawGguf().header(0, 1).kv("k", 13).u32(0).span(), "unknown value type 13");
  expect_error(RawGguf().header(0, 1).kv("k", kTypeArray).u32(99).u64(0).span(), "unknown value type 99");
  expect_error(RawGguf().header(0, 1).kv("k", kTypeBool).u8(2).span(), "bool value 2");
  expect_error(RawGguf().header(0, 1).kv("k", kTypeArray).u32(kTypeBool).u64(2).u8(1).u8(7).span(), "not 0 or 1");
  expect_error(RawGguf().header(0, 1).kv("", kTypeU32).u32(0).span(), "empty key");
  expect_error(RawGguf().header(0, 2).kv_u32("k", 1).kv_u32("k", 2).span(), "duplicate key 'k'");
  RawGguf deep;
  deep.header(0, 1).kv("deep", kTypeArray);
  for (int i = 0; i < 40; ++i) deep.u32(kTypeArray).u64(1);
  deep.u32(kTypeU32).u64(0);
  expect_error(deep.span(), "nests arrays deeper");
  // Exactly at the limit: 16 levels of arrays parse, 17 do not.
  auto nested = [](int levels) {
    RawGguf f;
    f.header(0, 1).kv("deep", kTypeArray);
    for (int i = 1; i < levels; ++i) f.u32(kTypeArray).u64(1);
    f.u32(kTypeU32).u64(0);
    return f;
  };
  EXPECT_NO_THROW(GgufFile::parse(nested(16).span(), "sixteen.gguf"));
  expect_error(nested(17).span(), "nests arrays deeper than 16");
}

TEST(GgufMalformed, ParseNeedsAnAlignedBuffer) {
  const auto bytes = valid_file();
  std::vector<std::byte> shifted(bytes.size() + 1);
  std::copy(bytes.begin(), bytes.end(), shifted.begin() + 1);
  expect_error(std::span(shifted).subspan(1), "8-byte aligned", ErrorCode::kInvalidArgument);
}

TEST(GgufMalformed, InvalidUtf8) {
  expect_error(RawGguf().header(0, 1).kv("k\xC0\xAF", kTypeU32).u32(0).span(), "not valid UTF-8");
  expect_error(RawGguf().header(0, 1).kv_str("k", "ok\xED\xA0\x80").span(), "not valid UTF-8");
  expect_error(RawGguf().header(0, 1).kv("k", kTypeArray).u32(kTypeString).u64(2).str("a").str("\xFF").span(),
               "element 1 of key 'k'");
  expect_error(RawGguf().header(1, 0).tensor("t\x80", {4}, kF32, 0).pad().data(16).span(), "not valid UTF-8");
}

TEST(GgufMalformed, BadAlignment) {
  expect_error(RawGguf().header(0, 1).kv_u32("general.alignment", 0).span(), "power of two");
  expect_error(RawGguf().header(0, 1).kv_u32("general.alignment", 48).span(), "power of two");
  expect_error(RawGguf().header(0, 1).kv_str("general.alignment", "32").span(), "expected uint32");
}

TEST(GgufMalformed, BadTensorInfos) {
  auto one = [](std::initializer_list<uint64_t> dims, uint32_t type, uint64_t offset = 0, size_t data = 64) {
    return RawGguf().header(1, 0).tensor("t", dims, type, offset).pad().data(data);
  };
  expect_error(one({1, 1, 1, 1, 1}, kF32).span(), "5 dimensions, expected 0 to 4");
  expect_error(one({4, 0}, kF32).span(), "invalid dimension 1 = 0");
  expect_error(one({static_cast<uint64_t>(-3)}, kF32).span(), "invalid dimension 0 = -3");
  expect_error(one({uint64_t{1} << 32, uint64_t{1} << 32}, kF32).span(), "overflows");
  expect_error(one({uint64_t{1} << 62, 2}, kF32).span(), "overflows");
  expect_error(one({4}, 4).span(), "unknown type id 4");
  expect_error(one({4}, 1000).span(), "unknown type id 1000");
  expect_error(one({33}, kQ4_0).span(), "not a multiple of the block size 32");
  expect_error(one({uint64_t{1} << 62}, 28 /* f64 */).span(), "byte size overflows");
  expect_error(one({uint64_t{1} << 61}, kF32).span(), "outside the data section");
  expect_error(one({4}, kF32, 8).span(), "not a multiple of the alignment");
  expect_error(one({4}, kF32, 64).span(), "outside the data section");
  expect_error(one({64}, kF32, 0, 200).span(), "outside the data section");
  expect_error(one({4}, kF32, ~uint64_t{0} - 31).span(), "outside the data section");  // offset + size wraps
  expect_error(one({4}, kF32, uint64_t{1} << 63).span(), "outside the data section");
  expect_error(RawGguf().header(1, 0).tensor("", {4}, kF32, 0).pad().data(16).span(), "empty name");
  expect_error(RawGguf().header(2, 0).tensor("t", {4}, kF32, 0).tensor("t", {4}, kF32, 32).pad().data(64).span(),
               "duplicate tensor name 't'");
  expect_error(RawGguf().header(2, 0).tensor("a", {16}, kF32, 0).tensor("b", {4}, kF32, 32).pad().data(96).span(),
               "overlaps");
  // The data section itself must start inside the file.
  expect_error(RawGguf().header(1, 0).tensor("t", {4}, kF32, 0).span(), "data section would start");
}

TEST(GgufMalformed, ScalarsAndSmallAlignmentsParse) {
  // A 0-dim tensor is a scalar of one element, as llama.cpp and gguf-py allow.
  const auto scalar = RawGguf().header(1, 0).tensor("s", {}, kF32, 0).pad().data(4);
  const GgufFile s = GgufFile::parse(scalar.span(), "scalar.gguf");
  EXPECT_EQ(s.tensors()[0].n_dims, 0);
  EXPECT_EQ(s.tensors()[0].n_elements, 1u);
  EXPECT_EQ(s.tensor_view(s.tensors()[0]).n_elements(), 1);
  // Alignment 1: tensors may start at any offset that suits their type, and be adjacent.
  // 24 header + 33 key + 34 + 33 tensor infos = 124: the data section starts 4-byte aligned.
  const auto f = RawGguf()
                     .header(2, 1)
                     .kv_u32("general.alignment", 1)
                     .tensor("aa", {3}, kF32, 0)
                     .tensor("b", {1}, kF32, 12)
                     .data(16);
  ASSERT_EQ(f.size(), 124u + 16u);
  const GgufFile file = GgufFile::parse(f.span(), "align1.gguf");
  EXPECT_EQ(file.alignment(), 1u);
  EXPECT_EQ(file.data_offset(), 124u);
  EXPECT_EQ(file.tensors()[1].offset, 12u);
}

TEST(GgufMalformed, DataMisalignedForItsTypeIsRejected) {
  // As above with a 1-character name: the f32 data would start at file offset 123.
  const auto f = RawGguf()
                     .header(2, 1)
                     .kv_u32("general.alignment", 1)
                     .tensor("a", {3}, kF32, 0)
                     .tensor("b", {1}, kF32, 12)
                     .data(16);
  expect_error(f.span(), "not 4-byte aligned as type f32 requires", ErrorCode::kUnsupported);
}

// Inputs the fuzzer once found to crash or hang stay fixed.
TEST(GgufMalformed, FuzzRegressions) {
  const auto dir = std::filesystem::path(EMBER_SOURCE_DIR) / "fuzz" / "regressions";
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    // Other targets' inputs live in subdirectories (fuzz/regressions/chat_template).
    if (!entry.is_regular_file() || entry.path().filename() == "README.md") continue;
    ++n;
    std::ifstream in(entry.path(), std::ios::binary);
    std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    try {
      GgufFile::parse(std::as_bytes(std::span(chars)), entry.path().string());
    } catch (const Error&) {
      // Rejecting is fine; crashing (under ASan in CI) is what this guards against.
    }
  }
  EXPECT_GE(n, 2) << "the regression inputs in fuzz/regressions are missing";
}

}  // namespace
}  // namespace ember
