// write_quantized_model: metadata copy, per-tensor conversion in slabs of rows on a thread pool,
// streamed output.
#include "convert/model_quantizer.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "gguf/gguf_writer.h"
#include "quant/quant_traits.h"

namespace ember {
namespace {

constexpr uint32_t kMaxOutputAlignment = 4096;
constexpr uint64_t kSlabOutputBytes = 64ull << 20;  // output buffered per slab of rows
constexpr int64_t kMinChunkElements = 32 * 512;     // work per task, enough to amortize scheduling

// Architecture-prefixed keys as optional ints ("llama.block_count"); 0 when absent or not a small
// non-negative integer. Per-layer arrays (head counts of OpenELM, DeciLM) give layer 0's value, as
// in llama.cpp's quantizer.
int arch_int(const GgufFile& f, std::string_view arch, std::string_view key) {
  const GgufValue* v = f.find(fmt::format("{}.{}", arch, key));
  if (v == nullptr) return 0;
  int64_t x = 0;
  if (!v->is_array()) {
    if (!v->to_int64(&x)) return 0;
  } else if (v->array_size() > 0) {
    switch (v->array_type()) {
      case GgufType::kInt32: x = v->numbers<int32_t>()[0]; break;
      case GgufType::kUint32: x = v->numbers<uint32_t>()[0]; break;
      case GgufType::kInt64: x = v->numbers<int64_t>()[0]; break;
      case GgufType::kUint64:
        x = static_cast<int64_t>(std::min<uint64_t>(v->numbers<uint64_t>()[0], 1ull << 31));
        break;
      default: return 0;  // other element types do not hold head counts
    }
  }
  return x < 0 || x > (1 << 30) ? 0 : static_cast<int>(x);
}

void copy_metadata(const GgufFile& in, FileType file_type, GgufWriter& out) {
  bool wrote_file_type = false, wrote_version = false;
  for (const GgufKeyValue& kv : in.metadata()) {
    if (kv.key == GgufWriter::kAlignmentKey || kv.key.starts_with("split.")) continue;  // one file, same alignment
    if (kv.key == "general.file_type") {
      out.add<uint32_t>(kv.key, static_cast<uint32_t>(file_type));
      wrote_file_type = true;
    } else if (kv.key == "general.quantization_version") {
      out.add<uint32_t>(kv.key, kQuantizationVersion);
      wrote_version = true;
    } else {
      out.add_value(kv.key, kv.value);
    }
  }
  if (!wrote_version) out.add<uint32_t>("general.quantization_version", kQuantizationVersion);
  if (!wrote_file_type) out.add<uint32_t>("general.file_type", static_cast<uint32_t>(file_type));
}

// The n values of rows from `first_row` on of tensor `p`: every one finite, or an error naming the
// first that is not (a NaN block or an infinity would poison every model that reads the file).
void require_finite(const TensorPlan& p, const float* x, int64_t n, int64_t first_row) {
  const int64_t row_length = p.row_length();
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      fail(ErrorCode::kInvalidArgument, "tensor '{}' holds {} in row {}: refusing to write it", p.name, x[i],
           first_row + i / row_length);
    }
  }
}

// The rows [row_begin, row_end) of tensor `index`, in parallel chunks of rows: each chunk filled by
// fill_rows, checked finite, then passed to `use(first_row, n_rows, values)` (on a worker thread).
// `scratch` holds one float chunk per worker.
template <class Use>
void for_each_chunk(size_t index, const TensorPlan& p, int64_t row_begin, int64_t row_end, const FillRowsFn& fill_rows,
                    ThreadPool& pool, std::vector<std::vector<float>>& scratch, const Use& use) {
  const int64_t row_length = p.row_length();
  const int64_t chunk_rows = std::max<int64_t>(1, kMinChunkElements / row_length);
  const int64_t n_chunks = (row_end - row_begin + chunk_rows - 1) / chunk_rows;
  pool.parallel_for(n_chunks, [&](int64_t chunk, int worker) {
    const int64_t first = row_begin + chunk * chunk_rows;
    const int64_t rows = std::min(chunk_rows, row_end - first);
    const int64_t n = rows * row_length;
    std::vector<float>& x = scratch[static_cast<size_t>(worker)];
    x.resize(static_cast<size_t>(n));
    fill_rows(index, first, rows, x.data());
    require_finite(p, x.data(), n, first);
    use(first, n, x.data());
  });
}

// Converts the rows [row_begin, row_end) of tensor `index` into `out`.
void convert_rows(size_t index, const TensorPlan& p, int64_t row_begin, int64_t row_end, std::byte* out,
                  const FillRowsFn& fill_rows, ThreadPool& pool, std::vector<std::vector<float>>& scratch) {
  const uint64_t dst_row_bytes = *dtype_bytes_for(p.to, static_cast<uint64_t>(p.row_length()));
  for_each_chunk(index, p, row_begin, row_end, fill_rows, pool, scratch, [&](int64_t first, int64_t n, const float* x) {
    quantize(p.to, x, out + static_cast<uint64_t>(first - row_begin) * dst_row_bytes, n);
  });
}

}  // namespace

