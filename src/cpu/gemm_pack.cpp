// Load-time repacking of quantized weights into the GEMM's interleaved row-group panels: each
// block format is read into its integer form (q, scale, min; gemm_isa.h) and written group by group.
#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "cpu/gemm.h"
#include "quant/block_iq4.h"
#include "quant/block_k.h"
#include "quant/block_legacy.h"
#include "quant/fp16.h"

namespace ember {
namespace {

// One decoder per block format: block b of a row -> its elements' q (kQK... bytes), and the scale
// and min of each of its sub-blocks. The sub-block length is the format's (panel_format).
struct IntBlock {
  uint8_t q[kQK_K];
  float scale[kQK_K / 16];
  float min[kQK_K / 16];
};

void nibbles(const uint8_t* qs, uint8_t* q) {  // Q4_0 order: j in the low, j + 16 in the high nibble
  for (int j = 0; j < 16; ++j) {
    q[j] = qs[j] & 0x0F;
    q[j + 16] = qs[j] >> 4;
  }
}

void decode_q4_0(const void* p, IntBlock& out) {
  const auto& b = *static_cast<const BlockQ4_0*>(p);
  nibbles(b.qs, out.q);
  out.scale[0] = fp16_to_fp32(b.d);
}

void decode_q4_1(const void* p, IntBlock& out) {
  const auto& b = *static_cast<const BlockQ4_1*>(p);
  nibbles(b.qs, out.q);
  out.scale[0] = fp16_to_fp32(b.d);
  out.min[0] = fp16_to_fp32(b.m);
}

void fifth_bits(const uint8_t (&qh)[4], uint8_t* q) {
  const uint32_t bits = q5_high_bits(qh);
  for (int j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>(q[j] | (((bits >> j) & 1u) << 4));
}

void decode_q5_0(const void* p, IntBlock& out) {
  const auto& b = *static_cast<const BlockQ5_0*>(p);
  nibbles(b.qs, out.q);
  fifth_bits(b.qh, out.q);
  out.scale[0] = fp16_to_fp32(b.d);
}

void decode_q5_1(const void* p, IntBlock& out) {
  const auto& b = *static_cast<const BlockQ5_1*>(p);
  nibbles(b.qs, out.q);
  fifth_bits(b.qh, out.q);
  out.scale[0] = fp16_to_fp32(b.d);
  out.min[0] = fp16_to_fp32(b.m);
}

void decode_q8_0(const void* p, IntBlock& out) {
  const auto& b = *static_cast<const BlockQ8_0*>(p);
  for (int j = 0; j < 32; ++j) out.q[j] = static_cast<uint8_t>(b.qs[j] + 128);
  out.scale[0] = fp16_to_fp32(b.d);
}

void decode_iq4_nl(const void* p, IntBlock& out) {
  const auto& b = *static_cast<const BlockIQ4_NL*>(p);
  nibbles(b.qs, out.q);
  for (int j = 0; j < 32; ++j) out.q[j] = static_cast<uint8_t>(kIQ4Values[out.q[j]] + 128);
  out.scale[0] = fp16_to_fp32(b.d);
}

void decode_iq4_xs(const void* p, IntBlock& out) {
  const auto& b = *static_cast<const BlockIQ4_XS*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int ib = 0; ib < 8; ++ib) {
    uint8_t* q = out.q + 32 * ib;
    nibbles(b.qs + 16 * ib, q);
    for (int j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>(kIQ4Values[q[j]] + 128);
    const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((b.scales_h >> (2 * ib)) & 3) << 4);
    out.scale[ib] = d * static_cast<float>(ls - 32);
  }
}

// Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins; w = d·sc·q − dmin·m.
void k4_scales(uint16_t d16, uint16_t dmin16, const uint8_t* packed, IntBlock& out) {
  const float d = fp16_to_fp32(d16), dmin = fp16_to_fp32(dmin16);
  for (int is = 0; is < 8; ++is) {
    uint8_t sc, mn;
    scale_min_k4(is, packed, &sc, &mn);
    out.scale[is] = d * static_cast<float>(sc);
    out.min[is] = -dmin * static_cast<float>(mn);
  }
}

void decode_q4_k(const void* p, IntBlock& out) {
  const auto& b = *static_cast<const BlockQ4_K*>(p);
  for (int chunk = 0; chunk < 4; ++chunk) {  // 64 elements: low nibbles of 32 bytes, then high
    for (int l = 0; l < 32; ++l) {
      out.q[64 * chunk + l] = b.qs[32 * chunk + l] & 0x0F;
      out.q[64 * chunk + 32 + l] = b.qs[32 * chunk + l] >> 4;
    }
  }
  k4_scales(b.d, b.dmin, b.scales, out);
}

void decode_q5_k(const void* p, IntBlock& out) {
  const auto& b = *static_cast<const BlockQ5_K*>(p);
  for (int chunk = 0; chunk < 4; ++chunk) {
    for (int l = 0; l < 32; ++l) {
      const int lo_bit = 2 * chunk, hi_bit = 2 * chunk + 1;
      out.q[64 * chunk + l] = static_cast<uint8_t>((b.qs[32 * chunk + l] & 0x0F) | (((b.qh[l] >> lo_bit) & 1) << 4));
      out.q[64 * chunk + 32 + l] = static_cast<uint8_t>((b.qs[32 * chunk + l] >> 4) | (((b.qh[l] >> hi_bit) & 1) << 4));
    }
  }
  k4_scales(b.d, b.dmin, b.scales, out);
}

// Q6_K: 16 sub-blocks of 16, w = d·sc·(q − 32), q six bits.
void decode_q6_k(const void* p, IntBlock& out) {
  const auto& b = *static_cast<const BlockQ6_K*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = b.ql + 64 * half;
    const uint8_t* qh = b.qh + 32 * half;
    uint8_t* q = out.q + 128 * half;
    for (int l = 0; l < 32; ++l) {
      q[l] = static_cast<uint8_t>((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4));
      q[l + 32] = static_cast<uint8_t>((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4));
      q[l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
      q[l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
    }
  }
  for (int is = 0; is < 16; ++is) out.scale[is] = d * static_cast<float>(b.scales[is]);
}

// Q3_K: 16 sub-blocks of 16, w = d·(sc − 32)·(q − 4) with q = low 2 bits + 4·(hmask bit).
void decode_q3_k(const void* p, IntBlock& out) {
  const auto& b = *static_cast<const BlockQ3_K*>(p);
  const float d = fp16_to_fp32(b.d);
  int element = 0;
  for (int half = 0; half < 2; ++half) {
    const uint8_t* qs = b.qs + 32 * half;
    for (int plane = 0; plane < 4; ++plane) {
      const int shift = 2 * plane;
      const uint8_t hbit = static_cast<uint8_t>(1u << (4 * half + plane));
      for (int l = 0; l < 32; ++l) {
        out.q[element++] = static_cast<uint8_t>(((qs[l] >> shift) & 3) + ((b.hmask[l] & hbit) ? 4 : 0));
      }
    }
  }
  for (int is = 0; is < 16; ++is) {
    const int low = (b.scales[is % 8] >> (4 * (is / 8))) & 0x0F;
    const int high = (b.scales[8 + is % 4] >> (2 * (is / 4))) & 0x03;
    out.scale[is] = d * static_cast<float>((low | (high << 4)) - 32);
  }
}

// Q2_K: 16 sub-blocks of 16, w = d·(sc & 15)·q − dmin·(sc >> 4), q two bits.
void decode_q2_k(const void* p, IntBlock& out) {
  const auto& b = *static_cast<const BlockQ2_K*>(p);
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  int element = 0;
  for (int half = 0; half < 2; ++half) {
    const uint8_t* qs = b.qs + 32 * half;
    for (int plane = 0; plane < 4; ++plane) {
      for (int l = 0; l < 32; ++l) out.q[element++] = static_cast<uint8_t>((qs[l] >> (2 * plane)) & 3);
    }
  }
  for (int is = 0; is < 16; ++is) {
    out.scale[is] = d * static_cast<float>(b.scales[is] & 0x0F);
    out.min[is] = -dmin * static_cast<float>(b.scales[is] >> 4);
  }
}

struct Decoder {
  DType type;
  PanelFormat format;
  int block_elems;
  int block_bytes;
  void (*decode)(const void*, IntBlock&);
};

constexpr Decoder kDecoders[] = {
    {DType::kQ4_0, {32, 8, false, true}, 32, sizeof(BlockQ4_0), decode_q4_0},
    {DType::kQ4_1, {32, 0, true, true}, 32, sizeof(BlockQ4_1), decode_q4_1},
    {DType::kQ5_0, {32, 16, false, false}, 32, sizeof(BlockQ5_0), decode_q5_0},
    {DType::kQ5_1, {32, 0, true, false}, 32, sizeof(BlockQ5_1), decode_q5_1},
    {DType::kQ8_0, {32, 128, false, false}, 32, sizeof(BlockQ8_0), decode_q8_0},
    {DType::kIQ4_NL, {32, 128, false, false}, 32, sizeof(BlockIQ4_NL), decode_iq4_nl},
    {DType::kIQ4_XS, {32, 128, false, false}, 256, sizeof(BlockIQ4_XS), decode_iq4_xs},
    {DType::kQ4_K, {32, 0, true, true}, 256, sizeof(BlockQ4_K), decode_q4_k},
    {DType::kQ5_K, {32, 0, true, false}, 256, sizeof(BlockQ5_K), decode_q5_k},
    {DType::kQ6_K, {16, 32, false, false}, 256, sizeof(BlockQ6_K), decode_q6_k},
    {DType::kQ3_K, {16, 4, false, true}, 256, sizeof(BlockQ3_K), decode_q3_k},
    {DType::kQ2_K, {16, 0, true, true}, 256, sizeof(BlockQ2_K), decode_q2_k},
};

const Decoder* find_decoder(DType type) {
  for (const Decoder& d : kDecoders) {
    if (d.type == type) return &d;
  }
  return nullptr;
}

}  // namespace

std::optional<PanelFormat> panel_format(DType type) {
  const Decoder* d = find_decoder(type);
  if (d == nullptr) return std::nullopt;
  return d->format;
}

void decode_row_ints(DType type, const void* row, int64_t k, uint8_t* q, float* scale, float* min) {
  const Decoder* d = find_decoder(type);
  EMBER_CHECK(d != nullptr && k % d->block_elems == 0);
  const int subs_per_block = d->block_elems / d->format.sub;
  IntBlock block{};
  for (int64_t b = 0; b < k / d->block_elems; ++b) {
    std::fill(std::begin(block.min), std::end(block.min), 0.0f);
    d->decode(static_cast<const std::byte*>(row) + b * d->block_bytes, block);
    std::memcpy(q + b * d->block_elems, block.q, static_cast<size_t>(d->block_elems));
    for (int s = 0; s < subs_per_block; ++s) {
      scale[b * subs_per_block + s] = block.scale[s];
      if (min != nullptr) min[b * subs_per_block + s] = block.min[s];
    }
  }
}

bool gemm_serves(Isa isa, DType type) {
  if (isa == Isa::kScalar) return false;
  if (type == DType::kF16 || type == DType::kBF16) return isa == Isa::kAvx512;
  return panel_format(type).has_value();
}

namespace {

// F16 / BF16 rows copied as 2-byte values into [sub-block][k / k_group][rows][k_group] panels.
void pack_float_group(const WeightMatrix& w, const PanelLayout& layout, int64_t g, int64_t n_sub, int64_t sub_bytes,
                      std::byte* group) {
  const auto* src = static_cast<const uint16_t*>(w.data);
  for (int r = 0; r < layout.rows && g * layout.rows + r < w.n_out; ++r) {
    const uint16_t* row = src + (g * layout.rows + r) * w.k;
    for (int64_t s = 0; s < n_sub; ++s) {
      auto* dst = reinterpret_cast<uint16_t*>(group + s * sub_bytes);
      for (int j = 0; j < 32; ++j) {
        dst[(j / layout.k_group) * layout.rows * layout.k_group + r * layout.k_group + j % layout.k_group] =
            row[s * 32 + j];
      }
    }
  }
}

// Quantized rows in integer form into [sub-block]{q, scale, min} panels.
// Q8_0 and Q4_0 blocks are their panels' sub-blocks already, up to the interleave: Q8_0's bytes
// with the sign bit flipped (q + 128), Q4_0's bytes as they are (byte j holds elements j and j + 16:
// k-groups j / k_group and j / k_group + half, the panel's nibble pairing). Copied k-group by
// k-group without decoding (the bulk of a model's load time when repacking).
template <typename Block, bool kFlipSign, int kKGroup>
void pack_direct_group(const WeightMatrix& w, const PanelLayout& layout, int64_t g, int64_t n_sub, int64_t sub_bytes,
                       int64_t q_bytes, std::byte* group) {
  const int rows = layout.rows;
  constexpr int k_group = kKGroup;
  constexpr int n_groups = static_cast<int>(sizeof(Block::qs)) / k_group;  // k-groups (or nibble pairs) per block
  for (int r = 0; r < rows && g * rows + r < w.n_out; ++r) {               // padding rows stay zero
    const auto* blocks = static_cast<const Block*>(w.data) + (g * rows + r) * n_sub;
    for (int64_t s = 0; s < n_sub; ++s) {
      const Block& b = blocks[s];
      auto* dst = reinterpret_cast<uint8_t*>(group + s * sub_bytes);
      for (int j = 0; j < n_groups; ++j) {
        uint8_t* out = dst + (j * rows + r) * k_group;
        const auto* in = reinterpret_cast<const uint8_t*>(b.qs) + j * k_group;
        uint8_t bytes[k_group];
        for (int e = 0; e < k_group; ++e) bytes[e] = kFlipSign ? static_cast<uint8_t>(in[e] ^ 0x80) : in[e];
        std::memcpy(out, bytes, k_group);
      }
      reinterpret_cast<float*>(dst + q_bytes)[r] = fp16_to_fp32(b.d);
    }
  }
}

void pack_int_group(const WeightMatrix& w, const PanelFormat& format, const PanelLayout& layout, int64_t g,
                    int64_t n_sub, int64_t sub_bytes, int64_t row_bytes, std::byte* group) {
  const int64_t q_bytes = int64_t{layout.rows} * format.sub / (format.nibbles ? 2 : 1);
  if ((w.dtype == DType::kQ8_0 || w.dtype == DType::kQ4_0) && (layout.k_group == 4 || layout.k_group == 2)) {
    const bool four = layout.k_group == 4;
    const auto pack = w.dtype == DType::kQ8_0
                          ? (four ? pack_direct_group<BlockQ8_0, true, 4> : pack_direct_group<BlockQ8_0, true, 2>)
                          : (four ? pack_direct_group<BlockQ4_0, false, 4> : pack_direct_group<BlockQ4_0, false, 2>);
    return pack(w, layout, g, n_sub, sub_bytes, q_bytes, group);
  }
  std::vector<uint8_t> q(static_cast<size_t>(w.k));
  std::vector<float> scale(static_cast<size_t>(n_sub)), min(static_cast<size_t>(n_sub));
  const int sub = format.sub, rows = layout.rows, k_group = layout.k_group;
  for (int r = 0; r < rows && g * rows + r < w.n_out; ++r) {  // padding rows stay zero
    decode_row_ints(w.dtype, static_cast<const std::byte*>(w.data) + (g * rows + r) * row_bytes, w.k, q.data(),
                    scale.data(), min.data());
    // One k-group (k_group consecutive values of row r) moves as a unit; with nibbles, k-group j
    // and k-group j + half share bytes (every q < 16, so the shift never crosses a byte).
    const int n_kgroups = sub / k_group, half = n_kgroups / 2;
    for (int64_t s = 0; s < n_sub; ++s) {
      auto* dst = reinterpret_cast<uint8_t*>(group + s * sub_bytes);
      const uint8_t* src = q.data() + s * sub;
      if (format.nibbles) {
        for (int j = 0; j < half; ++j) {
          uint8_t* out = dst + (j * rows + r) * k_group;
          const uint8_t* lo = src + j * k_group;
          const uint8_t* hi = src + (j + half) * k_group;
          for (int e = 0; e < k_group; ++e) out[e] = static_cast<uint8_t>(lo[e] | (hi[e] << 4));
        }
      } else if (k_group == 4) {
        for (int j = 0; j < n_kgroups; ++j) std::memcpy(dst + (j * rows + r) * 4, src + j * 4, 4);
      } else {
        for (int j = 0; j < n_kgroups; ++j) std::memcpy(dst + (j * rows + r) * k_group, src + j * k_group, k_group);
      }
      auto* scales = reinterpret_cast<float*>(dst + rows * sub / (format.nibbles ? 2 : 1));
      scales[r] = scale[static_cast<size_t>(s)];
      if (format.has_min) scales[rows + r] = min[static_cast<size_t>(s)];
    }
  }
}

}  // namespace

PackedWeights PackedWeights::pack(const WeightMatrix& w, Isa isa, ThreadPool& pool) {
  PackedWeights packed;
  int64_t block_elems = 32, row_bytes = 0;
  if (w.dtype == DType::kF16 || w.dtype == DType::kBF16) {
    packed.kind_ = w.dtype == DType::kF16 ? PanelKind::kF16 : PanelKind::kBF16;
    packed.format_ = PanelFormat{32, 0, false, false};
    packed.layout_ = w.dtype == DType::kF16 ? kF16Panels : kBF16Panels;
    packed.sub_bytes_ = static_cast<int64_t>(packed.layout_.rows) * 32 * 2;
  } else {
    const Decoder* found = find_decoder(w.dtype);
    if (found == nullptr)
      fail(ErrorCode::kUnsupported, "gemm: no packed layout for weight type {}", dtype_name(w.dtype));
    packed.format_ = found->format;
    packed.layout_ = gemm_layout(isa);
    packed.sub_bytes_ =
        static_cast<int64_t>(packed.layout_.rows) * packed.format_.sub / (packed.format_.nibbles ? 2 : 1) +
        4 * packed.layout_.rows * (packed.format_.has_min ? 2 : 1);
    block_elems = found->block_elems;
    row_bytes = w.k / block_elems * found->block_bytes;
  }
  if (w.n_out <= 0 || w.k <= 0) {
    fail(ErrorCode::kInvalidArgument, "gemm: cannot pack a {} x {} matrix", w.n_out, w.k);
  }
  if (w.k % block_elems != 0) {
    fail(ErrorCode::kInvalidArgument, "gemm: rows of {} {} values are not whole packed blocks of {}", w.k,
         dtype_name(w.dtype), block_elems);
  }
  packed.dtype_ = w.dtype;
  packed.n_out_ = w.n_out;
  packed.k_ = w.k;
  packed.n_sub_ = w.k / packed.format_.sub;
  packed.n_groups_ = (w.n_out + packed.layout_.rows - 1) / packed.layout_.rows;
  packed.buffer_ = AlignedBuffer(static_cast<size_t>(packed.n_groups_ * packed.n_sub_ * packed.sub_bytes_));
  pool.parallel_for(packed.n_groups_, [&](int64_t g, int) {
    std::byte* group = packed.buffer_.data() + g * packed.n_sub_ * packed.sub_bytes_;
    if (packed.kind_ == PanelKind::kInt8) {
      pack_int_group(w, packed.format_, packed.layout_, g, packed.n_sub_, packed.sub_bytes_, row_bytes, group);
    } else {
      pack_float_group(w, packed.layout_, g, packed.n_sub_, packed.sub_bytes_, group);
    }
  });
  return packed;
}

}  // namespace ember
