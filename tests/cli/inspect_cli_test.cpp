// End-to-end tests of the `ember` binary: usage, `inspect` text and JSON (checked against the independent
// Python parser tests/tools/gguf_dump.py and quant/*.expected.json), split models and broken files.

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <future>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <regex>
#include <sstream>

#include "cli/cli_run.h"
#include "gguf/gguf_split.h"
#include "gguf/gguf_writer.h"
#include "support/sanitized.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using test::ember;
using test::lines_of;
using test::read_file;  // support/test_data.h
using test::run;
using test::RunResult;

RunResult oracle(const std::string& path) {
  return run({"python3", std::string(EMBER_SOURCE_DIR) + "/tests/tools/gguf_dump.py", path});
}

json parse_json(const RunResult& r, const std::string& what) {
  EXPECT_EQ(r.exit_code, 0) << what << ": " << r.err;
  json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << what << ": output is not valid JSON";
  return j;
}

// The rest of the first line whose content starts with `label` and column spacing (spaces squeezed).
std::optional<std::string> field(const std::string& text, const std::string& label) {
  for (const std::string& line : lines_of(text)) {
    const size_t start = line.find_first_not_of(' ');
    if (start == std::string::npos || line.compare(start, label.size(), label) != 0) continue;
    const std::string rest = line.substr(start + label.size());
    if (rest.size() < 2 || rest.compare(0, 2, "  ") != 0) continue;
    // Column padding is not part of the value: runs of spaces become one.
    return std::regex_replace(rest.substr(rest.find_first_not_of(' ')), std::regex(" {2,}"), " ");
  }
  return std::nullopt;
}

void expect_fields(const std::string& text, const std::vector<std::pair<std::string, std::string>>& expected) {
  for (const auto& [label, value] : expected) EXPECT_EQ(field(text, label), value) << label;
}

bool has_line(const std::string& text, const std::string& pattern) {
  const std::regex re(pattern);
  for (const std::string& line : lines_of(text)) {
    if (std::regex_match(line, re)) return true;
  }
  return false;
}

std::string regex_escape(const std::string& s) {
  return std::regex_replace(s, std::regex(R"([.\[\]()*+?^$|{}\\])"), R"(\$&)");
}

// Exact for integers, strings and booleans; floats within 1e-6 relative (ember prints float32 in shortest form).
void expect_same_value(const json& a, const json& b, const std::string& where) {
  if (a == b) return;
  if (a.is_array() && b.is_array() && a.size() == b.size()) {
    for (size_t i = 0; i < a.size(); ++i) expect_same_value(a[i], b[i], where + "[" + std::to_string(i) + "]");
    return;
  }
  if (a.is_number() && b.is_number() && (a.is_number_float() || b.is_number_float())) {
    const double x = a.get<double>(), y = b.get<double>();
    EXPECT_LE(std::fabs(x - y), 1e-6 * std::max(std::fabs(x), std::fabs(y))) << where << ": " << x << " vs " << y;
    return;
  }
  ADD_FAILURE() << where << ": ember " << a.dump().substr(0, 200) << " vs oracle " << b.dump().substr(0, 200);
}

// Compares `ember inspect --json` with gguf_dump.py field by field.
void expect_matches_oracle(const json& e, const json& o, const std::string& file) {
  SCOPED_TRACE(file);
  ASSERT_TRUE(e.is_object() && o.is_object());
  EXPECT_EQ(json({e["version"], e["alignment"], e["file_size"]}), json({o["version"], o["alignment"], o["file_size"]}));
  // Vocab-only files may end before the aligned data offset; it only matters when there are tensors.
  if (!o["tensors"].empty()) {
    EXPECT_EQ(e["files"][0]["data_offset"], o["data_offset"]);
  }
  ASSERT_EQ(e["metadata"].size(), o["metadata"].size());
  for (size_t i = 0; i < o["metadata"].size(); ++i) {
    const json& em = e["metadata"][i];
    const json& om = o["metadata"][i];
    EXPECT_EQ(json({em["key"], em["type"], em.value("element_type", json()), em.value("count", json())}),
              json({om["key"], om["type"], om.value("element_type", json()), om.value("count", json())}));
    expect_same_value(em["value"], om["value"], om["key"].get<std::string>());
  }
  ASSERT_EQ(e["tensors"].size(), o["tensors"].size());
  uint64_t n_parameters = 0;
  for (size_t i = 0; i < o["tensors"].size(); ++i) {
    const json& et = e["tensors"][i];
    const json& ot = o["tensors"][i];
    const std::vector<uint64_t> shape = ot["shape"];
    const uint64_t n = std::accumulate(shape.begin(), shape.end(), uint64_t{1}, std::multiplies<>());
    n_parameters += n;
    EXPECT_EQ(json({et["name"], et["type_id"], et["shape"], et["offset"], et["n_elements"]}),
              json({ot["name"], ot["type_id"], ot["shape"], ot["offset"], n}));
  }
  EXPECT_EQ(e["totals"]["n_tensors"], o["tensors"].size());
  EXPECT_EQ(e["totals"]["n_parameters"], n_parameters);
}

