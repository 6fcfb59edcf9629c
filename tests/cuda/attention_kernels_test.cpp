// CUDA store_kv and attention against the CPU's (scalar kernels, one thread) on the same pools:
// bit-exact pools after every store, attention within 1e-5 (F32 pools) / 1e-3 (F16, Q8_0) relative
// error on decode batches, a prefill chunk, GQA and MHA, soft-cap, sliding window, split and
// unsplit, mixed K/V pool types, heads up to 576 over a V pool that is the K pool (latent
// attention's); the tiled tensor-core attention within 1e-3 on prefill steps.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "cpu/attention.h"
#include "cpu/cpu_kernels.h"
#include "cpu/kv_layout.h"
#include "cuda/cuda_kernels.h"
#include "cuda/cuda_test_util.h"
#include "quant/fp16.h"
#include "support/float_values.h"

namespace ember {
namespace {

using cuda::DeviceBuffer;
using cuda_test::poisoned_floats;
using cuda_test::relative_error;
using test::uniform_values;

// Attention's error bounds over a whole output (the brief's); any one row must stay within
// kRowTolerance (both sides read the same values, so ~1e-6 is expected everywhere).
constexpr double kF32Tolerance = 1e-5;
constexpr double kF16Tolerance = 1e-3;
constexpr double kRowTolerance = 1e-4;
// The tiled kernel rounds q, K, V and the softmax weights to f16 for its products.
constexpr double kTiledTolerance = 1e-3;

// (Q8_0 pools: both sides read the same dequantized values, as for F16.)
double tolerance(DType dtype) { return dtype == DType::kF32 ? kF32Tolerance : kF16Tolerance; }

// One layer's pools twice, host (the CPU's) and device, kept equal: every store goes to both and
// is compared bit for bit. Slots nobody stored hold NaN (F16: 0x7E00), so a kernel reading a
// wrong slot poisons its output. Block tables take shuffled, non-contiguous block ids.
struct TwinCache {
  PagedKvView host, dev;
  AlignedBuffer host_k, host_v;
  DeviceBuffer dev_k, dev_v;
  std::vector<std::vector<int32_t>> tables;
  std::vector<int32_t> lengths;  // n_tokens of every sequence once all is stored
  DeviceBuffer dev_tables, dev_tokens;
  cuda::DeviceKvSeqs dev_seqs;

