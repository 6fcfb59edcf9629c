// The prefill GEMM Y = X · Wᵀ on weights repacked at load time into interleaved row groups
// (gemm_isa.h): activations quantized once per sub-block, register-blocked microkernels that keep
// a tile of outputs in registers and reuse each loaded weight vector across several activation rows.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "cpu/cpu_kernels.h"
#include "cpu/gemm_isa.h"
#include "cpu/matmul.h"

namespace ember {

// The integer form (gemm_isa.h) of a quantized weight type; nullopt for types without one
// (floats, Q8_1 / Q8_K, the unsupported IQ formats).
std::optional<PanelFormat> panel_format(DType type);

// Whether `isa` has a GEMM microkernel for weights of `type` (the scalar table has none: its
// matmul is the GEMV path; F16 / BF16 weights have avx512 kernels only).
bool gemm_serves(Isa isa, DType type);

// One row of k elements of `type` in integer form: q[k], scale[k / sub], min[k / sub] (min may be
// nullptr for formats without one). Precondition: panel_format(type) and k a multiple of its block.
void decode_row_ints(DType type, const void* row, int64_t k, uint8_t* q, float* scale, float* min);

// The panel and activation layouts each ISA's microkernel reads for quantized weights (the
// scalar reference reads any; the scalar table uses avx512's).
PanelLayout gemm_layout(Isa isa);
ActLayout gemm_act_layout(Isa isa);

// A weight matrix repacked for the GEMM of one ISA (a load-time option of the backend: it costs
// bytes() of memory beside the original weights: 5-6 bits per weight for 4-bit types stored as
// nibbles, 8-10 for the others, 16 for F16 / BF16; docs/cpu.md has the table).
class PackedWeights {
 public:
  // Throws Error(kUnsupported) for a type without a packed form, kInvalidArgument when k does not
  // fit its blocks.
  static PackedWeights pack(const WeightMatrix& w, Isa isa, ThreadPool& pool);

  PanelKind kind() const noexcept { return kind_; }
  const PanelFormat& format() const noexcept { return format_; }
  const PanelLayout& layout() const noexcept { return layout_; }
  DType dtype() const noexcept { return dtype_; }
  int64_t n_out() const noexcept { return n_out_; }
  int64_t k() const noexcept { return k_; }
  int64_t n_sub() const noexcept { return n_sub_; }
  int64_t n_groups() const noexcept { return n_groups_; }
  int64_t sub_bytes() const noexcept { return sub_bytes_; }
  size_t bytes() const noexcept { return buffer_.size(); }
  const uint8_t* group(int64_t g) const noexcept {
    return reinterpret_cast<const uint8_t*>(buffer_.data()) + g * n_sub_ * sub_bytes_;
  }

 private:
  PanelKind kind_ = PanelKind::kInt8;
  PanelFormat format_{};
  PanelLayout layout_{};
  DType dtype_ = DType::kF32;
  int64_t n_out_ = 0, k_ = 0, n_sub_ = 0, n_groups_ = 0, sub_bytes_ = 0;
  AlignedBuffer buffer_;
};

// Quantized activations, reused across calls (grown, never shrunk: no allocation per step once
// sized for the largest batch).
struct GemmScratch {
  std::vector<std::byte> q;
  std::vector<float> scale, min_scale;
  std::vector<int32_t> corr;

  // Sizes the buffers for m rows of k in `layout` and returns views of them. With zero_padding the
  // last tile's rows past m are zeroed (for kernels that compute whole tiles: AMX's).
  GemmActivations prepare(const PanelFormat& format, const ActLayout& layout, int64_t m, int64_t k,
                          bool zero_padding = true);
  // Sizes the buffers for any gemm() of up to max_rows rows of max_k: int8 layouts, and with
  // `float_weights` the 4-byte activations of F16 / BF16 panels too.
  void reserve(int64_t max_rows, int64_t max_k, bool float_weights);
};

// Whether this process may run the AMX-INT8 kernel: an AVX-512 CPU with AMX-INT8 whose OS granted
// the tile state (Linux: arch_prctl(ARCH_REQ_XCOMP_PERM), requested once, on the first call).
bool amx_usable();
// Whether it may also run the AMX-BF16 kernel (F16 weights).
bool amx_bf16_usable();

// The AMX kernel's activation layout for panels of `format`: 16-row tiles of whole sub-blocks.
ActLayout amx_act_layout(const PanelFormat& format);

// Whether gemm() on `isa` runs weights like `w` on AMX tiles for steps of kAmxMinRows rows or
// more: integer panels of 32-element sub-blocks where amx_usable() (bit-identical to the VNNI
// kernels), F16 panels where amx_bf16_usable() (each product within 2^-17 of exact:
// gemm_amx_f16.cpp). avx512 layouts only.
bool amx_serves(Isa isa, const PackedWeights& w);

struct GemmOptions {
  bool amx = true;  // false: never AMX (A/B measurements, the FMA F16 kernel's tests)
  // A thread's share of the activations up to this size runs k whole; above it, k in L1-sized
  // chunks (gemm.cpp's run_task says why). Only speed depends on it: the bits are the same.
  int64_t whole_k_act_bytes = 256 * 1024;
};

// Whether gemm(isa, ..., w, x, m, ..., options) takes the AMX kernels.
bool gemm_takes_amx(Isa isa, const PackedWeights& w, int64_t m, const GemmOptions& options);

// Y (m rows of n_out floats) = X (m rows of k floats) · Wᵀ with w packed in gemm_layout(isa).
void gemm(Isa isa, ThreadPool& pool, const PackedWeights& w, const float* x, int64_t m, float* y, GemmScratch& scratch,
          const GemmOptions& options = {});

// Whether two packed matrices take the same quantized activations (integer panels of one sub-block
// length, offset and min layout, same k): what gemm_row_many requires.
bool same_activations(const PackedWeights& a, const PackedWeights& b) noexcept;

// ys[j] (1 row of ws[j]->n_out floats) = x (1 row of k floats) · ws[j]ᵀ for 1-4 integer-packed
// matrices of one format (same k, sub-block, offset, min): x quantized once and all the matrices'
// group pairs in one parallel job, split evenly. Equal to gemm() per matrix bit for bit.
void gemm_row_many(Isa isa, ThreadPool& pool, std::span<const PackedWeights* const> ws, const float* x,
                   std::span<float* const> ys, GemmScratch& scratch);

// The references the SIMD microkernels are tested against.
void gemm_quantize_scalar(const ActLayout& layout, const PanelFormat& format, const float* x, int64_t k, int64_t r0,
                          int64_t r1, const GemmActivations& acts);
void gemm_kernel_scalar(const PanelFormat& format, const PanelLayout& layout, const ActLayout& act_layout,
                        const GemmActivations& acts, const GemmTile& tile);
void gemm_float_acts_scalar(PanelKind kind, const float* x, int64_t k, int64_t r0, int64_t r1, void* q);
void gemm_float_kernel_scalar(PanelKind kind, const GemmActivations& acts, const GemmTile& tile);

}  // namespace ember
