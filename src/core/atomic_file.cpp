// AtomicFile: mkostemp + write + fsync + rename, with temporary files removed on signals.
#include "core/atomic_file.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/check.h"

namespace ember {
namespace {

// Temporary paths a signal handler may unlink. Fixed-size and lock-free: a handler can only read
// atomics and call async-signal-safe functions. A path is registered as a heap copy that lives
// until it is unregistered; the handler never frees it.
constexpr int kMaxInterruptSlots = 64;
std::array<std::atomic<const char*>, kMaxInterruptSlots> g_interrupt_paths{};

int register_interrupt_path(const char* path) noexcept {
  for (int i = 0; i < kMaxInterruptSlots; ++i) {
    const char* expected = nullptr;
    if (g_interrupt_paths[i].compare_exchange_strong(expected, path)) return i;
  }
  return -1;  // table full: the file is still safe, only its temporary may survive a signal
}

void unregister_interrupt_path(int slot) noexcept {
  if (slot >= 0) g_interrupt_paths[slot].store(nullptr);
}

extern "C" void remove_temporaries_and_reraise(int sig) {
  for (auto& slot : g_interrupt_paths) {
    if (const char* p = slot.load()) ::unlink(p);
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

// The process umask, read without umask(2), which would briefly change it for every thread.
mode_t current_umask() {
  std::FILE* status = std::fopen("/proc/self/status", "r");
  mode_t mask = 022;
  if (status == nullptr) return mask;
  char line[256];
  while (std::fgets(line, sizeof line, status) != nullptr) {
    unsigned value = 0;
    if (std::sscanf(line, "Umask: %o", &value) == 1) {
      mask = static_cast<mode_t>(value);
      break;
    }
  }
  std::fclose(status);
  return mask;
}

}  // namespace

void install_interrupt_cleanup() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction action {};
    action.sa_handler = remove_temporaries_and_reraise;
    sigemptyset(&action.sa_mask);
    ::sigaction(sig, &action, nullptr);
  }
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  temp_path_ = path_ + ".XXXXXX";
  fd_ = ::mkostemp(temp_path_.data(), O_CLOEXEC);
  if (fd_ < 0) fail(ErrorCode::kIo, "cannot create a temporary file for '{}': {}", path_, std::strerror(errno));
  interrupt_slot_ = register_interrupt_path(temp_path_.c_str());
}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::discard() noexcept {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  unregister_interrupt_path(interrupt_slot_);
  ::unlink(temp_path_.c_str());
}

void AtomicFile::write(std::span<const std::byte> bytes) {
  EMBER_CHECK_MSG(fd_ >= 0, "AtomicFile::write after commit");
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n == 0) {
      discard();
      fail(ErrorCode::kIo, "cannot write '{}': no progress", path_);  // no error code: give up rather than spin
    } else if (errno != EINTR) {
      const int err = errno;
      discard();
      fail(ErrorCode::kIo, "cannot write '{}': {}", path_, std::strerror(err));
    }
  }
  written_ += bytes.size();
}

void AtomicFile::write_zeros(uint64_t n) {
  static constexpr std::array<std::byte, 4096> kZeros{};
  while (n > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, kZeros.size()));
    write(std::span(kZeros.data(), chunk));
    n -= chunk;
  }
}

void AtomicFile::commit() {
  EMBER_CHECK_MSG(fd_ >= 0, "AtomicFile::commit called twice");
  int err = 0;
  // mkstemp creates 0600; give the file the mode open(path, 0666) would have under the umask.
  if (::fchmod(fd_, 0666 & ~current_umask()) != 0) err = errno;
  if (err == 0 && ::fsync(fd_) != 0) err = errno;
  if (err == 0 && ::rename(temp_path_.c_str(), path_.c_str()) != 0) err = errno;
  if (err != 0) {
    discard();
    fail(ErrorCode::kIo, "cannot write '{}': {}", path_, std::strerror(err));
  }
  ::close(fd_);  // the data is synced and renamed; a close error cannot lose it any more
  fd_ = -1;
  unregister_interrupt_path(interrupt_slot_);
}

}  // namespace ember