  std::vector<KvSeq> seqs() const {
    std::vector<KvSeq> s;
    for (size_t i = 0; i < tables.size(); ++i) s.push_back({tables[i], lengths[i]});
    return s;
  }
  int32_t max_context() const { return *std::max_element(lengths.begin(), lengths.end()); }
};

// A pool of `bytes` whose unwritten values read as NaN: F32 NaN, or 0x7E00 in every f16 (an F16
// value, a Q8_0 block's scale).
AlignedBuffer poisoned_pool(DType dtype, size_t bytes) {
  AlignedBuffer pool(bytes);
  if (dtype == DType::kF32) {
    std::fill_n(pool.as<float>(), bytes / 4, NAN);
  } else {
    std::fill_n(pool.as<uint16_t>(), bytes / 2, uint16_t{0x7E00});
  }
  return pool;
}

TwinCache make_cache(DType k_dtype, DType v_dtype, int32_t n_head_kv, int32_t head_dim,
                     const std::vector<int32_t>& lengths, std::mt19937& rng) {
  TwinCache c;
  c.lengths = lengths;
  int32_t n_blocks = 3;  // spares nobody uses
  for (int32_t len : lengths) n_blocks += (len + kKvBlockTokens - 1) / kKvBlockTokens;
  c.host = {n_head_kv, head_dim, k_dtype, v_dtype, nullptr, nullptr, n_blocks};
  const size_t k_bytes = static_cast<size_t>(n_blocks) * c.host.k_layout().block_bytes();
  const size_t v_bytes = static_cast<size_t>(n_blocks) * c.host.v_layout().block_bytes();
  c.host_k = poisoned_pool(k_dtype, k_bytes);
  c.host_v = poisoned_pool(v_dtype, v_bytes);
  c.host.k = c.host_k.data();
  c.host.v = c.host_v.data();
  c.dev_k = DeviceBuffer(k_bytes);
  c.dev_v = DeviceBuffer(v_bytes);
  c.dev_k.upload(c.host_k.data(), k_bytes);
  c.dev_v.upload(c.host_v.data(), v_bytes);
  c.dev = c.host;
  c.dev.k = c.dev_k.data();
  c.dev.v = c.dev_v.data();

  std::vector<int32_t> perm(static_cast<size_t>(n_blocks));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  size_t next = 0, max_blocks = 1;
  for (int32_t len : lengths) {
    std::vector<int32_t>& t = c.tables.emplace_back();
    for (int32_t b = 0; b < (len + kKvBlockTokens - 1) / kKvBlockTokens; ++b) t.push_back(perm[next++]);
    max_blocks = std::max(max_blocks, t.size() + 1);  // at least one unused entry per table
  }
  // Flattened [n_seqs][max_blocks]; entries past a sequence's blocks are -1 (never read).
  std::vector<int32_t> flat(lengths.size() * max_blocks, -1);
  for (size_t s = 0; s < lengths.size(); ++s) std::copy(c.tables[s].begin(), c.tables[s].end(), &flat[s * max_blocks]);
  c.dev_tables = DeviceBuffer::from(flat);
  c.dev_tokens = DeviceBuffer::from(lengths);
  c.dev_seqs = {c.dev_tables.as<int32_t>(), c.dev_tokens.as<int32_t>(), static_cast<int32_t>(lengths.size()),
                static_cast<int32_t>(max_blocks)};
  return c;
}

TwinCache make_cache(DType dtype, int32_t n_head_kv, int32_t head_dim, const std::vector<int32_t>& lengths,
                     std::mt19937& rng) {
  return make_cache(dtype, dtype, n_head_kv, head_dim, lengths, rng);
}

// Stores k and v ([rows][n_head_kv][head_dim]) on both sides and compares the pools bit for bit.
::testing::AssertionResult store_both(TwinCache& c, const std::vector<KvRow>& rows, const std::vector<float>& k,
                                      const std::vector<float>& v) {
  ThreadPool pool(1);
  store_kv(cpu_kernels(Isa::kScalar), pool, c.host, c.seqs(), rows, k.data(), v.data());
  const DeviceBuffer d_rows = DeviceBuffer::from(rows), d_k = DeviceBuffer::from(k), d_v = DeviceBuffer::from(v);
  cuda::store_kv(c.dev, c.dev_seqs, d_rows.as<KvRow>(), static_cast<int32_t>(rows.size()), d_k.as<float>(),
                 d_v.as<float>(), nullptr);
  const cudaError_t status = cudaDeviceSynchronize();
  if (status != cudaSuccess) return ::testing::AssertionFailure() << "store_kv: " << cudaGetErrorString(status);
  for (int which = 0; which < 2; ++which) {
    const AlignedBuffer& want = which == 0 ? c.host_k : c.host_v;
    const std::vector<uint8_t> got = (which == 0 ? c.dev_k : c.dev_v).to_vector<uint8_t>(want.size());
    if (std::memcmp(got.data(), want.data(), want.size()) != 0) {
      size_t i = 0;
      while (got[i] == static_cast<uint8_t>(want.data()[i])) ++i;
      return ::testing::AssertionFailure() << (which == 0 ? "K" : "V") << " pool differs first at byte " << i;
    }
  }
  return ::testing::AssertionSuccess();
}

// Stores random K (sigma 1) and V (mean 0.5: outputs that do not cancel to ~0, so a relative
// error means something) for `rows`.
::testing::AssertionResult store_random(TwinCache& c, const std::vector<KvRow>& rows, std::mt19937& rng) {
  const size_t n = rows.size() * static_cast<size_t>(c.host.n_head_kv) * static_cast<size_t>(c.host.head_dim);
  return store_both(c, rows, uniform_values(n, rng, 1.0f), uniform_values(n, rng, 0.5f, 0.5f));
}

// Positions [from[s], to[s]) of every sequence s, shuffled.
std::vector<KvRow> positions(const std::vector<int32_t>& from, const std::vector<int32_t>& to, std::mt19937& rng) {
  std::vector<KvRow> rows;
  for (size_t s = 0; s < from.size(); ++s) {
    for (int32_t p = from[s]; p < to[s]; ++p) rows.push_back({static_cast<int32_t>(s), p});
  }
  std::shuffle(rows.begin(), rows.end(), rng);
  return rows;
}

// A cache with every position of every sequence stored (in one shuffled call).
TwinCache filled_cache(DType dtype, int32_t n_head_kv, int32_t head_dim, const std::vector<int32_t>& lengths,
                       std::mt19937& rng) {
  TwinCache c = make_cache(dtype, n_head_kv, head_dim, lengths, rng);
  EXPECT_TRUE(store_random(c, positions(std::vector<int32_t>(lengths.size(), 0), lengths, rng), rng));
  return c;
}

std::vector<KvRow> decode_rows(const std::vector<int32_t>& lengths) {
  std::vector<KvRow> rows;
  for (size_t s = 0; s < lengths.size(); ++s) rows.push_back({static_cast<int32_t>(s), lengths[s] - 1});
  return rows;
}

// The CPU reference: scalar kernels, one thread, never split.
std::vector<float> cpu_attention(const TwinCache& c, const std::vector<KvRow>& rows, const std::vector<float>& q,
                                 AttentionParams p) {
  p.split_tokens = -1;
  ThreadPool pool(1);
  AttentionScratch scratch(static_cast<int64_t>(rows.size()), p.n_head, c.host.n_head_kv, c.host.head_dim, 1);
  std::vector<float> out(rows.size() * static_cast<size_t>(p.n_head * c.host.head_dim), NAN);
  attention(attention_kernels(Isa::kScalar), pool, c.host, c.seqs(), rows, q.data(), p, out.data(), scratch);
  return out;
}

// The device's, with NaN in the output and workspace beforehand. max_context 0: the cache's.
std::vector<float> gpu_attention(const TwinCache& c, const std::vector<KvRow>& rows, const std::vector<float>& q,
                                 const AttentionParams& p, int32_t max_context = 0) {
  if (max_context == 0) max_context = c.max_context();
  const size_t n_out = rows.size() * static_cast<size_t>(p.n_head * c.host.head_dim);
  const DeviceBuffer d_rows = DeviceBuffer::from(rows), d_q = DeviceBuffer::from(q);
  const DeviceBuffer out = poisoned_floats(n_out);
  const size_t ws_bytes =
      cuda::attention_workspace_bytes(static_cast<int64_t>(rows.size()), p.n_head, c.host.head_dim, max_context);
  const DeviceBuffer ws = poisoned_floats(ws_bytes / sizeof(float));
  cuda::attention(c.dev, c.dev_seqs, d_rows.as<KvRow>(), static_cast<int32_t>(rows.size()), d_q.as<float>(), p,
                  max_context, ws.data(), ws.bytes(), out.as<float>(), nullptr);
  const cudaError_t status = cudaDeviceSynchronize();
  EXPECT_EQ(status, cudaSuccess) << cudaGetErrorString(status);
  return out.to_vector<float>(n_out);
}

// Every run of one sequence's rows as tiles of at most 64, however short (the kernel takes any).
std::vector<cuda::QueryTile> all_rows_as_tiles(const std::vector<KvRow>& rows) {
  std::vector<cuda::QueryTile> tiles;
  for (size_t i = 0; i < rows.size();) {
    size_t j = i + 1;
    while (j < rows.size() && j - i < static_cast<size_t>(cuda::kQueryTileRows) && rows[j].seq == rows[i].seq) ++j;
    tiles.push_back({static_cast<int32_t>(i), static_cast<int32_t>(j - i)});
    i = j;
  }
  return tiles;
}

// The tiled kernel over `tiles` (all of the rows by default) and the per-row kernel over
// `lone_rows`, into one output poisoned with NaN beforehand.
std::vector<float> gpu_tiled_attention(const TwinCache& c, const std::vector<KvRow>& rows, const std::vector<float>& q,
                                       const AttentionParams& p, std::vector<cuda::QueryTile> tiles = {},
                                       const std::vector<int32_t>& lone_rows = {}) {
  if (tiles.empty()) tiles = all_rows_as_tiles(rows);
  const size_t n_out = rows.size() * static_cast<size_t>(p.n_head * c.host.head_dim);
  const DeviceBuffer d_rows = DeviceBuffer::from(rows), d_q = DeviceBuffer::from(q),
                     d_tiles = DeviceBuffer::from(tiles), d_lone = DeviceBuffer::from(lone_rows);
  const DeviceBuffer out = poisoned_floats(n_out);
  const auto n_rows = static_cast<int32_t>(rows.size());
  cuda::tiled_attention(c.dev, c.dev_seqs, d_rows.as<KvRow>(), n_rows, d_tiles.as<cuda::QueryTile>(),
                        static_cast<int32_t>(tiles.size()), d_q.as<float>(), p, out.as<float>(), nullptr);
  if (!lone_rows.empty()) {
    const size_t ws_bytes = cuda::attention_workspace_bytes(n_rows, p.n_head, c.host.head_dim, c.max_context());
    const DeviceBuffer ws = poisoned_floats(ws_bytes / sizeof(float));
    cuda::attention(c.dev, c.dev_seqs, d_rows.as<KvRow>(), n_rows, d_q.as<float>(), p, c.max_context(), ws.data(),
                    ws.bytes(), out.as<float>(), nullptr, d_lone.as<int32_t>(), static_cast<int32_t>(lone_rows.size()));
  }
  const cudaError_t status = cudaDeviceSynchronize();
  EXPECT_EQ(status, cudaSuccess) << cudaGetErrorString(status);
  return out.to_vector<float>(n_out);
}

// Whole-output error within `tol` and every row's within kRowTolerance; prints the error seen.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, size_t row_floats, double tol,
                  const std::string& what) {
  const double err = relative_error(got, want);
  std::printf("  [attention] %-58s rel err %.2e\n", what.c_str(), err);
  EXPECT_LE(err, tol) << what;
  for (size_t r = 0; r * row_floats < want.size(); ++r) {
    const auto first = static_cast<std::ptrdiff_t>(r * row_floats),
               last = first + static_cast<std::ptrdiff_t>(row_floats);
    const std::vector<float> g(got.begin() + first, got.begin() + last), w(want.begin() + first, want.begin() + last);
    EXPECT_LE(relative_error(g, w), std::max(tol, kRowTolerance)) << what << ": row " << r;
  }
}

// Runs `rows` never split, split as the kernel decides and split into small chunks, each against
// the CPU; the split results also against the unsplit one.
void check_all_splits(const TwinCache& c, const std::vector<KvRow>& rows, AttentionParams p, std::mt19937& rng,
                      const std::string& what, float q_sigma = 2.0f) {
  const size_t row_floats = static_cast<size_t>(p.n_head * c.host.head_dim);
  const std::vector<float> q = uniform_values(rows.size() * row_floats, rng, q_sigma);
  const std::vector<float> want = cpu_attention(c, rows, q, p);
  const double tol = tolerance(c.host.k_dtype);
  p.split_tokens = -1;
  const std::vector<float> unsplit = gpu_attention(c, rows, q, p);
  expect_close(unsplit, want, row_floats, tol, what + " unsplit");
  for (int32_t split : {0, 64, 16}) {
    p.split_tokens = split;
    const std::vector<float> got = gpu_attention(c, rows, q, p);
    expect_close(got, want, row_floats, tol, what + " split " + std::to_string(split));
    EXPECT_LE(relative_error(got, unsplit), tol) << what << " split " << split << " vs unsplit";
  }
}

std::string shape_name(DType dtype, int32_t n_head, int32_t n_head_kv, int32_t head_dim) {
  return std::string(dtype_name(dtype)) + " heads " + std::to_string(n_head) + "/" + std::to_string(n_head_kv) + " d" +
         std::to_string(head_dim);
}

TEST(CudaAttention, StoreKvBitExactF32F16AndQ8_0) {
  EMBER_REQUIRE_GPU();
  std::mt19937 rng(11);
  const std::vector<int32_t> lengths = {1, 15, 16, 17, 40};
  for (DType dtype : {DType::kF32, DType::kF16, DType::kQ8_0}) {
    for (int32_t head_dim : {128, dtype == DType::kQ8_0 ? 96 : 80}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " head_dim " + std::to_string(head_dim));
      TwinCache c = make_cache(dtype, 3, head_dim, lengths, rng);
      // All but the last token in one shuffled call, with f16 edge cases at the front of K: a
      // subnormal, round-to-even ties (2049 -> 2048, 2051 -> 2052), the largest half, overflow
      // to infinity, underflow to zero.
      std::vector<int32_t> before_last;
      for (int32_t len : lengths) before_last.push_back(len - 1);
      const std::vector<KvRow> rows = positions(std::vector<int32_t>(lengths.size(), 0), before_last, rng);
      const size_t n = rows.size() * 3 * static_cast<size_t>(head_dim);
      std::vector<float> k = uniform_values(n, rng, 1.0f), v = uniform_values(n, rng, 1.0f);
      const float edges[] = {1e-5f,    -3e-7f,   2049.0f, 2051.0f, -2051.0f,      65504.0f,
                             65519.0f, 65520.0f, -7e4f,   1e-8f,   6.1035156e-5f, 0.33333334f};
      std::copy(std::begin(edges), std::end(edges), k.begin());
      if (dtype == DType::kQ8_0) {
        // Q8_0 blocks (32 values) of their own: absmax 127 (d = 1) with rounding ties, which go away
        // from zero; a NaN (skipped by the absmax, stored as 0); an infinity (d = inf, every q 0).
        const float ties[] = {127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 1.5f, -126.5f, 3.4999998f};
        std::copy(std::begin(ties), std::end(ties), k.begin() + 32);
        k[64 + 5] = NAN;
        k[96 + 7] = INFINITY;
        // Subnormal values (1/d overflows to infinity) and tiny normal ones (a subnormal f16 d).
        for (int j = 0; j < 32; ++j) {
          k[128 + j] = static_cast<float>(j - 16) * 1e-40f;
          k[160 + j] = static_cast<float>(j - 15) * 3e-7f;
        }
      }
      ASSERT_TRUE(store_both(c, rows, k, v));
      // Then the last token of every sequence, as a decode step stores it.
      ASSERT_TRUE(store_random(c, positions(before_last, lengths, rng), rng));
      // Storing again over stored slots overwrites them.
      ASSERT_TRUE(store_random(c, positions({0, 3, 0, 16, 30}, {1, 9, 0, 17, 40}, rng), rng));
    }
  }
}

