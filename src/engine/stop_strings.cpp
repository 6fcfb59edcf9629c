// StopStringMatcher: the earliest-ending match over the held tail plus the new text, then the
// longest tail that is a proper prefix of a stop string stays held.
#include "engine/stop_strings.h"

#include <algorithm>

#include "core/check.h"

namespace ember {

StopStringMatcher::StopStringMatcher(std::vector<std::string> strings) : strings_(std::move(strings)) {
  for (size_t i = 0; i < strings_.size(); ++i) {
    if (strings_[i].empty()) fail(ErrorCode::kInvalidArgument, "stop string {} is empty", i);
  }
}

StopStringMatcher::Result StopStringMatcher::push(std::string_view text) {
  Result result;
  if (stopped_) {
    result.stopped = true;
    return result;
  }
  pending_.append(text);
  // The match that completes first in the stream: the smallest end, then the smallest start.
  // Everything before pending_ was checked already and emitted only where no match could begin.
  size_t best_start = std::string::npos, best_end = std::string::npos;
  for (size_t i = 0; i < strings_.size(); ++i) {
    const size_t at = pending_.find(strings_[i]);
    if (at == std::string::npos) continue;
    const size_t end = at + strings_[i].size();
    if (end < best_end || (end == best_end && at < best_start)) {
      best_start = at, best_end = end;
      result.index = static_cast<int32_t>(i);
    }
  }
  if (result.index >= 0) {
    result.text = pending_.substr(0, best_start);
    result.stopped = stopped_ = true;
    pending_.clear();
    return result;
  }
  // Hold the longest tail that a stop string begins with (a proper prefix: a whole one matched).
  size_t held = 0;
  for (const std::string& s : strings_) {
    for (size_t n = std::min(s.size() - 1, pending_.size()); n > held; --n) {
      if (pending_.compare(pending_.size() - n, n, s, 0, n) == 0) {
        held = n;
        break;
      }
    }
  }
  result.text = pending_.substr(0, pending_.size() - held);
  pending_.erase(0, pending_.size() - held);
  return result;
}

std::string StopStringMatcher::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

void StopStringMatcher::reset() {
  pending_.clear();
  stopped_ = false;
}

}  // namespace ember
