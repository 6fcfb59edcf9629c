// The ops tables (built once per ISA on first use) and get_rows.
#include "cpu/ops.h"

#include <mutex>

#include "core/check.h"

namespace ember {
namespace {

// Overrides `table` with the non-null entries of one unit's OpsTable.
void apply(const OpsTable& unit, CpuOps& table) {
#define EMBER_OPS_MERGE(type, name) \
  if (unit.fns.name != nullptr) table.name = unit.fns.name;
  EMBER_CPU_OPS(EMBER_OPS_MERGE)
#undef EMBER_OPS_MERGE
  for (size_t i = 0; i < unit.n_to_float; ++i) {
    const IsaToFloat& c = unit.to_float[i];
    EMBER_CHECK(c.dtype < kDTypeSlots && c.to_float != nullptr);
    table.to_float[c.dtype] = c.to_float;
  }
}

// Every entry of a finished table is set: a missing op is a bug in a unit, caught at start-up.
bool complete(const CpuOps& table) {
  bool ok = true;
#define EMBER_OPS_PRESENT(type, name) ok = ok && table.name != nullptr;
  EMBER_CPU_OPS(EMBER_OPS_PRESENT)
#undef EMBER_OPS_PRESENT
  return ok;
}

}  // namespace

const CpuOps& cpu_ops(Isa isa) {
  static std::array<CpuOps, 3> tables;
  static std::array<std::once_flag, 3> built;
  const auto i = static_cast<size_t>(isa);
  EMBER_CHECK_MSG(i < tables.size() && isa_supported(isa, cpu_features()), "ops table of an unsupported ISA");
  std::call_once(built[i], [&] {
    CpuOps& t = tables[i];
    for (const QuantTraits& q : quant_traits_table()) t.to_float[static_cast<size_t>(q.dtype)] = q.to_float;
    apply(scalar_ops(), t);
    if (isa == Isa::kAvx2 || isa == Isa::kAvx512) apply(avx2_ops(), t);
    if (isa == Isa::kAvx512) apply(avx512_ops(), t);
    EMBER_CHECK_MSG(complete(t), "an ops table misses an entry");
    t.isa = isa;
  });
  return tables[i];
}

void get_rows(const CpuOps& ops, DType type, const void* src, int64_t n_src_rows, int64_t n_cols, const int32_t* ids,
              int64_t n_ids, float* dst) {
  const ToFloatFn to_float = ops.to_float_for(type);
  EMBER_CHECK_MSG(to_float != nullptr, "get_rows: no row converter for this type");
  EMBER_CHECK(n_cols >= 0 && n_ids >= 0 && n_src_rows >= 0);
  const std::optional<uint64_t> row_bytes = dtype_bytes_for(type, static_cast<uint64_t>(n_cols));
  EMBER_CHECK_MSG(row_bytes.has_value(), "get_rows: n_cols is not whole blocks");
  const auto* rows = static_cast<const std::byte*>(src);
  for (int64_t i = 0; i < n_ids; ++i) {
    EMBER_CHECK_MSG(ids[i] >= 0 && ids[i] < n_src_rows, "get_rows: row id out of range");
    to_float(rows + static_cast<uint64_t>(ids[i]) * *row_bytes, dst + i * n_cols, n_cols);
  }
}

}  // namespace ember
