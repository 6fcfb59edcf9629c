// StopStringMatcher: finds stop strings in streamed text across token boundaries, on bytes, and
// holds back whatever could still begin one, so a stop string is never emitted.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ember {

class StopStringMatcher {
 public:
  struct Result {
    std::string text;      // safe to emit now (never any part of a stop string that matched)
    bool stopped = false;  // a stop string completed: the generation ends, `text` is the last
    int32_t index = -1;    // which stop string (an index into the constructor's list)
  };

  // Throws Error(kInvalidArgument) for an empty stop string. No strings: push() passes text through.
  explicit StopStringMatcher(std::vector<std::string> strings = {});

  // Appends the next piece of output. The first stop string to complete in the byte stream wins
  // (the one starting first when two end on the same byte); from its first byte on nothing is
  // emitted, now or later. Pieces after a stop are dropped.
  Result push(std::string_view text);
  // The held-back tail at the end of a generation (empty after a stop).
  std::string flush();
  // Forgets the held text and the stop, for a new generation.
  void reset();

  bool stopped() const noexcept { return stopped_; }
  const std::vector<std::string>& strings() const noexcept { return strings_; }

 private:
  std::vector<std::string> strings_;
  std::string pending_;  // received, not yet emitted: a tail that may begin a stop string
  bool stopped_ = false;
};

}  // namespace ember
