// Options that take one of a few words, validated by CLI11 and shown in --help as "a|b|c".
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace ember::cli {

// Restricts `option` to `words` (with ignore_case any case, rewritten to the listed spelling) and
// names its value "a|b|c" in --help; CLI11's IsMember alone would show the value's type followed by
// ":{a,b,c}". A wrong word is a usage error that lists the words.
inline CLI::Option* one_of(CLI::Option* option, const std::vector<std::string>& words, bool ignore_case = false) {
  std::string names;
  for (const std::string& w : words) names += (names.empty() ? "" : "|") + w;
  if (ignore_case) {  // a transform: check() would validate without storing the listed spelling
    return option->transform(CLI::IsMember(words, CLI::ignore_case).description(""))->type_name(names);
  }
  return option->check(CLI::IsMember(words).description(""))->type_name(names);
}

}  // namespace ember::cli
