// Token-mask speed of the grammar engine on a real vocabulary: for every schema of a corpus,
// the compile time, then every mask while replaying the schema's valid instances token by token,
// with the shared mask cache cold (first replay of the corpus) and warm (second replay). Then a
// recursive GBNF grammar (JSON, its rules ending in whitespace: many tokens end a rule part way),
// masks along seeded random walks, cold and warm.
// Usage: grammar_bench [VOCAB.gguf] [SCHEMA_DIR]   (defaults: ../shared/data llama-bpe, tests/data/json_schemas)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/error.h"
#include "grammar/compiled_grammar.h"
#include "grammar/gbnf_parser.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double us_since(Clock::time_point t) { return std::chrono::duration<double, std::micro>(Clock::now() - t).count(); }

struct Summary {
  std::vector<double> us;
  void print(const char* what) {
    if (us.empty()) return;
    std::sort(us.begin(), us.end());
    double sum = 0;
    for (const double v : us) sum += v;
    auto pct = [&](double p) {
      return us[std::min(us.size() - 1, static_cast<size_t>(p * static_cast<double>(us.size())))];
    };
    std::printf("%-22s n=%-6zu mean %8.1f us  p50 %8.1f  p90 %8.1f  p99 %8.1f  max %9.1f\n", what, us.size(),
                sum / static_cast<double>(us.size()), pct(0.5), pct(0.9), pct(0.99), us.back());
  }
};

struct Case {
  std::string name;
  nlohmann::ordered_json schema;
  std::vector<std::string> instances;
};

// JSON in GBNF the way hand-written grammars tend to be: recursive rules, whitespace at their ends.
constexpr const char* kJsonGbnf = R"(
root ::= object
value ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
ws ::= | " " | "\n" [ \t]{0,20}
)";

// Masks along 20 random walks of up to 60 tokens (the same walks twice: cold, then warm).
void bench_gbnf(const ember::Tokenizer& tok) {
  const auto grammar = ember::grammar::CompiledGrammar::compile(ember::grammar::parse_gbnf(kJsonGbnf));
  ember::grammar::TokenMask mask;
  Summary masks[2];
  for (int pass = 0; pass < 2; ++pass) {
    std::mt19937 rng(7);
    for (int walk = 0; walk < 20; ++walk) {
      ember::grammar::GrammarMatcher m(grammar, tok.vocab_trie(), tok.vocab().end_of_generation());
      std::vector<int32_t> allowed;
      for (int step = 0; step < 60 && !m.finished(); ++step) {
        const auto t0 = Clock::now();
        m.fill_mask(mask);
        masks[pass].us.push_back(us_since(t0));
        allowed.clear();
        for (int32_t t = 0; t < mask.n_vocab(); ++t) {
          if (mask.test(t)) allowed.push_back(t);
        }
        if (allowed.empty() || !m.accept(allowed[rng() % allowed.size()])) break;
      }
    }
  }
  std::printf("GBNF JSON, 20 random walks:\n");
  masks[0].print("mask, cold cache");
  masks[1].print("mask, warm cache");
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path root = fs::path(EMBER_SOURCE_DIR);
  const std::string vocab_path =
      argc > 1 ? argv[1] : (root / ".." / "shared" / "data" / "vocab" / "ggml-vocab-llama-bpe.gguf").string();
  const fs::path schema_dir = argc > 2 ? fs::path(argv[2]) : root / "tests" / "data" / "json_schemas";
  try {
    auto t0 = Clock::now();
    const ember::Tokenizer tok = ember::Tokenizer::from_gguf(ember::GgufFile::open(vocab_path));
    const ember::VocabTrie& trie = tok.vocab_trie();
    std::printf("vocabulary %s: %d tokens, trie %d nodes (%d tokens), built in %.1f ms\n", vocab_path.c_str(),
                tok.vocab().size(), trie.size(), trie.token_count(), us_since(t0) / 1000);

    std::vector<Case> cases;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(schema_dir)) {
      if (e.path().extension() == ".json") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      std::ifstream in(f);
      const auto j = nlohmann::ordered_json::parse(in);
      Case c{f.stem().string(), j.at("schema"), {}};
      for (const auto& v : j.at("valid")) c.instances.push_back(v.dump());
      cases.push_back(std::move(c));
    }

    Summary compile;
    Summary masks[2];
    Summary accept;
    size_t rejected = 0;
    ember::grammar::GrammarMatcher::WalkStats walks;
    for (int pass = 0; pass < 2; ++pass) {
      for (const Case& c : cases) {
        t0 = Clock::now();
        const auto grammar = ember::grammar::CompiledGrammar::compile(ember::grammar::json_schema_grammar(c.schema));
        if (pass == 0) compile.us.push_back(us_since(t0));
        for (const std::string& text : c.instances) {
          const std::vector<int32_t> ids = tok.encode(text, {.add_special = false, .parse_special = false});
          ember::grammar::GrammarMatcher m(grammar, trie, tok.vocab().end_of_generation());
          ember::grammar::TokenMask mask;
          for (const int32_t id : ids) {
            t0 = Clock::now();
            m.fill_mask(mask);
            masks[pass].us.push_back(us_since(t0));
            if (!mask.test(id)) {
              ++rejected;
              break;
            }
            t0 = Clock::now();
            m.accept(id);
            accept.us.push_back(us_since(t0));
          }
          walks.walks += m.walk_stats().walks;
          walks.nodes += m.walk_stats().nodes;
          walks.whole_runs += m.walk_stats().whole_runs;
          walks.sliced_runs += m.walk_stats().sliced_runs;
        }
      }
    }
    size_t instances = 0;
    for (const Case& c : cases) instances += c.instances.size();
    std::printf("%zu schemas, %zu instances, %zu masks per pass\n", cases.size(), instances, masks[0].us.size());
    compile.print("compile (schema->DFA)");
    masks[0].print("mask, cold cache");
    masks[1].print("mask, warm cache");
    accept.print("accept token");
    std::printf("trie walks (cache misses): %llu, %.0f nodes each; run subtrees taken whole %llu, by length %llu\n",
                static_cast<unsigned long long>(walks.walks),
                walks.walks > 0 ? static_cast<double>(walks.nodes) / static_cast<double>(walks.walks) : 0.0,
                static_cast<unsigned long long>(walks.whole_runs), static_cast<unsigned long long>(walks.sliced_runs));
    const auto stats = ember::grammar::MaskCache::shared().stats();
    std::printf("mask cache: %zu entries, %.1f MiB, %llu hits, %llu misses\n", stats.entries,
                static_cast<double>(stats.bytes) / (1 << 20), static_cast<unsigned long long>(stats.hits),
                static_cast<unsigned long long>(stats.misses));
    bench_gbnf(tok);
    if (rejected > 0) {
      std::printf("ERROR: %zu instance tokens were not in their mask\n", rejected);
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "grammar_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