// rope_store_kv: rope_qk then store_kv in one launch, the same bits in q, k and both pools; every
// pool type, normal and neox, full and partial rotary, GQA, rows in shuffled order.
TEST(CudaAttention, RopeStoreKvEqualsRopeThenStore) {
  EMBER_REQUIRE_GPU();
  struct Case {
    DType dtype;
    int32_t n_head_q, n_head_kv, head_dim, n_rot;
  };
  for (bool neox : {false, true}) {
    for (const Case& cs : {Case{DType::kF32, 8, 2, 64, 64}, Case{DType::kF16, 4, 4, 80, 40},
                           Case{DType::kQ8_0, 6, 2, 64, 32}, Case{DType::kQ8_0, 2, 1, 32, 32}}) {
      const std::string what = std::string(dtype_name(cs.dtype)) + " heads " + std::to_string(cs.n_head_q) + "/" +
                               std::to_string(cs.n_head_kv) + " d" + std::to_string(cs.head_dim) + " rot " +
                               std::to_string(cs.n_rot) + (neox ? " neox" : "");
      SCOPED_TRACE(what);
      // Two caches with the same block tables: one for each path.
      std::mt19937 rng_a(18), rng_b(18), rng(19);
      TwinCache a = make_cache(cs.dtype, cs.n_head_kv, cs.head_dim, {40, 3}, rng_a);
      TwinCache b = make_cache(cs.dtype, cs.n_head_kv, cs.head_dim, {40, 3}, rng_b);
      const std::vector<KvRow> rows = positions({0, 0}, {40, 3}, rng);
      const auto n_rows = static_cast<int32_t>(rows.size());
      const size_t q_floats = rows.size() * static_cast<size_t>(cs.n_head_q * cs.head_dim),
                   kv_floats = rows.size() * static_cast<size_t>(cs.n_head_kv * cs.head_dim);
      const std::vector<float> q = uniform_values(q_floats, rng, 1.0f), k = uniform_values(kv_floats, rng, 1.0f),
                               v = uniform_values(kv_floats, rng, 0.5f, 0.5f),
                               cos_sin = uniform_values(rows.size() * static_cast<size_t>(cs.n_rot), rng, 0.5f);
      const DeviceBuffer d_rows = DeviceBuffer::from(rows), d_cs = DeviceBuffer::from(cos_sin),
                         d_v = DeviceBuffer::from(v);
      const DeviceBuffer q1 = DeviceBuffer::from(q), k1 = DeviceBuffer::from(k), q2 = DeviceBuffer::from(q),
                         k2 = DeviceBuffer::from(k);
      cuda::rope_qk(q1.as<float>(), int64_t{cs.n_head_q} * cs.head_dim, cs.n_head_q, k1.as<float>(),
                    int64_t{cs.n_head_kv} * cs.head_dim, cs.n_head_kv, n_rows, cs.head_dim, cs.n_rot, neox,
                    d_cs.as<float>(), nullptr);
      cuda::store_kv(a.dev, a.dev_seqs, d_rows.as<KvRow>(), n_rows, k1.as<float>(), d_v.as<float>(), nullptr);
      cuda::rope_store_kv(b.dev, b.dev_seqs, d_rows.as<KvRow>(), n_rows, q2.as<float>(), cs.n_head_q, k2.as<float>(),
                          d_v.as<float>(), cs.n_rot, neox, d_cs.as<float>(), nullptr);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      EXPECT_EQ(q2.to_vector<float>(q_floats), q1.to_vector<float>(q_floats));
      EXPECT_EQ(k2.to_vector<float>(kv_floats), k1.to_vector<float>(kv_floats));
      EXPECT_NE(q2.to_vector<float>(q_floats), q);  // something rotated
      EXPECT_EQ(b.dev_k.to_vector<uint8_t>(a.host_k.size()), a.dev_k.to_vector<uint8_t>(a.host_k.size()));
      EXPECT_EQ(b.dev_v.to_vector<uint8_t>(a.host_v.size()), a.dev_v.to_vector<uint8_t>(a.host_v.size()));
      const auto* poison = reinterpret_cast<const uint8_t*>(a.host_k.data());  // the pool as it started
      EXPECT_NE(b.dev_k.to_vector<uint8_t>(a.host_k.size()),
                std::vector<uint8_t>(poison, poison + a.host_k.size()));  // something stored
    }
  }
}

