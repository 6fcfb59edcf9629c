// Checks shared by the commands that write files: the output path and the thread count.
#pragma once

#include <span>
#include <string>

namespace ember::cli {

// Refuses an output path that exists but is not a regular file (a directory, a device such as
// /dev/null, a FIFO: the finished file is renamed over OUT, which would replace it) or that is one
// of `inputs` under any spelling (same inode: symlinks, hard links, ./): renaming over the input
// being read would destroy it. A missing OUT, or one in a missing directory, passes (the write
// reports the directory). Throws Error(kInvalidArgument).
void check_output_path(const std::string& out_path, std::span<const std::string> inputs = {});

// --threads as given, or every usable CPU (at most the thread pool's limit) when 0.
int resolve_threads(int requested);

}  // namespace ember::cli
