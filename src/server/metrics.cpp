// Prometheus text rendering of the server's metrics (see metrics.h).
#include "server/metrics.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/check.h"

namespace ember::server {
namespace {

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample(std::string& out, std::string_view name, double value) {
  out += fmt::format("{} {}\n", name, prometheus_number(value));
}

void histogram(std::string& out, std::string_view name, std::string_view help, const Histogram& h) {
  header(out, name, "histogram", help);
  const Histogram::Snapshot s = h.snapshot();
  for (size_t i = 0; i < s.bounds.size(); ++i) {
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, prometheus_number(s.bounds[i]), s.cumulative[i]);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, s.count);
  sample(out, std::string(name) + "_sum", s.sum);
  sample(out, std::string(name) + "_count", static_cast<double>(s.count));
}

}  // namespace

std::string prometheus_number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::trunc(value) && std::fabs(value) < 1e15) return fmt::format("{}", static_cast<int64_t>(value));
  return fmt::format("{}", value);
}

void Counter::add(double amount) noexcept {
  double current = value_.load(std::memory_order_relaxed);
  while (!value_.compare_exchange_weak(current, current + amount, std::memory_order_relaxed)) {
  }
}

void LabeledCounter::add(const std::string& label, double amount) {
  const std::lock_guard lock(mutex_);
  values_[label] += amount;
}

std::map<std::string, double> LabeledCounter::values() const {
  const std::lock_guard lock(mutex_);
  return values_;
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
  EMBER_CHECK(std::is_sorted(bounds_.begin(), bounds_.end()) &&
              std::adjacent_find(bounds_.begin(), bounds_.end()) == bounds_.end());
}

void Histogram::observe(double value) {
  if (std::isnan(value)) return;  // would poison the sum; no caller measures one
  // The first bucket whose upper bound holds the value (le: less than or equal), else +Inf.
  const size_t bucket = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  const std::lock_guard lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
}

Histogram::Snapshot Histogram::snapshot() const {
  const std::lock_guard lock(mutex_);
  Snapshot s{.bounds = bounds_, .cumulative = {}, .sum = sum_, .count = 0};
  for (size_t i = 0; i < counts_.size(); ++i) {
    s.count += counts_[i];
    if (i < bounds_.size()) s.cumulative.push_back(s.count);
  }
  return s;
}

std::string ServerMetrics::render(const MetricsGauges& gauges) const {
  std::string out;
  header(out, "ember_requests_total", "counter", "HTTP requests answered, by status.");
  for (const auto& [status, count] : requests.values()) {
    out += fmt::format("ember_requests_total{{status=\"{}\"}} {}\n", status, prometheus_number(count));
  }
  const auto counter = [&out](std::string_view name, std::string_view help, const Counter& c) {
    header(out, name, "counter", help);
    sample(out, name, c.value());
  };
  counter("ember_prompt_tokens_total", "Prompt tokens of the requests served.", prompt_tokens);
  counter("ember_prompt_tokens_cached_total", "Prompt tokens the prefix cache already held (not computed again).",
          prompt_tokens_cached);
  counter("ember_generated_tokens_total", "Tokens generated.", generated_tokens);
  counter("ember_prefill_seconds_total", "Seconds in forward steps that held prompt tokens.", prefill_seconds);
  counter("ember_decode_seconds_total", "Seconds in forward steps of generated tokens only.", decode_seconds);
  const auto gauge = [&out](std::string_view name, std::string_view help, double value) {
    header(out, name, "gauge", help);
    sample(out, name, value);
  };
  // Throughput over the server's life; rate() of the counters gives it over any window.
  gauge("ember_prefill_tokens_per_second", "Prompt tokens computed per second of prefill, since the start.",
        prefill_seconds.value() > 0 ? (prompt_tokens.value() - prompt_tokens_cached.value()) / prefill_seconds.value()
                                    : 0.0);
  gauge("ember_decode_tokens_per_second", "Tokens generated per second of decode, since the start.",
        decode_seconds.value() > 0 ? generated_tokens.value() / decode_seconds.value() : 0.0);
  gauge("ember_prefix_cache_hit_ratio", "Share of prompt tokens the prefix cache held, since the start.",
        prompt_tokens.value() > 0 ? prompt_tokens_cached.value() / prompt_tokens.value() : 0.0);
  gauge("ember_queue_depth", "Requests waiting for admission.", static_cast<double>(gauges.queue_depth));
  gauge("ember_running_sequences", "Sequences in the running batch.", static_cast<double>(gauges.running_sequences));
  gauge("ember_kv_blocks_used", "KV cache blocks in use.", static_cast<double>(gauges.kv_blocks_used));
  gauge("ember_kv_blocks_cached", "Free KV cache blocks still holding a cached prefix.",
        static_cast<double>(gauges.kv_blocks_cached));
  gauge("ember_kv_blocks_total", "KV cache blocks in the pool.", static_cast<double>(gauges.kv_blocks_total));
  counter("ember_draft_tokens_total", "Speculative decoding: draft tokens proposed.", draft_tokens);
  counter("ember_draft_tokens_accepted_total", "Speculative decoding: draft tokens kept.", draft_tokens_accepted);
  gauge("ember_draft_acceptance_ratio", "Share of draft tokens kept, since the start.",
        draft_tokens.value() > 0 ? draft_tokens_accepted.value() / draft_tokens.value() : 0.0);
  header(out, "ember_draft_position_accepted_ratio", "gauge",
         "Speculative decoding: share of drafts reaching a position (1: the first token) that kept it.");
  for (size_t i = 0; i < gauges.drafted_at.size() && i < gauges.accepted_at.size(); ++i) {
    const double ratio =
        gauges.drafted_at[i] > 0 ? static_cast<double>(gauges.accepted_at[i]) / gauges.drafted_at[i] : 0.0;
    out += fmt::format("ember_draft_position_accepted_ratio{{position=\"{}\"}} {}\n", i + 1, prometheus_number(ratio));
  }
  header(out, "ember_preemptions_total", "counter",
         "Sequences preempted (recomputed later) when the KV cache ran out.");
  out += fmt::format("ember_preemptions_total {}\n", prometheus_number(static_cast<double>(gauges.preemptions)));
  histogram(out, "ember_time_to_first_token_seconds", "From the request's arrival to its first generated token.",
            time_to_first_token);
  histogram(out, "ember_inter_token_latency_seconds", "Between consecutive generated tokens of a sequence.",
            inter_token_latency);
  return out;
}

}  // namespace ember::server
