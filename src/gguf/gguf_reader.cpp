// The GGUF parser: every count, length, offset and size is checked against the bytes before use.
#include "gguf/gguf_reader.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/utf8.h"

namespace ember {

// Smallest possible encodings, used to reject counts the remaining bytes cannot hold *before*
// anything is allocated for them (a header claiming 2^60 entries fails at once).
namespace {
constexpr uint64_t kMinKeyValueBytes = 8 + 4 + 1;        // key length, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // name length, n_dims (0), type, offset
constexpr uint64_t kMinArrayElemHeaderBytes = 4 + 8;     // nested array: type + count
constexpr uint64_t kMaxReserve = 4096;                   // entries reserved before they are parsed

uint64_t min_encoded_size(GgufType type) noexcept {
  if (type == GgufType::kString) return 8;
  if (type == GgufType::kArray) return kMinArrayElemHeaderBytes;
  return gguf_scalar_size(type);
}

bool valid_value_type(uint32_t id) noexcept { return id < kGgufTypeCount; }
}  // namespace

// Parses one buffer into a GgufFile; holds the cursor and the context for error messages.
class GgufParser {
 public:
  explicit GgufParser(GgufFile& file) : f_(file), data_(file.bytes_.data()), size_(file.bytes_.size()) {}

  void parse() {
    parse_header();
    parse_metadata();
    parse_tensor_infos();
    locate_data_section();
    validate_tensor_data();
  }

 private:
  template <typename... Args>
  [[noreturn]] void error(fmt::format_string<Args...> format, Args&&... args) const {
    fail(ErrorCode::kFormat, "'{}': {}", f_.name_, fmt::format(format, std::forward<Args>(args)...));
  }

  // `what` describes the item being read (a callable, so the message is built only on error).
  template <typename What>
  void need(uint64_t n, const What& what) const {
    if (n > size_ - pos_) {
      error("truncated: {} at offset {} needs {} bytes, {} left", describe(what), pos_, n, size_ - pos_);
    }
  }

  static std::string describe(std::string_view what) { return std::string(what); }
  template <typename What>
  requires std::invocable<const What&>
  static std::string describe(const What& what) { return what(); }

  template <typename T, typename What>
  T read(const What& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  template <typename What>
  std::string_view read_string(const What& what) {
    const auto len = read<uint64_t>(what);
    need(len, what);
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    const size_t bad = utf8::error_offset(s);
    if (bad != s.size()) error("{} at offset {} is not valid UTF-8 (bad byte at +{})", describe(what), pos_, bad);
    pos_ += len;
    return s;
  }

  void parse_header() {
    if (size_ < 4) error("too small to be a GGUF file ({} bytes)", size_);
    const auto magic = read<uint32_t>("magic");
    if (magic != kGgufMagic) {
      error("not a GGUF file (magic {:02x} {:02x} {:02x} {:02x}, expected \"GGUF\")", static_cast<unsigned>(data_[0]),
            static_cast<unsigned>(data_[1]), static_cast<unsigned>(data_[2]), static_cast<unsigned>(data_[3]));
    }
    const auto version = read<uint32_t>("version");
    if (version == 1) {
      fail(ErrorCode::kUnsupported, "'{}': GGUF version 1 is not supported (re-convert the model)", f_.name_);
    }
    if (version != 2 && version != 3) {
      // A big-endian file stores its version byte-swapped.
      if (__builtin_bswap32(version) == 2 || __builtin_bswap32(version) == 3) {
        fail(ErrorCode::kUnsupported, "'{}': big-endian GGUF files are not supported", f_.name_);
      }
      fail(ErrorCode::kUnsupported, "'{}': unsupported GGUF version {} (supported: 2, 3)", f_.name_, version);
    }
    f_.version_ = version;
    n_tensors_ = read<uint64_t>("tensor count");
    n_kv_ = read<uint64_t>("metadata count");
    const uint64_t left = size_ - pos_;
    if (n_kv_ > left / kMinKeyValueBytes || n_tensors_ > left / kMinTensorInfoBytes ||
        n_kv_ * kMinKeyValueBytes + n_tensors_ * kMinTensorInfoBytes > left) {
      error("header claims {} metadata entries and {} tensors, more than the {} remaining bytes can hold", n_kv_,
            n_tensors_, left);
    }
  }

  void parse_metadata() {
    // Reserve at most kMaxReserve up front; beyond that containers grow with the bytes actually
    // parsed, so a corrupted count cannot make the reader allocate far more than the file size.
    f_.metadata_.reserve(std::min(n_kv_, kMaxReserve));
    f_.metadata_index_.reserve(std::min(n_kv_, kMaxReserve));
    for (uint64_t i = 0; i < n_kv_; ++i) {
      const std::string_view key = read_string([&] { return fmt::format("key of metadata entry {}", i); });
      if (key.empty()) error("metadata entry {} has an empty key", i);
      key_ = key;
      GgufKeyValue kv{key, {}};
      const auto type = read<uint32_t>([&] { return fmt::format("type of key '{}'", key); });
      parse_value(kv.value, type, 0);
      if (!f_.metadata_index_.emplace(key, f_.metadata_.size()).second) error("duplicate key '{}'", key);
      f_.metadata_.push_back(std::move(kv));
    }
    key_ = {};
    if (const GgufValue* a = f_.find("general.alignment")) {
      if (a->type() != GgufType::kUint32) {
        error("key 'general.alignment' has type {}, expected uint32", gguf_type_name(a->type()));
      }
      const auto alignment = static_cast<uint32_t>(a->bits_);
      if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        error("key 'general.alignment' is {}, expected a power of two", alignment);
      }
      f_.alignment_ = alignment;
    }
  }