void expect_one_error_line(const RunResult& r, const std::string& path) {
  SCOPED_TRACE(path);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(r.err.starts_with("ember: error: ") && r.err.ends_with('\n') && std::ranges::count(r.err, '\n') == 1)
      << r.err;
  EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
}

TEST(EmberCli, UsageAndExitCodes) {
  const RunResult version = ember({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out, "ember " EMBER_VERSION_STRING "\n");
  const RunResult help = ember({"--help"}), inspect_help = ember({"inspect", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_EQ(inspect_help.exit_code, 0);
  for (const char* word : {"Usage", "inspect", "--version"}) EXPECT_NE(help.out.find(word), std::string::npos) << word;
  for (const char* word : {"FILE", "--json", "--all"})
    EXPECT_NE(inspect_help.out.find(word), std::string::npos) << word;
  // Bad usage: one "ember: error:" line on stderr, exit code 2, nothing on stdout.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {}, {"frobnicate"}, {"--bogus"}, {"inspect"}, {"inspect", "--bogus", "x.gguf"}, {"inspect", "a", "b"}}) {
    const RunResult r = ember(args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(args);
    EXPECT_EQ(r.out, "") << ::testing::PrintToString(args);
    EXPECT_TRUE(r.err.starts_with("ember: error: ")) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    // The help to read: the subcommand's when one was named.
    const bool sub = !args.empty() && args[0] == "inspect";
    EXPECT_TRUE(r.err.ends_with(sub ? "(run 'ember inspect --help')\n" : "(run 'ember --help')\n") ||
                r.err.find("unknown command") != std::string::npos)
        << r.err;
  }
  EXPECT_NE(
      ember({"frobnicate"})
          .err.find("unknown command 'frobnicate' (commands: bench, chat, inspect, perplexity, quantize, run, serve, "
                    "synth, template, tokenize)"),
      std::string::npos);
}

TEST(EmberCli, InspectStories260KText) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string path = (data / "models/stories260K/stories260K.gguf").string();
  const RunResult r = ember({"inspect", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const std::string& out = r.out;
  // Facts from ../shared/data/README.md; the sep id is llama.cpp's "none" (-1 stored as uint32).
  expect_fields(out, {{"architecture", "llama"},
                      {"GGUF version", "3"},
                      {"llama.block_count", "5"},
                      {"llama.embedding_length", "64"},
                      {"llama.attention.head_count", "8"},
                      {"llama.attention.head_count_kv", "4"},
                      {"llama.feed_forward_length", "172"},
                      {"vocab size", "512"},
                      {"model", "llama"},
                      {"bos token", "1 \"<s>\""},
                      {"eos token", "2 \"</s>\""},
                      {"sep token", "4294967295 <out of range>"}});
  EXPECT_TRUE(has_line(out, R"(\s+llama\.block_count\s+uint32\s+5)"));
  EXPECT_TRUE(
      has_line(out, R"(\s+tokenizer\.ggml\.tokens\s+array\[string\]\s+\["<unk>", "<s>", .*, \.\.\. \(512 items\)\])"));

  // Every tensor row (index, name, type, shape, bytes, absolute offset) as the oracle reads the file;
  // 5 layers x 9 tensors + token_embd, output_norm, output, shaped by dim 64, hidden 172, vocab 512.
  const json o = parse_json(oracle(path), "oracle");
  ASSERT_EQ(o["tensors"].size(), 5u * 9 + 3);
  uint64_t n_parameters = 0;
  for (size_t i = 0; i < o["tensors"].size(); ++i) {
    const json& t = o["tensors"][i];
    std::vector<int64_t> shape = t["shape"];
    const uint64_t n = std::accumulate(shape.begin(), shape.end(), uint64_t{1}, std::multiplies<>());
    n_parameters += n;
    EXPECT_TRUE(has_line(
        out, fmt::format(R"(\s*{}\s+{}\s+f32\s+\[{}\]\s+{}\s+{})", i, regex_escape(t["name"].get<std::string>()),
                         fmt::join(shape, ", "), n * 4, t["offset"].get<uint64_t>())))
        << t["name"];
  }
  EXPECT_TRUE(has_line(out, R"(\s*\d+\s+token_embd\.weight\s+f32\s+\[64, 512\]\s+131072\s+\d+)"));
  EXPECT_TRUE(has_line(out, R"(\s*\d+\s+blk\.4\.ffn_down\.weight\s+f32\s+\[172, 64\]\s+44032\s+\d+)"));
  EXPECT_EQ(field(out, "tensors"), "48");
  EXPECT_EQ(field(out, "parameters"), "292.80K (" + std::to_string(n_parameters) + ")");

  // --all prints every token; nothing is shortened.
  const RunResult all = ember({"inspect", "--all", path});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(all.out.find("items)"), std::string::npos);
  EXPECT_GT(all.out.size(), out.size() + 512 * 4);
}

// Every GGUF file in ../shared/data against the independent Python parser (runs in parallel).
TEST(EmberCli, InspectJsonMatchesPythonOracleOnAllFiles) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  std::vector<fs::path> files = test::gguf_files_under(data);
  ASSERT_GE(files.size(), 40u);
#ifdef EMBER_TEST_SANITIZED
  // Under AddressSanitizer at -O0, parsing multi-megabyte JSON costs seconds per vocabulary. The big
  // BPE vocabularies take the same code paths as the small ones; the release build checks them all.
  std::erase_if(
      files, [](const fs::path& f) { return fs::file_size(f) > 1'200'000 && f.parent_path().filename() == "vocab"; });
  std::cout << "[   NOTE   ] sanitizer build: vocab files over 1.2 MB skipped, " << files.size() << " files checked\n";
#endif
  const size_t batch = std::max(2u, std::thread::hardware_concurrency() / 2);
  for (size_t begin = 0; begin < files.size(); begin += batch) {
    std::vector<std::pair<std::future<RunResult>, std::future<RunResult>>> runs;
    for (size_t i = begin; i < std::min(files.size(), begin + batch); ++i) {
      const std::string path = files[i].string();
      auto inspect = [path] { return ember({"inspect", "--json", path}); };
      runs.emplace_back(std::async(std::launch::async, inspect), std::async(std::launch::async, oracle, path));
    }
    for (size_t i = 0; i < runs.size(); ++i) {
      const std::string name = files[begin + i].filename().string();
      const json e = parse_json(runs[i].first.get(), "ember " + name);
      const json o = parse_json(runs[i].second.get(), "gguf_dump.py " + name);
      expect_matches_oracle(e, o, name);
    }
  }
}

TEST(EmberCli, InspectJsonMatchesQuantExpectedTensors) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  int checked = 0;
  for (const fs::path& gguf : test::gguf_files_under(data / "quant")) {
    const fs::path expected_path = gguf.string() + ".expected.json";
    if (!fs::exists(expected_path)) continue;
    SCOPED_TRACE(gguf.filename().string());
    const json expected = json::parse(read_file(expected_path));
    const json e = parse_json(ember({"inspect", "--json", gguf.string()}), gguf.string());
    EXPECT_EQ(e["file_size"], expected["file_size"]);
    EXPECT_EQ(e["totals"]["n_parameters"], expected["n_elements"]);
    EXPECT_EQ(e["file_type"]["name"], "MOSTLY_" + expected["quantize"]["ftype"].get<std::string>());
    ASSERT_EQ(e["tensors"].size(), expected["tensors"].size());
    for (size_t i = 0; i < expected["tensors"].size(); ++i) {
      const json& x = expected["tensors"][i];
      const json& t = e["tensors"][i];
      EXPECT_EQ(json({t["name"], t["type"], t["type_id"], t["shape"], t["offset"], t["n_bytes"]}),
                json({x["name"], x["type"], x["type_id"], x["shape"], x["gguf_data_offset"], x["raw_nbytes"]}));
    }
    ++checked;
  }
  EXPECT_EQ(checked, 36);
}

TEST(EmberCli, InspectSplitModelListsAllParts) {
  const fs::path dir = test::temp_dir("cli_split");
  const std::string prefix = (dir / "model").string();
  const std::vector<std::vector<std::string>> parts = {
      {"token_embd.weight", "blk.0.attn_q.weight"}, {"blk.0.ffn_up.weight"}, {"blk.1.attn_q.weight", "output.weight"}};
  for (int i = 0; i < 3; ++i) {
    GgufWriter w;
    w.add<uint16_t>(kSplitNoKey, static_cast<uint16_t>(i));
    w.add<uint16_t>(kSplitCountKey, 3);
    w.add<int32_t>(kSplitTensorsCountKey, 5);
    if (i == 0) w.add_string("general.architecture", "llama");
    for (size_t t = 0; t < parts[i].size(); ++t) {
      const std::vector<float> values(32 * (t + i + 1), 0.5f);
      const std::vector<int64_t> shape = {32, static_cast<int64_t>(t + i + 1)};
      w.add_tensor(parts[i][t], DType::kF32, shape, std::as_bytes(std::span<const float>(values)));
    }
    w.write_file(gguf_split_path(prefix, i, 3));
  }

  // Any part opens the whole model; offsets are absolute within each part (checked by the oracle).
  const json e = parse_json(ember({"inspect", "--json", gguf_split_path(prefix, 2, 3)}), "split");
  ASSERT_EQ(e["files"].size(), 3u);
  ASSERT_EQ(e["tensors"].size(), 5u);
  size_t k = 0;
  for (int i = 0; i < 3; ++i) {
    const json o = parse_json(oracle(gguf_split_path(prefix, i, 3)), "oracle part " + std::to_string(i));
    EXPECT_EQ(e["files"][i]["path"], gguf_split_path(prefix, i, 3));
    for (const json& ot : o["tensors"]) {
      const json& t = e["tensors"][k++];
      EXPECT_EQ(json({t["name"], t["shape"], t["offset"], t["file_index"]}),
                json({ot["name"], ot["shape"], ot["offset"], i}));
    }
  }
  EXPECT_EQ(k, 5u);

  const RunResult text = ember({"inspect", gguf_split_path(prefix, 0, 3)});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(has_line(text.out, R"(\s+#\s+name\s+type\s+shape\s+bytes\s+offset\s+part)")) << text.out;
  for (int i = 0; i < 3; ++i) {
    for (const std::string& name : parts[i]) {
      EXPECT_TRUE(has_line(text.out, fmt::format(R"(\s*\d+\s+{}\s+f32\s+.*\s{})", regex_escape(name), i))) << name;
    }
  }

  fs::remove(gguf_split_path(prefix, 1, 3));  // a missing part is an error naming that part
  expect_one_error_line(ember({"inspect", gguf_split_path(prefix, 0, 3)}), gguf_split_path(prefix, 1, 3));
}

// The summary shows the multipliers and caps that change an architecture's math (Granite's, Gemma's).
TEST(EmberCli, InspectShowsArchitectureMultipliers) {
  const fs::path path = test::temp_dir("cli_multipliers") / "granite.gguf";
  GgufWriter w;
  w.add_string("general.architecture", "granite");
  w.add<uint32_t>("granite.block_count", 40);
  w.add<float>("granite.embedding_scale", 12.0f);
  w.add<float>("granite.attention.scale", 0.0078125f);
  w.add<float>("granite.residual_scale", 0.22f);
  w.add<float>("granite.logit_scale", 16.0f);
  w.add<float>("granite.final_logit_softcapping", 30.0f);
  w.write_file(path.string());
  const RunResult r = ember({"inspect", path.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_fields(r.out, {{"granite.block_count", "40"},
                        {"granite.embedding_scale", "12"},
                        {"granite.attention.scale", "0.0078125"},
                        {"granite.residual_scale", "0.22"},
                        {"granite.logit_scale", "16"},
                        {"granite.final_logit_softcapping", "30"}});
}

TEST(EmberCli, InspectBrokenFilesFailWithOneLine) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const fs::path dir = test::temp_dir("cli_broken");
  const std::string original = read_file(data / "models/stories260K/stories260K.gguf");
  const auto write = [&](const std::string& name, const std::string& bytes) {
    const fs::path p = dir / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  };
  std::vector<std::string> paths = {(dir / "missing.gguf").string(), dir.string(), write("empty.gguf", ""),
                                    write("bad-magic.gguf", "GGUX" + original.substr(4))};
  // Cuts inside the header, the metadata, the tensor infos and the tensor data.
  for (size_t cut : {3ul, 8ul, 23ul, 100ul, 5000ul, 14176ul, original.size() / 2, original.size() - 1}) {
    paths.push_back(write(fmt::format("truncated-{}.gguf", cut), original.substr(0, cut)));
  }
  for (const std::string& path : paths) {
    expect_one_error_line(ember({"inspect", path}), path);
    expect_one_error_line(ember({"inspect", "--json", path}), path);
  }
  // The message's own quotes stay quotes; a control character in a path is still escaped.
  EXPECT_NE(ember({"inspect", paths[3]}).err.find("expected \"GGUF\")"), std::string::npos);
  const std::string odd = write("line\nbreak\\.gguf", "GGUX");
  const RunResult r = ember({"inspect", odd});
  EXPECT_EQ(std::ranges::count(r.err, '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("line\\nbreak\\.gguf"), std::string::npos) << r.err;
}

// Hostile but valid metadata: out-of-range and non-integer token ids, control characters, NaN/Inf, nesting.
TEST(EmberCli, InspectEscapesAndBoundsChecksMetadata) {
  const fs::path dir = test::temp_dir("cli_hostile");
  const std::string path = (dir / "hostile.gguf").string();
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string_array("tokenizer.ggml.tokens", std::vector<std::string>{"a", "b\n", "c"});
  w.add<uint32_t>("tokenizer.ggml.bos_token_id", 1);
  w.add<uint32_t>("tokenizer.ggml.eos_token_id", 3);
  w.add<int32_t>("tokenizer.ggml.padding_token_id", -1);
  w.add<uint64_t>("tokenizer.ggml.eot_token_id", std::numeric_limits<uint64_t>::max());
  w.add_string("tokenizer.ggml.unknown_token_id", "zero");
  w.add_string("tokenizer.chat_template", "{{ x }}\n\t\x01" + std::string(290, 'y'));
  w.add<float>("test.nan", std::numeric_limits<float>::quiet_NaN());
  w.add<double>("test.inf", std::numeric_limits<double>::infinity());
  w.add<float>("test.neg_inf", -std::numeric_limits<float>::infinity());
  w.add_string("test.key\nwith newline", "del\x7f");
  const std::vector<int32_t> inner = {1, 2};
  const std::vector<GgufArrayValue> nested = {GgufArrayValue::of<int32_t>(inner),
                                              GgufArrayValue::of_strings(std::vector<std::string>{"x"})};
  w.add_array("test.nested", GgufArrayValue::of_arrays(nested));
  w.add_array<uint8_t>("test.long", std::vector<uint8_t>(100, 7));
  w.write_file(path);
  const size_t n_keys = 15;

  const RunResult r = ember({"inspect", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_fields(r.out, {{"bos token", "1 \"b\\n\""},
                        {"eos token", "3 <out of range>"},
                        {"pad token", "-1 <out of range>"},
                        {"eot token", "18446744073709551615 <out of range>"},
                        {"unk token", "\"zero\" <out of range>"},
                        {"chat template", "yes (300 bytes)"},
                        {"test.nan", "float32 nan"},
                        {"test.inf", "float64 inf"},
                        {"test.neg_inf", "float32 -inf"},
                        {"test.key\\nwith newline", "string \"del\\x7f\""},
                        {"test.nested", "array[array] [[1, 2], [\"x\"]]"},
                        {"test.long", "array[uint8] [7, 7, 7, 7, 7, 7, 7, 7, ... (100 items)]"}});
  EXPECT_TRUE(has_line(r.out, R"(\s+tokenizer\.chat_template\s+string\s+"\{\{ x \}\}\\n\\t\\x01y+"… \(300 bytes\))"));
  // One line per key, and no control character but '\n' anywhere.
  const std::vector<std::string> lines = lines_of(r.out);
  const auto header = std::find(lines.begin(), lines.end(), "== metadata (" + std::to_string(n_keys) + " keys) ==");
  ASSERT_NE(header, lines.end()) << r.out;
  EXPECT_EQ(std::find(header, lines.end(), "") - header - 1, static_cast<ptrdiff_t>(n_keys));
  EXPECT_TRUE(std::none_of(r.out.begin(), r.out.end(), [](char c) { return c != '\n' && (c >= 0 && c < 0x20); }));

  const RunResult all = ember({"inspect", "--all", path});
  EXPECT_NE(all.out.find("\"{{ x }}\\n\\t\\x01" + std::string(290, 'y') + "\""), std::string::npos);
  EXPECT_EQ(all.out.find("items)"), std::string::npos);

  const json e = parse_json(ember({"inspect", "--json", path}), "ember");
  expect_matches_oracle(e, parse_json(oracle(path), "oracle"), path);
  const json& special = e["tokenizer"]["special_tokens"];
  EXPECT_EQ(special["bos"]["text"], "b\n");
  for (const char* role : {"eos", "pad", "eot", "unk"}) EXPECT_TRUE(special[role]["text"].is_null()) << role;
  EXPECT_EQ(e["metadata"][9]["value"], "NaN");
  EXPECT_EQ(e["metadata"][10]["value"], "Infinity");
  EXPECT_EQ(e["metadata"][11]["value"], "-Infinity");
}

}  // namespace
}  // namespace ember
