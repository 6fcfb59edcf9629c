#!/usr/bin/env python3
"""Independent oracle for ember's BPE pre-tokenizers (src/tokenizer/pre_tokenizer.cpp).

Usage: pre_tokenizer_oracle.py PATH/TO/pre_tokenizer_dump [--count N] [--seed S]

For every name `pre_tokenizer_dump --list` reports, the script splits a few thousand seeded random
strings with the third-party `regex` module (Debian's python3-regex) running the ORIGINAL regexes of
the models' tokenizer.json files (as llama.cpp's llama-vocab.cpp quotes them), applies the Hugging
Face Sequence-of-Split(Isolated) semantics (each regex splits every piece the previous ones left
into its matches and the gaps between them, empty strings dropped), and compares with the pieces
ember's PreTokenizer::split gives. On a mismatch it prints the name, the input and both piece lists
and exits 1; it also fails (exit 1) when no Python with `regex` can be found (install-deps provides it).

Nothing here is shared with ember: the regexes are transcribed from the originals, not from
pre_tokenizer.cpp, and the names are mapped to them from llama.cpp's llama_vocab::impl::load.

Why `regex` can stand in for Hugging Face's engine (Oniguruma) on these patterns:
  * \\s is Unicode White_Space in `regex` and in Oniguruma alike: U+180E (a format character since
    Unicode 6.3) is not space, nor are U+001C..U+001F, which Python's str.isspace() and `re` count.
    ember spells White_Space out for PCRE2, whose \\s includes U+180E.
  * \\p{L}, \\p{N}, \\p{P}, \\p{S}, \\p{M}, \\p{Lu}... are general categories in all three engines. The
    engines' Unicode versions differ (PCRE2 10.42: 14.0; `regex`: 15.0 or later), so the alphabet
    below uses no character assigned after Unicode 13, and drops any whose category `regex` and
    unicodedata disagree on (drop_unstable_characters).
  * `$` (DeepSeek LLM's "\\s+$") also matches before a final "\\n" in `regex`, PCRE2 and (as end of
    line) Oniguruma; it only ever sees pieces without "\\n" but the lone "\\n" ones, which the
    previous "[\\r\\n]" split isolated, so the three agree there.
  * The GPT-2 pattern is tokenizer.json's, ending in "|\\s+"; llama.cpp drops that last
    alternative. Under the isolated split it makes no difference: the only text it matches that the
    others do not is one whitespace character (not a space) right before a non-space, which then
    becomes a one-character gap instead of a one-character match.

The case-insensitive contractions "(?i:'s|'t|'re|'ve|'m|'ll|'d)" of Llama 3 / Qwen 2 / GPT-4o are
kept as (?i:) in ember too (llama.cpp spells them "'[sS]|..." because its own engine has none):
Unicode case folding makes U+017F (LATIN SMALL LETTER LONG S) match "s" in `regex`, in Oniguruma
(Hugging Face) and in PCRE2 alike, so "'\u017f" is a contraction everywhere but in llama.cpp.
The generator therefore puts U+017F right after apostrophes too, and the fixed cases include it.
"""
import os
import random
import subprocess
import sys
import time
import unicodedata

try:
    import regex
except ImportError:  # a Python of its own (pyenv, venv) may lack the Debian module /usr/bin/python3 has
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("pre_tokenizer_oracle: FAILED: the Python module `regex` is missing: run scripts/install-deps.sh "
          "(Debian package python3-regex)")
    sys.exit(1)

# --- The original regexes -------------------------------------------------------------------------

# GPT-2 (encoder.py, and every ByteLevel tokenizer.json).
GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# Llama 3 / cl100k.
LLAMA3 = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"""
          r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")

# Qwen 2.
QWEN2 = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
         r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")

# Mistral Tekken.
TEKKEN = (r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"""
          r"""|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"""
          r"""|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+""")