  void parse_value(GgufValue& v, uint32_t type_id, int depth) {
    if (!valid_value_type(type_id)) error("key '{}' has unknown value type {}", key_, type_id);
    v.type_ = static_cast<GgufType>(type_id);
    switch (v.type_) {
      case GgufType::kString:
        v.string_ = read_string([&] { return fmt::format("string value of key '{}'", key_); });
        return;
      case GgufType::kArray: parse_array(v, depth); return;
      default: break;
    }
    const size_t n = gguf_scalar_size(v.type_);
    need(n, [&] { return fmt::format("value of key '{}'", key_); });
    std::memcpy(&v.bits_, data_ + pos_, n);  // little-endian host: low bytes hold the value
    pos_ += n;
    if (v.type_ == GgufType::kBool && v.bits_ > 1) error("key '{}' has bool value {}, expected 0 or 1", key_, v.bits_);
  }

  void parse_array(GgufValue& v, int depth) {
    if (depth >= kGgufMaxArrayNesting) error("key '{}' nests arrays deeper than {}", key_, kGgufMaxArrayNesting);
    const auto elem = read<uint32_t>([&] { return fmt::format("array type of key '{}'", key_); });
    if (!valid_value_type(elem)) error("key '{}' is an array of unknown value type {}", key_, elem);
    v.elem_type_ = static_cast<GgufType>(elem);
    v.count_ = read<uint64_t>([&] { return fmt::format("array length of key '{}'", key_); });
    const uint64_t min_size = min_encoded_size(v.elem_type_);
    if (v.count_ > (size_ - pos_) / min_size) {
      error("array of key '{}' claims {} elements of type {}, more than the {} remaining bytes can hold", key_,
            v.count_, gguf_type_name(v.elem_type_), size_ - pos_);
    }
    if (v.elem_type_ == GgufType::kString) {
      v.strings_.reserve(std::min(v.count_, kMaxReserve));
      for (uint64_t i = 0; i < v.count_; ++i) {
        v.strings_.push_back(read_string([&] { return fmt::format("element {} of key '{}'", i, key_); }));
      }
    } else if (v.elem_type_ == GgufType::kArray) {
      v.items_.reserve(std::min(v.count_, kMaxReserve));
      for (uint64_t i = 0; i < v.count_; ++i) {
        // The reference stays valid: the recursion only appends to the new item's own vectors.
        parse_value(v.items_.emplace_back(), static_cast<uint32_t>(GgufType::kArray), depth + 1);
      }
    } else {
      v.raw_ = data_ + pos_;
      if (v.elem_type_ == GgufType::kBool) {
        for (uint64_t i = 0; i < v.count_; ++i) {
          if (static_cast<uint8_t>(data_[pos_ + i]) > 1) error("element {} of bool array '{}' is not 0 or 1", i, key_);
        }
      }
      pos_ += v.count_ * min_size;  // count_ * min_size <= remaining, checked above
    }
  }

