// --device, -ngl / --gpu-layers and --kv-type (see device_flags.h).
#include "cli/device_flags.h"

#include <fmt/format.h>

#include <charconv>

#include "cli/console.h"
#include "cli/word_option.h"

namespace ember::cli {

void add_device_flags(CLI::App* cmd, DeviceFlags* flags) {
  one_of(cmd->add_option("--device", flags->device,
                         "Where the model runs: cpu (default), or cuda (every layer on the GPU unless --gpu-layers "
                         "says fewer)"),
         {"cpu", "cuda"});
  cmd->add_option("--gpu-layers,--ngl", flags->gpu_layers,
                  "Layers to run on the GPU (the last N; more than the model has, or 'all', puts the output head "
                  "there too); implies --device cuda. llama.cpp's -ngl works too")
      ->type_name("N|all");
  // Contradictions are usage errors (exit 2) caught while parsing, before a model loads.
  cmd->parse_complete_callback([flags] { (void)resolve_gpu_layers(*flags); });
}

int32_t resolve_gpu_layers(const DeviceFlags& flags) {
  if (flags.gpu_layers.empty()) return flags.device == "cuda" ? kGpuLayersAll : 0;
  if (flags.device == "cpu") {
    throw CLI::ValidationError("--gpu-layers", "offloads layers to the GPU; it cannot go with --device cpu");
  }
  if (flags.gpu_layers == "all") return kGpuLayersAll;
  int32_t n = 0;
  const char* end = flags.gpu_layers.data() + flags.gpu_layers.size();
  const auto [at, ec] = std::from_chars(flags.gpu_layers.data(), end, n);
  if (ec != std::errc() || at != end || n < 0) {
    throw CLI::ValidationError("--gpu-layers", "'" + flags.gpu_layers + "' is not a layer count >= 0 or 'all'");
  }
  return n;
}

void add_kv_type_flag(CLI::App* cmd, DType* kv_type) {
  one_of(
      cmd->add_option_function<std::string>(
          "--kv-type", [kv_type](const std::string& name) { *kv_type = kv_type_from_name(name).value_or(DType::kF16); },
          "KV cache element type: f16 (default), f32, or q8_0 (17/32 of f16's memory, for models whose head "
          "size is a multiple of 32)"),
      {"f16", "f32", "q8_0"}, true);
}

std::string gpu_summary(const Model& model, std::string_view sep) {
  const GpuLayers* gpu = model.gpu();
  if (gpu == nullptr) return {};
  const GpuMemoryReport m = gpu->memory();
  const int32_t n_layer = model.config().n_layer;
  return fmt::format("{}{}{} of {} layers{}{}{} weights{}{} of {} used", m.device, sep, n_layer - gpu->first_layer(),
                     n_layer, gpu->runs_output() ? " + head" : "", sep, human_bytes(m.weight_bytes), sep,
                     human_bytes(m.used_bytes), human_bytes(m.total_bytes));
}

}  // namespace ember::cli
