// `ember serve` as a process: its command-line errors, an address in use, a missing model, and the
// SIGTERM lifecycle (bind, load, serve, drain, exit 0). Its HTTP API is tested by the Node client
// (tests/server/node) and the raw-HTTP corpus (tests/server/bad_requests.py).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "cli/cli_run.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::ember;
using test::kTiny;

TEST(ServeCli, BadCommandLinesExit2) {
  EXPECT_EQ(ember({"serve"}).exit_code, 2);  // no model
  EXPECT_EQ(ember({"serve", "-m", kTiny, "--port", "70000"}).exit_code, 2);
  EXPECT_EQ(ember({"serve", "-m", kTiny, "--parallel", "0"}).exit_code, 2);
  EXPECT_EQ(ember({"serve", "-m", kTiny, "--pooling", "max"}).exit_code, 2);
  EXPECT_EQ(ember({"serve", "-m", kTiny, "--api-key", "a", "--api-key-file", "/etc/hostname"}).exit_code, 2);
  EXPECT_EQ(ember({"serve", "-m", kTiny, "--ctx-size", "256", "--kv-tokens", "100"}).exit_code, 2);
  EXPECT_EQ(ember({"serve", "-m", kTiny, "--draft-max", "2", "--draft-min", "3"}).exit_code, 2);
  EXPECT_EQ(ember({"serve", "-m", kTiny, "--draft-max", "65"}).exit_code, 2);
  EXPECT_EQ(ember({"serve", "-m", kTiny, "--spec-ngram", "0"}).exit_code, 2);
  EXPECT_EQ(ember({"serve", "-m", kTiny, "--kv-type", "q4_0"}).exit_code, 2);
  const test::RunResult help = ember({"serve", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--api-key"), std::string::npos);
  EXPECT_NE(help.out.find("docs/server.md"), std::string::npos);
  EXPECT_NE(help.out.find("--model-draft"), std::string::npos);
  EXPECT_EQ(help.out.find("--draft-always"), std::string::npos);  // ember run's only
}

TEST(ServeCli, MissingModelOrKeyFileExit1) {
  const test::RunResult missing = ember({"serve", "-m", "/nonexistent/model.gguf", "--port", "0"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("/nonexistent/model.gguf"), std::string::npos) << missing.err;
  const test::RunResult no_draft =
      ember({"serve", "-m", kTiny, "--port", "0", "--model-draft", "/nonexistent/draft.gguf"});
  EXPECT_EQ(no_draft.exit_code, 1);
  EXPECT_NE(no_draft.err.find("/nonexistent/draft.gguf"), std::string::npos) << no_draft.err;

  const std::string empty = (test::temp_dir("serve_cli") / "key").string();
  std::ofstream(empty) << "\n";
  const test::RunResult no_key = ember({"serve", "-m", kTiny, "--port", "0", "--api-key-file", empty});
  EXPECT_EQ(no_key.exit_code, 1);
  EXPECT_NE(no_key.err.find("empty"), std::string::npos) << no_key.err;
}

TEST(ServeCli, AnAddressInUseIsAnError) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  const test::RunResult r = ember({"serve", "-m", kTiny, "--port", port});
  close(fd);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot listen on 127.0.0.1:" + port), std::string::npos) << r.err;
}

TEST(ServeCli, SigtermStopsTheServerWithExit0) {
  const fs::path err = test::temp_dir("serve_sigterm") / "err";
  // A shell keeps stderr in a file the test can watch while the server runs.
  test::RunningProcess server({"sh", "-c",
                               fmt::format("exec '{}' serve -m '{}' --port 0 -t 1 --kv-type q8_0 2>'{}'",
                                           EMBER_CLI_PATH, kTiny, err.string())});
  ASSERT_GT(server.pid(), 0);
  // SIGTERM once the model is loaded (a signal while loading takes the other path).
  for (int i = 0; i < 600 && test::read_file(err).find("ready:") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(test::read_file(err).find("ready:"), std::string::npos) << test::read_file(err);
  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  const test::RunResult r = server.finish();
  const std::string log = test::read_file(err);
  EXPECT_EQ(r.exit_code, 0) << log;
  EXPECT_NE(log.find("listening on http://127.0.0.1:"), std::string::npos) << log;
  // ember-tiny: 6 layers x K and V x 4 x 256 tokens x 6 kv heads x 68 bytes (a Q8_0 row of 64 values).
  EXPECT_NE(log.find(", KV cache 4.78 MiB q8_0 (1024 tokens)"), std::string::npos) << log;
  EXPECT_NE(log.find("terminating: finishing the running requests"), std::string::npos) << log;
  EXPECT_NE(log.find("\nember serve: stopped\n"), std::string::npos) << log;
}

}  // namespace
}  // namespace ember
