// `ember serve -m MODEL`: the OpenAI-compatible HTTP server (docs/server.md) — binds first (so
// /health answers 503 while the model loads), serves until SIGTERM / SIGINT, then drains: new
// requests get 503, running streams finish (or are cancelled after --shutdown-timeout), exit 0.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/console.h"
#include "cli/device_flags.h"
#include "cli/number_range.h"
#include "cli/speculative_flags.h"
#include "cli/word_option.h"
#include "core/check.h"
#include "core/text_escape.h"
#include "core/thread_pool.h"
#include "core/whole_file.h"
#include "model/kv_cache.h"
#include "server/api_server.h"
#include "server/http_server.h"

namespace ember::cli {
namespace {

// How long the exit waits for httplib's connection threads (its keep-alive wait is 5 s).
constexpr std::chrono::seconds kListenerGrace{6};

std::string read_api_key_file(const std::string& path) {
  std::string key = read_whole_file(path, "the API key file");
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ' || key.back() == '\t')) {
    key.pop_back();
  }
  if (key.empty()) fail(ErrorCode::kInvalidArgument, "the API key file '{}' is empty", path);
  if (key.find_first_of("\r\n") != std::string::npos) {
    fail(ErrorCode::kInvalidArgument, "the API key file '{}' holds more than one line", path);
  }
  return key;
}

// What the signal thread shares with run_serve (it is detached: it holds this, not run_serve's frame).
struct SignalState {
  enum Phase { kLoading, kServing, kEnding };
  sigset_t signals;
  std::mutex mutex;
  std::condition_variable signalled;
  Phase phase = kLoading;
  int count = 0;  // signals since the model loaded
  int first = 0;
  std::atomic<bool> hurry{false};  // a second signal: cancel the running requests now
};

bool is_loopback(const std::string& host) { return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0; }

int run_serve(server::ServerOptions o, const std::string& api_key_file) {
  if (!api_key_file.empty()) o.api_key = read_api_key_file(api_key_file);
  if (!is_loopback(o.host) && o.api_key.empty()) {
    fmt::print(stderr, "ember serve: warning: listening on {} without --api-key: anyone who can reach it may use it\n",
               o.host);
  }
  // Every thread started from here on (HTTP workers, the engine, the compute pool) inherits this
  // mask: the signals reach only the signal thread's sigwait.
  auto state = std::make_shared<SignalState>();
  sigemptyset(&state->signals);
  sigaddset(&state->signals, SIGTERM);
  sigaddset(&state->signals, SIGINT);
  sigaddset(&state->signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &state->signals, nullptr);

  server::ApiServer api(o);
  server::HttpServer http(api, o);
  const int port = http.bind();
  std::atomic<bool> listen_returned{false};
  std::thread listener([&http, &listen_returned] {
    http.listen();
    listen_returned.store(true);
  });
  // httplib's stop() is lost if it comes before listen() has started its loop: wait for it.
  while (!http.running() && !listen_returned.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  fmt::print(stderr, "ember serve: listening on http://{}:{}\n",
             o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host, port);
  std::fflush(stderr);

  // The signals: the first starts the drain (or, while the model loads, ends the process); a
  // second one during the drain cancels what still runs. The thread is detached and outlives this
  // function, so everything it touches is in the shared state.
  std::thread([state] {
    for (;;) {
      int signal_number = 0;
      if (sigwait(&state->signals, &signal_number) != 0) continue;
      std::lock_guard lock(state->mutex);
      if (state->phase == SignalState::kLoading) {
        fmt::print(stderr, "ember serve: stopped while loading the model\n");
        std::_Exit(kExitOk);
      }
      if (state->phase == SignalState::kEnding) continue;  // a failed load is on its way out
      if (++state->count == 1) state->first = signal_number;
      if (state->count >= 2) state->hurry.store(true);
      state->signalled.notify_all();
    }
  }).detach();

  try {
    api.load();
  } catch (...) {
    {
      std::lock_guard lock(state->mutex);
      state->phase = SignalState::kEnding;  // the load error is the exit status, not a late signal
    }
    http.stop();
    listener.join();
    throw;
  }
  const std::string gpu = gpu_summary(api.model(), ", ");
  const KvCache& kv = api.kv_cache();
  fmt::print(
      stderr,
      "ember serve: ready: model '{}', context {} tokens, {} parallel sequences, KV cache {} {} ({} tokens){}{}\n",
      one_line_text(api.model_name()), api.context(), o.parallel, human_bytes(kv.bytes()), dtype_name(kv.k_dtype()),
      int64_t{kv.n_blocks()} * kKvBlockTokens, gpu.empty() ? "" : "; gpu: " + gpu, o.no_ui ? "" : "; chat UI at /");
  std::fflush(stderr);

  int first_signal = 0;
  {
    std::unique_lock lock(state->mutex);
    state->phase = SignalState::kServing;
    state->signalled.wait(lock, [&] { return state->count > 0; });
    first_signal = state->first;
  }
  fmt::print(stderr, "ember serve: {}: finishing the running requests (at most {} s; again to cancel them)\n",
             first_signal == SIGINT ? "interrupted" : "terminating", o.shutdown_timeout_s);
  std::fflush(stderr);
  api.drain(std::chrono::milliseconds(static_cast<int64_t>(o.shutdown_timeout_s * 1000)), &state->hurry);
  http.stop();
  // listen() returns once httplib has joined its connection threads. An idle keep-alive connection
  // ends within 5 s, but a client that sends a byte of its request now and then keeps its thread
  // reading for ever (each read returns within --timeout): past the grace, exit without waiting
  // (nothing is left to do; the OS closes the sockets).
  const auto give_up = std::chrono::steady_clock::now() + kListenerGrace;
  while (!listen_returned.load() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!listen_returned.load()) {
    fmt::print(stderr, "ember serve: stopped (closing connections that were still sending)\n");
    std::fflush(stderr);
    std::_Exit(kExitOk);
  }
  listener.join();
  fmt::print(stderr, "ember serve: stopped\n");
  return kExitOk;
}

}  // namespace

void add_serve_command(CLI::App& app, CommandAction& action) {
  auto o = std::make_shared<server::ServerOptions>();
  auto api_key_file = std::make_shared<std::string>();
  auto pooling = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  cmd->add_option("-m,--model", o->model_path, "GGUF model file")->required()->type_name("FILE");
  cmd->add_option("--host", o->host, "Address to listen on (default 127.0.0.1: this machine only)");
  cmd->add_option("--port", o->port, "Port (0: any free port, printed)")->check(NumberRange(0, 65535));
  cmd->add_option("--parallel,--np", o->parallel, "Sequences decoded together (default 4)")
      ->check(NumberRange(1, 1024));
  cmd->add_option("-c,--ctx-size", o->ctx_size, "Tokens per sequence (default: the model's, at most 4096)")
      ->check(NumberRange(0, 1 << 24));
  cmd->add_option("--kv-tokens", o->kv_tokens, "KV cache size in tokens, shared (default: ctx-size x parallel)")
      ->check(NumberRange(0, 1 << 30));
  add_kv_type_flag(cmd, &o->kv_type);
  cmd->add_option("--max-queue", o->max_queue, "Requests waiting beyond the running ones; more get 503 (default 64)")
      ->check(NumberRange(0, 4096));
  cmd->add_option("-t,--threads", o->threads, "Compute threads (default 0: every CPU)")
      ->check(NumberRange(0, ThreadPool::kMaxThreads));
  auto* key = cmd->add_option("--api-key", o->api_key, "Require 'Authorization: Bearer KEY' (not for /health)");
  auto* key_file =
      cmd->add_option("--api-key-file", *api_key_file, "Read the API key from a file (one line)")->type_name("FILE");
  key->excludes(key_file);
  cmd->add_option("--alias", o->alias, "The model's name in /v1/models and responses (default: the file name)");
  cmd->add_option("--cors-origin", o->cors_origin, "Allow browsers from this origin ('*': any; default: none)");
  cmd->add_option("--chat-template", o->chat_template, "Chat template: a preset name or a .jinja file");
  one_of(cmd->add_option("--pooling", *pooling,
                         "Embeddings' pooling: mean, cls or last (default: the model's, else mean)"),
         {"mean", "cls", "last"});
  cmd->add_flag("--no-ui", o->no_ui, "Serve no page at /");
  cmd->add_flag(
      "--no-prefix-cache", [o](int64_t) { o->prefix_cache = false; },
      "Compute every prompt in full (no reuse of earlier prompts' KV)");
  cmd->add_flag("--deterministic", o->batch_invariant,
                "Results independent of the load: a seed gives the same text alone or in a full batch "
                "(slower prefill of F16 / BF16 weights, and of every type without AVX-512; on AMD AVX-512 "
                "CPUs slower decode of quantized weights)");
  auto device = std::make_shared<DeviceFlags>();
  add_device_flags(cmd, device.get());
  cmd->add_option("--max-body", o->max_body, "Largest request body in bytes (default 8 MiB)")
      ->check(NumberRange(size_t{1024}, size_t{1} << 31));
  cmd->add_option("--timeout", o->read_timeout_s, "Seconds a client may stall while sending or receiving (default 10)")
      ->check(NumberRange(1, 3600));
  cmd->add_option("--shutdown-timeout", o->shutdown_timeout_s,
                  "On SIGTERM, seconds the running requests get to finish before they are cancelled (default 30)")
      ->check(NumberRange(0.0, 86400.0));
  add_speculative_flags(cmd, o->speculative, o->draft_model_path, /*server=*/true);
  cmd->footer(
      "Endpoints: POST /v1/chat/completions, /v1/completions (stream or not), /v1/embeddings, /tokenize,\n"
      "/detokenize, /apply-template; GET /v1/models, /health (503 while loading), /metrics (Prometheus).\n"
      "Prints \"listening on http://HOST:PORT\" on stderr once bound. SIGTERM or Ctrl-C: stop taking requests,\n"
      "let the running ones finish (--shutdown-timeout), exit 0. Exit codes: 1 error (the model, the address),\n"
      "2 bad command line. More in docs/server.md.");
  cmd->callback([&action, o, api_key_file, pooling, device, cmd] {
    o->gpu_layers = resolve_gpu_layers(*device);
    resolve_speculative_flags(*cmd, o->speculative, o->draft_model_path);
    if (!pooling->empty()) {
      o->pooling_set = true;
      o->pooling = *pooling == "cls" ? Pooling::kCls : *pooling == "last" ? Pooling::kLast : Pooling::kMean;
    }
    if (o->kv_tokens > 0 && o->ctx_size > 0 && o->kv_tokens < o->ctx_size) {
      throw CLI::ValidationError("--kv-tokens", "must hold at least one --ctx-size");
    }
    action = [o, api_key_file] { return run_serve(*o, *api_key_file); };
  });
}

}  // namespace ember::cli
