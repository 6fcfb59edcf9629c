// attention() over the paged KV cache on every supported ISA, F32, F16 and Q8_0 pools (mixed K/V
// types too), against a float64 softmax(q·k)·v on the values as stored (rounded through the pool's
// type); store_kv; the kernels' exp.
#include "cpu/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "quant/quant_traits.h"
#include "support/float_values.h"

namespace ember {
namespace {

using test::uniform_values;

// Pools with every sequence's K/V stored through store_kv; unwritten slots hold NaN, so reading
// past a sequence's end (or a wrong slot) poisons the output.
struct Cache {
  PagedKvView view;
  AlignedBuffer k_pool, v_pool;
  std::vector<std::vector<int32_t>> tables;
  std::vector<KvSeq> seqs;
  std::vector<std::vector<float>> k, v;  // per sequence [n_tokens][n_head_kv][head_dim] as stored
};

// x as a pool of `dtype` holds it: rounded to F16, or through Q8_0 (blocks of 32 along head_dim).
void round_as_stored(DType dtype, std::vector<float>& x) {
  if (dtype == DType::kF32) return;
  std::vector<std::byte> stored(static_cast<size_t>(dtype_bytes_for(dtype, x.size()).value()));
  quantize(dtype, x.data(), stored.data(), static_cast<int64_t>(x.size()));
  dequantize(dtype, stored.data(), x.data(), static_cast<int64_t>(x.size()));
}

// Unwritten pool bytes: NaN as F32; 0x7E00 (NaN) in every f16 of an F16 pool and every Q8_0 scale.
void poison(AlignedBuffer& pool, DType dtype, size_t bytes) {
  if (dtype == DType::kF32) {
    std::fill_n(pool.as<float>(), bytes / 4, NAN);
  } else {
    std::fill_n(pool.as<uint16_t>(), bytes / 2, uint16_t{0x7E00});
  }
}

Cache make_cache(DType k_dtype, DType v_dtype, int32_t n_head_kv, int32_t head_dim, const std::vector<int32_t>& lengths,
                 std::mt19937& rng, ThreadPool& pool) {
  Cache c;
  int32_t n_blocks = 3;  // spares nobody uses
  for (int32_t len : lengths) n_blocks += (len + kKvBlockTokens - 1) / kKvBlockTokens;
  c.view = {n_head_kv, head_dim, k_dtype, v_dtype, nullptr, nullptr, n_blocks};
  const size_t k_bytes = static_cast<size_t>(n_blocks) * c.view.k_layout().block_bytes();
  const size_t v_bytes = static_cast<size_t>(n_blocks) * c.view.v_layout().block_bytes();
  c.k_pool = AlignedBuffer(k_bytes);
  c.v_pool = AlignedBuffer(v_bytes);
  poison(c.k_pool, k_dtype, k_bytes);
  poison(c.v_pool, v_dtype, v_bytes);
  c.view.k = c.k_pool.data();
  c.view.v = c.v_pool.data();
  // Non-contiguous tables: every sequence takes the next blocks of a shuffled permutation.
  std::vector<int32_t> perm(static_cast<size_t>(n_blocks));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  size_t next = 0;
  for (int32_t len : lengths) {
    std::vector<int32_t>& t = c.tables.emplace_back();
    for (int32_t b = 0; b < (len + kKvBlockTokens - 1) / kKvBlockTokens; ++b) t.push_back(perm[next++]);
  }
  const size_t row = static_cast<size_t>(n_head_kv) * static_cast<size_t>(head_dim);
  for (size_t s = 0; s < lengths.size(); ++s) {
    c.seqs.push_back({c.tables[s], lengths[s]});
    std::vector<float> k = uniform_values(row * static_cast<size_t>(lengths[s]), rng, 1.0f);
    std::vector<float> v = uniform_values(row * static_cast<size_t>(lengths[s]), rng, 1.0f);
    std::vector<KvRow> rows;
    for (int32_t p = 0; p < lengths[s]; ++p) rows.push_back({static_cast<int32_t>(s), p});
    store_kv(cpu_kernels(Isa::kScalar), pool, c.view, c.seqs, rows, k.data(), v.data());
    round_as_stored(k_dtype, k);
    round_as_stored(v_dtype, v);
    c.k.push_back(std::move(k));
    c.v.push_back(std::move(v));
  }
  return c;
}

Cache make_cache(DType dtype, int32_t n_head_kv, int32_t head_dim, const std::vector<int32_t>& lengths,
                 std::mt19937& rng, ThreadPool& pool) {
  return make_cache(dtype, dtype, n_head_kv, head_dim, lengths, rng, pool);
}

// The expected output of `rows` in float64 and, per element, Σ_j p_j·|v_j| (the scale errors are
// measured against: the output is a weighted mean that may cancel to ~0).
void reference(const Cache& c, const std::vector<KvRow>& rows, const std::vector<float>& q, const AttentionParams& p,
               std::vector<double>& want, std::vector<double>& magnitude) {
  const int32_t d = c.view.head_dim, n_kv = c.view.n_head_kv, group = p.n_head / n_kv;
  const double scale = p.scale > 0 ? p.scale : 1.0 / std::sqrt(static_cast<double>(d));
  want.assign(rows.size() * static_cast<size_t>(p.n_head * d), 0.0);
  magnitude = want;
  for (size_t r = 0; r < rows.size(); ++r) {
    const KvRow row = rows[r];
    const int32_t lo = p.window > 0 ? std::max(0, row.pos - p.window + 1) : 0;
    const std::vector<float>& k = c.k[static_cast<size_t>(row.seq)];
    const std::vector<float>& v = c.v[static_cast<size_t>(row.seq)];
    for (int32_t h = 0; h < p.n_head; ++h) {
      const float* qh = q.data() + (r * static_cast<size_t>(p.n_head) + static_cast<size_t>(h)) * d;
      const size_t kvh = static_cast<size_t>(h / group);
      std::vector<double> s;
      double big = -INFINITY;
      for (int32_t j = lo; j <= row.pos; ++j) {
        const float* kj = k.data() + (static_cast<size_t>(j) * n_kv + kvh) * d;
        double dot = 0;
        for (int32_t x = 0; x < d; ++x) dot += static_cast<double>(qh[x]) * kj[x];
        dot *= scale;
        if (p.softcap > 0) dot = p.softcap * std::tanh(dot / p.softcap);
        if (p.alibi_slopes != nullptr) dot += static_cast<double>(p.alibi_slopes[h]) * (j - row.pos);
        s.push_back(dot);
        big = std::max(big, dot);
      }
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - big));
      double* o = want.data() + (r * static_cast<size_t>(p.n_head) + static_cast<size_t>(h)) * d;
      double* mag = magnitude.data() + (o - want.data());
      for (int32_t j = lo; j <= row.pos; ++j) {
        const double w = s[static_cast<size_t>(j - lo)] / sum;
        const float* vj = v.data() + (static_cast<size_t>(j) * n_kv + kvh) * d;
        for (int32_t x = 0; x < d; ++x) {
          o[x] += w * vj[x];
          mag[x] += w * std::fabs(vj[x]);
        }
      }
    }
  }
}

