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
#include "support/test_data.h"

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

// The suite's instances must be matched as written: parsed into doubles, a 53-digit integer
// would come back in exponent form. This SAX builder keeps every non-integer number's text, as a
// marker string that instance_text() turns back into the number.
constexpr std::string_view kRawNumber = "\x01number:";

class RawNumberSax : public nlohmann::json_sax<Json> {
 public:
  Json root;

  bool null() override { return put(nullptr); }
  bool boolean(bool v) override { return put(v); }
  bool number_integer(number_integer_t v) override { return put(v); }
  bool number_unsigned(number_unsigned_t v) override { return put(v); }
  bool number_float(number_float_t, const string_t& text) override { return put(std::string(kRawNumber) + text); }
  bool string(string_t& v) override { return put(v); }
  bool binary(binary_t&) override { return false; }
  bool start_object(std::size_t) override { return open(Json::object()); }
  bool key(string_t& k) override {
    key_ = k;
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(Json::array()); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  Json* place(Json v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    Json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    parent[key_] = std::move(v);
    return &parent[key_];
  }
  bool put(Json v) {
    place(std::move(v));
    return true;
  }
  bool open(Json v) {
    stack_.push_back(place(std::move(v)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }
  std::vector<Json*> stack_;
  std::string key_;
};

// Compact JSON text of an instance from RawNumberSax, numbers as the suite wrote them.
std::string instance_text(const Json& data) {
  std::string text = data.dump();
  const std::string marker = "\"\\u0001number:";
  for (size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at)) {
    const size_t end = text.find('"', at + marker.size());
    text.replace(at, end + 1 - at, text.substr(at + marker.size(), end - at - marker.size()));
  }
  return text;
}

// `base`, or "base #n" for its n-th use among `seen` (the suite repeats some descriptions).
std::string unique_key(const std::string& base, std::map<std::string, int>& seen) {
  const int n = ++seen[base];
  return n == 1 ? base : base + " #" + std::to_string(n);
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
    // CI sets EMBER_REQUIRE_SHARED_DATA=1: there a missing suite is a failure, not a skip.
    if (test::shared_data_required()) FAIL() << "the JSON-Schema-Test-Suite is not installed (" << dir << ")";
    GTEST_SKIP() << "the JSON-Schema-Test-Suite is not installed (" << dir
                 << "): scripts/install-deps.sh installs json-schema-test-suite";
  }
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.emplace_back(1, static_cast<char>(b));
  const VocabTrie bytes(pieces);

  std::map<std::string, std::string> observed;  // deviation key -> reason (a refusal's message)
  int groups = 0, converted = 0, instances = 0, invalid_rejected = 0;
  for (const std::string& file : suite_files(dir)) {
    const std::string source = test::read_file(dir / file);
    const Json doc = Json::parse(source);
    RawNumberSax raw;
    ASSERT_TRUE(Json::sax_parse(source, &raw)) << file;
    std::map<std::string, int> group_names;
    for (size_t g = 0; g < doc.size(); ++g) {
      const Json& group = doc[g];
      ++groups;
      const std::string group_key = unique_key(file + " | " + group.at("description").get<std::string>(), group_names);
      std::shared_ptr<const CompiledGrammar> grammar;
      try {
        grammar = CompiledGrammar::compile(json_schema_grammar(group.at("schema")));
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << group_key << ": " << e.what();
        EXPECT_TRUE(std::string_view(e.what()).starts_with("schema")) << "no pointer: " << e.what();
        observed["refused " + group_key] = e.what();
        continue;
      }
      ++converted;
      std::map<std::string, int> test_names;
      for (size_t t = 0; t < group.at("tests").size(); ++t) {
        const Json& test = group["tests"][t];
        ++instances;
        const std::string text = instance_text(raw.root[g]["tests"][t]["data"]);
        GrammarMatcher m(grammar, bytes, {});
        const bool accepted = m.accept_bytes(text) && m.can_end();
        const bool valid = test.at("valid").get<bool>();
        const std::string key = unique_key(group_key + " | " + test.at("description").get<std::string>(), test_names);
        EXPECT_FALSE(accepted && !valid) << "an invalid instance is accepted: " << key << ": " << text;
        invalid_rejected += !valid && !accepted ? 1 : 0;
        if (valid && !accepted) observed["not generated " + key] = "?";
      }
    }
  }

  std::map<std::string, std::string> expected = read_expectations(expectations_path());
  if (const char* update = std::getenv("EMBER_UPDATE_SUITE_EXPECTATIONS"); update != nullptr && *update == '1') {
    std::ofstream out(expectations_path());
    out << "# JSON-Schema-Test-Suite deviations (tests/grammar/json_schema_suite_test.cpp): KEY :: reason\n"
           "# A refused schema's reason is the converter's message; a valid instance we do not generate\n"
           "# names the restriction (docs/structured-output.md) that keeps it out.\n";
    for (const auto& [key, reason] : observed) {
      const auto it = expected.find(key);
      out << key << " :: " << (reason == "?" && it != expected.end() ? it->second : reason) << "\n";
    }
    GTEST_SKIP() << "rewrote " << expectations_path() << ": give every '?' its reason";
  }
  for (const auto& [key, reason] : observed) {
    const auto it = expected.find(key);
    if (it == expected.end()) {
      ADD_FAILURE() << "a deviation from the suite that is not listed in " << expectations_path().filename() << ": "
                    << key << " :: " << reason;
    } else if (reason == "?") {
      EXPECT_NE(it->second, "?") << "no reason given for: " << key;
    } else {
      EXPECT_EQ(it->second, reason) << "the schema is refused for another reason now: " << key;
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
