// jinja::Program: a parsed chat template (syntax tree, interned names, line table); immutable, so
// one Program renders on any number of threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/chat_template/ast.h"

namespace ember::jinja {

struct Program {
  std::string source;  // normalized (lexer.h)
  ast::Body body;
  std::vector<std::string> names;  // every identifier, by id
  std::unordered_map<std::string, uint32_t> name_ids;
  std::vector<int> global_ids;        // by name id: the global function of that name (builtins.h) or -1
  std::vector<uint32_t> line_starts;  // byte offset of each line
  uint32_t loop_id = 0;

  // 1-based line and column (in characters) of a byte offset.
  uint32_t line_of(uint32_t pos) const;
  uint32_t column_of(uint32_t pos) const;
};

// Lexes and parses a template. Throws Failure(kSyntax) with the offending position for anything
// Jinja2 would reject when compiling it (and for what ember does not support, e.g. {% include %}).
std::unique_ptr<Program> parse_program(std::string_view source);

}  // namespace ember::jinja
