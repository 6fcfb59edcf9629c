// --device and -ngl / --gpu-layers, shared by `run`, `bench` and `serve`: which backend runs the
// model's layers, and the GPU line of the stats panel; --kv-type, what the KV cache stores.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "ember/dtype.h"
#include "model/model.h"

namespace ember::cli {

struct DeviceFlags {
  std::string device;      // "", "cpu" or "cuda"
  std::string gpu_layers;  // "", a count, or "all"
};

void add_device_flags(CLI::App* cmd, DeviceFlags* flags);

// ModelOptions::gpu_layers for the flags: --device cuda alone offloads everything (kGpuLayersAll),
// -ngl N alone implies cuda, --device cpu (the default) offloads nothing. Throws
// CLI::ValidationError for -ngl with --device cpu or a count that is not a number or "all".
int32_t resolve_gpu_layers(const DeviceFlags& flags);

// --kv-type f16|f32|q8_0 (default f16) into *kv_type: the element type of the KV cache's K and V.
void add_kv_type_flag(CLI::App* cmd, DType* kv_type);

// "NVIDIA H200 (compute 9.0) · 28 of 28 layers + head · 1.2 GiB weights · 3.4 of 139.8 GiB used",
// or "" for a CPU-only model.
std::string gpu_summary(const Model& model, std::string_view sep);

}  // namespace ember::cli