// Relative error bound, in units of Σ p·|v|: float dot products and accumulation over up to ~4k
// positions, the kernels' exp (1.2e-7 relative); soft-cap adds the tanh error times the cap.
// Worst seen over these tests: 5.8e-6 and, with soft-cap, 1.2e-5 (the scalar kernel's serial sums).
constexpr double kTolerance = 2e-5;
constexpr double kSoftcapTolerance = 5e-5;

// Runs attention() and checks every output element against the reference.
void expect_matches(const AttentionKernels& kernels, ThreadPool& pool, const Cache& c, const std::vector<KvRow>& rows,
                    const std::vector<float>& q, const AttentionParams& p, const std::vector<double>& want,
                    const std::vector<double>& magnitude, double tolerance = kTolerance) {
  AttentionScratch scratch(static_cast<int64_t>(rows.size()), p.n_head, c.view.n_head_kv, c.view.head_dim,
                           pool.n_threads());
  std::vector<float> out(want.size(), NAN);
  attention(kernels, pool, c.view, c.seqs, rows, q.data(), p, out.data(), scratch);
  for (size_t i = 0; i < out.size(); ++i) {
    const double err = std::fabs(out[i] - want[i]) / (magnitude[i] + 1e-30);
    ASSERT_LE(err, tolerance) << "element " << i << " (row " << i / static_cast<size_t>(p.n_head * c.view.head_dim)
                              << "): got " << out[i] << ", want " << want[i];
  }
}

std::vector<float> random_queries(size_t n_rows, const AttentionParams& p, int32_t head_dim, std::mt19937& rng,
                                  float sigma) {
  return uniform_values(n_rows * static_cast<size_t>(p.n_head * head_dim), rng, sigma);
}