ModelFacts model_facts(const GgufFile& metadata) {
  ModelFacts facts;
  facts.arch = metadata.get_or<std::string>("general.architecture", "");
  facts.n_layer = arch_int(metadata, facts.arch, "block_count");
  facts.n_head = arch_int(metadata, facts.arch, "attention.head_count");
  facts.n_head_kv = arch_int(metadata, facts.arch, "attention.head_count_kv");
  if (facts.n_head_kv == 0) facts.n_head_kv = facts.n_head;  // llama.cpp's default: no GQA
  facts.n_expert = arch_int(metadata, facts.arch, "expert_count");
  return facts;
}

QuantPlan plan_model_quantization(const GgufModelFiles& model, const QuantizeOptions& options) {
  std::vector<TensorSource> sources;
  sources.reserve(model.tensors().size());
  for (const GgufModelFiles::Tensor& t : model.tensors()) {
    const std::span<const int64_t> shape = t.info->shape();
    sources.push_back({std::string(t.info->name), t.info->dtype, {shape.begin(), shape.end()}});
  }
  return plan_quantization(sources, model_facts(model.metadata_file()), options);
}

void write_planned_tensors(const GgufWriter& header, const QuantPlan& plan, const std::string& out_path, int n_threads,
                           const RawTensorFn& copy_raw, const FillRowsFn& fill_rows,
                           const QuantizeProgressFn& progress) {
  EMBER_CHECK_MSG(header.n_tensors() == plan.tensors.size(), "header and plan disagree");
  GgufStreamWriter stream(header, out_path);
  ThreadPool pool(n_threads);
  std::vector<std::vector<float>> scratch(static_cast<size_t>(n_threads));
  std::vector<std::byte> slab;
  QuantizeProgress status{0, plan.tensors.size(), 0, plan.n_elements};
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const TensorPlan& p = plan.tensors[i];
    status.tensor_index = i;
    const int64_t row_length = p.row_length();
    const int64_t n_rows = static_cast<int64_t>(p.n_elements) / row_length;
    if (const std::span<const std::byte> raw = copy_raw(i); !raw.empty()) {
      // Copied values are checked as converted ones are (where fill_rows can read the type).
      if (find_quant_traits(p.from) != nullptr) {
        for_each_chunk(i, p, 0, n_rows, fill_rows, pool, scratch, [](int64_t, int64_t, const float*) {});
      }
      stream.write_tensor_data(raw);
      status.elements_done += p.n_elements;
      if (progress) progress(status);
      continue;
    }
    const uint64_t dst_row_bytes = *dtype_bytes_for(p.to, static_cast<uint64_t>(row_length));
    const int64_t slab_rows = std::max<int64_t>(1, static_cast<int64_t>(kSlabOutputBytes / dst_row_bytes));
    for (int64_t first = 0; first < n_rows; first += slab_rows) {
      const int64_t last = std::min(n_rows, first + slab_rows);
      slab.resize(static_cast<size_t>(last - first) * dst_row_bytes);
      convert_rows(i, p, first, last, slab.data(), fill_rows, pool, scratch);
      stream.write_tensor_data(slab);
      status.elements_done += static_cast<uint64_t>(last - first) * static_cast<uint64_t>(row_length);
      if (progress) progress(status);
    }
  }
  stream.commit();
}

void write_quantized_model(const GgufModelFiles& model, const QuantPlan& plan, FileType file_type,
                           const std::string& out_path, int n_threads, const QuantizeProgressFn& progress) {
  const auto& tensors = model.tensors();
  EMBER_CHECK_MSG(tensors.size() == plan.tensors.size(), "plan made for another model");
  // The input's alignment, unless absurd (the reader accepts up to 2^31, which would pad every
  // tensor by gigabytes); any power of two >= 32 serves every block type.
  GgufWriter header(std::min<uint32_t>(model.metadata_file().alignment(), kMaxOutputAlignment));
  copy_metadata(model.metadata_file(), file_type, header);
  for (const TensorPlan& p : plan.tensors) header.add_tensor_info(p.name, p.to, p.shape);

  const auto source = [&](size_t i) { return tensors[i].file->tensor_data(*tensors[i].info); };
  const RawTensorFn copy_raw = [&](size_t i) -> std::span<const std::byte> {
    const TensorPlan& p = plan.tensors[i];
    return p.converted() ? std::span<const std::byte>() : std::span(source(i), p.from_bytes);
  };
  const FillRowsFn dequantize_rows = [&](size_t i, int64_t first_row, int64_t n_rows, float* out) {
    const TensorPlan& p = plan.tensors[i];
    const int64_t row_length = p.row_length();
    const uint64_t row_bytes = *dtype_bytes_for(p.from, static_cast<uint64_t>(row_length));
    find_quant_traits(p.from)->to_float(source(i) + static_cast<uint64_t>(first_row) * row_bytes, out,
                                        n_rows * row_length);
  };
  write_planned_tensors(header, plan, out_path, n_threads, copy_raw, dequantize_rows, progress);
}

}  // namespace ember
