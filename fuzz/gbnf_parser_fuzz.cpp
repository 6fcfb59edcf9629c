// libFuzzer target: parsing arbitrary bytes as GBNF must never crash, hang or leak; a grammar that
// parses prints (to_gbnf) to text that parses again to the same rules, line for line.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ember/error.h"
#include "grammar/compiled_grammar.h"
#include "grammar/gbnf_parser.h"
#include "grammar/stack_sets.h"

namespace {

// Printed text grows up to ~18x (`.` prints as a class); past this the re-parse would hit the
// parser's own 1 MiB input limit, so larger inputs are left to the unit tests.
constexpr size_t kMaxInput = 32 * 1024;
constexpr size_t kMaxPrinted = size_t{1} << 20;

// The printer lists rules in id order, which depends on the order names were first seen; the set
// of printed lines does not.
std::vector<std::string_view> sorted_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  for (size_t start = 0; start < text.size();) {
    const size_t end = std::min(text.find('\n', start), text.size());
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInput) return 0;
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  std::string printed;
  try {
    const ember::grammar::Grammar grammar = ember::grammar::parse_gbnf(source);
    printed = grammar.to_gbnf();
    // The compiler and the matcher on whatever grammar parses (small ones: compiling is the slow
    // part): a refusal (left recursion, a rule that never finishes, too large) is fine.
    if (grammar.expr_count() < 4000) {
      try {
        const auto compiled = ember::grammar::CompiledGrammar::compile(grammar);
        ember::grammar::StackSets sets(compiled);
        int32_t set = sets.root_set();
        for (const char ch : source.substr(0, 256)) {
          if (set == ember::grammar::StackSets::kDead) break;
          set = sets.step(set, static_cast<uint8_t>(ch));
        }
      } catch (const ember::Error&) {
      }
    }
  } catch (const ember::Error&) {
    return 0;  // rejecting the input is fine; crashing is what this target looks for
  }
  if (printed.size() > kMaxPrinted) return 0;
  try {
    const std::string reprinted = ember::grammar::parse_gbnf(printed).to_gbnf();
    // Same root (printed first) and the same rules with the same bodies.
    if (reprinted.substr(0, reprinted.find('\n')) != printed.substr(0, printed.find('\n'))) __builtin_trap();
    if (sorted_lines(reprinted) != sorted_lines(printed)) __builtin_trap();
  } catch (const ember::Error&) {
    __builtin_trap();  // the printer wrote GBNF its own parser refuses
  }
  return 0;
}
