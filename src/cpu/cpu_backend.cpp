// CpuBackend: dispatch of the coarse ops onto the kernel tables and the thread pool.
#include "cpu/cpu_backend.h"

#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <array>
#include <charconv>
#include <string_view>

#include "core/check.h"
#include "ember/error.h"

namespace ember {
namespace {

int resolve_thread_count(int requested) {
  if (requested < 0) fail(ErrorCode::kInvalidArgument, "cpu backend: thread count {} is negative", requested);
  return requested == 0 ? std::max(1, cpu_features().usable_cpus) : requested;
}

Isa resolve_isa(const std::optional<Isa>& requested) {
  if (!requested) return select_isa();
  if (!isa_supported(*requested, cpu_features())) {
    fail(ErrorCode::kUnsupported, "cpu backend: this CPU cannot run the {} kernels", isa_name(*requested));
  }
  return *requested;
}

}  // namespace

CpuBackend::CpuBackend(const CpuBackendOptions& options)
    : options_(options), pool_(resolve_thread_count(options.n_threads)) {
  const Isa isa = resolve_isa(options.isa);
  if (options_.gemm_min_rows) {
    if (*options_.gemm_min_rows < 1) {
      fail(ErrorCode::kInvalidArgument, "cpu backend: gemm_min_rows {} is below 1", *options_.gemm_min_rows);
    }
  } else if (const char* env = std::getenv("EMBER_GEMM_MIN_ROWS"); env != nullptr && *env != '\0') {
    const std::string_view v(env);
    int64_t rows = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), rows);
    if (ec != std::errc{} || end != v.data() + v.size() || rows < 1 || rows > 1 << 20) {
      fail(ErrorCode::kInvalidArgument, "EMBER_GEMM_MIN_ROWS={}: expected a row count from 1 to 1048576", v);
    }
    options_.gemm_min_rows = rows;
  }
  kernels_ = &cpu_kernels(isa);
  ops_ = &cpu_ops(isa);
  attention_kernels_ = &attention_kernels(isa);
  bool decode_on_packed = default_decode_on_packed(cpu_features());
  if (options.decode_on_packed) {
    decode_on_packed = *options.decode_on_packed;
  } else if (const char* env = std::getenv("EMBER_DECODE_ON_PACKED"); env != nullptr && *env != '\0') {
    const std::string_view v(env);
    if (v != "0" && v != "1") fail(ErrorCode::kInvalidArgument, "EMBER_DECODE_ON_PACKED={}: expected 0 or 1", v);
    decode_on_packed = v == "1";
  }
  packed_rows_ = decode_on_packed && isa == Isa::kAvx512;
}

bool default_decode_on_packed(const CpuFeatures& cpu) {
  return cpu.vendor != "AuthenticAMD" && cpu.vendor != "HygonGenuine";
}

int64_t default_gemm_min_rows(Isa isa, DType type) {
  // Zen 5, 2 threads, 2048x8192 and 8192x2048 (2026-12-06): the packed GEMM against the GEMV at 2
  // and 3 rows. avx512: Q4_0-Q8_0 1.2-1.3x at 2 rows, BF16 1.3-1.7x; Q3_K, Q4_K, IQ4 0.9-1.15x at 2
  // and 1.15-1.7x at 3; Q2_K, Q5_K, Q6_K, F16 below or near parity at 3. avx2 (pmaddwd tiles):
  // Q4_0, Q4_1, Q5_1 1.1-1.2x at 2 rows (Q5_0 parity), Q8_0 0.7-0.95x at 2 and 1.2-1.35x at 3; the
  // K-quants' GEMV keeps up to 4 rows or more.
  const bool legacy = type == DType::kQ4_0 || type == DType::kQ4_1 || type == DType::kQ5_0 || type == DType::kQ5_1;
  if (isa == Isa::kAvx512) {
    if (legacy || type == DType::kQ8_0 || type == DType::kBF16) return 2;
    if (type == DType::kQ3_K || type == DType::kQ4_K || type == DType::kIQ4_NL || type == DType::kIQ4_XS) return 3;
    return 4;
  }
  if (isa == Isa::kAvx2) {
    if (legacy) return 2;
    if (type == DType::kQ8_0) return 3;
  }
  return 4;
}

