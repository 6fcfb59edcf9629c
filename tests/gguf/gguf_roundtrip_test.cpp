// GgufWriter -> GgufFile round trips for every value type, nested arrays, tensors and alignments.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cmath>
#include <limits>
#include <random>

#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "support/test_data.h"

namespace ember {
namespace {

template <typename T>
std::vector<T> random_values(size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i) {  // index loop: std::vector<bool> has no bool&
    if constexpr (std::is_same_v<T, bool>)
      v[i] = rng() & 1;
    else if constexpr (std::is_floating_point_v<T>)
      v[i] = static_cast<T>(std::normal_distribution<double>(0, 1e3)(rng));
    else
      v[i] = static_cast<T>(rng());
  }
  return v;
}

template <typename T>
void add_scalar_and_array(GgufWriter& w, const std::string& name, unsigned seed) {
  const auto values = random_values<T>(37, seed);
  w.add<T>("scalar." + name, values[0]);
  if constexpr (std::is_same_v<T, bool>) {
    // std::vector<bool> has no contiguous storage.
    std::unique_ptr<bool[]> arr(new bool[values.size()]);
    for (size_t i = 0; i < values.size(); ++i) arr[i] = values[i];
    w.add_array<bool>("array." + name, std::span<const bool>(arr.get(), values.size()));
  } else {
    w.add_array<T>("array." + name, values);
  }
  w.add_array<T>("empty." + name, std::span<const T>());
}

template <typename T>
void check_scalar_and_array(const GgufFile& f, const std::string& name, unsigned seed) {
  const auto values = random_values<T>(37, seed);
  EXPECT_EQ(f.get<T>("scalar." + name), values[0]) << name;
  EXPECT_EQ(f.find("scalar." + name)->type(), gguf_type_of<T>());
  const GgufArrayView<T> arr = f.get_array<T>("array." + name);
  ASSERT_EQ(arr.size(), values.size()) << name;
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(arr[i], values[i]) << name << "[" << i << "]";
  EXPECT_EQ(arr.to_vector().size(), values.size());
  EXPECT_TRUE(f.get_array<T>("empty." + name).empty());
}

GgufWriter make_writer(uint32_t alignment) {
  GgufWriter w(alignment);
  add_scalar_and_array<uint8_t>(w, "u8", 1);
  add_scalar_and_array<int8_t>(w, "i8", 2);
  add_scalar_and_array<uint16_t>(w, "u16", 3);
  add_scalar_and_array<int16_t>(w, "i16", 4);
  add_scalar_and_array<uint32_t>(w, "u32", 5);
  add_scalar_and_array<int32_t>(w, "i32", 6);
  add_scalar_and_array<float>(w, "f32", 7);
  add_scalar_and_array<bool>(w, "bool", 8);
  add_scalar_and_array<uint64_t>(w, "u64", 9);
  add_scalar_and_array<int64_t>(w, "i64", 10);
  add_scalar_and_array<double>(w, "f64", 11);
  w.add_string("scalar.string", "Grüße, 世界 🌍\n\t\"quoted\"");
  w.add_string("scalar.empty_string", "");
  const std::vector<std::string> strings = {"", "a", "\xE2\x96\x81hello", std::string(1000, 'x'), "\xF0\x9F\x98\x80"};
  w.add_string_array("array.string", strings);
  // Arrays of arrays, three levels deep, mixing element types.
  const std::vector<int32_t> a = {1, 2, 3}, b = {-4};
  const std::vector<float> c = {0.5f, std::numeric_limits<float>::infinity()};
  const GgufArrayValue level2[] = {GgufArrayValue::of(std::span<const int32_t>(a)),
                                   GgufArrayValue::of(std::span<const int32_t>(b))};
  const GgufArrayValue level1[] = {GgufArrayValue::of_arrays(level2), GgufArrayValue::of(std::span<const float>(c)),
                                   GgufArrayValue::of_strings(strings), GgufArrayValue::of_arrays({})};
  w.add_array("array.nested", GgufArrayValue::of_arrays(level1));
  return w;
}

void check_metadata(const GgufFile& f) {
  check_scalar_and_array<uint8_t>(f, "u8", 1);
  check_scalar_and_array<int8_t>(f, "i8", 2);
  check_scalar_and_array<uint16_t>(f, "u16", 3);
  check_scalar_and_array<int16_t>(f, "i16", 4);
  check_scalar_and_array<uint32_t>(f, "u32", 5);
  check_scalar_and_array<int32_t>(f, "i32", 6);
  check_scalar_and_array<float>(f, "f32", 7);
  check_scalar_and_array<bool>(f, "bool", 8);
  check_scalar_and_array<uint64_t>(f, "u64", 9);
  check_scalar_and_array<int64_t>(f, "i64", 10);
  check_scalar_and_array<double>(f, "f64", 11);
  EXPECT_EQ(f.get<std::string>("scalar.string"), "Grüße, 世界 🌍\n\t\"quoted\"");
  EXPECT_EQ(f.get<std::string_view>("scalar.empty_string"), "");
  const auto strings = f.get_strings("array.string");
  ASSERT_EQ(strings.size(), 5u);
  EXPECT_EQ(strings[2], "\xE2\x96\x81hello");
  EXPECT_EQ(strings[3], std::string(1000, 'x'));

  const GgufValue* nested = f.find("array.nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->array_type(), GgufType::kArray);
  ASSERT_EQ(nested->items().size(), 4u);
  const GgufValue& l2 = nested->items()[0];
  ASSERT_EQ(l2.array_type(), GgufType::kArray);
  ASSERT_EQ(l2.items().size(), 2u);
  EXPECT_EQ(l2.items()[0].numbers<int32_t>().to_vector(), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(l2.items()[1].numbers<int32_t>()[0], -4);
  EXPECT_EQ(nested->items()[1].array_type(), GgufType::kFloat32);
  EXPECT_TRUE(std::isinf(nested->items()[1].numbers<float>()[1]));
  EXPECT_EQ(nested->items()[2].strings()[4], "\xF0\x9F\x98\x80");
  EXPECT_EQ(nested->items()[3].array_size(), 0u);
}

TEST(GgufRoundTrip, EveryValueTypeAndAlignment) {
  for (uint32_t alignment : {1u, 8u, 32u, 64u, 4096u}) {
    SCOPED_TRACE(alignment);
    GgufWriter w = make_writer(alignment);
    // Tensors of several types with random (non-zero) bytes, odd shapes, all four ranks.
    struct Spec {
      std::string name;
      DType dtype;
      std::vector<int64_t> shape;
    };
    const std::vector<Spec> specs = {{"f32", DType::kF32, {7, 3}},         {"f16", DType::kF16, {5}},
                                     {"q4_0", DType::kQ4_0, {64, 3, 2}},   {"q4_k", DType::kQ4_K, {256, 1, 1, 3}},
                                     {"bf16", DType::kBF16, {1, 1, 1, 1}}, {"i8", DType::kI8, {13}}};
    std::vector<std::vector<std::byte>> datas;
    for (const Spec& s : specs) {
      int64_t n = 1;
      for (int64_t d : s.shape) n *= d;
      std::vector<std::byte> data(*dtype_bytes_for(s.dtype, static_cast<uint64_t>(n)));
      std::mt19937 rng(static_cast<unsigned>(data.size()));
      for (auto& byte : data) byte = static_cast<std::byte>(rng());
      w.add_tensor(s.name, s.dtype, s.shape, data);
      datas.push_back(std::move(data));
    }
    const auto bytes = w.write_to_memory();
    const GgufFile f = GgufFile::parse(bytes, "mem.gguf");
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.alignment(), alignment);
    EXPECT_EQ(f.data_offset() % alignment, 0u);
    check_metadata(f);
    ASSERT_EQ(f.tensors().size(), specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      const GgufTensorInfo& t = f.tensors()[i];
      EXPECT_EQ(t.name, specs[i].name);
      EXPECT_EQ(t.dtype, specs[i].dtype);
      EXPECT_EQ(std::vector<int64_t>(t.shape().begin(), t.shape().end()), specs[i].shape);
      EXPECT_EQ(t.n_bytes, datas[i].size());
      EXPECT_EQ(std::memcmp(f.tensor_data(t), datas[i].data(), datas[i].size()), 0) << t.name;
      const TensorView view = f.tensor_view(t);
      EXPECT_EQ(view.n_bytes(), datas[i].size());
      EXPECT_EQ(view.name(), specs[i].name);
      EXPECT_EQ(f.find_tensor(specs[i].name), &t);
    }
    EXPECT_EQ(f.find_tensor("missing"), nullptr);
  }
}

TEST(GgufRoundTrip, FileOnDiskMatchesMemory) {
  const auto dir = test::temp_dir("gguf_roundtrip_file");
  GgufWriter w = make_writer(32);
  const float values[] = {1.f, -2.f, 3.5f};
  const int64_t shape[] = {3};
  w.add_tensor("t", DType::kF32, shape, std::as_bytes(std::span(values)));
  const std::string path = (dir / "m.gguf").string();
  w.write_file(path);
  // Only the final file remains: the temporary was renamed, not left beside it.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()), 1);
  // The mode open(path, 0666) would give under this process's umask (mkstemp alone gives 0600).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(static_cast<mode_t>(std::filesystem::status(path).permissions()), 0666 & ~mask);
  const GgufFile f = GgufFile::open(path);
  check_metadata(f);
  EXPECT_EQ(f.file_size(), w.write_to_memory().size());
  EXPECT_EQ(f.tensor_view(f.tensors()[0]).data_as<float>()[2], 3.5f);
}

TEST(GgufRoundTrip, TypedGettersConvertAndReject) {
  GgufWriter w;
  w.add<uint8_t>("small", 7);
  w.add<int32_t>("negative", -1);
  w.add<uint64_t>("big", uint64_t{1} << 40);
  w.add<float>("f", 0.25f);
  w.add_string("s", "text");
  const auto bytes = w.write_to_memory();
  const GgufFile f = GgufFile::parse(bytes, "getters.gguf");
  EXPECT_EQ(f.get<uint32_t>("small"), 7u);
  EXPECT_EQ(f.get<int64_t>("negative"), -1);
  EXPECT_EQ(f.get<double>("f"), 0.25);
  EXPECT_EQ(f.get_or<uint32_t>("absent", 42u), 42u);
  EXPECT_EQ(f.get_optional<int>("absent"), std::nullopt);
  auto expect_error = [&](auto fn, ErrorCode code, std::string_view fragment) {
    try {
      fn();
      ADD_FAILURE() << "no error for " << fragment;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("getters.gguf"), std::string::npos) << e.what();
    }
  };
  expect_error([&] { f.get<uint32_t>("absent"); }, ErrorCode::kNotFound, "missing key 'absent'");
  expect_error([&] { f.get<uint32_t>("negative"); }, ErrorCode::kTypeMismatch, "key 'negative' has type int32");
  expect_error([&] { f.get<uint32_t>("big"); }, ErrorCode::kTypeMismatch, "key 'big'");
  expect_error([&] { f.get<float>("small"); }, ErrorCode::kTypeMismatch, "expected float32 or float64");
  expect_error([&] { f.get<std::string>("f"); }, ErrorCode::kTypeMismatch, "expected string");
  expect_error([&] { f.get<bool>("s"); }, ErrorCode::kTypeMismatch, "expected bool");
  expect_error([&] { f.get_array<int32_t>("small"); }, ErrorCode::kTypeMismatch, "expected array of int32");
  expect_error([&] { f.get_strings("s"); }, ErrorCode::kTypeMismatch, "expected array of string");
}

// Runs `fn` expecting ember::Error(kInvalidArgument) whose message contains `fragment`.
template <typename Fn>
void expect_invalid(Fn fn, std::string_view fragment) {
  try {
    fn();
    ADD_FAILURE() << "no error for " << fragment;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(GgufRoundTrip, WriterRejectsBadInput) {
  expect_invalid([] { GgufWriter w(24); }, "power of two");
  expect_invalid(
      [] {
        GgufWriter w;
        w.add<uint32_t>("k", 1);
        w.add_string("k", "x");
      },
      "duplicate");
  std::vector<std::byte> data(36);
  const int64_t good[] = {64}, odd[] = {33}, zero[] = {0}, five[] = {1, 1, 1, 1, 1};
  expect_invalid(
      [&] {
        GgufWriter w;
        w.add_tensor("t", DType::kQ4_0, odd, data);
      },
      "block size");
  expect_invalid(
      [&] {
        GgufWriter w;
        w.add_tensor("t", DType::kQ4_0, zero, data);
      },
      "invalid shape");
  expect_invalid(
      [&] {
        GgufWriter w;
        w.add_tensor("t", DType::kF32, five, data);
      },
      "5 dimensions");
  expect_invalid(
      [&] {
        GgufWriter w;
        w.add_tensor("t", DType::kF32, good, data);
      },
      "36 data bytes given, 256");
  expect_invalid(
      [&] {
        GgufWriter w;
        w.add_tensor("t", DType::kQ4_0, good, data);
        w.add_tensor("t", DType::kQ4_0, good, data);
      },
      "duplicate tensor");
  expect_invalid(
      [&] {
        GgufWriter w;
        w.add_tensor("", DType::kQ4_0, good, data);
      },
      "empty");
}

// The writer refuses what its reader would reject, so it never produces an unreadable file.
TEST(GgufRoundTrip, WriterRefusesWhatTheReaderRejects) {
  expect_invalid([] { GgufWriter(64).add<uint32_t>("general.alignment", 64); }, "constructor");
  expect_invalid([] { GgufWriter().add<uint16_t>("general.alignment", 64); }, "constructor");
  expect_invalid([] { GgufWriter().add<uint32_t>("bad\xC0key", 1); }, "not valid UTF-8");
  expect_invalid([] { GgufWriter().add_string("k", "\xED\xA0\x80"); }, "not valid UTF-8");
  const std::vector<std::string> bad = {"ok", "\xFF"};
  expect_invalid([&] { GgufArrayValue::of_strings(bad); }, "not valid UTF-8");
  const float v[] = {1.f};
  const int64_t shape[] = {1};
  expect_invalid([&] { GgufWriter().add_tensor("t\x80", DType::kF32, shape, std::as_bytes(std::span(v))); },
                 "not valid UTF-8");
  // 16 levels of arrays are the reader's limit: written and read back; 17 are refused.
  const std::vector<int32_t> leaf = {7};
  GgufArrayValue nested = GgufArrayValue::of(std::span<const int32_t>(leaf));
  for (int level = 2; level <= 16; ++level) nested = GgufArrayValue::of_arrays(std::span(&nested, 1));
  GgufWriter w;
  w.add_array("deep", nested);
  const auto bytes = w.write_to_memory();
  const GgufFile f = GgufFile::parse(bytes, "deep.gguf");
  const GgufValue* value = f.find("deep");
  for (int level = 1; level < 16; ++level) value = &value->items()[0];
  EXPECT_EQ(value->numbers<int32_t>()[0], 7);
  expect_invalid([&] { GgufArrayValue::of_arrays(std::span(&nested, 1)); }, "nested deeper than 16");
}

// Small file alignments still place each tensor at its type's alignment (names of odd lengths
// shift the header by arbitrary amounts).
TEST(GgufRoundTrip, SmallAlignmentsKeepTypeAlignment) {
  for (uint32_t alignment : {1u, 2u, 4u}) {
    for (const std::string& key : {std::string("k"), std::string("key5x"), std::string("odd-length-key")}) {
      SCOPED_TRACE(fmt::format("alignment {} key {}", alignment, key));
      GgufWriter w(alignment);
      w.add_string(key, "v");
      const double f64[] = {1.5, -2.25, 3.0};
      const float f32[] = {0.5f, 7.0f};
      const int8_t i8[] = {1, 2, 3};
      const int64_t three[] = {3}, two[] = {2};
      w.add_tensor("a", DType::kI8, three, std::as_bytes(std::span(i8)));
      w.add_tensor("bb", DType::kF64, three, std::as_bytes(std::span(f64)));
      w.add_tensor("ccc", DType::kI8, three, std::as_bytes(std::span(i8)));
      w.add_tensor("d", DType::kF32, two, std::as_bytes(std::span(f32)));
      const auto bytes = w.write_to_memory();
      const GgufFile f = GgufFile::parse(bytes, "small-align.gguf");
      EXPECT_EQ(f.tensor_view(*f.find_tensor("bb")).data_as<double>()[2], 3.0);
      EXPECT_EQ(f.tensor_view(*f.find_tensor("d")).data_as<float>()[1], 7.0f);
      EXPECT_EQ(f.tensor_view(*f.find_tensor("ccc")).data_as<int8_t>()[2], 3);
    }
  }
}

TEST(GgufRoundTrip, WriterRejectsInvalidRawValues) {
  expect_invalid([] { GgufWriter().add_raw_scalar("b", GgufType::kBool, 2); }, "bool value 2");
  expect_invalid([] { GgufWriter().add_raw_scalar("u", GgufType::kUint8, 256); }, "does not fit");
  const std::byte two[] = {std::byte{1}, std::byte{2}};
  expect_invalid([&] { GgufArrayValue::of_raw(GgufType::kBool, 2, two); }, "value > 1");
  expect_invalid([&] { GgufArrayValue::of_raw(GgufType::kUint16, 2, two); }, "do not hold 2 elements");
}

TEST(GgufRoundTrip, WriteFileFailureNamesThePath) {
  GgufWriter w;
  try {
    w.write_file("/nonexistent-dir/x.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.gguf"), std::string::npos);
  }
}

}  // namespace
}  // namespace ember
