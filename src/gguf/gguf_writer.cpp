// GgufWriter: encodes metadata and tensor infos, pads the data section to the alignment.
#include "gguf/gguf_writer.h"

#include <cstring>

#include "core/check.h"
#include "core/utf8.h"
#include "gguf/gguf_reader.h"

namespace ember {
namespace {

// resize + memcpy rather than vector::insert: GCC 12 emits a false -Wstringop-overflow for the latter.
void put_bytes(std::vector<std::byte>& out, const void* p, size_t n) {
  if (n == 0) return;
  const size_t old = out.size();
  out.resize(old + n);
  std::memcpy(out.data() + old, p, n);
}

template <typename T>
void put(std::vector<std::byte>& out, T v) {
  put_bytes(out, &v, sizeof(T));
}

void put_string(std::vector<std::byte>& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  put_bytes(out, s.data(), s.size());
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// The reader rejects strings that are not UTF-8, so the writer refuses to produce them.
void require_utf8(std::string_view text, std::string_view what) {
  if (!utf8::is_valid(text)) fail(ErrorCode::kInvalidArgument, "{} is not valid UTF-8", what);
}

void put_checked_string(std::vector<std::byte>& out, std::string_view s) {
  require_utf8(s, "GGUF string value");
  put_string(out, s);
}

}  // namespace

void GgufArrayValue::append_bytes(const void* p, size_t n) { put_bytes(elems_, p, n); }

GgufArrayValue GgufArrayValue::of_strings(std::span<const std::string> values) {
  GgufArrayValue a(GgufType::kString, values.size());
  for (const std::string& s : values) put_checked_string(a.elems_, s);
  return a;
}

GgufArrayValue GgufArrayValue::of_strings(std::span<const std::string_view> values) {
  GgufArrayValue a(GgufType::kString, values.size());
  for (std::string_view s : values) put_checked_string(a.elems_, s);
  return a;
}

GgufArrayValue GgufArrayValue::of_arrays(std::span<const GgufArrayValue> values) {
  GgufArrayValue a(GgufType::kArray, values.size());
  for (const GgufArrayValue& v : values) {
    v.encode(a.elems_);
    a.depth_ = std::max(a.depth_, v.depth_ + 1);
  }
  if (a.depth_ > kGgufMaxArrayNesting) {  // the reader's limit
    fail(ErrorCode::kInvalidArgument, "GGUF arrays nested deeper than {} levels", kGgufMaxArrayNesting);
  }
  return a;
}

GgufArrayValue GgufArrayValue::of_raw(GgufType elem_type, uint64_t count, std::span<const std::byte> encoded) {
  const size_t size = gguf_scalar_size(elem_type);
  if (size == 0 || count * size != encoded.size()) {
    fail(ErrorCode::kInvalidArgument, "raw GGUF array: {} bytes do not hold {} elements of type {}", encoded.size(),
         count, gguf_type_name(elem_type));
  }
  if (elem_type == GgufType::kBool) {
    for (std::byte b : encoded) {
      if (std::to_integer<uint8_t>(b) > 1) fail(ErrorCode::kInvalidArgument, "raw GGUF bool array holds a value > 1");
    }
  }
  GgufArrayValue a(elem_type, count);
  a.append_bytes(encoded.data(), encoded.size());
  return a;
}

void GgufArrayValue::encode(std::vector<std::byte>& out) const {
  put<uint32_t>(out, static_cast<uint32_t>(elem_type_));
  put<uint64_t>(out, count_);
  put_bytes(out, elems_.data(), elems_.size());
}

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    fail(ErrorCode::kInvalidArgument, "GGUF alignment {} is not a power of two", alignment);
  }
  if (alignment != kGgufDefaultAlignment) {
    put_string(kv_bytes_, kAlignmentKey);
    put<uint32_t>(kv_bytes_, static_cast<uint32_t>(GgufType::kUint32));
    put<uint32_t>(kv_bytes_, alignment);
    keys_.emplace(kAlignmentKey);
    ++n_kv_;
  }
}

std::vector<std::byte>& GgufWriter::begin_kv(std::string_view key, GgufType type) {
  if (key.empty()) fail(ErrorCode::kInvalidArgument, "GGUF metadata key is empty");
  require_utf8(key, fmt::format("GGUF metadata key '{}'", key));
  if (key == kAlignmentKey) {
    // The padding of the data section follows the constructor's alignment; a second value would
    // describe a file this writer does not produce.
    fail(ErrorCode::kInvalidArgument, "set '{}' through the GgufWriter constructor", kAlignmentKey);
  }
  if (!keys_.emplace(key).second) fail(ErrorCode::kInvalidArgument, "duplicate GGUF metadata key '{}'", key);
  ++n_kv_;
  put_string(kv_bytes_, key);
  put<uint32_t>(kv_bytes_, static_cast<uint32_t>(type));
  return kv_bytes_;
}