// One decode row per sequence at its last position, for every context length of interest.
std::vector<KvRow> decode_rows(const std::vector<int32_t>& lengths) {
  std::vector<KvRow> rows;
  for (size_t s = 0; s < lengths.size(); ++s) rows.push_back({static_cast<int32_t>(s), lengths[s] - 1});
  return rows;
}

TEST(Attention, DecodeEveryIsaDtypeGqaRatioAndHeadDim) {
  ThreadPool pool(2);
  std::mt19937 rng(1);
  struct Shape {
    int32_t head_dim, ratio;
  };
  const std::vector<Shape> shapes = {Shape{128, 1}, Shape{128, 2}, Shape{128, 4}, Shape{128, 8},
                                     Shape{64, 4},  Shape{80, 2},  Shape{72, 4},  Shape{36, 8}};
  // Q8_0 rows are whole blocks of 32: head_dim 96 (three blocks: one zmm chunk straddles none) and 32.
  const std::vector<Shape> q8_shapes = {Shape{128, 4}, Shape{64, 4}, Shape{96, 2}, Shape{32, 8}};
  for (DType dtype : {DType::kF32, DType::kF16, DType::kQ8_0}) {
    for (const Shape& shape : dtype == DType::kQ8_0 ? q8_shapes : shapes) {
      // 72 and 36: a partial last zmm (avx512 masks it); 36 is not whole ymm (avx2 -> scalar tile).
      const int32_t head_dim = shape.head_dim;
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " head_dim " + std::to_string(head_dim) + " ratio " +
                   std::to_string(shape.ratio));
      // The long context (more than 256 blocks) on two shapes; the others stop at 333 to keep the
      // test fast under the sanitizers.
      const bool long_context = head_dim == 128 && (shape.ratio == 4 || shape.ratio == 1);
      const std::vector<int32_t> lengths = {1, 15, 16, 17, 100, long_context ? 4133 : 333};
      const Cache c = make_cache(dtype, 2, head_dim, lengths, rng, pool);
      AttentionParams p;
      p.n_head = 2 * shape.ratio;
      const std::vector<KvRow> rows = decode_rows(lengths);
      // Peaky scores (sigma 3 before the 1/sqrt(d) scale) so the running max moves.
      const std::vector<float> q = random_queries(rows.size(), p, head_dim, rng, 3.0f);
      std::vector<double> want, magnitude;
      reference(c, rows, q, p, want, magnitude);
      for (Isa isa : supported_isas()) {
        SCOPED_TRACE(std::string(isa_name(isa)));
        expect_matches(attention_kernels(isa), pool, c, rows, q, p, want, magnitude);
      }
    }
  }
}

TEST(Attention, SplitKOnAndOffAnyThreadCount) {
  ThreadPool pools[] = {ThreadPool(1), ThreadPool(2), ThreadPool(3)};
  std::mt19937 rng(2);
  const std::vector<int32_t> lengths = {4133, 17, 100, 1, 700};
  const Cache c = make_cache(DType::kF16, 2, 128, lengths, rng, pools[0]);
  for (int32_t window : {0, 300}) {
    AttentionParams p;
    p.n_head = 8;
    p.window = window;
    const std::vector<KvRow> rows = decode_rows(lengths);
    const std::vector<float> q = random_queries(rows.size(), p, 128, rng, 2.0f);
    std::vector<double> want, magnitude;
    reference(c, rows, q, p, want, magnitude);
    // Never, automatic, forced (every range over 256 tokens; 4133 in 17 chunks) and forced so
    // fine that the partial slots run out (those tiles stay whole).
    for (int32_t split : {-1, 0, 256, 16}) {
      for (ThreadPool& pool : pools) {
        for (Isa isa : supported_isas()) {
          if (isa == Isa::kScalar && pool.n_threads() != 3) continue;  // the slow reference: once
          SCOPED_TRACE(std::string(isa_name(isa)) + " window " + std::to_string(window) + " split " +
                       std::to_string(split) + " threads " + std::to_string(pool.n_threads()));
          p.split_tokens = split;
          expect_matches(attention_kernels(isa), pool, c, rows, q, p, want, magnitude);
        }
      }
    }
  }
}

