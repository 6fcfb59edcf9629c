// Subprocess helpers for CLI tests: posix_spawn with stdout/stderr redirected to files.
#include "cli/cli_run.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "support/test_data.h"

extern char** environ;

namespace ember::test {

namespace fs = std::filesystem;

pid_t spawn_with_default_signals(const std::vector<std::string>& args, const posix_spawn_file_actions_t& actions) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  if (posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), environ) != 0) pid = -1;
  posix_spawnattr_destroy(&attr);
  return pid;
}

RunningProcess::RunningProcess(const std::vector<std::string>& args, const std::string& stdin_path) {
  static const fs::path dir = temp_dir("cli_run");
  static std::atomic<int> counter{0};
  const int n = counter++;
  out_path_ = dir / fmt::format("out{}", n);
  err_path_ = dir / fmt::format("err{}", n);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_ = spawn_with_default_signals(args, actions);
  posix_spawn_file_actions_destroy(&actions);
}

RunningProcess::~RunningProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    finish();
  }
}

RunResult RunningProcess::finish() {
  if (pid_ <= 0) return {-1, "", "cannot start the process"};
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) continue;
  pid_ = -1;
  RunResult r{WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), read_file(out_path_),
              read_file(err_path_)};
  fs::remove(out_path_);
  fs::remove(err_path_);
  return r;
}

RunResult run(const std::vector<std::string>& args, const std::string& stdin_path) {
  return RunningProcess(args, stdin_path).finish();
}

std::string ember_binary() {
  const char* env = std::getenv("EMBER_CLI_PATH");
  return env != nullptr && *env != '\0' ? env : EMBER_CLI_PATH;
}

RunResult ember(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {ember_binary()};
  for (const std::string& a : args) argv.push_back(a);
  return run(argv);
}

RunResult ember_with_stdin(const std::vector<std::string>& args, const std::string& input) {
  static const fs::path dir = temp_dir("cli_stdin");
  static std::atomic<int> counter{0};
  const fs::path in_path = dir / fmt::format("in{}", counter++);
  {
    std::ofstream in(in_path, std::ios::binary);
    in.write(input.data(), static_cast<std::streamsize>(input.size()));
  }
  std::vector<std::string> argv = {ember_binary()};
  for (const std::string& a : args) argv.push_back(a);
  RunResult r = run(argv, in_path.string());
  fs::remove(in_path);
  return r;
}

PipedEmber::PipedEmber(const std::vector<std::string>& args, const fs::path& err_path, int pipe_bytes,
                       bool stdin_pipe) {
  int out[2], in[2] = {-1, -1};
  if (::pipe2(out, O_CLOEXEC) != 0) return;
  if (stdin_pipe && ::pipe2(in, O_CLOEXEC) != 0) return;
  ::fcntl(out[1], F_SETPIPE_SZ, pipe_bytes);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdin_pipe) {
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> argv = {ember_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_ = spawn_with_default_signals(argv, actions);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  out_fd_ = out[0];
  if (stdin_pipe) {
    ::close(in[0]);
    in_fd_ = in[1];
  }
}

PipedEmber::~PipedEmber() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    wait_status();
  }
  close_input();
  if (out_fd_ >= 0) ::close(out_fd_);
}

void PipedEmber::signal(int sig) const { ::kill(pid_, sig); }

void PipedEmber::write(const std::string& text) const {
  if (in_fd_ < 0 || ::write(in_fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    ADD_FAILURE() << "cannot write to the process's standard input";
  }
}

void PipedEmber::close_input() {
  if (in_fd_ >= 0) ::close(in_fd_);
  in_fd_ = -1;
}

std::string PipedEmber::read_some(std::chrono::milliseconds timeout) {
  pollfd p{out_fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return "";
  char buffer[4096];
  const ssize_t n = ::read(out_fd_, buffer, sizeof buffer);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
}

std::string PipedEmber::read_rest() {
  std::string out;
  for (std::string s = read_some(); !s.empty(); s = read_some()) out += s;
  return out;
}

int PipedEmber::pending() const {
  int n = 0;
  ::ioctl(out_fd_, FIONREAD, &n);
  return n;
}

int PipedEmber::wait_status() {
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) continue;
  pid_ = -1;
  return status;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

size_t count_lines(const std::string& text) { return static_cast<size_t>(std::ranges::count(text, '\n')); }

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
}

}  // namespace ember::test