void GgufWriter::add_raw_scalar(std::string_view key, GgufType type, uint64_t bits) {
  const size_t size = gguf_scalar_size(type);
  if (size == 0)
    fail(ErrorCode::kInvalidArgument, "key '{}': {} is not a fixed-size scalar type", key, gguf_type_name(type));
  if (size < 8 && (bits >> (8 * size)) != 0)
    fail(ErrorCode::kInvalidArgument, "key '{}': value does not fit type {}", key, gguf_type_name(type));
  if (type == GgufType::kBool && bits > 1) fail(ErrorCode::kInvalidArgument, "key '{}': bool value {}", key, bits);
  put_bytes(begin_kv(key, type), &bits, size);  // little-endian host: the low bytes come first
}

void GgufWriter::add_string(std::string_view key, std::string_view value) {
  require_utf8(value, fmt::format("value of GGUF key '{}'", key));
  put_string(begin_kv(key, GgufType::kString), value);
}

void GgufWriter::add_array(std::string_view key, const GgufArrayValue& value) {
  value.encode(begin_kv(key, GgufType::kArray));
}

void GgufWriter::add_value(std::string_view key, const GgufValue& value) {
  if (!value.is_array()) {
    if (value.type() == GgufType::kString) {
      add_string(key, value.as_string());
    } else {
      add_raw_scalar(key, value.type(), value.raw_scalar());
    }
    return;
  }
  std::vector<std::byte>& out = begin_kv(key, GgufType::kArray);
  encode_value(out, value, 1);
}

// The encoding of an array value after its type tag (element type, count, elements).
void GgufWriter::encode_value(std::vector<std::byte>& out, const GgufValue& value, int depth) const {
  if (depth > kGgufMaxArrayNesting) {
    fail(ErrorCode::kInvalidArgument, "GGUF arrays nested deeper than {} levels", kGgufMaxArrayNesting);
  }
  put<uint32_t>(out, static_cast<uint32_t>(value.array_type()));
  put<uint64_t>(out, value.array_size());
  switch (value.array_type()) {
    case GgufType::kString:
      for (std::string_view s : value.strings()) put_checked_string(out, s);
      break;
    case GgufType::kArray:
      for (const GgufValue& item : value.items()) encode_value(out, item, depth + 1);
      break;
    default:  // numbers: already little-endian in the source file
      put_bytes(out, value.numbers<uint8_t>().raw(), value.array_size() * gguf_scalar_size(value.array_type()));
      break;
  }
}

uint64_t GgufWriter::check_tensor(std::string_view name, DType dtype, std::span<const int64_t> shape) {
  if (name.empty()) fail(ErrorCode::kInvalidArgument, "GGUF tensor name is empty");
  require_utf8(name, "GGUF tensor name");
  if (shape.size() > kGgufMaxDims) {  // 0 dims: a scalar
    fail(ErrorCode::kInvalidArgument, "tensor '{}' has {} dimensions, expected 0 to {}", name, shape.size(),
         kGgufMaxDims);
  }
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 1 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) {
      fail(ErrorCode::kInvalidArgument, "tensor '{}' has an invalid shape", name);
    }
  }
  const DTypeTraits& traits = dtype_traits(dtype);
  const std::optional<uint64_t> bytes = dtype_bytes_for(dtype, n);
  const int64_t row_length = shape.empty() ? 1 : shape[0];
  if (row_length % traits.block_size != 0 || !bytes) {
    fail(ErrorCode::kInvalidArgument, "tensor '{}': row length {} is not a multiple of the {} block size {}", name,
         row_length, traits.name, traits.block_size);
  }
  if (tensor_names_.contains(std::string(name))) fail(ErrorCode::kInvalidArgument, "duplicate tensor name '{}'", name);
  return *bytes;
}

void GgufWriter::add_tensor(std::string_view name, DType dtype, std::span<const int64_t> shape,
                            std::span<const std::byte> data) {
  const uint64_t bytes = check_tensor(name, dtype, shape);
  if (bytes != data.size()) {
    fail(ErrorCode::kInvalidArgument, "tensor '{}': {} data bytes given, {} expected for its shape and type {}", name,
         data.size(), bytes, dtype_traits(dtype).name);
  }
  tensor_names_.emplace(name);
  tensors_.push_back({std::string(name), dtype, {shape.begin(), shape.end()}, bytes, true, {data.begin(), data.end()}});
}

