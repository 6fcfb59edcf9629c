// Output-path and thread-count checks for `ember quantize` and `ember synth`.
#include "cli/command_checks.h"

#include <sys/stat.h>

#include <algorithm>

#include "core/check.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"

namespace ember::cli {

void check_output_path(const std::string& out_path, std::span<const std::string> inputs) {
  struct stat out {};
  if (::stat(out_path.c_str(), &out) != 0) return;  // does not exist yet
  if (S_ISDIR(out.st_mode)) fail(ErrorCode::kInvalidArgument, "output '{}' is a directory", out_path);
  if (!S_ISREG(out.st_mode)) {
    fail(ErrorCode::kInvalidArgument, "output '{}' exists and is not a regular file: refusing to replace it", out_path);
  }
  for (const std::string& input : inputs) {
    struct stat in {};
    if (::stat(input.c_str(), &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino) {
      fail(ErrorCode::kInvalidArgument, "output '{}' is the input file '{}': refusing to overwrite it", out_path,
           input);
    }
  }
}

int resolve_threads(int requested) {
  if (requested > 0) return requested;
  return std::clamp(cpu_features().usable_cpus, 1, ThreadPool::kMaxThreads);
}

}  // namespace ember::cli