# GPT-4o / o200k (Llama 4, MiniMax M2).
GPT4O = (r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""
         r"""|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""
         r"""|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+""")

# DeepSeek LLM's cased letters. The original is a class of literal characters; some of them (U+1F7D,
# U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A) change under Unicode NFC, which would turn their ranges
# upside down, so they are spelled as escapes here (Python turns them into the same literal
# characters the original has).
DEEPSEEK_LLM_LETTERS = (
    "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF"
    "\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5"
    "\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA"
    "\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45"
    "\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE"
    "\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC"
    "\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139"
    "\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3"
    "\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06"
    "\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3"
    "\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF"
    "\U0001E900-\U0001E943]+")

# Each recipe: the regexes in the order the pre-tokenizer applies them.
RECIPES = {
    # llama.cpp's fallback ("default", and files without tokenizer.ggml.pre).
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    "gpt2": [GPT2],
    "llama3": [LLAMA3],
    "qwen2": [QWEN2],
    "starcoder": [r"\p{N}", GPT2],
    "falcon": [r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"],
    "deepseek-llm": ["[\r\n]", DEEPSEEK_LLM_LETTERS, "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+",
                     r"\s+$", "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+", r"\p{N}+"],
    "deepseek-coder": ["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+", r"\p{N}"],
    "deepseek-v3": [r"\p{N}{1,3}", "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+",
                    r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"""
                    r"""| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""],
    "tekken": [TEKKEN],
    "gpt-4o": [GPT4O],
    # BLOOM: one class, which lists "(", "|" and ")" as characters (it is not a group).
    "bloom": [" ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+"],
    "viking": [" ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+", r"\p{N}"],
}

# tokenizer.ggml.pre -> recipe, as llama.cpp maps the names to pre-tokenizer types and the types to
# regexes (GLM-4, DBRX and Smaug use Llama 3's; StableLM 2, Hunyuan, Grok 2 Qwen 2's; ...).
NAMES = {}
for _recipe, _names in {
        "default": ["default"],
        "gpt2": ["gpt-2", "phi-2", "mpt", "olmo", "jais", "jina-es", "jina-de", "jina-v1-en", "jina-v2-es",
                 "jina-v2-de", "jina-v2-code", "roberta-bpe", "gigachat", "a.x-4.0", "mellum", "trillion",
                 "granite-docling", "exaone4"],
        "llama3": ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                   "jina-v5-nano", "dbrx", "smaug-bpe", "glm4", "chatglm-bpe"],
        "qwen2": ["qwen2", "deepseek-r1-qwen", "kormo", "megrez", "stablelm2", "hunyuan", "grok-2"],
        "starcoder": ["starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"],
        "falcon": ["falcon"],
        "deepseek-llm": ["deepseek-llm"],
        "deepseek-coder": ["deepseek-coder"],
        "deepseek-v3": ["deepseek-v3", "hunyuan-dense"],
        "tekken": ["tekken"],
        "gpt-4o": ["gpt-4o", "llama4", "minimax-m2"],
        "bloom": ["bloom", "poro-chat", "gpt3-finnish"],
        "viking": ["viking"],
}.items():
    for _name in _names:
        NAMES[_name] = _recipe

# Inputs on which ember and the originals knowingly differ: recipe, input, the pieces ember gives.
# The script checks each difference is still what it documents. None at present.
KNOWN_DIFFERENCES = []

# --- The inputs ------------------------------------------------------------------------------------

WORDS = ["hello", "world", "the", "a", "I", "HELLO", "Hello", "hELLo", "aBc", "CamelCase", "HTTPServer",
         "iPhone", "x86_64", "snake_case", "don", "isn", "O", "zz", "Q"]
CONTRACTIONS = ["'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'rE", "'ve", "'VE", "'m", "'M", "'ll", "'LL", "'lL",
                "'d", "'D", "'", "''", "'x", "'st", "'ss"]
DIGITS = ["0", "1", "12", "123", "1234", "12345", "1234567", "3.14", "1,000", "\u0663", "\u0663\u0664\u0665",
          "\uFF13", "\uFF11\uFF12\uFF13\uFF14", "\u00B2", "\u00BD", "\u216B", "\u2460", "\u0967\u0968",
          "\U0001D7D8", "\u3007"]
PUNCT = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + [
    "...", "--", "->", "=>", "<=", "!=", "$$", "+=", "^^", "~/", "|>", "```", "?!", "//", "/*", "*/", "#!", "@@",
    "\u2026", "\u00A9", "\u20AC", "\u00B1", "\u2192", "\u221A", "\u2211", "\u00B0", "\u00AB", "\u00BB", "\u00A7",
    "\u00B7", "\u00D7", "\u00F7", "\u2116", "\u212E", "\u00A1", "\u00BF", "\u2014", "\u2013", "\u2020", "\u2022",
    "\u2018", "\u2019", "\u201C", "\u201D", "\u201F", "\u3001", "\u3002", "\u3003", "\u300C", "\u300D",
    "\uFF08", "\uFF09", "\uFF01", "\uFF0C", "\uFF0F", "\uFF1A", "\uFF1F", "\uFF5E", "\uFF5F", "\uFF3F",
    "\u0964", "\u06D4", "\u060C", "\u061F", "\u05BE", "\u0482", "\u03F6", "\u2CE5", "\u00A6", "\u02C2",
]
SPACES = [" ", " ", " ", "  ", "   ", "    ", "\t", "\t\t", " \t", "\n", "\n", "\n\n", "\n\n\n", "\r\n", "\r",
          "\r\n\r\n", " \n", "  \n", "\n ", " \r\n ", "\x0b", "\x0c", "\x85", "\u00A0", "\u3000", "\u1680",
          "\u2000", "\u2003", "\u200A", "\u2028", "\u2029", "\u202F", "\u205F", "\u180E", "\u200B", "\u2060",
          "\uFEFF", "\x1c", "\x1d", "\x1e", "\x1f"]
CONTROLS = ["\x02", "\x07", "\x08", "\x1b", "\x7f", "\x80", "\x9f", "\u00AD", "\u200D", "\u200E", "\u061C",
            "\uE000", "\uFDD0"]
SCRIPTS = [
    # CJK, kana, Hangul
    "\u4E2D\u6587", "\u6C49\u5B57", "\u9F98", "\u9FA5", "\u9FA6", "\u4E00", "\u3400", "\U00020000",
    "\u3072\u3089\u304C\u306A", "\u30AB\u30BF\u30AB\u30CA", "\u30FC", "\u30FB", "\u309F", "\u30A0", "\u3005",
    "\uFF76\uFF80", "\uD55C\uAD6D\uC5B4", "\uAC00", "\uD7A3", "\uD7B0", "\u3131", "\u1100", "\u0800",
    # Latin with diacritics, precomposed and combining
    "caf\u00E9", "cafe\u0301", "\u0301", "e\u0301\u0302", "\u00F1", "\u00DC", "\u00DCBER", "na\u00EFve",
    "\u00C0\u00D6", "\u00D8", "\u00F6", "\u00F8", "\u00B5", "\u00DF", "\u1E9E", "\u0131", "\u0130", "\u0149",
    "\u01BA", "\u01BB", "\u01BC", "\u01BF", "\u01C0", "\u01C4", "\u01C5", "\u01C6", "\u01C8", "\u01CB",
    "\u0293", "\u0294", "\u0296", "\u02AF", "\u02B0", "\u02C6", "\u02E0", "\u0300", "\u0483",
    "\u017F", "\u212A",  # long s and Kelvin sign: case-fold to "s" and "k"
    # Greek, Cyrillic, Armenian, Georgian, Cherokee
    "\u03A9\u03BC\u03AD\u03B3\u03B1", "\u03A3\u038A\u03A3\u03A5\u03A6\u039F\u03A3", "\u0370", "\u0374",
    "\u0386", "\u0387", "\u03F5", "\u03F7", "\u1F7D", "\u1F88", "\u1FBC", "\u1FBE", "\u1FD3", "\u1FDB",
    "\u1FFC", "\u1F00\u1F01", "\u041F\u0440\u0438\u0432\u0435\u0442", "\u041F\u0420\u0418\u0412\u0415\u0422",
    "\u0481", "\u048A", "\u0531", "\u0556", "\u0559", "\u10A0", "\u10D0", "\u1C90", "\u1CBD", "\u13A0", "\u13F5",
    "\u13F8", "\uAB70",
    # phonetic, letterlike, Coptic, Glagolitic, Latin extended, ligatures, full-width
    "\u1D00", "\u1D2B", "\u1D2C", "\u1D6B", "\u1D78", "\u1D9A", "\u1D9B", "\u1E00", "\u2102", "\u2107",
    "\u210A", "\u2113", "\u2115", "\u2119", "\u2124", "\u2126", "\u2128", "\u212B", "\u212D", "\u212F",
    "\u2134", "\u2135", "\u2139", "\u213C", "\u2145", "\u214E", "\u2183", "\u2184", "\u2C00", "\u2C7B",
    "\u2C7C", "\u2C7E", "\u2CE4", "\u2CEB", "\u2CF2", "\uA640", "\uA66D", "\uA66E", "\uA680", "\uA69B",
    "\uA69C", "\uA722", "\uA770", "\uA771", "\uA788", "\uA78B", "\uFB00", "\uFB06", "\uFB13", "\uFB17",
    "\uFF21\uFF22", "\uFF41\uFF5A", "\uFF3A\uFF41",
    # beyond the BMP: Deseret, Osage, Old Hungarian, Warang Citi, Adlam, math letters
    "\U00010400", "\U0001044F", "\U000104B0", "\U000104D8", "\U00010C80", "\U00010CC0", "\U000118A0",
    "\U000118DF", "\U0001E900", "\U0001E943", "\U0001E944", "\U0001D400", "\U0001D41A",
    # emoji (ZWJ sequences, skin tones, flags, keycaps, variation selectors)
    "\U0001F600", "\U0001F44D\U0001F3FD", "\U0001F468\u200D\U0001F469\u200D\U0001F467", "\u2764\uFE0F",
    "\U0001F1FA\U0001F1F8", "1\uFE0F\u20E3", "\U0001F980", "\u263A",
    # Arabic, Hebrew, Devanagari, Thai
    "\u0645\u0631\u062D\u0628\u0627", "\u0627\u0644\u0633\u0651\u0644\u0627\u0645", "\u05E9\u05DC\u05D5\u05DD",
    "\u05E9\u05B8\u05C1\u05DC\u05D5\u05B9\u05DD", "\u0928\u092E\u0938\u094D\u0924\u0947", "\u0E2A\u0E27\u0E31\u0E2A",
]
CATEGORIES = [  # (weight, items)
    (14, WORDS), (6, CONTRACTIONS), (8, DIGITS), (10, PUNCT), (18, SPACES), (2, CONTROLS), (16, SCRIPTS),
]


def drop_unstable_characters():
    """Drops the alphabet items with a character whose general category `regex` and this Python's
    unicodedata disagree on: one that changed between Unicode versions (U+0295 turned from Ll to Lo
    in Unicode 16), which PCRE2 may see either way. Returns the characters dropped."""
    chars = {c for _, items in CATEGORIES for item in items for c in item}
    chars.update(c for text in FIXED_INPUTS for c in text)
    unstable = {c for c in chars if not regex.match(r"\p{gc=%s}" % unicodedata.category(c), c)}
    if unstable:
        for _, items in CATEGORIES:
            items[:] = [item for item in items if not unstable.intersection(item)]
        FIXED_INPUTS[:] = [text for text in FIXED_INPUTS if not unstable.intersection(text)]
    return unstable


def random_input(rng):
    """A random string of 1..30 items (sometimes a long run of one kind)."""
    total = sum(w for w, _ in CATEGORIES)
    parts = []
    for _ in range(rng.choice([1, 2, 3, 5, 8, 12, 16, 24, 30])):
        pick = rng.uniform(0, total)
        for weight, items in CATEGORIES:
            pick -= weight
            if pick <= 0:
                break
        item = rng.choice(items)
        if rng.random() < 0.04:
            item *= rng.randint(2, 12)  # runs: long digit strings, space runs, newline runs, long words
        parts.append(item)
    text = "".join(parts)
    # Long s right after an apostrophe: a contraction under (?i:) case folding.
    return text.replace("'s", "'\u017F") if rng.random() < 0.05 else text


FIXED_INPUTS = [
    "", " ", "  ", "\n", "\r\n", "a", "'s", "'S", "it's", "IT'S", "don't", "we'll", "I'm", "you've", "they're",
    "Hello world", " Hello  world  ", "Hello\n\nworld\n", "  \n  \n", "a  b", "a\t\tb", "a \tb", "a\t b",
    "1234567", "x1234567y", " 1 22 333 4444", "$100.00", "a+b=c", "<|endoftext|>", "e.g.", "HTTPServer",
    "CamelCaseXMLHttpRequest", "\u01C5ungla", "\u02B0ello", "ab\u0301cd", "\u0301ab", " \u0301", "A\u0301B",
    "a\u180Eb", "a\u180E b", "\u180E", "\u00A0\u00A0x", "x\u3000\u3000", "a\u2028b", "!!\n\n", "!!\r\n/x",
    "a/\n", "\u4E2D\u6587abc", "\u3072\u3089\u304C\u306A\u30AB\u30BF\u30AB\u30CA", "\uD55C\uAD6D\uC5B4 \uD55C",
    "\uFF08\u4E2D\uFF09\uFF01", "\u2018x\u201F", "\u3000\u3001\u3002\u3003", "\u0663\u0664\u0665\u0666",
    "\uFF11\uFF12\uFF13\uFF14", "\u2166\u2167", "(a|b)", "a...b", "x\u2026y", "\u0915\u0964\u0916",
    "a\u060C b\u06D4", "\u212A\u212Aelvin", "\u017Fs", "it'\u017Fs", "IT'\u017F", "'\u017F", "'", "''s", "'''", "\n\n\n\n\n\n\n\n\n\n",
    " " * 40 + "x", "a" * 300, "Ab" * 150, "1" * 100, "\U0001F468\u200D\U0001F469\u200D\U0001F467 x",
]


# --- The comparison --------------------------------------------------------------------------------

def oracle_split(compiled, text):
    """Hugging Face's Sequence of Split(pattern, Isolated): matches and gaps, no empty pieces."""
    pieces = [text]
    for pattern in compiled:
        out = []
        for piece in pieces:
            start = 0
            for m in pattern.finditer(piece):
                if m.start() == m.end():
                    continue  # an empty match splits nothing
                if m.start() > start:
                    out.append(piece[start:m.start()])
                out.append(m.group())
                start = m.end()
            if start < len(piece):
                out.append(piece[start:])
        pieces = out
    return pieces


def run_dump(tool, name, inputs):
    blob = b"".join(text.encode("utf-8") + b"\0" for text in inputs)
    proc = subprocess.run([tool, name], input=blob, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} {name} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    records = proc.stdout.split(b"\0")
    if len(records) != len(inputs) + 1 or records[-1] != b"":
        raise RuntimeError(f"{tool} {name}: {len(records) - 1} results for {len(inputs)} inputs")
    return [[piece.decode("utf-8") for piece in record.split(b"\x01")[:-1]] for record in records[:-1]]


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        print(__doc__)
        return 2
    tool = args[0]
    count, seed = 3000, 20240531
    for i in range(1, len(args), 2):
        if args[i] == "--count":
            count = int(args[i + 1])
        elif args[i] == "--seed":
            seed = int(args[i + 1])
        else:
            print(f"pre_tokenizer_oracle: unknown option {args[i]}")
            return 2

    started = time.monotonic()
    listed = subprocess.run([tool, "--list"], stdout=subprocess.PIPE, check=True, text=True).stdout.split()
    unknown = [name for name in listed if name not in NAMES]
    if unknown:
        print(f"pre_tokenizer_oracle: no original regexes for {', '.join(unknown)}: add them to RECIPES / NAMES")
        return 1
    if len(listed) < 50:
        print(f"pre_tokenizer_oracle: the tool lists only {len(listed)} names")
        return 1

    unstable = drop_unstable_characters()
    if unstable:
        print("pre_tokenizer_oracle: note: `regex` and unicodedata disagree on the category of "
              f"{', '.join(f'U+{ord(c):04X}' for c in sorted(unstable))}: left out of the inputs")
    rng = random.Random(seed)
    inputs = FIXED_INPUTS + [random_input(rng) for _ in range(count)]
    compiled = {recipe: [regex.compile(p) for p in patterns] for recipe, patterns in RECIPES.items()}
    expected = {}
    for recipe in sorted({NAMES[name] for name in listed}):
        expected[recipe] = [oracle_split(compiled[recipe], text) for text in inputs]

    failures = 0
    for name in listed:
        recipe = NAMES[name]
        got = run_dump(tool, name, inputs)
        shown = 0
        for text, want, have in zip(inputs, expected[recipe], got):
            if want != have:
                failures += 1
                if shown < 5:
                    shown += 1
                    print(f"MISMATCH {name} (recipe {recipe}) on {text!r}\n  oracle: {want!r}\n  ember:  {have!r}")
        for known_recipe, text, pieces in KNOWN_DIFFERENCES:
            if known_recipe != recipe:
                continue
            have = run_dump(tool, name, [text])[0]
            want = oracle_split(compiled[recipe], text)
            if have != pieces or want == pieces:
                failures += 1
                print(f"KNOWN DIFFERENCE CHANGED {name} on {text!r}\n  oracle: {want!r}\n  ember:  {have!r}\n"
                      f"  documented ember: {pieces!r}")

    elapsed = time.monotonic() - started
    print(f"pre_tokenizer_oracle: {len(listed)} names, {len(expected)} recipes, {len(inputs)} inputs each, "
          f"{failures} mismatches, {elapsed:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
