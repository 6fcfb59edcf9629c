// PreTokenizer: the regex sequences of the byte-level BPE pre-tokenizers (as the models'
// tokenizer.json files define them and llama.cpp names them), compiled once with PCRE2's JIT.
#include "tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <initializer_list>

#include "core/check.h"
#include "core/utf8.h"
#include "ember/error.h"

namespace ember {
namespace {

// GPT-2's pattern: English contractions, letters / digits / other runs with one optional leading
// space, and whitespace (the last run of spaces before a word is left to that word).
constexpr std::string_view kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Llama 3 (and cl100k): case-insensitive contractions, letters with one leading non-letter, digits in
// groups of up to three, newlines kept apart. The contractions stay case-insensitive as in the
// original, (?i:'s|...): Unicode case folding then also takes "'ſ" (U+017F) as "'s", as Hugging Face
// does (llama.cpp, spelling them '[sS]|..., does not).
constexpr std::string_view kLlama3 = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3})"
                                     R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Qwen 2: Llama 3's pattern with single digits.
constexpr std::string_view kQwen2 = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N})"
                                    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Tekken (Mistral Nemo): words split at lower-to-upper case changes, single digits.
constexpr std::string_view kTekken = R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)"
                                     R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)"
                                     R"(|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// GPT-4o (o200k, Llama 4): Tekken's case-aware words with contractions attached, digits by three.
constexpr std::string_view kGpt4o = R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)"
                                    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
                                    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)"
                                    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
                                    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// DeepSeek LLM: newlines, then cased-script letters, ASCII / full-width punctuation, trailing
// whitespace, CJK and Hangul runs, digit runs (each applied to what the previous ones left).
constexpr std::string_view kDeepseekLlmLetters =
    "\\s?["
    "\\x{41}-\\x{5A}\\x{61}-\\x{7A}\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}"
    "\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}"
    "\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}"
    "\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"
    "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}"
    "\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"
    "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"
    "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}"
    "\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}"
    "\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}"
    "\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}"
    "\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}"
    "\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}"
    "\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}"
    "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}"
    "\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"
    "\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}"
    "\\x{1E900}-\\x{1E943}"
    "]+";
constexpr std::string_view kDeepseekPunctuation = "\\s?[!-/:-~！-／：-～‘-‟　-。]+";
constexpr std::string_view kCjkHangul = "[一-龥ࠀ-一가-퟿]+";

// DeepSeek V3: digits by three, CJK / kana runs, then a GPT-4-like pattern.
constexpr std::string_view kDeepseekV3Cjk = "[一-龥぀-ゟ゠-ヿ]+";
constexpr std::string_view kDeepseekV3 =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+)"
    R"(| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// BLOOM / Poro / GPT-3 Finnish: runs of anything but whitespace and sentence punctuation.
constexpr std::string_view kBloom = R"( ?[^(\s|.,!?…。，、।۔،)]+)";

struct Preset {
  std::initializer_list<std::string_view> names;
  std::initializer_list<std::string_view> regexes;
  PreTokenizerTraits traits;
};