CpuBackend::~CpuBackend() = default;

Linear CpuBackend::prepare(const WeightMatrix& w, bool repack, bool invariant_rows) {
  const QuantTraits* traits = find_quant_traits(w.dtype);
  if (traits == nullptr || kernels_->vec_dot_for(w.dtype) == nullptr) {
    fail(ErrorCode::kUnsupported, "cpu backend: no matmul kernels for weight type {}", dtype_name(w.dtype));
  }
  const auto row_bytes = dtype_bytes_for(w.dtype, static_cast<uint64_t>(w.k));
  if (w.k <= 0 || w.n_out <= 0 || !row_bytes || w.k % dtype_traits(traits->vec_dot_type).block_size != 0) {
    fail(ErrorCode::kInvalidArgument, "cpu backend: a {} x {} matrix of {} does not fit its blocks", w.n_out, w.k,
         dtype_name(w.dtype));
  }
  Linear linear{w, std::nullopt, false};
  // Rows the panels cannot hold whole (F16 / BF16 panels take k in 32s) stay on the GEMV path.
  const int64_t panel_k = w.dtype == DType::kF16 || w.dtype == DType::kBF16 ? 32 : 1;
  if (repack && options_.repack_weights && gemm_serves(isa(), w.dtype) && w.k % panel_k == 0) {
    linear.packed = PackedWeights::pack(w, isa(), pool_);
    packed_bytes_ += linear.packed->bytes();
    if (options_.amx && amx_serves(isa(), *linear.packed)) uses_amx_ = true;
    // rows_invariant's rule, which for a packed matrix holds exactly for panels on every row count.
    linear.rows_on_packed = rows_invariant(w.dtype, invariant_rows);
    linear.gemm_min_rows = options_.gemm_min_rows.value_or(default_gemm_min_rows(isa(), w.dtype));
    // Float panels take 4-byte activations: the GEMM scratch must grow to them.
    if (w.dtype == DType::kF16 || w.dtype == DType::kBF16) float_gemm_ = true;
    reserve(limits_);
  }
  return linear;
}

bool CpuBackend::rows_invariant(DType dtype, bool invariant_rows) const noexcept {
  if (!options_.repack_weights || !gemm_serves(isa(), dtype)) return true;  // prepare() keeps the GEMV
  // Mirrors prepare(): F16 / BF16 get float panels, every other served type integer panels.
  return isa() == Isa::kAvx512 && (packed_rows_ || invariant_rows) && dtype != DType::kF16 && dtype != DType::kBF16;
}

void CpuBackend::reserve(const StepLimits& limits) {
  limits_.max_rows = std::max(limits_.max_rows, limits.max_rows);
  limits_.max_k = std::max(limits_.max_k, limits.max_k);
  limits_.max_n_rot = std::max(limits_.max_n_rot, limits.max_n_rot);
  // Activation rows in the widest dot type (F32 weights take F32 rows).
  const auto act_bytes = static_cast<size_t>(limits_.max_rows * limits_.max_k) * sizeof(float);
  if (matmul_scratch_.activations.size() < act_bytes) matmul_scratch_.activations.resize(act_bytes);
  gemm_scratch_.reserve(limits_.max_rows, limits_.max_k, float_gemm_);
  const auto cos_sin_floats = static_cast<size_t>(limits_.max_rows * limits_.max_n_rot);
  if (cos_sin_.size() < cos_sin_floats) cos_sin_.resize(cos_sin_floats);
  if (limits.n_head > 0) {
    // One scratch per attention shape: a backend may run several models (a draft model's steps
    // between its target's). The rows grow for all of them.
    bool have = false;
    for (std::unique_ptr<AttentionScratch>& scratch : attention_scratches_) {
      const bool same = scratch->n_head() == limits.n_head && scratch->n_head_kv() == limits.n_head_kv &&
                        scratch->head_dim() == limits.head_dim;
      have = have || same;
    }
    if (!have) {
      attention_scratches_.push_back(std::make_unique<AttentionScratch>(
          limits_.max_rows, limits.n_head, limits.n_head_kv, limits.head_dim, pool_.n_threads()));
    }
    for (std::unique_ptr<AttentionScratch>& scratch : attention_scratches_) {
      if (scratch->max_rows() < limits_.max_rows) {
        scratch = std::make_unique<AttentionScratch>(limits_.max_rows, scratch->n_head(), scratch->n_head_kv(),
                                                     scratch->head_dim(), pool_.n_threads());
      }
    }
  }
}

