// PreTokenizer: every supported name compiles and its pieces cover the text exactly; the splits
// that tell the pre-tokenizers apart (digits, case changes, contractions, newlines, CJK).
#include "tokenizer/pre_tokenizer.h"

#include <gtest/gtest.h>

#include <sstream>

#include "ember/error.h"

namespace ember {
namespace {

std::vector<std::string> split(std::string_view pre, std::string_view text) {
  const PreTokenizer pre_tokenizer(pre);
  std::vector<std::string_view> pieces;
  pre_tokenizer.split(text, pieces);
  return {pieces.begin(), pieces.end()};
}

std::vector<std::string> supported_names() {
  std::vector<std::string> names;
  std::stringstream list(supported_pre_tokenizers());
  for (std::string name; std::getline(list, name, ',');) names.push_back(name.substr(name.front() == ' ' ? 1 : 0));
  return names;
}

TEST(PreTokenizer, EverySupportedNameCoversTheText) {
  const std::string text =
      "Hello WORLD, it's 1234567 o'clock!\n\n  HTTPServer\tdon'T \xE4\xB8\xAD\xE6\x96\x87 \xD9\x85\xD8\xB1 "
      "\xF0\x9F\xA6\x99...   end  ";
  const std::vector<std::string> names = supported_names();
  ASSERT_GT(names.size(), 50u);  // every name in the table
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(pre_tokenizer_traits(name).has_value());
    std::string joined;
    for (const std::string& piece : split(name, text)) {
      EXPECT_FALSE(piece.empty());
      joined += piece;
    }
    EXPECT_EQ(joined, text);
  }
}

TEST(PreTokenizer, UnknownNamesAreAnErrorListingTheSupportedOnes) {
  EXPECT_FALSE(pre_tokenizer_traits("no-such-pre").has_value());
  try {
    PreTokenizer unknown("no-such-pre");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("llama-bpe"), std::string::npos) << e.what();
  }
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, DigitsAreGroupedAsEachModelDoes) {
  EXPECT_EQ(split("llama-bpe", "1234567"), (Pieces{"123", "456", "7"}));
  EXPECT_EQ(split("gpt-4o", "1234567"), (Pieces{"123", "456", "7"}));
  EXPECT_EQ(split("qwen2", "1234"), (Pieces{"1", "2", "3", "4"}));
  EXPECT_EQ(split("starcoder", "x 1234"), (Pieces{"x", " ", "1", "2", "3", "4"}));
  EXPECT_EQ(split("gpt-2", "x 1234"), (Pieces{"x", " 1234"}));
}

TEST(PreTokenizer, CaseChangesSplitWordsForTekkenAndGpt4o) {
  EXPECT_EQ(split("tekken", "HelloWorld"), (Pieces{"Hello", "World"}));
  EXPECT_EQ(split("gpt-4o", "HTTPServer"), (Pieces{"HTTPServer"}));  // upper run then one Title word
  EXPECT_EQ(split("llama-bpe", "HelloWorld"), (Pieces{"HelloWorld"}));
}

TEST(PreTokenizer, ContractionsAndNewlines) {
  // GPT-2 matches contractions in lower case only; Llama 3 in either; GPT-4o keeps them on the word.
  EXPECT_EQ(split("gpt-2", "it's IT'S"), (Pieces{"it", "'s", " IT", "'", "S"}));
  EXPECT_EQ(split("llama-bpe", "it's IT'S"), (Pieces{"it", "'s", " IT", "'S"}));
  EXPECT_EQ(split("gpt-4o", "it's"), (Pieces{"it's"}));
  // Llama 3 keeps newline runs apart from the next word; the last space goes with the word.
  EXPECT_EQ(split("llama-bpe", "a\n\n  b"), (Pieces{"a", "\n\n", " ", " b"}));
  // Case-insensitive contractions fold U+017F (long s) to "s", as Hugging Face does.
  EXPECT_EQ(split("llama-bpe", "it'\xC5\xBFs"), (Pieces{"it", "'\xC5\xBF", "s"}));
  EXPECT_EQ(split("gpt-4o", "IT'\xC5\xBF"), (Pieces{"IT'\xC5\xBF"}));
}

TEST(PreTokenizer, WhiteSpaceIsUnicodesNotPcre2s) {
  // U+180E (Mongolian vowel separator) left White_Space in Unicode 6.3; PCRE2's \s still matches
  // it. As a non-space it joins the apostrophe, and "s" is no contraction.
  EXPECT_EQ(split("gpt-2", "\xE1\xA0\x8E's"), (Pieces{"\xE1\xA0\x8E'", "s"}));
  EXPECT_EQ(split("llama-bpe", "\xE1\xA0\x8E's"), (Pieces{"\xE1\xA0\x8E'", "s"}));
  // Real Unicode spaces still are spaces: U+3000 before a word is that word's leading character.
  EXPECT_EQ(split("llama-bpe",
                  "a\xE3\x80\x80\xE3\x80\x80"
                  "b"),
            (Pieces{"a", "\xE3\x80\x80",
                    "\xE3\x80\x80"
                    "b"}));
}

TEST(PreTokenizer, DeepseekSplitsCjkFromLatin) {
  // Letters first match as one run, then the CJK regex splits that piece again.
  EXPECT_EQ(split("deepseek-coder", "ab\xE4\xB8\xAD\xE6\x96\x87"), (Pieces{"ab", "\xE4\xB8\xAD\xE6\x96\x87"}));
  EXPECT_EQ(split("deepseek-llm", "ab\xE4\xB8\xAD\xE6\x96\x87"), (Pieces{"ab", "\xE4\xB8\xAD\xE6\x96\x87"}));
}

}  // namespace
}  // namespace ember
