// StopStringMatcher: stop strings split across pieces, overlapping prefixes, several strings, a
// UTF-8 character split across pieces, nothing after a match emitted, flush, empty strings.
#include "engine/stop_strings.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ember/error.h"

namespace ember {
namespace {

struct Streamed {
  std::string emitted;
  bool stopped = false;
  int32_t index = -1;
};

// Feeds `pieces` in order, then flushes when nothing stopped.
Streamed stream(StopStringMatcher& m, const std::vector<std::string>& pieces) {
  Streamed s;
  for (const std::string& piece : pieces) {
    const StopStringMatcher::Result r = m.push(piece);
    s.emitted += r.text;
    if (r.stopped && !s.stopped) s.stopped = true, s.index = r.index;
  }
  if (!s.stopped) s.emitted += m.flush();
  return s;
}

// Every way of cutting `text` into two or three pieces gives the same result as one piece.
void expect_split_invariant(const std::vector<std::string>& strings, const std::string& text) {
  StopStringMatcher whole(strings);
  const Streamed expected = stream(whole, {text});
  for (size_t a = 0; a <= text.size(); ++a) {
    for (size_t b = a; b <= text.size(); ++b) {
      StopStringMatcher m(strings);
      const Streamed got = stream(m, {text.substr(0, a), text.substr(a, b - a), text.substr(b)});
      EXPECT_EQ(got.emitted, expected.emitted) << "cut at " << a << ", " << b;
      EXPECT_EQ(got.index, expected.index) << "cut at " << a << ", " << b;
    }
  }
}

TEST(StopStrings, MatchAcrossPiecesAndNeverEmitTheStop) {
  StopStringMatcher m({"STOP"});
  StopStringMatcher::Result r = m.push("hello ST");
  EXPECT_EQ(r.text, "hello ");  // "ST" could begin the stop string: held
  EXPECT_FALSE(r.stopped);
  r = m.push("O");
  EXPECT_EQ(r.text, "");
  r = m.push("P and more");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.index, 0);
  EXPECT_EQ(r.text, "");
  EXPECT_TRUE(m.stopped());
  r = m.push("after");  // nothing after a stop
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopStrings, AHeldPrefixThatDoesNotCompleteIsReleased) {
  StopStringMatcher m({"STOP"});
  EXPECT_EQ(m.push("a ST").text, "a ");
  EXPECT_EQ(m.push("OR").text, "STOR");
  EXPECT_EQ(m.push("ST").text, "");
  EXPECT_EQ(m.flush(), "ST");  // the end of the generation
}

TEST(StopStrings, OverlappingPrefixesTheFirstToCompleteWins) {
  // "ab" completes before "abc" can.
  StopStringMatcher m({"abc", "ab", "xab"});
  const Streamed s = stream(m, {"za", "bc"});
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.emitted, "z");
  EXPECT_EQ(s.index, 1);
  // "xab" and "ab" end on the same byte: the one starting first (emitting less) wins.
  StopStringMatcher n({"ab", "xab"});
  const Streamed t = stream(n, {"1x", "ab2"});
  EXPECT_EQ(t.emitted, "1");
  EXPECT_EQ(t.index, 1);
  // A false start inside a longer string: "aab" holds "aa", then "ab" matches at the second a.
  StopStringMatcher o({"ab"});
  EXPECT_EQ(stream(o, {"a", "a", "b"}).emitted, "a");
  for (const std::string text : {"zzabcz", "xxabxab", "abab", "aaaab", "xaxab", "no stop here", ""}) {
    expect_split_invariant({"abc", "ab", "xab"}, text);
  }
}

TEST(StopStrings, SeveralStrings) {
  StopStringMatcher m({"\n\n", "User:", "</s>"});
  const Streamed s = stream(m, {"The answer is 4.", "\nUs", "er:", " what"});
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.index, 1);
  EXPECT_EQ(s.emitted, "The answer is 4.\n");
  expect_split_invariant({"\n\n", "User:", "</s>"}, "a\nb</s\n\nUser:");
}

TEST(StopStrings, MatchesBytesOfACharacterSplitAcrossPieces) {
  // "é" (C3 A9) arrives in two pieces; the stop string is "é!".
  StopStringMatcher m({"\xC3\xA9!"});
  EXPECT_EQ(m.push("caf\xC3").text, "caf");
  EXPECT_EQ(m.push("\xA9").text, "");
  const StopStringMatcher::Result r = m.push("! yes");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "");
  // Whole characters that only look alike are released whole.
  StopStringMatcher n({"\xC3\xA9!"});
  EXPECT_EQ(stream(n, {"caf\xC3", "\xA9", "?"}).emitted, "caf\xC3\xA9?");
  expect_split_invariant({"\xE2\x96\x81stop", "\xF0\x9F\x98\x80"}, "a \xE2\x96\x81st \xF0\x9F\x98 \xF0\x9F\x98\x80 z");
}

TEST(StopStrings, NoStringsPassEverythingThroughAndResetStartsOver) {
  StopStringMatcher none;
  EXPECT_EQ(none.push("anything").text, "anything");
  StopStringMatcher m({"x"});
  EXPECT_TRUE(m.push("ax").stopped);
  m.reset();
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.push("ab").text, "ab");
}

TEST(StopStrings, EmptyStringsAreRejected) {
  try {
    StopStringMatcher m({"ok", ""});
    ADD_FAILURE() << "accepted an empty stop string";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos);
  }
}

}  // namespace
}  // namespace ember
