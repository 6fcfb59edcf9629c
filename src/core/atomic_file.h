// AtomicFile: writes a file under a temporary name and renames it into place on commit(), so the
// final path only ever holds a complete file — even after an error, an exception or Ctrl-C.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace ember {

class AtomicFile {
 public:
  // Creates a unique temporary file next to `path` (mkostemp: never follows a planted symlink).
  // Throws Error(kIo) naming the path.
  explicit AtomicFile(std::string path);
  // Removes the temporary file unless commit() succeeded.
  ~AtomicFile();

  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends bytes; throws Error(kIo) naming the final path (a full disk, for instance).
  void write(std::span<const std::byte> bytes);
  void write_zeros(uint64_t n);
  uint64_t bytes_written() const noexcept { return written_; }

  // Gives the file the mode open(path, 0666) would under the umask, syncs it, renames it to the
  // final path and syncs the directory (best effort: a warning when that fails, the file being
  // complete). Throws Error(kIo); the temporary file is removed on failure.
  void commit();

  const std::string& path() const noexcept { return path_; }
  const std::string& temp_path() const noexcept { return temp_path_; }

 private:
  void discard() noexcept;

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  int interrupt_slot_ = -1;  // index in the interrupt cleanup table, -1 when not registered
  uint64_t written_ = 0;
};

// Installs SIGINT/SIGTERM/SIGHUP handlers that remove the temporary files of every AtomicFile still
// open, then let the signal terminate the process as it would have (exit status 128 + signal).
// Call once from main() of a tool that writes files; without it temporaries survive a Ctrl-C (the
// final path is still never half-written). Signals the process ignores (nohup) stay ignored. The
// kernel runs the handler on a thread that does not block the signal: ThreadPool workers block
// them, so it runs on an application thread.
void install_interrupt_cleanup();

}  // namespace ember
