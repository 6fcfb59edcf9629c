// Subprocess helpers for CLI tests: posix_spawn with stdout/stderr redirected to files.
#include "cli/cli_run.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <fstream>

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

RunResult ember(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {EMBER_CLI_PATH};
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
  std::vector<std::string> argv = {EMBER_CLI_PATH};
  for (const std::string& a : args) argv.push_back(a);
  RunResult r = run(argv, in_path.string());
  fs::remove(in_path);
  return r;
}

}  // namespace ember::test
