// /metrics: the exact Prometheus text for a known state, histogram buckets at their bounds (le is
// inclusive), counters added from several threads, and every sample line well formed.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "server/metrics.h"

namespace ember::server {
namespace {

TEST(Metrics, HistogramBucketsAreCumulativeAndInclusive) {
  Histogram h({0.1, 1.0});
  for (const double v : {0.05, 0.1, 0.5, 1.0, 7.0}) h.observe(v);
  h.observe(std::nan(""));
  const Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 4}));  // 0.05 and 0.1 <= 0.1; 0.5 and 1.0 <= 1
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.sum, 8.65);
}

TEST(Metrics, CountersAddFromManyThreads) {
  Counter c;
  LabeledCounter labeled;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.add(0.5);
        labeled.add(i % 2 == 0 ? "200" : "400");
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(c.value(), 20000.0);
  EXPECT_EQ(labeled.values(), (std::map<std::string, double>{{"200", 20000.0}, {"400", 20000.0}}));
}

TEST(Metrics, RendersTheState) {
  ServerMetrics m;
  m.requests.add("200", 3);
  m.requests.add("400");
  m.prompt_tokens.add(100);
  m.prompt_tokens_cached.add(60);
  m.generated_tokens.add(50);
  m.prefill_seconds.add(0.5);
  m.decode_seconds.add(2.0);
  m.time_to_first_token.observe(0.2);
  m.inter_token_latency.observe(0.004);
  const std::string text =
      m.render(MetricsGauges{.queue_depth = 2, .running_sequences = 5, .kv_blocks_used = 7, .kv_blocks_total = 64});
  const auto has = [&text](const std::string& line) {
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << "missing: " << line << "\n" << text;
  };
  has("# TYPE ember_requests_total counter");
  has("ember_requests_total{status=\"200\"} 3");
  has("ember_requests_total{status=\"400\"} 1");
  has("ember_prompt_tokens_total 100");
  has("ember_prompt_tokens_cached_total 60");
  has("ember_generated_tokens_total 50");
  has("ember_prefill_tokens_per_second 80");  // (100 - 60) / 0.5
  has("ember_decode_tokens_per_second 25");
  has("ember_prefix_cache_hit_ratio 0.6");
  has("ember_queue_depth 2");
  has("ember_running_sequences 5");
  has("ember_kv_blocks_used 7");
  has("ember_kv_blocks_total 64");
  has("# TYPE ember_time_to_first_token_seconds histogram");
  has("ember_time_to_first_token_seconds_bucket{le=\"0.1\"} 0");
  has("ember_time_to_first_token_seconds_bucket{le=\"0.25\"} 1");
  has("ember_time_to_first_token_seconds_bucket{le=\"+Inf\"} 1");
  has("ember_time_to_first_token_seconds_sum 0.2");
  has("ember_time_to_first_token_seconds_count 1");
  has("ember_inter_token_latency_seconds_bucket{le=\"0.005\"} 1");

  // Every line a comment or "name{labels} value"; every metric with HELP and TYPE.
  const std::regex sample_line(R"(^[a-z_]+(\{[a-z]+="[^"]*"\})? (-?[0-9.e+-]+|\+Inf|NaN)$)");
  std::istringstream lines(text);
  int samples = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    EXPECT_TRUE(std::regex_match(line, sample_line)) << line;
    ++samples;
  }
  EXPECT_GT(samples, 30);
}

TEST(Metrics, EmptyServerRendersZeros) {
  const std::string text = ServerMetrics{}.render(MetricsGauges{});
  EXPECT_NE(text.find("ember_decode_tokens_per_second 0\n"), std::string::npos);
  EXPECT_NE(text.find("ember_prefix_cache_hit_ratio 0\n"), std::string::npos);
  EXPECT_EQ(text.find("ember_requests_total{"), std::string::npos);
}

TEST(Metrics, NumberFormat) {
  EXPECT_EQ(prometheus_number(3.0), "3");
  EXPECT_EQ(prometheus_number(0.25), "0.25");
  EXPECT_EQ(prometheus_number(-2.0), "-2");
  EXPECT_EQ(prometheus_number(1e20), "1e+20");
  EXPECT_EQ(prometheus_number(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(prometheus_number(std::nan("")), "NaN");
}

}  // namespace
}  // namespace ember::server