// llama.cpp's tokenizer.ggml.pre names and what each selects.
const std::array<Preset, 14> kPresets{{
    // llama.cpp's fallback for files without a pre-tokenizer name.
    {{"default"}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}, {}},
    {{"gpt-2", "phi-2", "mpt", "olmo", "jais", "jina-es", "jina-de", "jina-v1-en", "jina-v2-es", "jina-v2-de",
      "jina-v2-code", "roberta-bpe", "gigachat", "a.x-4.0", "mellum", "trillion", "granite-docling", "exaone4"},
     {kGpt2},
     {}},
    {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"},
     {kLlama3},
     {.ignore_merges = true, .add_bos = true}},
    {{"dbrx", "smaug-bpe", "glm4", "chatglm-bpe"}, {kLlama3}, {}},
    {{"qwen2", "deepseek-r1-qwen", "kormo", "megrez", "stablelm2", "hunyuan", "grok-2"}, {kQwen2}, {}},
    {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"}, {R"(\p{N})", kGpt2}, {}},
    {{"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}, {}},
    {{"deepseek-llm"}, {"[\\r\\n]", kDeepseekLlmLetters, kDeepseekPunctuation, "\\s+$", kCjkHangul, R"(\p{N}+)"}, {}},
    {{"deepseek-coder"}, {"[\\r\\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjkHangul, R"(\p{N})"}, {}},
    {{"deepseek-v3", "hunyuan-dense"}, {R"(\p{N}{1,3})", kDeepseekV3Cjk, kDeepseekV3}, {}},
    {{"tekken"}, {kTekken}, {.ignore_merges = true, .add_bos = true}},
    {{"gpt-4o", "llama4", "minimax-m2"}, {kGpt4o}, {}},
    {{"bloom", "poro-chat", "gpt3-finnish"}, {kBloom}, {}},
    {{"viking"}, {kBloom, R"(\p{N})"}, {}},
}};

const Preset* find_preset(std::string_view pre) {
  for (const Preset& preset : kPresets) {
    for (std::string_view name : preset.names) {
      if (name == pre) return &preset;
    }
  }
  return nullptr;
}

// Unicode's White_Space, spelled out: PCRE2's \s also matches U+180E (Mongolian vowel separator),
// which Unicode 6.3 took out of White_Space and the reference tokenizers do not treat as space.
constexpr std::string_view kWhiteSpace =
    R"(\t\n\x{0B}\f\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// `pattern` with \s and \S replaced by kWhiteSpace (inside a character class, its members).
std::string with_exact_white_space(std::string_view pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[++i];
      if (next == 's') {
        out += in_class ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
      } else if (next == 'S') {
        EMBER_CHECK_MSG(!in_class, "\\S inside a character class");
        out += "[^" + std::string(kWhiteSpace) + "]";
      } else {
        out += c;
        out += next;
      }
      continue;
    }
    if (c == '[') in_class = true;  // the patterns never nest classes or open one with ']'
    if (c == ']') in_class = false;
    out += c;
  }
  return out;
}

// Per-thread match state: match data and a JIT stack large enough for the group repetitions of the
// case-aware patterns on long words (PCRE2's default JIT stack is 32 KiB).
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  MatchState() {
    if (data == nullptr || stack == nullptr || context == nullptr) {
      fail(ErrorCode::kOutOfMemory, "pre-tokenizer: cannot allocate PCRE2 match state");
    }
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

}  // namespace

std::optional<PreTokenizerTraits> pre_tokenizer_traits(std::string_view pre) {
  const Preset* preset = find_preset(pre);
  if (preset == nullptr) return std::nullopt;
  return preset->traits;
}

std::string supported_pre_tokenizers() {
  std::string list;
  for (const Preset& preset : kPresets) {
    for (std::string_view name : preset.names) {
      if (!list.empty()) list += ", ";
      list += name;
    }
  }
  return list;
}

// The compiled patterns, in the order they split. (The deleter is a member, not a helper in the
// anonymous namespace: a class with linkage cannot hold a type without it once a unity batch makes
// this file part of another translation unit.)
struct PreTokenizer::Regexes {
  struct Free {
    void operator()(pcre2_code* code) const { pcre2_code_free(code); }
  };
  using Code = std::unique_ptr<pcre2_code, Free>;
  std::vector<Code> codes;
};

PreTokenizer::PreTokenizer(std::string_view pre) : regexes_(std::make_unique<Regexes>()) {
  const Preset* preset = find_preset(pre);
  if (preset == nullptr) {
    fail(ErrorCode::kUnsupported, "BPE pre-tokenizer \"{}\" is not supported (supported: {})", pre,
         supported_pre_tokenizers());
  }
  for (std::string_view original : preset->regexes) {
    const std::string pattern = with_exact_white_space(original);
    int error = 0;
    PCRE2_SIZE offset = 0;
    Regexes::Code code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr));
    if (!code) {
      // The patterns are constants of this file: one that does not compile is a bug here.
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      EMBER_CHECK_MSG(false, reinterpret_cast<const char*>(message));
    }
    // Without JIT (an exotic platform) the interpreter gives the same matches, only slower.
    pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE);
    regexes_->codes.push_back(std::move(code));
  }
}

PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  MatchState& state = match_state();
  std::vector<std::string_view> current{text};
  std::vector<std::string_view> next;
  for (const Regexes::Code& code : regexes_->codes) {
    next.clear();
    for (std::string_view piece : current) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
      size_t start = 0;  // where the next gap (unmatched text) begins
      size_t search = 0;
      while (search < piece.size()) {
        // The text is valid UTF-8 (the caller's contract), so PCRE2's O(n) check per call, which
        // would make this loop quadratic, is skipped.
        int rc = pcre2_match(code.get(), subject, piece.size(), search, PCRE2_NO_UTF_CHECK, state.data, state.context);
        if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
          // A JIT resource limit (a pathological word): the interpreter keeps its backtracking on
          // the heap and gets further.
          rc = pcre2_match(code.get(), subject, piece.size(), search, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, state.data,
                           state.context);
        }
        if (rc < 0) break;  // no further match (or still a resource limit): the rest is one gap
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
        const size_t begin = ovector[0];
        const size_t end = ovector[1];
        if (end == begin) {
          // An empty match splits nothing: step over one character and look again.
          if (begin >= piece.size()) break;
          search = begin + utf8::decode(piece, begin).length;
          continue;
        }
        if (begin > start) next.push_back(piece.substr(start, begin - start));
        next.push_back(piece.substr(begin, end - begin));
        start = search = end;
      }
      if (start < piece.size()) next.push_back(piece.substr(start));
    }
    current.swap(next);
  }
  pieces.insert(pieces.end(), current.begin(), current.end());
}

}  // namespace ember
