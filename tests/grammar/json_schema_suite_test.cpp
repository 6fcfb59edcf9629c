// The JSON Schema converter against the official JSON-Schema-Test-Suite (Debian's
// json-schema-test-suite: drafts 4, 6 and 7, their optional tests and formats). Every instance the
// suite calls invalid must be rejected by the grammar of every schema we convert (no exception).
// Where we deviate, on purpose, the deviation is listed in tests/data/json_schema_suite_expected.txt
// with its reason: schemas we refuse, and valid instances our grammars do not generate (we
// generate one canonical form: properties in schema order, integers without a fraction, ...).
// A deviation that is not listed, or a listed one that no longer happens, fails the test.
// EMBER_UPDATE_SUITE_EXPECTATIONS=1 rewrites the list, keeping known reasons ("?" for new ones).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ember/error.h"
#include "grammar/compiled_grammar.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"

namespace ember::grammar {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

fs::path suite_dir() {
  const char* env = std::getenv("EMBER_JSON_SCHEMA_SUITE");
  return env != nullptr ? fs::path(env) : fs::path("/usr/share/json-schema-test-suite/tests");
}

fs::path expectations_path() {
  return fs::path(EMBER_SOURCE_DIR) / "tests" / "data" / "json_schema_suite_expected.txt";
}

// The suite's files we run, relative to the suite directory, sorted.
std::vector<std::string> suite_files(const fs::path& dir) {
  std::vector<std::string> files;
  for (const char* draft : {"draft4", "draft6", "draft7"}) {
    if (!fs::exists(dir / draft)) continue;
    for (const auto& e : fs::recursive_directory_iterator(dir / draft)) {
      if (e.is_regular_file() && e.path().extension() == ".json") {
        files.push_back(fs::relative(e.path(), dir).generic_string());
      }
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// "KEY: reason" lines; '#' starts a comment line.
std::map<std::string, std::string> read_expectations(const fs::path& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t colon = line.rfind(" :: ");
    if (colon == std::string::npos) {
      ADD_FAILURE() << path << ": no ' :: reason' in: " << line;
      continue;
    }
    out[line.substr(0, colon)] = line.substr(colon + 4);
  }
  return out;
}

TEST(JsonSchemaSuite, InvalidInstancesRejectedAndDeviationsListed) {
  const fs::path dir = suite_dir();
  if (!fs::exists(dir / "draft7")) {
    GTEST_SKIP() << "the JSON-Schema-Test-Suite is not installed (" << dir
                 << "): scripts/install-deps.sh installs json-schema-test-suite";
  }
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.emplace_back(1, static_cast<char>(b));
  const VocabTrie bytes(pieces);

  std::set<std::string> observed;  // deviation keys
  int groups = 0, converted = 0, instances = 0, invalid_rejected = 0;
  for (const std::string& file : suite_files(dir)) {
    std::ifstream in(dir / file);
    const Json doc = Json::parse(in);
    for (const Json& group : doc) {
      ++groups;
      const std::string group_key = file + " | " + group.at("description").get<std::string>();
      std::shared_ptr<const CompiledGrammar> grammar;
      try {
        grammar = CompiledGrammar::compile(json_schema_grammar(group.at("schema")));
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << group_key << ": " << e.what();
        EXPECT_TRUE(std::string_view(e.what()).starts_with("schema")) << "no pointer: " << e.what();
        observed.insert("refused " + group_key);
        continue;
      }
      ++converted;
      for (const Json& test : group.at("tests")) {
        ++instances;
        const std::string text = test.at("data").dump();
        GrammarMatcher m(grammar, bytes, {});
        const bool accepted = m.accept_bytes(text) && m.can_end();
        const bool valid = test.at("valid").get<bool>();
        const std::string key = group_key + " | " + test.at("description").get<std::string>();
        EXPECT_FALSE(accepted && !valid) << "an invalid instance is accepted: " << key << ": " << text;
        invalid_rejected += !valid && !accepted ? 1 : 0;
        if (valid && !accepted) observed.insert("not generated " + key);
      }
    }
  }

  std::map<std::string, std::string> expected = read_expectations(expectations_path());
  if (const char* update = std::getenv("EMBER_UPDATE_SUITE_EXPECTATIONS"); update != nullptr && *update == '1') {
    std::ofstream out(expectations_path());
    out << "# JSON-Schema-Test-Suite deviations (tests/grammar/json_schema_suite_test.cpp): KEY :: reason\n";
    for (const std::string& key : observed) {
      const auto it = expected.find(key);
      out << key << " :: " << (it != expected.end() ? it->second : "?") << "\n";
    }
    GTEST_SKIP() << "rewrote " << expectations_path() << ": give every '?' its reason";
  }
  for (const std::string& key : observed) {
    const auto it = expected.find(key);
    if (it == expected.end()) {
      ADD_FAILURE() << "a deviation from the suite that is not listed in " << expectations_path().filename() << ": "
                    << key;
    } else {
      EXPECT_NE(it->second, "?") << "no reason given for: " << key;
    }
  }
  for (const auto& [key, reason] : expected) {
    EXPECT_TRUE(observed.contains(key)) << "listed in " << expectations_path().filename()
                                        << " but no longer happens (remove it): " << key;
  }
  // The run covered the suite: most of it converts, and many invalid instances were rejected.
  EXPECT_GT(groups, 300);
  EXPECT_GT(converted, groups / 2 - 30);
  EXPECT_GT(invalid_rejected, 200);
  std::cout << "JSON-Schema-Test-Suite: " << groups << " schemas, " << converted << " converted, " << instances
            << " instances, " << invalid_rejected << " invalid ones rejected, " << observed.size()
            << " listed deviations\n";
}

}  // namespace
}  // namespace ember::grammar