// A step as the scheduler builds it: decode rows of several sequences around a prefill chunk of
// another (consecutive positions: query tiles), a speculative pair, all in one call.
TEST(Attention, MixedBatchOfDecodeRowsAndPrefillChunk) {
  ThreadPool pool(3);
  std::mt19937 rng(3);
  const std::vector<int32_t> lengths = {300, 90, 1, 47, 2100};
  const std::pair<DType, DType> types[] = {{DType::kF32, DType::kF32},
                                           {DType::kF16, DType::kF16},
                                           {DType::kQ8_0, DType::kQ8_0},
                                           {DType::kQ8_0, DType::kF16},
                                           {DType::kF32, DType::kQ8_0}};
  for (const auto& [k_dtype, v_dtype] : types) {
    const Cache c = make_cache(k_dtype, v_dtype, 4, 96, lengths, rng, pool);
    std::vector<KvRow> rows = {{0, 299}, {2, 0}};
    for (int32_t pos = 50; pos < 90; ++pos) rows.push_back({1, pos});  // prefill chunk 50..89
    rows.push_back({3, 46});
    rows.push_back({4, 2098});  // speculative verification: two rows of one sequence
    rows.push_back({4, 2099});
    rows.push_back({1, 20});  // the same sequence again, out of order
    for (int32_t window : {0, 33}) {
      for (int32_t split : {0, 512}) {
        SCOPED_TRACE(std::string(dtype_name(k_dtype)) + "/" + std::string(dtype_name(v_dtype)) + " window " +
                     std::to_string(window) + " split " + std::to_string(split));
        AttentionParams p;
        p.n_head = 8;  // ratio 2
        p.window = window;
        p.split_tokens = split;
        const std::vector<float> q = random_queries(rows.size(), p, 96, rng, 3.0f);
        std::vector<double> want, magnitude;
        reference(c, rows, q, p, want, magnitude);
        for (Isa isa : supported_isas()) {
          SCOPED_TRACE(std::string(isa_name(isa)));
          expect_matches(attention_kernels(isa), pool, c, rows, q, p, want, magnitude);
        }
      }
    }
  }
}

TEST(Attention, SlidingWindowsSoftcapAlibiAndScale) {
  ThreadPool pool(2);
  std::mt19937 rng(4);
  const std::vector<int32_t> lengths = {1000, 100, 16, 17};
  const Cache c = make_cache(DType::kF16, 1, 64, lengths, rng, pool);  // MQA: ratio 8, one kv head
  std::vector<KvRow> rows = decode_rows(lengths);
  for (int32_t pos = 990; pos < 996; ++pos) rows.push_back({0, pos});  // a prefill chunk (tiles of 2 rows)
  const std::vector<float> slopes = {0.5f, 0.25f, 0.125f, 0.0625f, 0.03125f, 0.015625f, 0.0078125f, 0.00390625f};
  struct Case {
    int32_t window;
    float softcap;
    bool alibi;
    float scale;
  };
  for (const Case& cs : {Case{1, 0, false, 0}, Case{16, 0, false, 0}, Case{37, 0, false, 0}, Case{0, 50, false, 0},
                         Case{900, 20, false, 0.3f}, Case{0, 0, true, 0}, Case{64, 30, true, 0}}) {
    SCOPED_TRACE("window " + std::to_string(cs.window) + " softcap " + std::to_string(cs.softcap) + " alibi " +
                 std::to_string(cs.alibi) + " scale " + std::to_string(cs.scale));
    AttentionParams p;
    p.n_head = 8;
    p.window = cs.window;
    p.softcap = cs.softcap;
    p.scale = cs.scale;
    p.alibi_slopes = cs.alibi ? slopes.data() : nullptr;
    const std::vector<float> q = random_queries(rows.size(), p, 64, rng, 4.0f);
    std::vector<double> want, magnitude;
    reference(c, rows, q, p, want, magnitude);
    for (Isa isa : supported_isas()) {
      SCOPED_TRACE(std::string(isa_name(isa)));
      expect_matches(attention_kernels(isa), pool, c, rows, q, p, want, magnitude,
                     cs.softcap > 0 ? kSoftcapTolerance : kTolerance);
    }
  }
}

TEST(Attention, ExpApproximationError) {
  std::vector<float> x;
  for (float v = -87.0f; v <= 88.0f; v += 0.0123f) x.push_back(v);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-7f, 88.0f}) x.push_back(v);  // (avx2 clamps above 88)
  std::vector<float> y(x.size());
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    attention_kernels(isa).exp(x.data(), y.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = std::exp(static_cast<double>(x[i]));
      ASSERT_LE(std::fabs(y[i] - want), 2e-7 * want) << "exp(" << x[i] << ")";  // measured: 1.2e-7
    }
    // Below the smallest normal result, -inf (a hidden position) and NaN: exactly 0 in SIMD.
    const float low[] = {-87.5f, -100.0f, -1e30f, -INFINITY};
    float got[4];
    attention_kernels(isa).exp(low, got, 4);
    for (int i = 0; i < 4; ++i) EXPECT_LE(got[i], 1.2e-38f) << "exp(" << low[i] << ")";
    EXPECT_EQ(got[3], 0.0f);
  }
}

