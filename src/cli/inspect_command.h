// `ember inspect`: prints what a GGUF model file (or split model) contains.
#pragma once

#include <string>

namespace ember::cli {

struct InspectOptions {
  std::string path;
  bool json = false;  // one JSON object instead of text
  bool all = false;   // no truncation of long arrays and strings in text output
};

// The whole output of `ember inspect` for `options`; throws ember::Error when the file is unreadable.
std::string inspect_output(const InspectOptions& options);

}  // namespace ember::cli
