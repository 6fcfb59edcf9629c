// libFuzzer target: token masks must equal tokens checked one by one. The input is a GBNF grammar,
// a line "%%", then vocabulary pieces one per line (every single byte is a piece too, so any text
// can be written); a walk through the grammar compares, at every step, fill_mask() with allows()
// for every token, then takes an allowed token chosen by the input. A difference traps. This is
// the differential check behind the mask shortcuts (trie subtrees taken from a run of characters,
// uncertain tokens kept as subtrees) on grammars and vocabularies no test wrote.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ember/error.h"
#include "grammar/compiled_grammar.h"
#include "grammar/gbnf_parser.h"
#include "grammar/matcher.h"

namespace {

constexpr size_t kMaxInput = 8 * 1024;
constexpr size_t kMaxPieces = 512;
constexpr int kSteps = 12;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInput) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find("\n%%\n");
  if (split == std::string_view::npos) return 0;
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.emplace_back(1, static_cast<char>(b));
  for (size_t start = split + 4; start < input.size() && pieces.size() < kMaxPieces;) {
    const size_t end = std::min(input.find('\n', start), input.size());
    if (end > start) pieces.emplace_back(input.substr(start, end - start));
    start = end + 1;
  }
  const int32_t eos = static_cast<int32_t>(pieces.size());
  pieces.emplace_back();  // the end token: no bytes
  uint64_t choice = 0xCBF29CE484222325ull;
  for (const char ch : input) choice = (choice ^ static_cast<uint8_t>(ch)) * 0x100000001B3ull;

  std::shared_ptr<const ember::grammar::CompiledGrammar> grammar;
  try {
    const ember::grammar::Grammar g = ember::grammar::parse_gbnf(input.substr(0, split));
    if (g.expr_count() > 2000) return 0;
    grammar = ember::grammar::CompiledGrammar::compile(g);
  } catch (const ember::Error&) {
    return 0;
  }
  const ember::VocabTrie trie(pieces);
  ember::grammar::MaskCache cache(size_t{8} << 20);
  ember::grammar::TokenMask mask;
  try {
    ember::grammar::GrammarMatcher m(grammar, trie, std::vector<int32_t>{eos}, &cache);
    std::vector<int32_t> allowed;
    for (int step = 0; step < kSteps && !m.finished(); ++step) {
      m.fill_mask(mask);
      allowed.clear();
      for (int32_t t = 0; t < trie.n_vocab(); ++t) {
        if (mask.test(t) != m.allows(t)) __builtin_trap();
        if (mask.test(t)) allowed.push_back(t);
      }
      if (allowed.empty()) break;
      choice = choice * 6364136223846793005ull + 1442695040888963407ull;
      if (!m.accept(allowed[(choice >> 33) % allowed.size()])) __builtin_trap();
    }
  } catch (const ember::Error&) {
    return 0;  // "too ambiguous": a refusal, not a crash
  }
  return 0;
}
