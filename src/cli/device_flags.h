// --device and -ngl / --gpu-layers, shared by `run`, `bench` and `serve`: which backend runs the
// model's layers, and the GPU line of the stats panel.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

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

// "NVIDIA H200 (compute 9.0) · 28 of 28 layers + head · 1.2 GiB weights · 3.4 of 139.8 GiB used",
// or "" for a CPU-only model.
std::string gpu_summary(const Model& model, std::string_view sep);

}  // namespace ember::cli
