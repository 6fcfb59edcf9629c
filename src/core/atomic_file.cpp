// AtomicFile: mkostemp + write + fsync + rename, with temporary files removed on signals.
#include "core/atomic_file.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/check.h"
#include "core/log.h"

namespace ember {
namespace {

// Temporary paths a signal handler may unlink. Fixed-size, static and lock-free: a handler can
// only read atomics and call async-signal-safe functions. Each slot owns static storage for its
// path (untouched pages cost nothing until used), and the handler sets g_cleaning before reading
// the slots, after which no slot is refilled: it never reads a path being rewritten.
struct InterruptSlot {
  std::atomic<bool> claimed{false};
  std::atomic<const char*> path{nullptr};
  char storage[PATH_MAX];
};
constexpr int kMaxInterruptSlots = 64;
std::array<InterruptSlot, kMaxInterruptSlots> g_interrupt_slots;
static_assert(std::atomic<const char*>::is_always_lock_free, "the signal handler reads these slots");

const int kCleanupSignals[] = {SIGINT, SIGTERM, SIGHUP};

// Set by the handler before it reads the slots: a slot claimed afterwards is not filled, so the
// handler never reads a path while another thread rewrites it.
std::atomic<bool> g_cleaning{false};

int register_interrupt_path(const std::string& path) noexcept {
  if (path.size() >= PATH_MAX) return -1;
  for (int i = 0; i < kMaxInterruptSlots; ++i) {
    InterruptSlot& slot = g_interrupt_slots[i];
    bool expected = false;
    if (!slot.claimed.compare_exchange_strong(expected, true)) continue;
    if (g_cleaning.load()) return -1;  // the process is being terminated
    std::memcpy(slot.storage, path.c_str(), path.size() + 1);
    slot.path.store(slot.storage);
    return i;
  }
  return -1;  // table full: the file is still safe, only its temporary may survive a signal
}

void unregister_interrupt_path(int index) noexcept {
  if (index < 0) return;
  g_interrupt_slots[index].path.store(nullptr);
  g_interrupt_slots[index].claimed.store(false);
}

extern "C" void remove_temporaries_and_reraise(int sig) {
  g_cleaning.store(true);
  for (InterruptSlot& slot : g_interrupt_slots) {
    if (const char* p = slot.path.load()) ::unlink(p);
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

// Blocks the cleanup signals in this thread while alive, so that a temporary file is never
// created without being registered for removal.
class CleanupSignalsBlocked {
 public:
  CleanupSignalsBlocked() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : kCleanupSignals) sigaddset(&set, sig);
    ::pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~CleanupSignalsBlocked() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  CleanupSignalsBlocked(const CleanupSignalsBlocked&) = delete;
  CleanupSignalsBlocked& operator=(const CleanupSignalsBlocked&) = delete;

 private:
  sigset_t old_;
};

// fsync of the directory holding `path`, so that a rename into it survives a power loss. Best
// effort: a directory the user may write but not read (mode -wx) cannot be opened, and some file
// systems cannot sync a directory (EINVAL); the file is complete either way. Returns 0 or errno.
int sync_parent_directory(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return 0;
  const int err = ::fsync(fd) == 0 || errno == EINVAL ? 0 : errno;
  ::close(fd);
  return err;
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
  for (int sig : kCleanupSignals) {
    struct sigaction old {};
    ::sigaction(sig, nullptr, &old);
    if (old.sa_handler == SIG_IGN) continue;  // ignored on purpose (nohup, background jobs): keep it so
    struct sigaction action {};
    action.sa_handler = remove_temporaries_and_reraise;
    sigemptyset(&action.sa_mask);
    ::sigaction(sig, &action, nullptr);
  }
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  temp_path_ = path_ + ".XXXXXX";
  const CleanupSignalsBlocked blocked;
  fd_ = ::mkostemp(temp_path_.data(), O_CLOEXEC);
  if (fd_ < 0) fail(ErrorCode::kIo, "cannot create a temporary file for '{}': {}", path_, std::strerror(errno));
  interrupt_slot_ = register_interrupt_path(temp_path_);
}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::discard() noexcept {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  ::unlink(temp_path_.c_str());  // before unregistering: a signal in between finds nothing to leak
  unregister_interrupt_path(interrupt_slot_);
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
  // The file is complete under its final name; a directory that cannot be synced only weakens
  // durability across a power loss, so it is a warning, not a failed write.
  if (const int dir_err = sync_parent_directory(path_); dir_err != 0) {
    EMBER_LOG_WARN("wrote '{}' but could not sync its directory: {}", path_, std::strerror(dir_err));
  }
}

}  // namespace ember
