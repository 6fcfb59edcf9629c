// GgufModelFiles: one model stored as one GGUF file or as split parts (-00001-of-0000N.gguf).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gguf/gguf_reader.h"

namespace ember {

inline constexpr std::string_view kSplitNoKey = "split.no";
inline constexpr std::string_view kSplitCountKey = "split.count";
inline constexpr std::string_view kSplitTensorsCountKey = "split.tensors.count";

// "<prefix>-00002-of-00005.gguf" for split index 1 of 5 (llama.cpp's naming).
std::string gguf_split_path(std::string_view prefix, int split_index, int split_count);

// Parses a split file name into (prefix, index, count); nullopt when the name has no split suffix.
struct GgufSplitName {
  std::string prefix;
  int index = 0;  // 0-based
  int count = 0;
};
std::optional<GgufSplitName> parse_gguf_split_path(std::string_view path);

class GgufModelFiles {
 public:
  struct Tensor {
    const GgufFile* file;
    const GgufTensorInfo* info;
  };

  // Opens `path`; when it is one part of a split model (split.count > 1), opens every part
  // (any part may be named) and checks they belong together: same split.count, split.no in
  // order, no tensor in two parts, total tensor count equal to split.tensors.count.
  static GgufModelFiles open(const std::string& path, const MapOptions& options = {});

  // A model of one part from an already parsed file (in-memory files: tests, fuzzing). Split keys
  // are not followed.
  static GgufModelFiles from_file(GgufFile file);
  // The same, borrowing `file`, which must outlive the result (readers that take a model of
  // parts, given one file).
  static GgufModelFiles view(const GgufFile& file);

  // The first part: model metadata lives there.
  const GgufFile& metadata_file() const noexcept { return *files_.front(); }
  size_t n_files() const noexcept { return files_.size(); }
  const GgufFile& file(size_t i) const noexcept { return *files_[i]; }

  // All tensors of all parts, in part order then file order.
  const std::vector<Tensor>& tensors() const noexcept { return tensors_; }
  const Tensor* find_tensor(std::string_view name) const noexcept;
  uint64_t total_bytes() const noexcept;

 private:
  void index_tensors();  // fills tensors_ and tensor_index_ from files_; duplicates are an error

  std::vector<std::unique_ptr<GgufFile>> owned_;  // unique_ptr: Tensor pointers stay valid on move
  std::vector<const GgufFile*> files_;            // the parts in order (owned_'s, or a view's)
  std::vector<Tensor> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace ember