  void parse_tensor_infos() {
    f_.tensors_.reserve(std::min(n_tensors_, kMaxReserve));
    f_.tensor_index_.reserve(std::min(n_tensors_, kMaxReserve));
    for (uint64_t i = 0; i < n_tensors_; ++i) {
      GgufTensorInfo t;
      t.name = read_string([&] { return fmt::format("name of tensor {}", i); });
      if (t.name.empty()) error("tensor {} has an empty name", i);
      const auto n_dims = read<uint32_t>([&] { return fmt::format("dimension count of tensor '{}'", t.name); });
      // n_dims == 0 is a scalar (one element), as llama.cpp's reader and gguf-py allow.
      if (n_dims > kGgufMaxDims) error("tensor '{}' has {} dimensions, expected 0 to {}", t.name, n_dims, kGgufMaxDims);
      t.n_dims = static_cast<int>(n_dims);
      uint64_t n_elements = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        const auto ne = read<uint64_t>([&] { return fmt::format("dimension {} of tensor '{}'", d, t.name); });
        if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          error("tensor '{}' has invalid dimension {} = {}", t.name, d, static_cast<int64_t>(ne));
        }
        if (__builtin_mul_overflow(n_elements, ne, &n_elements) ||
            n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          error("tensor '{}' has an element count that overflows 63 bits", t.name);
        }
        t.ne[d] = static_cast<int64_t>(ne);
      }
      t.n_elements = n_elements;
      const auto type_id = read<uint32_t>([&] { return fmt::format("type of tensor '{}'", t.name); });
      if (!dtype_id_is_known(type_id)) error("tensor '{}' has unknown type id {}", t.name, type_id);
      t.dtype = static_cast<DType>(type_id);
      const DTypeTraits& traits = dtype_traits(t.dtype);
      if (t.ne[0] % traits.block_size != 0) {
        error("tensor '{}' of type {} has row length {}, not a multiple of the block size {}", t.name, traits.name,
              t.ne[0], traits.block_size);
      }
      const std::optional<uint64_t> bytes = dtype_bytes_for(t.dtype, n_elements);
      if (!bytes) error("tensor '{}' byte size overflows", t.name);
      t.n_bytes = *bytes;
      t.offset = read<uint64_t>([&] { return fmt::format("data offset of tensor '{}'", t.name); });
      if (!f_.tensor_index_.emplace(t.name, f_.tensors_.size()).second) error("duplicate tensor name '{}'", t.name);
      f_.tensors_.push_back(t);
    }
  }

  void locate_data_section() {
    const uint64_t a = f_.alignment_;
    const uint64_t aligned = pos_ % a == 0 ? pos_ : pos_ + (a - pos_ % a);  // pos_ <= size_, no overflow
    if (f_.tensors_.empty()) {
      // Vocab-only files may end right after the header, without padding.
      f_.data_offset_ = std::min<uint64_t>(aligned, size_);
      return;
    }
    if (aligned > size_)
      error("truncated: data section would start at offset {} past the end ({} bytes)", aligned, size_);
    f_.data_offset_ = aligned;
  }

  void validate_tensor_data() {
    const uint64_t data_size = size_ - f_.data_offset_;
    std::vector<size_t> order(f_.tensors_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    for (const GgufTensorInfo& t : f_.tensors_) {
      if (t.offset % f_.alignment_ != 0) {
        error("tensor '{}' data offset {} is not a multiple of the alignment {}", t.name, t.offset, f_.alignment_);
      }
      if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
        error("tensor '{}' data [{}, +{}) lies outside the data section ({} bytes)", t.name, t.offset, t.n_bytes,
              data_size);
      }
      // general.alignment may be as small as 1; kernels read elements and block scales with typed
      // (and SIMD) loads straight from the mapping (page-aligned; parse() requires 8-byte aligned
      // buffers), which needs the type's natural alignment within the file.
      const uint32_t need = dtype_alignment(t.dtype);
      if ((f_.data_offset_ + t.offset) % need != 0) {
        fail(ErrorCode::kUnsupported,
             "'{}': tensor '{}' data at file offset {} is not {}-byte aligned as type {} requires", f_.name_, t.name,
             f_.data_offset_ + t.offset, need, dtype_name(t.dtype));
      }
    }
    std::sort(order.begin(), order.end(),
              [&](size_t x, size_t y) { return f_.tensors_[x].offset < f_.tensors_[y].offset; });
    for (size_t i = 1; i < order.size(); ++i) {
      const GgufTensorInfo& prev = f_.tensors_[order[i - 1]];
      const GgufTensorInfo& cur = f_.tensors_[order[i]];
      if (cur.offset < prev.offset + prev.n_bytes) {
        error("tensor '{}' data overlaps tensor '{}' (offsets {} and {})", cur.name, prev.name, cur.offset,
              prev.offset);
      }
    }
  }

  GgufFile& f_;
  const std::byte* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
  std::string_view key_;  // key being parsed, for messages
};

