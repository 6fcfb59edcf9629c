// Opening split GGUF models as one set of tensors.
#include "gguf/gguf_split.h"

#include <charconv>

namespace ember {

std::string gguf_split_path(std::string_view prefix, int split_index, int split_count) {
  return fmt::format("{}-{:05d}-of-{:05d}.gguf", prefix, split_index + 1, split_count);
}

std::optional<GgufSplitName> parse_gguf_split_path(std::string_view path) {
  // "-NNNNN-of-MMMMM.gguf" is 20 characters.
  constexpr std::string_view kSuffix = ".gguf";
  constexpr size_t kTailLen = 1 + 5 + 4 + 5 + 5;
  if (path.size() < kTailLen) return std::nullopt;
  const std::string_view tail = path.substr(path.size() - kTailLen);
  if (tail[0] != '-' || tail.substr(6, 4) != "-of-" || tail.substr(15) != kSuffix) return std::nullopt;
  int no = 0, count = 0;
  const std::string_view no_text = tail.substr(1, 5), count_text = tail.substr(10, 5);
  if (std::from_chars(no_text.data(), no_text.data() + 5, no).ptr != no_text.data() + 5) return std::nullopt;
  if (std::from_chars(count_text.data(), count_text.data() + 5, count).ptr != count_text.data() + 5)
    return std::nullopt;
  if (no < 1 || count < 1 || no > count) return std::nullopt;
  return GgufSplitName{std::string(path.substr(0, path.size() - kTailLen)), no - 1, count};
}

GgufModelFiles GgufModelFiles::open(const std::string& path, const MapOptions& options) {
  GgufModelFiles model;
  auto first = std::make_unique<GgufFile>(GgufFile::open(path, options));
  const int split_count = first->get_or<uint16_t>(kSplitCountKey, 0);

  if (split_count > 1) {
    const std::optional<GgufSplitName> name = parse_gguf_split_path(path);
    if (!name || name->count != split_count) {
      fail(ErrorCode::kFormat, "'{}': split.count is {} but the file name does not end in -NNNNN-of-{:05d}.gguf", path,
           split_count, split_count);
    }
    for (int i = 0; i < split_count; ++i) {
      if (i == name->index) {
        model.owned_.push_back(std::move(first));
      } else {
        model.owned_.push_back(
            std::make_unique<GgufFile>(GgufFile::open(gguf_split_path(name->prefix, i, split_count), options)));
      }
    }
    for (int i = 0; i < split_count; ++i) {
      const GgufFile& part = *model.owned_[i];
      const auto no = part.get_optional<uint16_t>(kSplitNoKey);
      const auto count = part.get_optional<uint16_t>(kSplitCountKey);
      if (!no || *no != i || !count || *count != split_count) {
        fail(ErrorCode::kFormat, "'{}': expected split.no = {} and split.count = {} for this part", part.name(), i,
             split_count);
      }
    }
  } else {
    model.owned_.push_back(std::move(first));
  }
  for (const auto& part : model.owned_) model.files_.push_back(part.get());

  model.index_tensors();
  if (split_count > 1) {
    const GgufFile& meta = *model.files_.front();
    const auto expected = meta.get_optional<uint64_t>(kSplitTensorsCountKey);
    if (!expected) fail(ErrorCode::kFormat, "'{}': split model without '{}'", meta.name(), kSplitTensorsCountKey);
    if (*expected != model.tensors_.size()) {
      fail(ErrorCode::kFormat, "'{}': split.tensors.count is {} but the {} parts hold {} tensors", meta.name(),
           *expected, split_count, model.tensors_.size());
    }
  }
  return model;
}

GgufModelFiles GgufModelFiles::from_file(GgufFile file) {
  GgufModelFiles model;
  model.owned_.push_back(std::make_unique<GgufFile>(std::move(file)));
  model.files_.push_back(model.owned_.back().get());
  model.index_tensors();
  return model;
}

GgufModelFiles GgufModelFiles::view(const GgufFile& file) {
  GgufModelFiles model;
  model.files_.push_back(&file);
  model.index_tensors();
  return model;
}

void GgufModelFiles::index_tensors() {
  for (const GgufFile* file : files_) {
    for (const GgufTensorInfo& info : file->tensors()) {
      if (!tensor_index_.emplace(info.name, tensors_.size()).second) {
        fail(ErrorCode::kFormat, "'{}': tensor '{}' appears in more than one split part", file->name(), info.name);
      }
      tensors_.push_back({file, &info});
    }
  }
}

const GgufModelFiles::Tensor* GgufModelFiles::find_tensor(std::string_view name) const noexcept {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

uint64_t GgufModelFiles::total_bytes() const noexcept {
  uint64_t total = 0;
  for (const GgufFile* f : files_) total += f->file_size();
  return total;
}

}  // namespace ember
