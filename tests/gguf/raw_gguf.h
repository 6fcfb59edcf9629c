// RawGguf: a test-only byte-level GGUF builder with full control, to write malformed files on purpose.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace ember::test {

class RawGguf {
 public:
  RawGguf& u8(uint8_t v) { return put(v); }
  RawGguf& u32(uint32_t v) { return put(v); }
  RawGguf& u64(uint64_t v) { return put(v); }
  RawGguf& bytes(std::string_view s) {
    const size_t old = out_.size();
    out_.resize(old + s.size());
    if (!s.empty()) std::memcpy(out_.data() + old, s.data(), s.size());
    return *this;
  }
  RawGguf& str(std::string_view s) { return u64(s.size()).bytes(s); }

  RawGguf& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return bytes("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  }
  // Key and value type id; the caller appends the value.
  RawGguf& kv(std::string_view key, uint32_t type) { return str(key).u32(type); }
  RawGguf& kv_u32(std::string_view key, uint32_t v) { return kv(key, 4).u32(v); }
  RawGguf& kv_str(std::string_view key, std::string_view v) { return kv(key, 8).str(v); }
  RawGguf& tensor(std::string_view name, std::initializer_list<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
  // Zero bytes up to the next multiple of `alignment`.
  RawGguf& pad(size_t alignment = 32) {
    out_.resize((out_.size() + alignment - 1) / alignment * alignment);
    return *this;
  }
  // `n` bytes of a non-zero pattern (tensor data).
  RawGguf& data(size_t n) {
    for (size_t i = 0; i < n; ++i) u8(static_cast<uint8_t>(i * 31 + 7));
    return *this;
  }

  size_t size() const { return out_.size(); }
  const std::vector<std::byte>& buffer() const { return out_; }
  std::span<const std::byte> span() const { return out_; }

 private:
  template <typename T>
  RawGguf& put(T v) {
    const size_t old = out_.size();
    out_.resize(old + sizeof(T));
    std::memcpy(out_.data() + old, &v, sizeof(T));
    return *this;
  }
  std::vector<std::byte> out_;
};

}  // namespace ember::test