void CpuBackend::matmul(const Linear& w, const float* x, int64_t m, float* y) {
  EMBER_CHECK_MSG(m <= limits_.max_rows && w.w.k <= limits_.max_k, "matmul: beyond reserve()");
  if (uses_gemm(w, m)) {
    gemm(isa(), pool_, *w.packed, x, m, y, gemm_scratch_, GemmOptions{options_.amx});
  } else {
    ember::matmul(*kernels_, pool_, w.w, x, m, y, matmul_scratch_);
  }
}

std::string CpuBackend::kernels_name() const {
  std::string name(isa_name(isa()));
  if (uses_amx_) name += "+amx";
  return name;
}

bool CpuBackend::uses_gemm(const Linear& w, int64_t m) const noexcept {
  if (!w.packed) return false;
  // Integer panels on avx512 may take every row count (the one-row kernel for decode): then a
  // row's logits do not depend on how many rows share its step, bit for bit.
  return m >= w.gemm_min_rows || w.rows_on_packed;
}

void CpuBackend::matmul_accumulate(const Linear& w, const float* x, int64_t m, float* y, float* scratch) {
  matmul(w, x, m, scratch);
  add(y, scratch, y, m, w.w.n_out, w.w.n_out);
}

void CpuBackend::matmul_glu(const Linear& gate, const Linear* up, const float* x, int64_t m, bool gelu, float* gate_up,
                            float* y) {
  const int64_t n = up != nullptr ? gate.w.n_out : gate.w.n_out / 2;
  const float* u = nullptr;
  int64_t stride = 0;
  if (up != nullptr) {  // [m][n] gate, then [m][n] up
    const Linear* const ws[] = {&gate, up};
    float* const ys[] = {gate_up, gate_up + m * n};
    matmul_many(ws, x, m, ys);
    u = gate_up + m * n;
    stride = n;
  } else {  // [m][gate | up]
    matmul(gate, x, m, gate_up);
    u = gate_up + n;
    stride = 2 * n;
  }
  if (gelu) {
    geglu(gate_up, u, stride, y, m, n);
  } else {
    swiglu(gate_up, u, stride, y, m, n);
  }
}

