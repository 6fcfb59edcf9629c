// Tokenizer throughput: vocabulary load time and encode MB/s on 1 MiB of English-like text and on
// 1 MiB of mixed source code and CJK, for the llama-bpe (Llama 3), qwen2 and llama-spm (Llama 2)
// vocabularies, medians of several runs. Single-threaded, as one request tokenizes.
// `tokenizer_bench [vocab_dir]` (default ../shared/data/vocab). The texts are synthetic (a Zipf
// draw over common words, generated code with CJK comments) so the benchmark needs no corpus.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "ember/error.h"
#include "gguf/gguf_reader.h"
#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kTextBytes = 1 << 20;
constexpr int kRuns = 5;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Words drawn with Zipf-like frequencies (rank r with weight 1/r), sentences with punctuation,
// capitals, numbers and paragraphs: the shape of English prose for a tokenizer.
std::string english_text(std::mt19937& rng) {
  static const char* kWords[] = {"the",
                                 "of",
                                 "and",
                                 "to",
                                 "a",
                                 "in",
                                 "is",
                                 "it",
                                 "you",
                                 "that",
                                 "he",
                                 "was",
                                 "for",
                                 "on",
                                 "are",
                                 "with",
                                 "as",
                                 "his",
                                 "they",
                                 "be",
                                 "at",
                                 "one",
                                 "have",
                                 "this",
                                 "from",
                                 "or",
                                 "had",
                                 "by",
                                 "hot",
                                 "word",
                                 "but",
                                 "what",
                                 "some",
                                 "we",
                                 "can",
                                 "out",
                                 "other",
                                 "were",
                                 "all",
                                 "there",
                                 "when",
                                 "up",
                                 "use",
                                 "your",
                                 "how",
                                 "said",
                                 "an",
                                 "each",
                                 "she",
                                 "which",
                                 "do",
                                 "their",
                                 "time",
                                 "if",
                                 "will",
                                 "way",
                                 "about",
                                 "many",
                                 "then",
                                 "them",
                                 "write",
                                 "would",
                                 "like",
                                 "so",
                                 "these",
                                 "her",
                                 "long",
                                 "make",
                                 "thing",
                                 "see",
                                 "him",
                                 "two",
                                 "has",
                                 "look",
                                 "more",
                                 "day",
                                 "could",
                                 "go",
                                 "come",
                                 "did",
                                 "number",
                                 "sound",
                                 "no",
                                 "most",
                                 "people",
                                 "my",
                                 "over",
                                 "know",
                                 "water",
                                 "than",
                                 "call",
                                 "first",
                                 "who",
                                 "may",
                                 "down",
                                 "side",
                                 "been",
                                 "now",
                                 "find",
                                 "any",
                                 "new",
                                 "work",
                                 "part",
                                 "take",
                                 "get",
                                 "place",
                                 "made",
                                 "live",
                                 "where",
                                 "after",
                                 "back",
                                 "little",
                                 "only",
                                 "round",
                                 "man",
                                 "year",
                                 "came",
                                 "show",
                                 "every",
                                 "good",
                                 "me",
                                 "give",
                                 "our",
                                 "under",
                                 "name",
                                 "very",
                                 "through",
                                 "just",
                                 "form",
                                 "sentence",
                                 "great",
                                 "think",
                                 "say",
                                 "help",
                                 "low",
                                 "line",
                                 "differ",
                                 "turn",
                                 "cause",
                                 "much",
                                 "mean",
                                 "before",
                                 "move",
                                 "right",
                                 "boy",
                                 "old",
                                 "too",
                                 "same",
                                 "tell",
                                 "does",
                                 "set",
                                 "three",
                                 "want",
                                 "air",
                                 "well",
                                 "also",
                                 "play",
                                 "small",
                                 "end",
                                 "put",
                                 "home",
                                 "read",
                                 "hand",
                                 "port",
                                 "large",
                                 "spell",
                                 "add",
                                 "even",
                                 "land",
                                 "here",
                                 "must",
                                 "big",
                                 "high",
                                 "such",
                                 "follow",
                                 "act",
                                 "why",
                                 "ask",
                                 "men",
                                 "change",
                                 "went",
                                 "light",
                                 "kind",
                                 "off",
                                 "need",
                                 "house",
                                 "picture",
                                 "try",
                                 "us",
                                 "again",
                                 "animal",
                                 "point",
                                 "mother",
                                 "world",
                                 "near",
                                 "build",
                                 "self",
                                 "earth",
                                 "father",
                                 "head",
                                 "stand",
                                 "own",
                                 "page",
                                 "should",
                                 "country",
                                 "found",
                                 "answer",
                                 "school",
                                 "grow",
                                 "study",
                                 "still",
                                 "learn",
                                 "plant",
                                 "cover",
                                 "food",
                                 "sun",
                                 "four",
                                 "between",
                                 "state",
                                 "keep",
                                 "eye",
                                 "never",
                                 "last",
                                 "let",
                                 "thought",
                                 "city",
                                 "tree",
                                 "cross",
                                 "farm",
                                 "hard",
                                 "start",
                                 "might",
                                 "story",
                                 "saw",
                                 "far",
                                 "sea",
                                 "draw",
                                 "left",
                                 "late",
                                 "run",
                                 "don't",
                                 "while",
                                 "press",
                                 "close",
                                 "night",
                                 "real",
                                 "life",
                                 "few",
                                 "north",
                                 "inference",
                                 "tokenizer",
                                 "transformer",
                                 "extraordinarily",
                                 "responsibilities",
                                 "internationalization",
                                 "characteristics"};
  constexpr size_t n = sizeof kWords / sizeof kWords[0];
  std::vector<double> weights(n);
  for (size_t r = 0; r < n; ++r) weights[r] = 1.0 / static_cast<double>(r + 1);
  std::discrete_distribution<size_t> word(weights.begin(), weights.end());
  std::uniform_int_distribution<int> len(6, 24), punct(0, 9), num(0, 40), para(0, 7);
  std::string text;
  while (text.size() < kTextBytes) {
    const int words = len(rng);
    for (int i = 0; i < words; ++i) {
      std::string w = kWords[word(rng)];
      if (i == 0) w[0] = static_cast<char>(w[0] - 'a' + 'A');
      if (num(rng) == 0) w = std::to_string(rng() % 5000);
      text += w;
      if (i + 1 < words) text += punct(rng) == 0 ? ", " : " ";
    }
    text += punct(rng) < 8 ? ". " : punct(rng) < 5 ? "? " : "! ";
    if (para(rng) == 0) text += "\n\n";
  }
  text.resize(kTextBytes);
  while ((static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) text.pop_back();
  return text;
}

// Source code (identifiers, operators, indentation, numbers) with comments and strings in Chinese
// and Japanese.
std::string code_cjk_text(std::mt19937& rng) {
  static const char* kIdents[] = {
      "buffer", "count", "index",  "tokenizer", "kv_cache", "value", "result", "n_tokens",   "std::vector<int>",
      "auto",   "const", "return", "if",        "for",      "while", "size_t", "HttpServer", "parseJSON",
      "x",      "i",     "j",      "weights",   "logits",   "self",  "def"};
  static const char* kCjk[] = {"模型", "推理",   "引擎", "的",   "是",   "在",     "我们", "使用",
                               "缓存", "分词器", "東京", "です", "ます", "データ", "処理", "高速",
                               "中文", "测试",   "文本", "。",   "，",   "、"};
  std::uniform_int_distribution<size_t> ident(0, std::size(kIdents) - 1), cjk(0, std::size(kCjk) - 1);
  std::uniform_int_distribution<int> kind(0, 9), indent(0, 3), count(3, 12);
  std::string text;
  while (text.size() < kTextBytes) {
    text.append(static_cast<size_t>(indent(rng)) * 4, ' ');
    const int k = kind(rng);
    if (k < 3) {
      text += "// ";
      for (int i = count(rng); i > 0; --i) text += kCjk[cjk(rng)];
    } else if (k < 4) {
      text += "printf(\"";
      for (int i = count(rng); i > 0; --i) text += kCjk[cjk(rng)];
      text += "%d\\n\", " + std::string(kIdents[ident(rng)]) + ");";
    } else {
      text += std::string(kIdents[ident(rng)]) + " = " + kIdents[ident(rng)] + "[" + std::to_string(rng() % 1024) +
              "] + " + kIdents[ident(rng)] + "(" + std::to_string(rng() % 100) + ");";
    }
    text += "\n";
  }
  text.resize(kTextBytes);
  while ((static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) text.pop_back();
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "../shared/data/vocab";
  std::mt19937 rng(42);
  const std::string english = english_text(rng);
  const std::string code_cjk = code_cjk_text(rng);
  std::printf("tokenizer encode, 1 thread, %zu-byte texts, median of %d runs (first run: cold word cache)\n",
              english.size(), kRuns);
  std::printf("%-10s %9s | %-9s %10s %10s %9s | %-9s %10s %10s %9s\n", "vocab", "load ms", "english", "MB/s",
              "first MB/s", "tok/s M", "code+cjk", "MB/s", "first MB/s", "tok/s M");
  for (const char* name : {"llama-bpe", "qwen2", "llama-spm"}) {
    const std::string path = (dir / (std::string("ggml-vocab-") + name + ".gguf")).string();
    try {
      std::vector<double> loads;
      for (int i = 0; i < kRuns; ++i) {
        const Clock::time_point start = Clock::now();
        const ember::Tokenizer t = ember::Tokenizer::from_gguf(ember::GgufFile::open(path));
        loads.push_back(seconds_since(start));
      }
      std::printf("%-10s %9.1f", name, median(loads) * 1e3);
      for (const std::string* text : {&english, &code_cjk}) {
        const ember::Tokenizer tokenizer = ember::Tokenizer::from_gguf(ember::GgufFile::open(path));
        std::vector<double> runs;
        size_t n_tokens = 0;
        for (int i = 0; i < kRuns + 1; ++i) {
          const Clock::time_point start = Clock::now();
          n_tokens = tokenizer.encode(*text).size();
          runs.push_back(seconds_since(start));
        }
        const double first = runs.front();
        runs.erase(runs.begin());
        const double s = median(runs);
        const double mb = static_cast<double>(text->size()) / 1e6;
        std::printf(" | %9zu %10.1f %10.1f %9.2f", n_tokens, mb / s, mb / first,
                    static_cast<double>(n_tokens) / s / 1e6);
      }
      std::printf("\n");
    } catch (const ember::Error& e) {
      std::printf("%-10s skipped: %s\n", name, e.what());
    }
  }
  return 0;
}
