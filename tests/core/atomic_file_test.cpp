// AtomicFile: the final path appears only on commit; errors and signals leave no temporary file.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "ember/error.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::entries_in;
using test::read_file;

TEST(AtomicFile, CommitRenamesIntoPlace) {
  const fs::path dir = test::temp_dir("atomic_commit");
  const fs::path path = dir / "out.bin";
  {
    std::ofstream(path) << "old contents";
    AtomicFile f(path.string());
    const std::string text = "new contents";
    f.write(std::as_bytes(std::span(text)));
    f.write_zeros(5000);
    EXPECT_EQ(f.bytes_written(), text.size() + 5000);
    EXPECT_EQ(entries_in(dir), 2u);  // the old file and the temporary
    std::ifstream before(path);
    std::string first;
    before >> first;
    EXPECT_EQ(first, "old");  // untouched until commit
    f.commit();
  }
  EXPECT_EQ(entries_in(dir), 1u);
  EXPECT_EQ(fs::file_size(path), 12u + 5000u);
}

TEST(AtomicFile, DestroyedWithoutCommitLeavesNothing) {
  const fs::path dir = test::temp_dir("atomic_discard");
  {
    AtomicFile f((dir / "out.bin").string());
    f.write_zeros(10);
    EXPECT_TRUE(fs::exists(f.temp_path()));
  }
  EXPECT_EQ(entries_in(dir), 0u);
  EXPECT_THROW(AtomicFile((dir / "no/such/dir.bin").string()), Error);
}

// A signal while a file is open removes its temporary and still terminates the process with that
// signal (tested in a child process).
TEST(AtomicFile, InterruptRemovesTheTemporary) {
  const fs::path dir = test::temp_dir("atomic_signal");
  for (int sig : {SIGINT, SIGTERM}) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      try {  // never unwind into gtest inside the child
        install_interrupt_cleanup();
        AtomicFile f((dir / "out.bin").string());
        f.write_zeros(100);
        std::raise(sig);
      } catch (...) {
        ::_exit(99);
      }
      ::_exit(0);  // not reached
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFSIGNALED(status));
    if (WIFSIGNALED(status)) {
      EXPECT_EQ(WTERMSIG(status), sig);
    }
    EXPECT_EQ(entries_in(dir), 0u) << "temporary left after signal " << sig;
  }
}

// A signal the user chose to ignore (nohup, background jobs) stays ignored.
TEST(AtomicFile, IgnoredSignalsStayIgnored) {
  const fs::path dir = test::temp_dir("atomic_ignored");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {  // never unwind into gtest inside the child
      std::signal(SIGHUP, SIG_IGN);
      install_interrupt_cleanup();
      AtomicFile f((dir / "out.bin").string());
      std::raise(SIGHUP);
      f.commit();
    } catch (...) {
      ::_exit(99);
    }
    ::_exit(7);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 7);
  EXPECT_TRUE(fs::exists(dir / "out.bin"));
}

// A write that fails half-way (here the file size limit, as a full disk would) is an Error naming
// the final path, and the temporary is gone.
TEST(AtomicFile, WriteFailureIsAnErrorAndLeavesNothing) {
  const fs::path dir = test::temp_dir("atomic_write_failure");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::signal(SIGXFSZ, SIG_IGN);  // fail with EFBIG instead of being killed
    const rlimit limit{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    int code = 1;
    try {
      AtomicFile f((dir / "out.bin").string());
      f.write_zeros(10000);
    } catch (const Error& e) {
      code = std::string(e.what()).find("out.bin") != std::string::npos ? 0 : 2;
    } catch (...) {
      code = 3;
    }
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: no error, 2: the message does not name the file";
  EXPECT_EQ(entries_in(dir), 0u);
}

}  // namespace
}  // namespace ember
