// A slow, obviously-correct matcher over the grammar IR for tests: does a grammar's language hold
// a whole text? The compiled automata and the matcher are tested against it.
#pragma once

#include <string_view>

#include "grammar/grammar_ir.h"

namespace ember::grammar::testing {

// True when the root rule derives exactly `text` (bytes; classes match whole UTF-8 code points).
// Memoized recursive descent: exponential-free on test-sized inputs; a left-recursive grammar
// is refused (EMBER_CHECK), as the compiler refuses it.
bool reference_matches(const Grammar& grammar, std::string_view text);

}  // namespace ember::grammar::testing