TEST(CudaAttention, ZeroRowsLaunchNothing) {
  EMBER_REQUIRE_GPU();
  PagedKvView kv{2, 64, DType::kF16, DType::kF16, nullptr, nullptr, 0};
  cuda::store_kv(kv, {}, nullptr, 0, nullptr, nullptr, nullptr);
  AttentionParams p;
  p.n_head = 4;
  cuda::attention(kv, {}, nullptr, 0, nullptr, p, 0, nullptr, 0, nullptr, nullptr);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST(CudaAttention, DecodeRowsGqaMhaAndHeadDims) {
  EMBER_REQUIRE_GPU();
  std::mt19937 rng(12);
  const std::vector<int32_t> lengths = {1, 15, 16, 17, 300, 5000};
  struct Shape {
    int32_t n_head, n_head_kv, head_dim;
  };
  for (DType dtype : {DType::kF32, DType::kF16, DType::kQ8_0}) {
    for (const Shape& s : {Shape{8, 2, 128}, Shape{8, 2, 64}, Shape{4, 4, 80}, Shape{2, 2, 128}}) {
      if (dtype == DType::kQ8_0 && s.head_dim % 32 != 0) continue;
      const std::string what = shape_name(dtype, s.n_head, s.n_head_kv, s.head_dim);
      SCOPED_TRACE(what);
      const TwinCache c = filled_cache(dtype, s.n_head_kv, s.head_dim, lengths, rng);
      AttentionParams p;
      p.n_head = s.n_head;
      check_all_splits(c, decode_rows(lengths), p, rng, "decode " + what);
    }
  }
}

// Unsplit, a row's result is the row's alone: the same bits batched with others, alone, and under
// another max_context.
TEST(CudaAttention, UnsplitRowsAreBatchInvariant) {
  EMBER_REQUIRE_GPU();
  std::mt19937 rng(13);
  const std::vector<int32_t> lengths = {5000, 17, 300};
  const TwinCache c = filled_cache(DType::kF16, 2, 128, lengths, rng);
  AttentionParams p;
  p.n_head = 8;
  p.split_tokens = -1;
  const std::vector<KvRow> rows = decode_rows(lengths);
  const size_t row_floats = 8 * 128;
  const std::vector<float> q = uniform_values(rows.size() * row_floats, rng, 2.0f);
  const std::vector<float> batched = gpu_attention(c, rows, q, p);
  for (size_t r = 0; r < rows.size(); ++r) {
    const std::vector<float> q_r(q.begin() + static_cast<std::ptrdiff_t>(r * row_floats),
                                 q.begin() + static_cast<std::ptrdiff_t>((r + 1) * row_floats));
    const std::vector<float> alone = gpu_attention(c, {rows[r]}, q_r, p, 8192);
    EXPECT_EQ(std::memcmp(alone.data(), batched.data() + r * row_floats, row_floats * sizeof(float)), 0) << "row " << r;
  }
}

// A step as the scheduler builds it: a prefill chunk of 37 rows continuing a 20-token sequence
// (stored by the same step), a decode row of another sequence, an earlier position of the first
// sequence out of order.
TEST(CudaAttention, PrefillChunkContinuingASequence) {
  EMBER_REQUIRE_GPU();
  std::mt19937 rng(14);
  const std::pair<DType, DType> types[] = {{DType::kF32, DType::kF32},
                                           {DType::kF16, DType::kF16},
                                           {DType::kQ8_0, DType::kQ8_0},
                                           {DType::kQ8_0, DType::kF16},
                                           {DType::kF32, DType::kQ8_0}};
  for (const auto& [dtype, v_dtype] : types) {
    TwinCache c = make_cache(dtype, v_dtype, 2, 128, {57, 300}, rng);
    ASSERT_TRUE(store_random(c, positions({0, 0}, {20, 299}, rng), rng));
    std::vector<KvRow> step;
    for (int32_t pos = 20; pos < 57; ++pos) step.push_back({0, pos});
    step.push_back({1, 299});
    ASSERT_TRUE(store_random(c, step, rng));  // in the step's order, not shuffled
    std::vector<KvRow> rows = step;
    rows.push_back({0, 5});
    for (int32_t window : {0, 8, 33}) {
      const std::string what = std::string("prefill ") + std::string(dtype_name(dtype)) + "/" +
                               std::string(dtype_name(v_dtype)) + " window " + std::to_string(window);
      SCOPED_TRACE(what);
      AttentionParams p;
      p.n_head = 8;
      p.window = window;
      check_all_splits(c, rows, p, rng, what);
    }
    // A max_context far past every sequence (grid chunks no row needs) and fine forced chunks.
    AttentionParams p;
    p.n_head = 8;
    p.split_tokens = 32;
    const std::vector<float> q = uniform_values(rows.size() * 8 * 128, rng, 2.0f);
    expect_close(gpu_attention(c, rows, q, p, 4096), cpu_attention(c, rows, q, p), 8 * 128, tolerance(dtype),
                 "prefill max_context 4096 split 32");
  }
}

TEST(CudaAttention, SoftcapScaleAndSlidingWindow) {
  EMBER_REQUIRE_GPU();
  std::mt19937 rng(15);
  const std::vector<int32_t> lengths = {1, 15, 16, 17, 300, 5000};
  struct Case {
    int32_t window;
    float softcap, scale;
  };
  for (DType dtype : {DType::kF32, DType::kF16}) {
    const TwinCache c = filled_cache(dtype, 2, 64, lengths, rng);
    for (const Case& cs : {Case{0, 2.0f, 0.0f}, Case{100, 0.0f, 0.0f}, Case{17, 5.0f, 0.3f}, Case{1, 0.0f, 0.05f},
                           Case{4096, 30.0f, 0.0f}}) {
      const std::string what = std::string(dtype_name(dtype)) + " window " + std::to_string(cs.window) + " softcap " +
                               std::to_string(cs.softcap) + " scale " + std::to_string(cs.scale);
      SCOPED_TRACE(what);
      AttentionParams p;
      p.n_head = 8;
      p.window = cs.window;
      p.softcap = cs.softcap;
      p.scale = cs.scale;
      check_all_splits(c, decode_rows(lengths), p, rng, what);
    }
  }
}

// Query groups of more than 8 heads span several blocks; head_dim 256 and 96.
TEST(CudaAttention, LargeGroupsAndWideHeads) {
  EMBER_REQUIRE_GPU();
  std::mt19937 rng(16);
  const std::vector<int32_t> lengths = {1, 33, 700};
  struct Shape {
    int32_t n_head, n_head_kv, head_dim;
  };
  for (const Shape& s : {Shape{12, 1, 256}, Shape{16, 2, 256}, Shape{9, 1, 96}, Shape{4, 2, 256}}) {
    for (DType dtype : {DType::kF16, DType::kF32}) {
      const std::string what = shape_name(dtype, s.n_head, s.n_head_kv, s.head_dim);
      SCOPED_TRACE(what);
      const TwinCache c = filled_cache(dtype, s.n_head_kv, s.head_dim, lengths, rng);
      AttentionParams p;
      p.n_head = s.n_head;
      check_all_splits(c, decode_rows(lengths), p, rng, what);
    }
  }
}

// Latent attention's cache (DeepSeek's MLA): one kv head of 576 (512 latent + 64 rope) whose
// values are the key rows (the V pool is the K pool), attended by many query heads; wider than 256,
// so the kernel's wide variant with its tiles of 4 query heads. 320 is wide too, with pairs the
// block's threads do not divide evenly.
TEST(CudaAttention, WideHeadsOverValuesInTheKeyRows) {
  EMBER_REQUIRE_GPU();
  std::mt19937 rng(17);
  const std::vector<int32_t> lengths = {1, 17, 300, 700};
  struct Shape {
    int32_t n_head, n_head_kv, head_dim;
    DType dtype;
    bool values_in_keys;
  };
  // (Each pool type once at V2-Lite's shape; the odd shapes on one type each: the emulator's time.
  // The last: wide heads with their own V pool, grouped.)
  for (const Shape& s : {Shape{16, 1, 576, DType::kF32, true}, Shape{16, 1, 576, DType::kF16, true},
                         Shape{16, 1, 576, DType::kQ8_0, true}, Shape{5, 1, 576, DType::kF16, true},
                         Shape{6, 1, 320, DType::kQ8_0, true}, Shape{6, 2, 320, DType::kF16, false}}) {
    const std::string what =
        shape_name(s.dtype, s.n_head, s.n_head_kv, s.head_dim) + (s.values_in_keys ? " V = K" : "");
    SCOPED_TRACE(what);
    TwinCache c = make_cache(s.dtype, s.n_head_kv, s.head_dim, lengths, rng);
    const std::vector<KvRow> all = positions(std::vector<int32_t>(lengths.size(), 0), lengths, rng);
    if (s.values_in_keys) {
      c.host.v = c.host.k;
      c.dev.v = c.dev.k;
      const std::vector<float> k = uniform_values(all.size() * static_cast<size_t>(s.head_dim), rng, 1.0f, 0.3f);
      ASSERT_TRUE(store_both(c, all, k, k));
    } else {
      ASSERT_TRUE(store_random(c, all, rng));
    }
    AttentionParams p;
    p.n_head = s.n_head;
    check_all_splits(c, decode_rows(lengths), p, rng, "decode " + what);
    // A prefill chunk's rows: the last 9 positions of the longest sequence and two of another.
    std::vector<KvRow> rows = {{1, 3}, {1, 16}};
    for (int32_t pos = 691; pos < 700; ++pos) rows.push_back({3, pos});
    check_all_splits(c, rows, p, rng, "prefill " + what);
  }
}

// Runs of at least 16 rows of one sequence become tiles of at most 64, balanced; shorter runs stay
// rows; too few (tile, head) blocks and nothing is tiled.
TEST(CudaAttention, QueryTilesAreLongRunsOfOneSequence) {
  std::vector<KvRow> rows;
  const auto run = [&](int32_t seq, int32_t n) {
    for (int32_t i = 0; i < n; ++i) rows.push_back({seq, i});
  };
  run(0, 130);                                    // rows 0..129: 44 + 43 + 43 (as few tiles as fit, balanced)
  run(1, 1);                                      // 130: a decode row
  run(0, 2);                                      // 131, 132: a short run
  run(2, 16);                                     // 133..148: the shortest tile
  run(3, 15);                                     // 149..163: one row short of one
  run(4, 65);                                     // 164..228: 33 + 32
  std::vector<cuda::QueryTile> tiles = {{7, 7}};  // replaced, not appended to
  std::vector<int32_t> lone = {9};
  ASSERT_TRUE(cuda::plan_query_tiles(rows, 1, 0, tiles, lone));
  const std::vector<std::pair<int32_t, int32_t>> want = {{0, 44}, {44, 43}, {87, 43}, {133, 16}, {164, 33}, {197, 32}};
  ASSERT_EQ(tiles.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(tiles[i].first_row, want[i].first) << "tile " << i;
    EXPECT_EQ(tiles[i].n_rows, want[i].second) << "tile " << i;
  }
  std::vector<int32_t> want_lone = {130, 131, 132};
  for (int32_t r = 149; r < 164; ++r) want_lone.push_back(r);
  EXPECT_EQ(lone, want_lone);
  // 6 tiles × 21 heads = 126 blocks: under 128, every row goes row by row.
  EXPECT_TRUE(cuda::plan_query_tiles(rows, 22, 128, tiles, lone));
  EXPECT_FALSE(cuda::plan_query_tiles(rows, 21, 128, tiles, lone));
  EXPECT_TRUE(tiles.empty());
  EXPECT_TRUE(lone.empty());
  EXPECT_FALSE(cuda::plan_query_tiles({}, 32, 0, tiles, lone));  // nothing to tile
  EXPECT_FALSE(cuda::plan_query_tiles(std::vector<KvRow>(rows.begin() + 130, rows.begin() + 133), 32, 0, tiles, lone));
}

// A prefill step as the scheduler builds it, through the tiled kernel: 120 rows continuing a
// sequence (two tiles, 64 + 56), a decode row of another, an earlier position of the first out of
// order (a tile of its own), and a run of a third in shuffled order; every pool type (F16 pools
// with head_dim a multiple of 8 are copied, the others converted), head sizes the kernel pads (10,
// 96; 80 with F16 pools, copied and padded) and its two widths (64, 128), windows that hide most of
// a tile's range from each row, soft-cap and scale.
TEST(CudaAttention, TiledPrefillEqualsTheCpu) {
  EMBER_REQUIRE_GPU();
  std::mt19937 rng(17);
  struct Case {
    DType k, v;
    int32_t n_head, n_head_kv, head_dim;
  };
  for (const Case& cs : {Case{DType::kF16, DType::kF16, 8, 2, 128}, Case{DType::kF32, DType::kF32, 4, 4, 64},
                         Case{DType::kQ8_0, DType::kQ8_0, 4, 2, 64}, Case{DType::kQ8_0, DType::kF16, 2, 1, 96},
                         Case{DType::kF32, DType::kQ8_0, 3, 1, 32}, Case{DType::kF16, DType::kF32, 6, 3, 10},
                         Case{DType::kF16, DType::kF16, 4, 2, 80}}) {
    const std::string shape = std::string(dtype_name(cs.k)) + "/" + std::string(dtype_name(cs.v)) + " heads " +
                              std::to_string(cs.n_head) + "/" + std::to_string(cs.n_head_kv) + " d" +
                              std::to_string(cs.head_dim);
    SCOPED_TRACE(shape);
    ASSERT_TRUE(cuda::tiled_attention_supports(cs.k, cs.v, cs.head_dim));
    TwinCache c = make_cache(cs.k, cs.v, cs.n_head_kv, cs.head_dim, {150, 65, 30}, rng);
    ASSERT_TRUE(store_random(c, positions({0, 0, 0}, {30, 64, 3}, rng), rng));
    std::vector<KvRow> step;
    for (int32_t pos = 30; pos < 150; ++pos) step.push_back({0, pos});
    step.push_back({1, 64});  // the first token of the kernel's last 32-token step
    const std::vector<KvRow> shuffled = positions({0, 0, 3}, {0, 0, 30}, rng);  // one tile, positions out of order
    step.insert(step.end(), shuffled.begin(), shuffled.end());
    ASSERT_TRUE(store_random(c, step, rng));
    std::vector<KvRow> rows = step;
    rows.insert(rows.begin() + 121, {0, 5});
    const size_t row_floats = static_cast<size_t>(cs.n_head * cs.head_dim);
    struct Params {
      int32_t window;
      float softcap, scale;
    };
    for (const Params& ps :
         {Params{0, 0.0f, 0.0f}, Params{8, 0.0f, 0.0f}, Params{40, 30.0f, 0.0f}, Params{0, 5.0f, 0.3f}}) {
      AttentionParams p;
      p.n_head = cs.n_head;
      p.window = ps.window;
      p.softcap = ps.softcap;
      p.scale = ps.scale;
      const std::vector<float> q = uniform_values(rows.size() * row_floats, rng, 2.0f);
      expect_close(gpu_tiled_attention(c, rows, q, p), cpu_attention(c, rows, q, p), row_floats, kTiledTolerance,
                   "tiled " + shape + " window " + std::to_string(ps.window) + " softcap " +
                       std::to_string(ps.softcap) + " scale " + std::to_string(ps.scale));
    }
  }
  EXPECT_FALSE(cuda::tiled_attention_supports(DType::kF16, DType::kF16, 256));
  EXPECT_FALSE(cuda::tiled_attention_supports(DType::kF16, DType::kF16, 0));
  EXPECT_FALSE(cuda::tiled_attention_supports(DType::kF32, DType::kF32, -2));
  EXPECT_FALSE(cuda::tiled_attention_supports(DType::kQ8_0, DType::kF16, 80));
}

// A prompt's last rows as a prefill step sees them: positions [0, from) of sequence 0 stored
// earlier (shuffled), then the step's rows [from, to) stored in order; returns the step's rows.
std::vector<KvRow> stored_prompt_tail(TwinCache& c, int32_t from, int32_t to, std::mt19937& rng) {
  EXPECT_TRUE(store_random(c, positions({0}, {from}, rng), rng));
  std::vector<KvRow> rows;
  for (int32_t pos = from; pos < to; ++pos) rows.push_back({0, pos});
  EXPECT_TRUE(store_random(c, rows, rng));
  return rows;
}

// Long and peaked: the last 64 rows of a 1500-token sequence with queries 25x the keys' scale (few
// positions carry the softmax, many rescalings: an f16 rounding of q or of K would show), on every
// pool type; a llama-like shape (32 / 8 heads of 128, F32 pools) with a window, its 100 rows at
// positions 200-299.
TEST(CudaAttention, TiledLongContextPeakedSoftmaxAndALlamaShape) {
  EMBER_REQUIRE_GPU();
  std::mt19937 rng(23);
  for (DType dtype : {DType::kF16, DType::kF32, DType::kQ8_0}) {
    SCOPED_TRACE(dtype_name(dtype));
    TwinCache c = make_cache(dtype, 1, 64, {1500}, rng);
    const std::vector<KvRow> rows = stored_prompt_tail(c, 1436, 1500, rng);
    ASSERT_FALSE(HasFailure());
    AttentionParams p;
    p.n_head = 2;
    const std::vector<float> q = uniform_values(rows.size() * 2 * 64, rng, 25.0f);
    expect_close(gpu_tiled_attention(c, rows, q, p), cpu_attention(c, rows, q, p), 2 * 64, kTiledTolerance,
                 "tiled " + std::string(dtype_name(dtype)) + " 1500 tokens, peaked");
  }
  {
    TwinCache c = make_cache(DType::kF32, 8, 128, {300}, rng);
    const std::vector<KvRow> rows = stored_prompt_tail(c, 200, 300, rng);
    ASSERT_FALSE(HasFailure());
    AttentionParams p;
    p.n_head = 32;
    p.window = 100;
    const std::vector<float> q = uniform_values(rows.size() * 32 * 128, rng, 2.0f);
    expect_close(gpu_tiled_attention(c, rows, q, p), cpu_attention(c, rows, q, p), 32 * 128, kTiledTolerance,
                 "tiled f32 heads 32/8 d128 window 100");
  }
}

// A mixed step split as the GPU layers split it: plan_query_tiles' tiles through tiled_attention,
// its lone rows (a decode row, short runs) through attention() by row_ids, unsplit and split, one
// output; the lone rows bit for bit as attention() of all the rows gives them unsplit.
TEST(CudaAttention, TilesAndLoneRowsTogetherEqualTheCpu) {
  EMBER_REQUIRE_GPU();
  std::mt19937 rng(24);
  TwinCache c = make_cache(DType::kF16, 2, 64, {90, 40, 300, 20}, rng);
  ASSERT_TRUE(store_random(c, positions({0, 0, 0, 0}, {20, 39, 299, 5}, rng), rng));
  std::vector<KvRow> rows;
  for (int32_t pos = 20; pos < 90; ++pos) rows.push_back({0, pos});  // tiles of 64 and 6
  rows.push_back({1, 39});                                           // decode rows
  rows.push_back({2, 299});
  for (int32_t pos = 5; pos < 20; ++pos) rows.push_back({3, pos});  // 15 rows: one short of a tile
  ASSERT_TRUE(store_random(c, rows, rng));
  std::vector<cuda::QueryTile> tiles;
  std::vector<int32_t> lone;
  ASSERT_TRUE(cuda::plan_query_tiles(rows, 8, 0, tiles, lone));
  ASSERT_EQ(tiles.size(), 2u);
  ASSERT_EQ(lone.size(), 17u);
  AttentionParams p;
  p.n_head = 8;
  const std::vector<float> q = uniform_values(rows.size() * 8 * 64, rng, 2.0f);
  const std::vector<float> want = cpu_attention(c, rows, q, p);
  for (int32_t split : {0, 16, -1}) {
    p.split_tokens = split;
    const std::vector<float> got = gpu_tiled_attention(c, rows, q, p, tiles, lone);
    expect_close(got, want, 8 * 64, kTiledTolerance, "tiles and lone rows, split " + std::to_string(split));
    if (split == -1) {
      const std::vector<float> all = gpu_attention(c, rows, q, p);
      for (int32_t r : lone) {
        EXPECT_EQ(std::memcmp(got.data() + r * 8 * 64, all.data() + r * 8 * 64, 8 * 64 * sizeof(float)), 0)
            << "lone row " << r;
      }
    }
  }
}

}  // namespace
}  // namespace ember