void CpuBackend::matmul_many(std::span<const Linear* const> ws, const float* x, int64_t m, std::span<float* const> ys,
                             std::span<const float* const> biases) {
  EMBER_CHECK_MSG(ws.size() == ys.size() && !ws.empty() && ws.size() <= 4, "matmul_many: 1-4 matrices");
  if (!biases.empty()) {
    EMBER_CHECK(biases.size() == ws.size());
    matmul_many(ws, x, m, ys);
    for (size_t j = 0; j < ws.size(); ++j) {
      if (biases[j] != nullptr) add(ys[j], biases[j], ys[j], m, ws[j]->w.n_out, 0);
    }
    return;
  }
  EMBER_CHECK_MSG(m <= limits_.max_rows && ws[0]->w.k <= limits_.max_k, "matmul: beyond reserve()");
  // Decode on packed weights of one format: one quantization, one job.
  if (m == 1 && std::all_of(ws.begin(), ws.end(), [&](const Linear* w) { return uses_gemm(*w, 1); }) &&
      std::all_of(ws.begin(), ws.end(),
                  [&](const Linear* w) { return same_activations(*w->packed, *ws[0]->packed); })) {
    std::array<const PackedWeights*, 4> packed{};
    for (size_t j = 0; j < ws.size(); ++j) packed[j] = &*ws[j]->packed;
    gemm_row_many(isa(), pool_, {packed.data(), ws.size()}, x, ys, gemm_scratch_);
    return;
  }
  if (std::any_of(ws.begin(), ws.end(), [&](const Linear* w) { return uses_gemm(*w, m); })) {  // one by one
    for (size_t j = 0; j < ws.size(); ++j) matmul(*ws[j], x, m, ys[j]);
    return;
  }
  std::array<WeightMatrix, 4> matrices{};
  for (size_t j = 0; j < ws.size(); ++j) matrices[j] = ws[j]->w;
  ember::matmul_many(*kernels_, pool_, {matrices.data(), ws.size()}, x, m, ys, matmul_scratch_);
}

// Splits n_rows rows across the threads in contiguous ranges of at least ~16 KiB of floats each, so
// short rows do not pay a dispatch per row.
template <typename Fn>
void CpuBackend::for_rows(int64_t n_rows, int64_t row_floats, Fn&& fn) {
  if (n_rows <= 0) return;
  const int64_t rows_per_task = std::max<int64_t>(1, 4096 / std::max<int64_t>(row_floats, 1));
  const int64_t n_tasks = std::min<int64_t>((n_rows + rows_per_task - 1) / rows_per_task, 4 * pool_.n_threads());
  if (n_tasks <= 1) {
    for (int64_t r = 0; r < n_rows; ++r) fn(r);
    return;
  }
  pool_.parallel_for(n_tasks, [&](int64_t t, int) {
    for (int64_t r = t * n_rows / n_tasks; r < (t + 1) * n_rows / n_tasks; ++r) fn(r);
  });
}

void CpuBackend::rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps) {
  for_rows(n_rows, n, [&](int64_t r) { ops_->rms_norm(x + r * n, weight, y + r * n, n, eps); });
}

void CpuBackend::layer_norm(const float* x, const float* weight, const float* bias, float* y, int64_t n_rows, int64_t n,
                            float eps) {
  for_rows(n_rows, n, [&](int64_t r) { ops_->layer_norm(x + r * n, weight, bias, y + r * n, n, eps); });
}

void CpuBackend::softmax(const float* x, float* y, int64_t n_rows, int64_t n, float scale, float softcap) {
  for_rows(n_rows, n, [&](int64_t r) { ops_->softmax(x + r * n, y + r * n, n, scale, softcap); });
}

void CpuBackend::swiglu(const float* g, const float* u, int64_t stride, float* y, int64_t n_rows, int64_t n) {
  for_rows(n_rows, n, [&](int64_t r) { ops_->swiglu(g + r * stride, u + r * stride, y + r * n, n); });
}

void CpuBackend::geglu(const float* g, const float* u, int64_t stride, float* y, int64_t n_rows, int64_t n) {
  for_rows(n_rows, n, [&](int64_t r) { ops_->geglu(g + r * stride, u + r * stride, y + r * n, n); });
}

void CpuBackend::add(const float* a, const float* b, float* y, int64_t n_rows, int64_t n_cols, int64_t b_stride) {
  for_rows(n_rows, n_cols,
           [&](int64_t r) { ops_->add(a + r * n_cols, b + r * b_stride, y + r * n_cols, 1, n_cols, 0); });
}

