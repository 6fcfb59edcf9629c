// `ember bench -m MODEL [-p 512] [-n 128] [-d 0] [-r 5] [-t N] [-o md|csv|json]`: llama-bench-like
// throughput of prefill (ppN: N prompt tokens in one batch) and decode (tgN: N tokens one at a
// time), each after a warm-up with the weights resident and optionally with D tokens already in
// the KV cache ("ppN @ dD"), with the achieved GB/s (decode) and GFLOP/s (prefill) next to this
// machine's measured roofline.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "cli/bench_cost.h"
#include "cli/command_checks.h"
#include "cli/commands.h"
#include "cli/console.h"
#include "cli/device_flags.h"
#include "cli/inspect_report.h"
#include "cli/number_range.h"
#include "cli/text_table.h"
#include "cli/word_option.h"
#include "core/text_escape.h"
#include "core/timer.h"
#include "cpu/roofline.h"
#include "ember/error.h"
#include "model/model.h"

namespace ember::cli {
namespace {

struct BenchOptions {
  std::vector<std::string> models;
  std::vector<int> prompt_lengths{512};
  std::vector<int> gen_lengths{128};
  std::vector<int> depths{0};  // tokens in the cache before each test (llama-bench's -d)
  int repetitions = 5;
  std::vector<int> threads{0};
  int step_tokens = 512;
  std::string output = "md";
  bool roofline = true;
  DeviceFlags device;
  DType kv_type = DType::kF16;
  // What each decode step returns: "logits" (the whole row, as llama-bench), "token" (the greedy
  // token: Batch::kToken, chosen on the GPU when the head is there), "top-k" (the best 40 logits:
  // Batch::kTopK, as sampling with llama.cpp's default chain asks).
  std::string decode_output = "logits";
};

constexpr int32_t kBenchTopK = 40;

struct Result {
  std::string model_path, model_name, type, isa;
  std::string kv_type;  // the KV cache's K and V type ("f16", "q8_0", ...)
  uint64_t size_bytes = 0, params = 0;
  int threads = 0;
  std::string test;  // "pp512", "tg128", "tg128 @ d4096"
  int n_tokens = 0;
  int depth = 0;                          // tokens in the cache before the test
  std::vector<double> tokens_per_second;  // one per repetition
  double mean = 0, sd = 0, median = 0;
  double rate = 0;        // GB/s (tg) or GFLOP/s (pp) at the median
  double roofline = 0;    // the machine's limit in the same unit (0: not measured)
  std::string rate_unit;  // "GB/s" or "GFLOP/s"
};

void summarize(Result& r) {
  std::vector<double> v = r.tokens_per_second;
  const auto n = static_cast<double>(v.size());
  r.mean = std::accumulate(v.begin(), v.end(), 0.0) / n;
  double ss = 0;
  for (double x : v) ss += (x - r.mean) * (x - r.mean);
  r.sd = v.size() > 1 ? std::sqrt(ss / (n - 1)) : 0.0;
  std::sort(v.begin(), v.end());
  r.median = v.size() % 2 == 1 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

class Bencher {
 public:
  Bencher(Model& model, int max_tokens, DType kv_type, std::string_view decode_output) : model_(model) {
    decode_output_ = decode_output == "token"   ? Batch::kToken
                     : decode_output == "top-k" ? Batch::kTopK
                                                : Batch::kLogits;
    kv_ = std::make_unique<KvCache>(model.config(), model.kv_options(max_tokens + kKvBlockTokens, kv_type, kv_type));
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<int32_t> id(0, model.config().n_vocab - 1);
    tokens_.resize(static_cast<size_t>(max_tokens));
    for (int32_t& t : tokens_) t = id(rng);
  }

  const KvCache& kv() const { return *kv_; }

  // Fills the context the next tests start from: `depth` tokens in the cache, prefilled (untimed)
  // in steps of the model's step size, in place of the previous context.
  void set_depth(int depth) {
    if (seq_ >= 0) kv_->remove_sequence(seq_);
    seq_ = kv_->add_sequence();
    depth_ = depth;
    if (depth == 0) return;
    Batch batch;
    for (int i = 0; i < depth; ++i) batch.add(tokens_[static_cast<size_t>(i)], i, seq_, i + 1 == depth);
    model_.forward(batch, *kv_);
  }

  // Seconds for a prompt of n tokens in one batch (logits for its last row, as a prompt wants).
  double prefill(int n) {
    Batch batch;
    for (int i = 0; i < n; ++i) batch.add(token(depth_ + i), depth_ + i, seq_, i + 1 == n);
    Timer timer;
    model_.forward(batch, *kv_);
    const double seconds = timer.elapsed_seconds();
    kv_->truncate(seq_, depth_);
    return seconds;
  }

  // Seconds for n decode steps of one token each after the context.
  double decode(int n) {
    Batch batch;
    Timer timer;
    for (int i = 0; i < n; ++i) {
      batch.clear();
      batch.add(token(depth_ + i), depth_ + i, seq_, decode_output_);
      if (decode_output_ == Batch::kTopK) batch.top_k = std::min(kBenchTopK, model_.config().n_vocab);
      model_.forward(batch, *kv_);
    }
    const double seconds = timer.elapsed_seconds();
    kv_->truncate(seq_, depth_);
    return seconds;
  }

 private:
  int32_t token(int position) const { return tokens_[static_cast<size_t>(position)]; }

  Model& model_;
  Batch::RowOutput decode_output_ = Batch::kLogits;
  std::unique_ptr<KvCache> kv_;
  std::vector<int32_t> tokens_;
  SeqId seq_ = -1;  // the context every test runs after
  int depth_ = 0;   // its length
};

// "pp512", or "pp512 @ d4096" after a context (llama-bench's names).
std::string test_name(std::string_view kind, int n, int depth, std::string_view suffix) {
  std::string name = fmt::format("{}{}{}", kind, n, suffix);
  if (depth > 0) name += fmt::format(" @ d{}", depth);
  return name;
}

double peak_for(const Roofline& roofline, DType type) {
  switch (type) {
    case DType::kF32:
    case DType::kF16: return roofline.fma_gflops;
    case DType::kBF16: return roofline.bf16_gflops > 0 ? roofline.bf16_gflops : roofline.fma_gflops;
    default: return roofline.vnni_gops > 0 ? roofline.vnni_gops : roofline.fma_gflops;
  }
}

std::vector<Result> bench_model(const BenchOptions& o, const std::string& path, int threads,
                                const std::optional<Roofline>& roofline) {
  CpuBackendOptions backend_options;
  backend_options.n_threads = threads;
  CpuBackend backend(backend_options);
  ModelOptions model_options;
  model_options.max_step_tokens = o.step_tokens;
  model_options.gpu_layers = resolve_gpu_layers(o.device);
  std::unique_ptr<Model> model = Model::load(path, backend, model_options);
  // On the GPU the limits are the device's: its copy bandwidth and f16 tensor-core rate.
  std::optional<Roofline> gpu_roofline;
  if (model->gpu() != nullptr && o.roofline) {
    const GpuRoofline g = model->gpu()->measure_roofline();
    gpu_roofline.emplace();
    gpu_roofline->read_gbs_all = g.copy_gbs;
    gpu_roofline->fma_gflops = g.f16_tflops * 1e3;
    gpu_roofline->bf16_gflops = g.f16_tflops * 1e3;
    gpu_roofline->vnni_gops = g.f16_tflops * 1e3;
  }
  const std::optional<Roofline>& limits = model->gpu() != nullptr ? gpu_roofline : roofline;
  const int max_pp = o.prompt_lengths.empty() ? 0 : *std::max_element(o.prompt_lengths.begin(), o.prompt_lengths.end());
  const int max_tg = o.gen_lengths.empty() ? 0 : *std::max_element(o.gen_lengths.begin(), o.gen_lengths.end());
  const int max_depth = *std::max_element(o.depths.begin(), o.depths.end());
  const int longest_test = std::max(max_pp, max_tg);
  // As llama-bench: measured anyway (speed does not depend on what the positions mean).
  if (const int32_t trained = model->config().context_length; trained > 0 && max_depth + longest_test > trained) {
    print_warning(fmt::format("{}: depth {} + {} tokens passes the model's training context of {}", path, max_depth,
                              longest_test, trained));
  }
  Bencher bencher(*model, max_depth + std::max(longest_test, 1), o.kv_type, o.decode_output);
  const ModelCost cost = model_cost(*model, &bencher.kv());
  const DType main_type = model->weights().layers.at(0).wo.dtype();

  Result base;
  base.model_path = path;
  base.model_name = model->config().name.empty() ? std::string(arch_name(model->config().arch)) : model->config().name;
  base.type = model_type_label(model->files());
  base.kv_type = std::string(dtype_name(o.kv_type));
  // "cuda" with every layer and the head on the GPU, else "cuda:N+<cpu kernels>" for N offloaded layers.
  if (const GpuLayers* gpu = model->gpu(); gpu == nullptr) {
    base.isa = backend.kernels_name();
  } else if (gpu->first_layer() == 0 && gpu->runs_output()) {
    base.isa = "cuda";
  } else {
    base.isa = fmt::format("cuda:{}+{}", model->config().n_layer - gpu->first_layer(), backend.kernels_name());
  }
  base.size_bytes = model->weight_bytes();
  base.params = model->parameter_count();
  base.threads = backend.n_threads();

  std::vector<Result> results;
  // Depth by depth, as llama-bench orders its tests: one context prefill per depth.
  const bool tty = isatty(STDERR_FILENO) != 0;
  for (int depth : o.depths) {
    if (tty && depth > 0) write_stderr(fmt::format("filling a context of {} tokens...\n", depth));
    bencher.set_depth(depth);
    for (int n : o.prompt_lengths) {
      Result r = base;
      r.test = test_name("pp", n, depth, "");
      r.n_tokens = n;
      r.depth = depth;
      bencher.prefill(n);  // warm-up: pages in the weights, sizes the logits
      for (int i = 0; i < o.repetitions; ++i) r.tokens_per_second.push_back(n / bencher.prefill(n));
      summarize(r);
      r.rate = r.median * prefill_flop_per_token(cost, n, depth) / 1e9;
      r.rate_unit = "GFLOP/s";
      if (limits) r.roofline = peak_for(*limits, main_type);
      results.push_back(std::move(r));
    }
    for (int n : o.gen_lengths) {
      Result r = base;
      r.test = test_name("tg", n, depth, o.decode_output == "logits" ? "" : "-" + o.decode_output);
      r.n_tokens = n;
      r.depth = depth;
      bencher.decode(std::min(n, 4));  // warm-up
      for (int i = 0; i < o.repetitions; ++i) r.tokens_per_second.push_back(n / bencher.decode(n));
      summarize(r);
      r.rate = r.median * decode_bytes_per_token(cost, n, depth) / 1e9;  // weights and KV rows read per token
      r.rate_unit = "GB/s";
      if (limits) r.roofline = limits->read_gbs_all;
      results.push_back(std::move(r));
    }
  }
  return results;
}

std::string roofline_cell(const Result& r) {
  if (r.roofline <= 0) return fmt::format("{:.1f} {}", r.rate, r.rate_unit);
  return fmt::format("{:.1f} {} ({:.0f}% of {:.0f})", r.rate, r.rate_unit, 100.0 * r.rate / r.roofline, r.roofline);
}

std::string render_md(const std::vector<Result>& results) {
  std::vector<std::vector<std::string>> rows = {
      {"model", "size", "params", "type", "isa", "threads", "test", "t/s", "median t/s", "throughput (of roofline)"}};
  for (const Result& r : results) {
    // The name is the file's text: on one line, its '|' escaped as Markdown wants inside a table.
    std::string name;
    for (const char ch : one_line_text(r.model_name)) name += ch == '|' ? std::string("\\|") : std::string(1, ch);
    rows.push_back({name, human_bytes(r.size_bytes), human_count(r.params), r.type, r.isa, std::to_string(r.threads),
                    r.test, fmt::format("{:.2f} ± {:.2f}", r.mean, r.sd), fmt::format("{:.2f}", r.median),
                    roofline_cell(r)});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], text_width(row[i]));
  }
  const auto numeric = [](size_t col) { return col == 1 || col == 2 || col == 5 || col >= 7; };
  std::string out;
  for (size_t ri = 0; ri < rows.size(); ++ri) {
    out += "|";
    for (size_t i = 0; i < rows[ri].size(); ++i) {
      const std::string& cell = rows[ri][i];
      const std::string pad(width[i] - text_width(cell), ' ');
      const bool right = numeric(i) && ri > 0;
      out += ' ';
      out += right ? pad : cell;
      out += right ? cell : pad;
      out += " |";
    }
    out += "\n";
    if (ri == 0) {
      out += "|";
      for (size_t i = 0; i < width.size(); ++i) {
        out.append(width[i] + 1, '-');
        out += numeric(i) ? ":|" : "-|";
      }
      out += "\n";
    }
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

std::string render_csv(const std::vector<Result>& results) {
  std::string out =
      "model_path,model,type,isa,size_bytes,params,threads,test,n_tokens,n_depth,avg_ts,stddev_ts,median_ts,"
      "samples_ts,rate,rate_unit,roofline\n";
  for (const Result& r : results) {
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{:.4f},{:.4f},{:.4f},\"{:.4f}\",{:.3f},{},{:.3f}\n",
                       csv_field(r.model_path), csv_field(one_line_text(r.model_name)), r.type, r.isa, r.size_bytes,
                       r.params, r.threads, r.test, r.n_tokens, r.depth, r.mean, r.sd, r.median,
                       fmt::join(r.tokens_per_second, ","), r.rate, r.rate_unit, r.roofline);
  }
  return out;
}

std::string bench_json(const std::vector<Result>& results, const std::vector<Roofline>& rooflines) {
  nlohmann::json j;
  j["results"] = nlohmann::json::array();
  for (const Result& r : results) {
    j["results"].push_back({{"model_path", r.model_path},
                            {"model", r.model_name},
                            {"type", r.type},
                            {"type_k", r.kv_type},
                            {"type_v", r.kv_type},
                            {"isa", r.isa},
                            {"size_bytes", r.size_bytes},
                            {"params", r.params},
                            {"threads", r.threads},
                            {"test", r.test},
                            {"n_tokens", r.n_tokens},
                            {"n_depth", r.depth},
                            {"avg_ts", r.mean},
                            {"stddev_ts", r.sd},
                            {"median_ts", r.median},
                            {"samples_ts", r.tokens_per_second},
                            {"rate", r.rate},
                            {"rate_unit", r.rate_unit},
                            {"roofline", r.roofline}});
  }
  // The machine's limits, one entry per thread count measured (none with --no-roofline).
  j["rooflines"] = nlohmann::json::array();
  for (const Roofline& r : rooflines) {
    j["rooflines"].push_back({{"threads", r.threads},
                              {"read_gbs_1", r.read_gbs_1},
                              {"read_gbs_all", r.read_gbs_all},
                              {"fma_gflops", r.fma_gflops},
                              {"vnni_gops", r.vnni_gops},
                              {"bf16_gflops", r.bf16_gflops}});
  }
  return j.dump(2) + "\n";
}

// -m values: each one a path, or (when no file has that name) paths separated by commas, as in
// llama-bench; a path that contains a comma works when it is the whole value. Throws
// CLI::ValidationError (a usage error) for a list with an empty element or a missing file, naming
// the value as typed, before anything is measured.
std::vector<std::string> split_model_list(const std::vector<std::string>& values) {
  std::vector<std::string> paths;
  for (const std::string& value : values) {
    std::error_code error;
    if (value.find(',') == std::string::npos || std::filesystem::exists(value, error)) {
      paths.push_back(value);
      continue;
    }
    for (size_t start = 0;;) {
      const size_t comma = value.find(',', start);
      const std::string piece = value.substr(start, comma == std::string::npos ? comma : comma - start);
      if (piece.empty()) throw CLI::ValidationError("-m", fmt::format("'{}': an empty path in the list", value));
      if (!std::filesystem::exists(piece, error)) {
        throw CLI::ValidationError(
            "-m", fmt::format("'{}': no such file, nor a comma list of files ('{}' is missing)", value, piece));
      }
      paths.push_back(piece);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return paths;
}

int run_bench(BenchOptions o) {
  // 0 drops that kind of test, as in llama-bench (-n 0: prefill only); a depth listed twice runs once.
  std::erase(o.prompt_lengths, 0);
  std::erase(o.gen_lengths, 0);
  std::vector<int> depths;
  for (int d : o.depths) {
    if (std::find(depths.begin(), depths.end(), d) == depths.end()) depths.push_back(d);
  }
  o.depths = depths;
  // A missing model fails now, not after the models before it were measured.
  for (const std::string& path : o.models) {
    std::error_code error;
    if (!std::filesystem::exists(path, error)) fail(ErrorCode::kIo, "cannot open '{}': no such file", path);
  }
  // Progress notes only on a terminal: piped runs print the table (or nothing and one error line).
  const bool tty = isatty(STDERR_FILENO) != 0;
  std::vector<Result> results;
  std::vector<Roofline> rooflines;
  for (int requested : o.threads) {
    std::optional<Roofline> roofline;
    const int threads = resolve_threads(requested);
    // With every layer on the GPU the CPU's limits say nothing (bench_model measures the GPU's).
    if (o.roofline && resolve_gpu_layers(o.device) != kGpuLayersAll) {
      if (tty) write_stderr(fmt::format("measuring this machine's roofline on {} threads...\n", threads));
      roofline = measure_roofline(threads);
      if (roofline->read_gbs_all <= 0) roofline.reset();  // a CPU without AVX2: not measured
      if (roofline) rooflines.push_back(*roofline);
    }
    for (const std::string& path : o.models) {
      if (tty) write_stderr(fmt::format("benchmarking {} on {} threads...\n", path, threads));
      for (Result& r : bench_model(o, path, threads, roofline)) results.push_back(std::move(r));
    }
  }
  write_stdout(o.output == "json"  ? bench_json(results, rooflines)
               : o.output == "csv" ? render_csv(results)
                                   : render_md(results));
  return kExitOk;
}

}  // namespace

void add_bench_command(CLI::App& app, CommandAction& action) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure prefill and decode throughput (like llama-bench)");
  cmd->add_option("-m,--model", o->models, "Model GGUF file(s): repeat -m, or separate with commas")->required();
  cmd->add_option("-p,--n-prompt", o->prompt_lengths,
                  "Prompt lengths to prefill in one batch (ppN), comma separated (0: no prefill test)")
      ->delimiter(',')
      ->check(NumberRange(0, 1 << 20))
      ->capture_default_str();
  cmd->add_option("-n,--n-gen", o->gen_lengths, "Tokens to decode one at a time (tgN), comma separated (0: none)")
      ->delimiter(',')
      ->check(NumberRange(0, 1 << 20))
      ->capture_default_str();
  cmd->add_option("-d,--n-depth", o->depths,
                  "Tokens already in the KV cache before each test, comma separated (llama-bench's -d; prefilled "
                  "once per depth, untimed): tests named ppN @ dD, tgN @ dD")
      ->delimiter(',')
      ->check(NumberRange(0, 1 << 20))
      ->capture_default_str();
  cmd->add_option("-r,--repetitions", o->repetitions, "Timed runs of each test (after one warm-up)")
      ->check(NumberRange(1, 1000))
      ->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "Thread counts, comma separated (0: every usable CPU)")
      ->delimiter(',')
      ->check(NumberRange(0, ThreadPool::kMaxThreads))
      ->capture_default_str();
  cmd->add_option("-u,--ubatch", o->step_tokens, "Rows per forward step (longer prompts run in steps of this)")
      ->check(NumberRange(1, 1 << 16))
      ->capture_default_str();
  one_of(cmd->add_option("-o,--output", o->output, "Output format"), {"md", "csv", "json"})->capture_default_str();
  add_device_flags(cmd, &o->device);
  add_kv_type_flag(cmd, &o->kv_type);
  CLI::Option* decode_output =
      cmd->add_option("--decode-output", o->decode_output,
                      "What each decode step returns: logits (the whole row, as llama-bench), token (the greedy "
                      "token, chosen on the GPU when the head is there), top-k (the best 40 logits); tests named "
                      "tgN, tgN-token, tgN-top-k");
  one_of(decode_output, {"logits", "token", "top-k"})->capture_default_str();
  cmd->add_flag(
      "--no-roofline", [o](int64_t) { o->roofline = false; },
      "Skip measuring the machine's bandwidth and compute peaks (a few seconds, 1 GiB)");
  cmd->footer(
      "t/s is the mean ± sample standard deviation over the repetitions. Decode rates count the matmul\n"
      "weights and the KV cache rows each token reads (GB/s, against the all-thread read bandwidth);\n"
      "prefill rates count 2 FLOP per weight and the attention products (GFLOP/s, against the int8 VNNI\n"
      "peak for quantized weights, the FP32 FMA peak for F32 / F16, the BF16 peak for BF16; an \"+amx\"\n"
      "kernel table can pass the VNNI peak). With -d, each depth's context is prefilled once and every\n"
      "repetition runs after it (the cache is cut back to the context in between).\n"
      "Exit codes: 0 success, 1 error, 2 bad command line.");
  cmd->callback([&action, o] {
    o->models = split_model_list(o->models);
    const auto zero = [](int n) { return n == 0; };
    if (std::all_of(o->prompt_lengths.begin(), o->prompt_lengths.end(), zero) &&
        std::all_of(o->gen_lengths.begin(), o->gen_lengths.end(), zero)) {
      throw CLI::ValidationError("-p/-n", "nothing to measure: every prompt and generation length is 0");
    }
    action = [o] { return run_bench(*o); };
  });
}

}  // namespace ember::cli