// store_kv writes each row to (table[pos / 16], kv head, pos % 16) and nothing else, the same bytes
// on every ISA's quantizers.
TEST(Attention, StoreKvWritesExactlyTheSlots) {
  ThreadPool pool(2);
  const int32_t n_kv = 3, n_blocks = 6;
  for (DType dtype : {DType::kF32, DType::kF16, DType::kQ8_0}) {
    const int32_t d = dtype == DType::kQ8_0 ? 64 : 40;
    PagedKvView view{n_kv, d, dtype, dtype, nullptr, nullptr, n_blocks};
    const KvLayout layout = view.k_layout();
    const std::vector<int32_t> table0 = {4, 1}, table1 = {2};
    const std::vector<KvSeq> seqs = {{table0, 0}, {table1, 0}};
    const std::vector<KvRow> rows = {{0, 17}, {1, 3}, {0, 0}};
    std::mt19937 rng(5);
    const std::vector<float> k = uniform_values(rows.size() * n_kv * d, rng, 1.0f);
    const std::vector<float> v = uniform_values(rows.size() * n_kv * d, rng, 1.0f);
    std::vector<std::byte> first_k;
    for (Isa isa : supported_isas()) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + std::string(isa_name(isa)));
      std::vector<std::byte> kp(n_blocks * layout.block_bytes(), std::byte{0x55}), vp = kp;
      view.k = kp.data();
      view.v = vp.data();
      store_kv(cpu_kernels(isa), pool, view, seqs, rows, k.data(), v.data());
      std::vector<std::byte> expect_k(kp.size(), std::byte{0x55}), expect_v = expect_k;
      for (size_t r = 0; r < rows.size(); ++r) {
        const auto& table = rows[r].seq == 0 ? table0 : table1;
        for (int32_t h = 0; h < n_kv; ++h) {
          const size_t at = layout.offset(table[static_cast<size_t>(rows[r].pos / 16)], h, rows[r].pos % 16);
          quantize(dtype, k.data() + (r * n_kv + static_cast<size_t>(h)) * d, expect_k.data() + at, d);
          quantize(dtype, v.data() + (r * n_kv + static_cast<size_t>(h)) * d, expect_v.data() + at, d);
        }
      }
      EXPECT_EQ(kp, expect_k);
      EXPECT_EQ(vp, expect_v);
    }
  }
}

TEST(Attention, PoolTypesTheKernelsStore) {
  for (int32_t head_dim : {32, 64, 96, 128, 256}) {
    EXPECT_TRUE(kv_dtype_supported(DType::kQ8_0, head_dim)) << head_dim;
    EXPECT_TRUE(kv_dtype_supported(DType::kF16, head_dim)) << head_dim;
  }
  for (int32_t head_dim : {0, 16, 40, 80, 72, 36}) EXPECT_FALSE(kv_dtype_supported(DType::kQ8_0, head_dim)) << head_dim;
  EXPECT_TRUE(kv_dtype_supported(DType::kF32, 36));
  for (DType t : {DType::kQ4_0, DType::kBF16, DType::kQ8_1, DType::kQ4_K}) EXPECT_FALSE(kv_dtype_supported(t, 128));
}

TEST(AttentionDeathTest, RejectsAPoolTypeTheKernelsCannotRead) {
  const PagedKvView view{1, 40, DType::kQ8_0, DType::kF16, reinterpret_cast<void*>(64), reinterpret_cast<void*>(64), 1};
  EXPECT_DEATH(check_kv_view(view), "Q8_0");
}

TEST(AttentionDeathTest, RejectsAPositionNotYetStored) {
  ThreadPool pool(1);
  std::mt19937 rng(6);
  const Cache c = make_cache(DType::kF16, 1, 64, {20}, rng, pool);
  AttentionParams p;
  p.n_head = 1;
  AttentionScratch scratch(1, 1, 1, 64, 1);
  std::vector<float> q(64, 1.0f), out(64);
  const std::vector<KvRow> rows = {{0, 20}};
  EXPECT_DEATH(attention(attention_kernels(Isa::kScalar), pool, c.view, c.seqs, rows, q.data(), p, out.data(), scratch),
               "pos");
}

}  // namespace
}  // namespace ember
