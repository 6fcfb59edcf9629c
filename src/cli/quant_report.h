// Text reports of a quantization plan, shared by `ember quantize` and `ember synth`.
#pragma once

#include <string>

#include "convert/quant_plan.h"

namespace ember::cli {

// One row per tensor: name, shape, from -> to type, size, note (--dry-run).
std::string plan_text(const QuantPlan& plan);
// Tensor counts and size before -> after with bits per weight, two indented lines.
std::string summary_text(const QuantPlan& plan);
// One warning line per distinct fallback ("rows of 576 do not fit q4_K ..."), naming the first
// tensor and how many share it, so a model with hundreds of fallbacks prints a few lines.
void warn_fallbacks(const QuantPlan& plan);

}  // namespace ember::cli
