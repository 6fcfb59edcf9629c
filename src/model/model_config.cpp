// ModelConfig::from_gguf: general.architecture picks the reader of arch/arch_list.inc; every
// reader's result is checked for consistency here, once for all architectures.
#include "model/model_config.h"

#include <cmath>
#include <utility>

#include "ember/error.h"
#include "model/arch/arch_reader.h"

namespace ember {
namespace {

struct ArchEntry {
  Arch arch;
  std::string_view name;
  void (*read)(const ArchReader&, ModelConfig&);
};

constexpr ArchEntry kArchs[] = {
#define EMBER_ARCH(id, gguf_name, reader) {Arch::id, gguf_name, &reader},
#include "model/arch/arch_list.inc"
#undef EMBER_ARCH
};

void check_consistent(const GgufFile& file, const ModelConfig& c) {
  if (c.n_head % c.n_head_kv != 0) {
    fail(ErrorCode::kFormat, "{}: {} attention heads cannot be shared by {} key/value heads (not a multiple)",
         file.name(), c.n_head, c.n_head_kv);
  }
  if (c.rope.n_rot <= 0 || c.rope.n_rot % 2 != 0 || c.rope.n_rot > c.head_dim) {
    fail(ErrorCode::kFormat, "{}: rope dimension count {} must be even and within the head size {}", file.name(),
         c.rope.n_rot, c.head_dim);
  }
  if (!c.rope.freq_factors.empty() && static_cast<int64_t>(c.rope.freq_factors.size()) != c.rope.n_rot / 2) {
    fail(ErrorCode::kFormat, "{}: rope frequency factors hold {} values for {} rotated dimensions (want {})",
         file.name(), c.rope.freq_factors.size(), c.rope.n_rot, c.rope.n_rot / 2);
  }
  // Derived values (1 / factor, query scales, ...) must be finite too: a tiny factor or a degenerate
  // head count in a hostile file would otherwise reach the forward pass as inf.
  for (const auto& [what, value] : {std::pair<const char*, float>{"norm epsilon", c.norm_eps},
                                    {"rope frequency base", c.rope.freq_base},
                                    {"rope frequency scale", c.rope.freq_scale},
                                    {"rope attention factor", c.rope.attn_factor},
                                    {"local rope frequency base", c.rope_local.freq_base},
                                    {"embedding scale", c.embedding_scale},
                                    {"attention scale", c.attn_scale},
                                    {"attention soft-cap", c.attn_softcap},
                                    {"logit soft-cap", c.final_softcap},
                                    {"residual scale", c.residual_scale},
                                    {"logit scale", c.logit_scale},
                                    {"inverse logit scale", c.logit_scale != 0.0f ? 1.0f / c.logit_scale : 0.0f}}) {
    if (!std::isfinite(value)) fail(ErrorCode::kFormat, "{}: the {} comes out as {}", file.name(), what, value);
  }
  if (static_cast<int32_t>(c.layers.size()) != c.n_layer) {
    fail(ErrorCode::kFormat, "{}: {} per-layer entries for {} layers", file.name(), c.layers.size(), c.n_layer);
  }
}

}  // namespace

std::string_view arch_name(Arch arch) noexcept {
  for (const ArchEntry& entry : kArchs) {
    if (entry.arch == arch) return entry.name;
  }
  return "?";
}

std::string supported_architectures() {
  std::string list;
  for (const ArchEntry& entry : kArchs) {
    if (!list.empty()) list += ", ";
    list += entry.name;
  }
  return list;
}

ModelConfig ModelConfig::from_gguf(const GgufFile& file) { return from_gguf(GgufModelFiles::view(file)); }

ModelConfig ModelConfig::from_gguf(const GgufModelFiles& model) {
  const GgufFile& file = model.metadata_file();
  const std::string_view name = file.get<std::string_view>("general.architecture");
  for (const ArchEntry& entry : kArchs) {
    if (entry.name != name) continue;
    ModelConfig config;
    config.arch = entry.arch;
    config.name = std::string(file.get_or<std::string_view>("general.name", ""));
    entry.read(ArchReader(model, entry.name), config);
    check_consistent(file, config);
    return config;
  }
  fail(ErrorCode::kUnsupported, "{}: architecture \"{}\" is not supported (supported: {})", file.name(), name,
       supported_architectures());
}

}  // namespace ember
