// MappedFile on POSIX mmap/madvise/mlock.
#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/check.h"
#include "core/log.h"

namespace ember {
namespace {

int to_madvise(MapAdvice advice) {
  switch (advice) {
    case MapAdvice::kSequential: return MADV_SEQUENTIAL;
    case MapAdvice::kRandom: return MADV_RANDOM;
    case MapAdvice::kWillNeed: return MADV_WILLNEED;
    case MapAdvice::kNormal: break;
  }
  return MADV_NORMAL;
}

// Closes the descriptor on every path out of open().
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

MappedFile MappedFile::open(const std::string& path, const MapOptions& options) {
  FdGuard guard{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (guard.fd < 0) fail(ErrorCode::kIo, "cannot open '{}': {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(guard.fd, &st) != 0) fail(ErrorCode::kIo, "cannot stat '{}': {}", path, std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail(ErrorCode::kIo, "cannot open '{}': is a directory", path);
  if (!S_ISREG(st.st_mode)) fail(ErrorCode::kIo, "cannot map '{}': not a regular file", path);

  MappedFile file;
  file.path_ = path;
  file.size_ = static_cast<size_t>(st.st_size);
  if (file.size_ == 0) return file;  // mmap of length 0 is invalid; an empty view is the truth

  int flags = MAP_SHARED;
  if (options.populate) flags |= MAP_POPULATE;
  void* p = ::mmap(nullptr, file.size_, PROT_READ, flags, guard.fd, 0);
  if (p == MAP_FAILED) fail(ErrorCode::kIo, "cannot mmap '{}' ({} bytes): {}", path, file.size_, std::strerror(errno));
  file.data_ = static_cast<std::byte*>(p);
  if (options.advice != MapAdvice::kNormal) file.advise(options.advice);
  if (options.mlock) file.lock();
  return file;
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      locked_(std::exchange(other.locked_, false)),
      path_(std::move(other.path_)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    locked_ = std::exchange(other.locked_, false);
    path_ = std::move(other.path_);
  }
  return *this;
}

void MappedFile::release() noexcept {
  if (data_ != nullptr) {
    if (locked_) ::munlock(data_, size_);
    ::munmap(data_, size_);
  }
  data_ = nullptr;
  size_ = 0;
  locked_ = false;
}

void MappedFile::advise(MapAdvice advice, size_t offset, size_t length) const noexcept {
  if (data_ == nullptr || offset >= size_) return;
  length = std::min(length, size_ - offset);
  // madvise wants a page-aligned start: round the start down to its page.
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t start = offset / page * page;
  ::madvise(data_ + start, length + (offset - start), to_madvise(advice));
}

bool MappedFile::lock() noexcept {
  if (data_ == nullptr || locked_) return locked_ || data_ == nullptr;
  if (::mlock(data_, size_) != 0) {
    EMBER_LOG_WARN("mlock of '{}' ({} bytes) failed: {} (raise RLIMIT_MEMLOCK, e.g. ulimit -l)", path_, size_,
                   std::strerror(errno));
    return false;
  }
  locked_ = true;
  return true;
}

}  // namespace ember
