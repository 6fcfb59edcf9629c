// Running the `ember` binary (or any program) as a subprocess in CLI tests, output captured; and
// the small text helpers those tests share.
#pragma once

#include <spawn.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace ember::test {

struct RunResult {
  int exit_code = -1;  // 128 + signal when the process was killed
  std::string out;
  std::string err;
};

// Starts args[0] (searched in PATH) with `actions` applied, every signal at its default disposition
// and none blocked, whatever the test runner ignores or blocks: the commands under test decide for
// themselves how to handle Ctrl-C. Returns the pid, or -1 when the process cannot start.
pid_t spawn_with_default_signals(const std::vector<std::string>& args, const posix_spawn_file_actions_t& actions);

// Runs args[0] (searched in PATH) with stdin from `stdin_path` (/dev/null by default) and
// stdout/stderr captured separately.
RunResult run(const std::vector<std::string>& args, const std::string& stdin_path = "/dev/null");
// The ember binary under test: the build's (EMBER_CLI_PATH at compile time), or $EMBER_CLI_PATH
// where the tests run away from their build tree (scripts/device-check.sh on a lent GPU machine).
std::string ember_binary();
// Runs the ember binary under test with `args`.
RunResult ember(const std::vector<std::string>& args);
// Runs the ember binary under test with `args` and `input` as its standard input.
RunResult ember_with_stdin(const std::vector<std::string>& args, const std::string& input);

// The lines of a command's output, without their newlines.
std::vector<std::string> lines_of(const std::string& text);
// How many newlines `text` holds.
size_t count_lines(const std::string& text);
// Writes `text` as the whole file at `path` (an input for the command under test).
void write_text(const std::filesystem::path& path, const std::string& text);

// A running process whose output goes to files; finish() waits and collects it.
class RunningProcess {
 public:
  explicit RunningProcess(const std::vector<std::string>& args, const std::string& stdin_path = "/dev/null");
  ~RunningProcess();
  pid_t pid() const noexcept { return pid_; }
  RunResult finish();

 private:
  pid_t pid_ = -1;
  std::string out_path_, err_path_;
};

// A running `ember` (the binary under test) whose stdout is a pipe the test reads (a buffer of
// `pipe_bytes`), stderr a file, and stdin /dev/null or, with `stdin_pipe`, a pipe the test writes:
// for tests that signal it mid-run. Killed, if still running, when destroyed.
class PipedEmber {
 public:
  PipedEmber(const std::vector<std::string>& args, const std::filesystem::path& err_path, int pipe_bytes = 1 << 16,
             bool stdin_pipe = false);
  ~PipedEmber();
  PipedEmber(const PipedEmber&) = delete;
  PipedEmber& operator=(const PipedEmber&) = delete;

  bool started() const noexcept { return pid_ > 0; }
  void signal(int sig) const;
  // To its standard input (stdin_pipe); close_input() ends it.
  void write(const std::string& text) const;
  void close_input();
  // Bytes from stdout: waits up to `timeout` for some; "" at the end of the output or on timeout.
  std::string read_some(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  std::string read_rest();
  // Bytes waiting in the pipe.
  int pending() const;
  int wait_status();

 private:
  pid_t pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
};

}  // namespace ember::test