namespace {

// Parsing allocates in proportion to the bytes parsed; if even that fails, say so as an ember::Error.
void parse_or_report_oom(GgufFile& file, const std::string& name, void (*parse)(GgufFile&)) {
  try {
    parse(file);
  } catch (const std::bad_alloc&) {
    fail(ErrorCode::kOutOfMemory, "'{}': out of memory while reading the GGUF metadata", name);
  }
}

}  // namespace

GgufFile GgufFile::open(const std::string& path, const MapOptions& options) {
  GgufFile file;
  file.name_ = path;
  file.mapping_ = MappedFile::open(path, options);
  file.bytes_ = file.mapping_.bytes();
  parse_or_report_oom(file, path, [](GgufFile& f) { GgufParser(f).parse(); });
  return file;
}

GgufFile GgufFile::parse(std::span<const std::byte> bytes, std::string name) {
  if (reinterpret_cast<uintptr_t>(bytes.data()) % kGgufParseBufferAlignment != 0) {
    fail(ErrorCode::kInvalidArgument, "'{}': GGUF buffer must be {}-byte aligned for typed tensor access", name,
         kGgufParseBufferAlignment);
  }
  GgufFile file;
  file.name_ = std::move(name);
  file.bytes_ = bytes;
  parse_or_report_oom(file, file.name_, [](GgufFile& f) { GgufParser(f).parse(); });
  return file;
}

const GgufValue* GgufFile::find(std::string_view key) const noexcept {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].value;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const noexcept {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufValue& GgufFile::require(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) fail(ErrorCode::kNotFound, "'{}': missing key '{}'", name_, key);
  return *v;
}

void GgufFile::type_mismatch(std::string_view key, const GgufValue& v, std::string_view expected) const {
  std::string actual(gguf_type_name(v.type()));
  if (v.is_array()) actual = fmt::format("array of {}", gguf_type_name(v.array_type()));
  fail(ErrorCode::kTypeMismatch, "'{}': key '{}' has type {}, expected {}", name_, key, actual, expected);
}

std::span<const std::string_view> GgufFile::get_strings(std::string_view key) const {
  const GgufValue& v = require(key);
  if (!v.is_array() || v.array_type() != GgufType::kString) type_mismatch(key, v, "array of string");
  return v.strings();
}

}  // namespace ember