void CpuBackend::mul(const float* a, const float* b, float* y, int64_t n_rows, int64_t n_cols, int64_t b_stride) {
  for_rows(n_rows, n_cols,
           [&](int64_t r) { ops_->mul(a + r * n_cols, b + r * b_stride, y + r * n_cols, 1, n_cols, 0); });
}

void CpuBackend::copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t n_rows,
                           int64_t n_cols) {
  const size_t row_bytes = sizeof(float) * static_cast<size_t>(n_cols);
  for (int64_t r = 0; r < n_rows; ++r) std::memcpy(dst + r * dst_stride, src + r * src_stride, row_bytes);
}

void CpuBackend::scale(const float* x, float* y, int64_t n, float s) { ops_->scale(x, y, n, s); }

void CpuBackend::softcap(float* x, int64_t n, float cap) {
  EMBER_CHECK_MSG(cap > 0.0f, "softcap: the cap must be positive");
  // Chunks of 4096 floats as rows: a 256k vocabulary's logits in 64 pieces.
  constexpr int64_t kChunk = 4096;
  for_rows((n + kChunk - 1) / kChunk, kChunk, [&](int64_t c) {
    float* chunk = x + c * kChunk;
    const int64_t len = std::min(kChunk, n - c * kChunk);
    ops_->scale(chunk, chunk, len, 1.0f / cap);
    ops_->tanh(chunk, chunk, len);
    ops_->scale(chunk, chunk, len, cap);
  });
}

void CpuBackend::rope(float* x, int64_t n_tokens, int64_t token_stride, int64_t n_head, int64_t head_dim,
                      const RopeTable& table, const int32_t* positions) {
  const int64_t n_rot = table.n_rot();
  EMBER_CHECK_MSG(n_tokens <= limits_.max_rows && n_rot <= limits_.max_n_rot, "rope: beyond reserve()");
  table.cos_sin(positions, n_tokens, cos_sin_.data());
  rope(x, n_tokens, token_stride, n_head, head_dim, n_rot, table.neox(), cos_sin_.data());
}

void CpuBackend::rope(float* x, int64_t n_tokens, int64_t token_stride, int64_t n_head, int64_t head_dim, int64_t n_rot,
                      bool neox, const float* cos_sin) {
  for_rows(n_tokens, n_head * head_dim, [&](int64_t t) {
    ops_->rope(x + t * token_stride, 1, token_stride, n_head, head_dim, n_rot, neox, cos_sin + t * n_rot);
  });
}

void CpuBackend::get_rows(DType type, const void* src, int64_t n_src_rows, int64_t n_cols, const int32_t* ids,
                          int64_t n_ids, float* dst) {
  for_rows(n_ids, n_cols,
           [&](int64_t i) { ember::get_rows(*ops_, type, src, n_src_rows, n_cols, ids + i, 1, dst + i * n_cols); });
}

void CpuBackend::store_kv(const PagedKvView& kv, std::span<const KvSeq> seqs, std::span<const KvRow> rows,
                          const float* k, const float* v) {
  ember::store_kv(*kernels_, pool_, kv, seqs, rows, k, v);
}

void CpuBackend::attention(const PagedKvView& kv, std::span<const KvSeq> seqs, std::span<const KvRow> rows,
                           const float* q, const AttentionParams& params, float* out) {
  EMBER_CHECK_MSG(static_cast<int64_t>(rows.size()) <= limits_.max_rows, "attention: beyond reserve()");
  for (const std::unique_ptr<AttentionScratch>& scratch : attention_scratches_) {
    if (scratch->n_head() == params.n_head && scratch->n_head_kv() == kv.n_head_kv &&
        scratch->head_dim() == kv.head_dim) {
      ember::attention(*attention_kernels_, pool_, kv, seqs, rows, q, params, out, *scratch);
      return;
    }
  }
  EMBER_CHECK_MSG(false, "attention: no scratch reserved for this shape (reserve() it)");
}

}  // namespace ember
