// Internals the two halves of the reference transformer share (reference_config.cpp reads the
// GGUF keys, reference_model.cpp the weights); not for tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf_reader.h"
#include "reference/reference_model.h"

namespace ember {

// The tensor as doubles, after checking its shape (ggml order, trailing 1s implied).
std::vector<double> reference_read_tensor(const GgufFile& file, const GgufTensorInfo& info, std::vector<int64_t> shape);

// Throws Error(kFormat) naming the file and the field for an impossible config.
void reference_validate(const ReferenceConfig& c, const std::string& name);

// Whether the config reader (not the weight loader) reads tensor `name` for `arch`.
bool reference_config_reads_tensor(const std::string& arch, std::string_view name);

}  // namespace ember