uint64_t GgufWriter::add_tensor_info(std::string_view name, DType dtype, std::span<const int64_t> shape) {
  const uint64_t bytes = check_tensor(name, dtype, shape);
  tensor_names_.emplace(name);
  tensors_.push_back({std::string(name), dtype, {shape.begin(), shape.end()}, bytes, false, {}});
  return bytes;
}

GgufWriter::Layout GgufWriter::layout() const {
  Layout l;
  std::vector<std::byte>& out = l.header;
  put<uint32_t>(out, kGgufMagic);
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, n_kv_);
  put_bytes(out, kv_bytes_.data(), kv_bytes_.size());

  // Where the data section starts, known before any tensor info is written: every size is fixed.
  uint64_t header_end = out.size();
  for (const Tensor& t : tensors_) header_end += 8 + t.name.size() + 4 + 8 * t.shape.size() + 4 + 8;
  const uint64_t data_start = align_up(header_end, alignment_);

  // Each tensor starts at a multiple of the file alignment *and* of its type's alignment in the
  // file, so that a small general.alignment (even 1) still yields data the reader accepts.
  uint64_t end = 0;  // end of the previous tensor, relative to data_start
  for (const Tensor& t : tensors_) {
    const uint64_t a = std::max<uint64_t>(alignment_, dtype_alignment(t.dtype));
    l.offsets.push_back(align_up(data_start + end, a) - data_start);
    end = l.offsets.back() + t.n_bytes;
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) put<uint64_t>(out, static_cast<uint64_t>(d));
    put<uint32_t>(out, static_cast<uint32_t>(t.dtype));
    put<uint64_t>(out, l.offsets.back());
  }
  EMBER_CHECK(out.size() == header_end);
  out.resize(data_start);  // zero padding up to the data section
  l.data_size = align_up(end, alignment_);
  return l;
}

std::vector<std::byte> GgufWriter::write_to_memory() const {
  Layout l = layout();
  std::vector<std::byte> out = std::move(l.header);
  const size_t data_start = out.size();
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    if (!t.has_data) fail(ErrorCode::kInvalidArgument, "tensor '{}' was added without data", t.name);
    out.resize(data_start + l.offsets[i]);  // zero padding up to the tensor's offset
    put_bytes(out, t.data.data(), t.data.size());
  }
  out.resize(data_start + l.data_size);
  return out;
}

void GgufWriter::write_file(const std::string& path) const {
  GgufStreamWriter stream(*this, path);
  stream.commit();
}

GgufStreamWriter::GgufStreamWriter(const GgufWriter& layout, std::string path)
    : writer_(layout), layout_(layout.layout()), file_(std::make_unique<AtomicFile>(std::move(path))) {
  file_->write(layout_.header);
  write_stored_tensors();
}

GgufStreamWriter::~GgufStreamWriter() = default;

const std::string& GgufStreamWriter::temp_path() const noexcept { return file_->temp_path(); }

void GgufStreamWriter::pad_to_tensor(size_t index) {
  file_->write_zeros(layout_.header.size() + layout_.offsets[index] - file_->bytes_written());
}

void GgufStreamWriter::write_stored_tensors() {
  const auto& tensors = writer_.tensors_;
  for (; next_ < tensors.size() && tensors[next_].has_data; ++next_) {
    pad_to_tensor(next_);
    file_->write(tensors[next_].data);
  }
}

void GgufStreamWriter::write_tensor_data(std::span<const std::byte> data) {
  const auto& tensors = writer_.tensors_;
  if (next_ == tensors.size()) fail(ErrorCode::kInvalidArgument, "GGUF stream: every tensor is already written");
  const GgufWriter::Tensor& t = tensors[next_];
  if (data.size() > t.n_bytes - written_of_next_) {
    fail(ErrorCode::kInvalidArgument, "tensor '{}': {} data bytes given, {} expected", t.name,
         written_of_next_ + data.size(), t.n_bytes);
  }
  if (written_of_next_ == 0) pad_to_tensor(next_);
  file_->write(data);
  written_of_next_ += data.size();
  if (written_of_next_ == t.n_bytes) {
    written_of_next_ = 0;
    ++next_;
    write_stored_tensors();
  }
}

void GgufStreamWriter::commit() {
  const auto& tensors = writer_.tensors_;
  if (next_ != tensors.size()) {
    fail(ErrorCode::kInvalidArgument, "GGUF stream: tensor '{}' has {} of its {} bytes, {} more tensors are missing",
         tensors[next_].name, written_of_next_, tensors[next_].n_bytes, tensors.size() - next_ - 1);
  }
  file_->write_zeros(layout_.header.size() + layout_.data_size - file_->bytes_written());
  file_->commit();
}

}  // namespace ember
