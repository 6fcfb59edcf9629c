// The server's /metrics in Prometheus's text format (version 0.0.4): counters, gauges and
// histograms the routes and the scheduler update from any thread, rendered on request.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace ember::server {

// A monotonically increasing double (seconds, tokens); lock-free.
class Counter {
 public:
  void add(double amount) noexcept;
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Counts per label value ("200", "400", ...).
class LabeledCounter {
 public:
  void add(const std::string& label, double amount = 1.0);
  std::map<std::string, double> values() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, double> values_;
};

// Observations in cumulative buckets with upper bounds `bounds` (increasing; +Inf is implied).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);  // NaN is ignored

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative), the last one +Inf
  double sum_ = 0;
};

// Values read from the scheduler when /metrics is asked for.
struct MetricsGauges {
  int64_t queue_depth = 0;        // requests waiting for admission
  int64_t running_sequences = 0;  // sequences in the running batch
  int64_t kv_blocks_used = 0;     // held by sequences
  int64_t kv_blocks_cached = 0;   // free, still holding a cached prefix
  int64_t kv_blocks_total = 0;
  int64_t preemptions = 0;  // sequences sent back to the queue (a counter the engine keeps)
  // Speculative decoding, by position in the draft (0: first): proposed, and kept (counters the
  // engine keeps).
  std::vector<int64_t> drafted_at = {};
  std::vector<int64_t> accepted_at = {};
};

// Everything /metrics reports, named ember_*.
struct ServerMetrics {
  LabeledCounter requests;       // by HTTP status
  Counter prompt_tokens;         // prompt tokens of the requests the engine admitted
  Counter prompt_tokens_cached;  // of which the prefix cache already held
  Counter generated_tokens;
  Counter draft_tokens;           // speculative decoding: proposed ...
  Counter draft_tokens_accepted;  // ... and kept
  Counter prefill_seconds;        // time in forward steps that held prompt tokens
  Counter decode_seconds;         // time in forward steps of generated tokens only
  Histogram time_to_first_token{{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}};
  Histogram inter_token_latency{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}};

  // The text exposition of all of it, with `gauges` as the current gauge values.
  std::string render(const MetricsGauges& gauges) const;
};

// Prometheus's number format: integers without a fraction, "+Inf", "NaN".
std::string prometheus_number(double value);

}  // namespace ember::server
