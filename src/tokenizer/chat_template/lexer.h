// The chat-template lexer: Jinja2's token stream for a template, with the whitespace rules Hugging
// Face sets (trim_blocks, lstrip_blocks), '-' / '+' whitespace control, comments and raw blocks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ember::jinja {

enum class Tok : uint8_t {
  kData,
  kVariableBegin,
  kVariableEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInteger,
  kFloat,
  kOperator,
  kEof,
};

enum class Op : uint8_t {
  kNone,
  kAdd,
  kSub,
  kDiv,
  kFloorDiv,
  kMul,
  kMod,
  kPow,
  kTilde,
  kLBracket,
  kRBracket,
  kLParen,
  kRParen,
  kLBrace,
  kRBrace,
  kEq,
  kNe,
  kGt,
  kGe,
  kLt,
  kLe,
  kAssign,
  kDot,
  kColon,
  kPipe,
  kComma,
  kSemicolon,
};

struct Token {
  Tok type = Tok::kEof;
  Op op = Op::kNone;
  uint32_t pos = 0;  // byte offset in the normalized source
  std::string text;  // data, name, or the decoded string literal
  int64_t integer = 0;
  double floating = 0;
};

// Jinja2's own preprocessing: \r\n and \r become \n and one trailing newline is dropped
// (keep_trailing_newline=False).
std::string normalize_source(std::string_view source);

// Tokens of a normalized source, ending with kEof. Throws Failure(kSyntax) with the position.
std::vector<Token> tokenize(std::string_view source);

// "'+'", "end of print statement", ... : how Jinja2 names a token in its messages.
std::string describe_token(const Token& token);

}  // namespace ember::jinja
