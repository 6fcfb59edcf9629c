// `ember run --device cuda` end to end on stories260K: llama.cpp's greedy text with every layer on
// the GPU and with a hybrid split, the stats panel's gpu line, and a model that does not fit the
// device refused with the numbers (the emulator's device size is set per process, so that part
// runs under the CUDA emulator only).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli_run.h"
#include "cuda/cuda_test_util.h"
#include "support/scoped_env.h"
#include "support/test_data.h"

namespace ember {
namespace {

using test::kStories;
const std::string kGreedyText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

test::RunResult run_cuda(const std::string& model, std::vector<std::string> flags) {
  std::vector<std::string> args = {"run", "-m", model, "--temp", "0", "-p", "Once upon a time", "-n", "40"};
  args.insert(args.end(), flags.begin(), flags.end());
  return test::ember(args);
}

TEST(CudaCli, GreedyTextOnTheGpuAndHybridIsLlamaCpps) {
  EMBER_REQUIRE_GPU();
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string model = (data / kStories).string();
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--device", "cuda"}, std::vector<std::string>{"-ngl", "3"}}) {
    const test::RunResult r = run_cuda(model, flags);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind(kGreedyText, 0), 0u) << flags[0] << ": " << r.out;
    EXPECT_NE(r.err.find("  gpu "), std::string::npos) << r.err;
  }
}

TEST(CudaCli, AModelThatDoesNotFitIsRefusedWithTheNumbers) {
  EMBER_REQUIRE_GPU();
#ifndef EMBER_CUDA_EMULATED
  GTEST_SKIP() << "needs the CUDA emulator's configurable device size";
#else
  EMBER_SHARED_DATA_OR_SKIP(data);
  const test::RunResult r = [&] {
    const test::ScopedEnv small("EMBER_CUDA_EMULATOR_MEMORY", "256");  // MiB: less than the headroom alone
    return run_cuda((data / kStories).string(), {"--device", "cuda"});
  }();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("MiB free of 256 MiB: offload fewer layers (--gpu-layers N)"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("Assertion"), std::string::npos) << r.err;
#endif
}

// One HTTP/1.1 request to 127.0.0.1:port, the connection closed after it: the whole response.
std::string http_post(int port, const std::string& path, const std::string& body) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = fmt::format(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
        "Connection: close\r\n\r\n{}",
        path, body.size(), body);
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) response.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return response;
}

// `ember serve --device cuda`: the ready line names the GPU, and two concurrent completions (one
// engine step batches both sequences through the GPU layers) each give llama.cpp's greedy text.
TEST(CudaCli, ServeOnTheGpuAnswersConcurrentCompletions) {
  EMBER_REQUIRE_GPU();
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::filesystem::path err = test::temp_dir("cuda_serve") / "err";
  test::RunningProcess server({"sh", "-c",
                               fmt::format("exec '{}' serve -m '{}' --port 0 -t 1 --device cuda 2>'{}'",
                                           test::ember_binary(), (data / kStories).string(), err.string())});
  ASSERT_GT(server.pid(), 0);
  for (int i = 0; i < 1200 && test::read_file(err).find("ready:") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string log = test::read_file(err);
  ASSERT_NE(log.find("ready:"), std::string::npos) << log;
  EXPECT_NE(log.find("; gpu: "), std::string::npos) << log;
  const size_t at = log.find("listening on http://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << log;
  const int port = std::stoi(log.substr(at + std::string("listening on http://127.0.0.1:").size()));
  const std::string body = R"({"prompt": "Once upon a time", "max_tokens": 40, "temperature": 0})";
  std::string replies[2];
  std::thread second([&] { replies[1] = http_post(port, "/v1/completions", body); });
  replies[0] = http_post(port, "/v1/completions", body);
  second.join();
  for (const std::string& reply : replies) {
    const size_t json_at = reply.find("\r\n\r\n");
    ASSERT_NE(json_at, std::string::npos) << reply;
    const nlohmann::json j = nlohmann::json::parse(reply.substr(json_at + 4), nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << reply;
    const std::string text = "Once upon a time" + j["choices"][0]["text"].get<std::string>();
    EXPECT_EQ(text.rfind(kGreedyText, 0), 0u) << text;
  }
  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  EXPECT_EQ(server.finish().exit_code, 0) << test::read_file(err);
}

}  // namespace
}  // namespace ember
