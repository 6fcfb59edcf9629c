// Writes small valid GGUF seeds from real files: same keys and tensor names/types, arrays cut to a
// few items and tensors shrunk to one block, so the fuzzer mutates structure instead of weights.
#include <cstdio>
#include <filesystem>
#include <vector>

#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"

namespace {

constexpr size_t kMaxItems = 24;

ember::GgufArrayValue shrink_array(const ember::GgufValue& v) {
  using ember::GgufType;
  const size_t n = std::min<size_t>(v.array_size(), kMaxItems);
  switch (v.array_type()) {
    case GgufType::kString: return ember::GgufArrayValue::of_strings(v.strings().first(n));
    case GgufType::kArray: {
      std::vector<ember::GgufArrayValue> items;
      for (size_t i = 0; i < n; ++i) items.push_back(shrink_array(v.items()[i]));
      return ember::GgufArrayValue::of_arrays(items);
    }
    default: {
      // Re-encode the raw little-endian elements with the same element type.
      const size_t size = ember::gguf_scalar_size(v.array_type());
      const std::byte* raw = v.numbers<uint8_t>().raw();
      return ember::GgufArrayValue::of_raw(v.array_type(), n, std::span(raw, n * size));
    }
  }
}

void copy_value(ember::GgufWriter& w, std::string_view key, const ember::GgufValue& v) {
  using ember::GgufType;
  switch (v.type()) {
    case GgufType::kString: w.add_string(key, v.as_string()); return;
    case GgufType::kArray: w.add_array(key, shrink_array(v)); return;
    default: w.add_raw_scalar(key, v.type(), v.raw_scalar()); return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: gguf_make_seeds OUT_DIR FILE.gguf...\n");
    return 2;
  }
  const std::filesystem::path out_dir = argv[1];
  std::filesystem::create_directories(out_dir);
  for (int i = 2; i < argc; ++i) {
    try {
      const ember::GgufFile f = ember::GgufFile::open(argv[i]);
      const uint32_t alignment = f.alignment();
      ember::GgufWriter w(alignment);
      for (const auto& kv : f.metadata()) {
        if (kv.key != "general.alignment") copy_value(w, kv.key, kv.value);
      }
      size_t n_tensors = 0;
      for (const auto& t : f.tensors()) {
        if (++n_tensors > 8) break;
        const auto& traits = ember::dtype_traits(t.dtype);
        const int64_t shape[] = {static_cast<int64_t>(traits.block_size), 2};
        std::vector<std::byte> data(traits.block_bytes * 2);
        for (size_t k = 0; k < data.size(); ++k) data[k] = static_cast<std::byte>(k * 37 + 11);
        w.add_tensor(t.name, t.dtype, shape, data);
      }
      const auto out = out_dir / (std::filesystem::path(argv[i]).stem().string() + ".seed.gguf");
      w.write_file(out.string());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "skip %s: %s\n", argv[i], e.what());
    }
  }
  return 0;
}
