// GgufWriter: builds a GGUF v3 file (metadata + aligned tensor data); used by tests, tools, quantize.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/atomic_file.h"
#include "ember/dtype.h"
#include "gguf/gguf_value.h"

namespace ember {

// An array value ready to be written: element type, count and the encoded elements.
// Arrays of arrays nest by building the inner arrays first.
class GgufArrayValue {
 public:
  template <typename T>
  static GgufArrayValue of(std::span<const T> values) {
    GgufArrayValue a(gguf_type_of<T>(), values.size());
    for (const T& v : values) a.append_bytes(&v, sizeof(T));
    return a;
  }
  static GgufArrayValue of_strings(std::span<const std::string> values);
  static GgufArrayValue of_strings(std::span<const std::string_view> values);
  static GgufArrayValue of_arrays(std::span<const GgufArrayValue> values);
  // `count` fixed-size elements of `elem_type`, already encoded little-endian in `encoded`.
  static GgufArrayValue of_raw(GgufType elem_type, uint64_t count, std::span<const std::byte> encoded);

  GgufType elem_type() const noexcept { return elem_type_; }
  uint64_t size() const noexcept { return count_; }
  // The encoding after the array's own type tag: element type, count, elements.
  void encode(std::vector<std::byte>& out) const;

 private:
  GgufArrayValue(GgufType elem_type, uint64_t count) : elem_type_(elem_type), count_(count) {}
  void append_bytes(const void* p, size_t n);

  GgufType elem_type_;
  uint64_t count_;
  int depth_ = 1;  // levels of array nesting, this one included
  std::vector<std::byte> elems_;
};

class GgufWriter {
 public:
  static constexpr std::string_view kAlignmentKey = "general.alignment";

  // alignment: power of two; written as general.alignment when not the default 32.
  explicit GgufWriter(uint32_t alignment = 32);

  // Scalars; T is one of uint8_t ... double or bool. Duplicate keys throw Error(kInvalidArgument).
  template <typename T>
  void add(std::string_view key, T value) {
    std::vector<std::byte>& out = begin_kv(key, gguf_type_of<T>());
    const size_t old = out.size();
    out.resize(old + sizeof(T));
    std::memcpy(out.data() + old, &value, sizeof(T));
  }
  // A fixed-size scalar of `type` whose little-endian value is the low bytes of `bits`.
  void add_raw_scalar(std::string_view key, GgufType type, uint64_t bits);
  void add_string(std::string_view key, std::string_view value);
  void add_array(std::string_view key, const GgufArrayValue& value);
  template <typename T>
  void add_array(std::string_view key, std::span<const T> values) {
    add_array(key, GgufArrayValue::of(values));
  }
  void add_string_array(std::string_view key, std::span<const std::string> values) {
    add_array(key, GgufArrayValue::of_strings(values));
  }

  // Copies a value read from a GGUF file (any type, nested arrays included).
  void add_value(std::string_view key, const GgufValue& value);

  // A tensor with its data (copied). shape is in ggml order (ne[0] = row length), 1..4 dims;
  // data.size() must equal the dtype's byte size for the shape.
  void add_tensor(std::string_view name, DType dtype, std::span<const int64_t> shape, std::span<const std::byte> data);
  // A tensor whose data is supplied later, in declaration order, through GgufStreamWriter; for
  // files larger than memory. Returns its byte size.
  uint64_t add_tensor_info(std::string_view name, DType dtype, std::span<const int64_t> shape);
  size_t n_tensors() const noexcept { return tensors_.size(); }

  // The whole file in memory; every tensor must have been added with its data.
  std::vector<std::byte> write_to_memory() const;
  // Writes to `path` via a temporary file and rename, so a failed write never leaves a partial
  // file under the final name. Throws Error(kIo) naming the path.
  void write_file(const std::string& path) const;

 private:
  friend class GgufStreamWriter;

  struct Tensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t n_bytes = 0;
    bool has_data = false;  // false: added with add_tensor_info
    std::vector<std::byte> data;
  };
  // The encoded header (metadata and tensor infos, padded to the data section) and each tensor's
  // offset from the start of the data section.
  struct Layout {
    std::vector<std::byte> header;
    std::vector<uint64_t> offsets;
    uint64_t data_size = 0;  // padded to the alignment
  };

  std::vector<std::byte>& begin_kv(std::string_view key, GgufType type);
  void encode_value(std::vector<std::byte>& out, const GgufValue& value, int depth) const;
  uint64_t check_tensor(std::string_view name, DType dtype, std::span<const int64_t> shape);
  Layout layout() const;

  uint32_t alignment_;
  uint64_t n_kv_ = 0;
  std::vector<std::byte> kv_bytes_;  // encoded metadata entries, in insertion order
  std::unordered_set<std::string> keys_;
  std::vector<Tensor> tensors_;
  std::unordered_set<std::string> tensor_names_;
};

// Writes a GgufWriter's file to disk tensor by tensor, so that its data never has to be in memory
// at once: the header first, then each tensor's data in declaration order. Tensors added with data
// are written automatically; those added with add_tensor_info are supplied by write_tensor_data.
// The file appears under `path` only on commit() (AtomicFile: temporary file, fsync, rename).
class GgufStreamWriter {
 public:
  // `layout` must outlive the stream writer and not change while it writes. Throws Error(kIo).
  GgufStreamWriter(const GgufWriter& layout, std::string path);
  ~GgufStreamWriter();

  // Data of the next tensor added without data; a tensor may come in several pieces, each call
  // appending to it until its byte size is reached. Throws Error(kInvalidArgument) when there is
  // no such tensor or the data overruns it, Error(kIo).
  void write_tensor_data(std::span<const std::byte> data);
  // Checks that every tensor was written, pads and renames. Throws Error(kInvalidArgument), Error(kIo).
  void commit();
  // The temporary file being written (for messages).
  const std::string& temp_path() const noexcept;

 private:
  void write_stored_tensors();  // tensors with data up to the next one without
  void pad_to_tensor(size_t index);

  const GgufWriter& writer_;
  GgufWriter::Layout layout_;
  std::unique_ptr<AtomicFile> file_;
  size_t next_ = 0;               // next tensor to write
  uint64_t written_of_next_ = 0;  // bytes of it written so far
};

}  // namespace ember
