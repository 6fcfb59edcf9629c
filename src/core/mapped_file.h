// MappedFile: a read-only, move-only memory mapping of a whole file (GGUF weights are used in place).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace ember {

enum class MapAdvice { kNormal, kSequential, kRandom, kWillNeed };

struct MapOptions {
  bool populate = false;  // MAP_POPULATE: fault every page in at open (slower open, no faults later)
  bool mlock = false;     // lock pages in RAM; failure is a warning (RLIMIT_MEMLOCK), not an error
  MapAdvice advice = MapAdvice::kNormal;
};

class MappedFile {
 public:
  MappedFile() = default;
  // Maps `path` read-only. Throws ember::Error(kIo) naming the path and the OS reason.
  // An empty file maps to an empty span.
  static MappedFile open(const std::string& path, const MapOptions& options = {});
  ~MappedFile();

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  const std::string& path() const noexcept { return path_; }
  bool is_locked() const noexcept { return locked_; }

  // madvise over [offset, offset + length) (clamped to the file); a hint, failures are ignored.
  void advise(MapAdvice advice, size_t offset = 0, size_t length = SIZE_MAX) const noexcept;
  // Tries to mlock the whole mapping; returns false (and logs a warning with the reason) on failure.
  bool lock() noexcept;

 private:
  void release() noexcept;

  std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool locked_ = false;
  std::string path_;
};

}  // namespace ember
