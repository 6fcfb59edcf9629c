// ISA selection and the kernel tables (built once per ISA on first use).
#include "cpu/cpu_kernels.h"

#include <cstdlib>
#include <mutex>

#include "core/check.h"
#include "core/strings.h"
#include "cpu/isa_kernel.h"

namespace ember {
namespace {

// Overrides the table's entries with an ISA unit's kernels.
void apply(const IsaKernel* (*entries)(size_t*), CpuKernels& table) {
  size_t count = 0;
  const IsaKernel* k = entries(&count);
  for (size_t i = 0; i < count; ++i) {
    EMBER_CHECK(k[i].dtype < kDTypeSlots);
    if (k[i].quantize_row != nullptr) table.quantize_row[k[i].dtype] = k[i].quantize_row;
    if (k[i].vec_dot != nullptr) {
      table.vec_dot[k[i].dtype] = k[i].vec_dot;
      // A two-row kernel is the one-row kernel's twin: a later unit's vec_dot without one drops it.
      table.vec_dot_2[k[i].dtype] = k[i].vec_dot_2;
    }
  }
}

}  // namespace

std::string_view isa_name(Isa isa) noexcept {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "unknown";
}

bool isa_supported(Isa isa, const CpuFeatures& features) noexcept {
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return features.supports_avx2_tier();
    case Isa::kAvx512: return features.supports_avx512_tier();
  }
  return false;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (isa_supported(isa, cpu_features())) isas.push_back(isa);
  }
  return isas;
}

const CpuKernels& cpu_kernels(Isa isa) {
  static std::array<CpuKernels, 3> tables;
  static std::array<std::once_flag, 3> built;
  const auto i = static_cast<size_t>(isa);
  EMBER_CHECK_MSG(i < tables.size() && isa_supported(isa, cpu_features()), "kernel table of an unsupported ISA");
  std::call_once(built[i], [&] {
    CpuKernels& t = tables[i];
    fill_scalar_kernels(t);
    if (isa == Isa::kAvx2 || isa == Isa::kAvx512) {
      for (auto* unit : {avx2_kernels, avx2_legacy2_kernels, avx2_k_kernels}) apply(unit, t);
    }
    if (isa == Isa::kAvx512) {  // AVX-512 CPUs keep the AVX2 kernels it lacks
      for (auto* unit : {avx512_kernels, avx512_legacy2_kernels, avx512_k_kernels}) apply(unit, t);
    }
    t.isa = isa;
  });
  return tables[i];
}

Isa select_isa() {
  const char* forced = std::getenv("EMBER_ISA");
  if (forced != nullptr && *forced != '\0') {
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      if (!iequals(forced, isa_name(isa))) continue;
      if (!isa_supported(isa, cpu_features())) {
        fail(ErrorCode::kUnsupported, "EMBER_ISA={}: this CPU does not support it ({})", forced,
             cpu_features().to_string());
      }
      return isa;
    }
    fail(ErrorCode::kInvalidArgument, "EMBER_ISA={}: expected scalar, avx2 or avx512", forced);
  }
  return supported_isas().back();
}

}  // namespace ember
