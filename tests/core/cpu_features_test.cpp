// Tests for CpuFeatures: flags and counts cross-checked against /proc, predicates, to_string.
#include "core/cpu_features.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ember {
namespace {

// Our own mapping (independent of cpu_features.cpp) from each flag to its /proc/cpuinfo name.
struct FlagSpec {
  bool CpuFeatures::*member;
  const char* name;
};

constexpr FlagSpec kFlags[] = {
    {&CpuFeatures::sse42, "sse4_2"},
    {&CpuFeatures::avx, "avx"},
    {&CpuFeatures::avx2, "avx2"},
    {&CpuFeatures::fma, "fma"},
    {&CpuFeatures::f16c, "f16c"},
    {&CpuFeatures::avx512f, "avx512f"},
    {&CpuFeatures::avx512bw, "avx512bw"},
    {&CpuFeatures::avx512vl, "avx512vl"},
    {&CpuFeatures::avx512dq, "avx512dq"},
    {&CpuFeatures::avx512_vnni, "avx512_vnni"},
    {&CpuFeatures::avx512_bf16, "avx512_bf16"},
    {&CpuFeatures::avx_vnni, "avx_vnni"},
    {&CpuFeatures::amx_tile, "amx_tile"},
    {&CpuFeatures::amx_int8, "amx_int8"},
    {&CpuFeatures::amx_bf16, "amx_bf16"},
};

std::string trimmed(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// The lines "key<tabs>: value" of /proc/cpuinfo as (key, value); nullopt when unreadable.
std::optional<std::vector<std::pair<std::string, std::string>>> read_cpuinfo() {
  std::ifstream in("/proc/cpuinfo");
  if (!in) return std::nullopt;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    fields.emplace_back(trimmed(line.substr(0, colon)), trimmed(line.substr(colon + 1)));
  }
  if (fields.empty()) return std::nullopt;
  return fields;
}

// Unused off x86, where cpuinfo has no "flags" line to check.
[[maybe_unused]] std::optional<std::string> first_value(const std::vector<std::pair<std::string, std::string>>& fields,
                                                        const std::string& key) {
  for (const auto& [k, v] : fields) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::set<std::string> split_words(const std::string& s) {
  std::set<std::string> words;
  std::istringstream in(s);
  for (std::string w; in >> w;) words.insert(w);
  return words;
}

// Number of CPUs in a kernel list like "0-3,8"; -1 on a syntax error.
int count_cpu_list(const std::string& list) {
  int count = 0;
  std::istringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    const size_t dash = item.find('-');
    try {
      if (dash == std::string::npos) {
        (void)std::stoi(item);
        count += 1;
      } else {
        count += std::stoi(item.substr(dash + 1)) - std::stoi(item.substr(0, dash)) + 1;
      }
    } catch (const std::exception&) {
      return -1;
    }
  }
  return count;
}

// The flag list between the two " | " separators of to_string().
std::set<std::string> flags_in_string(const std::string& s) {
  const size_t a = s.find(" | ");
  const size_t b = s.rfind(" | ");
  if (a == std::string::npos || b == a) return {};
  return split_words(s.substr(a + 3, b - a - 3));
}

std::set<std::string> set_flag_names(const CpuFeatures& f) {
  std::set<std::string> names;
  for (const FlagSpec& spec : kFlags) {
    if (f.*spec.member) names.insert(spec.name);
  }
  return names;
}

TEST(CpuFeatures, SingletonReturnsSameObjectFromEveryThread) {
  const CpuFeatures* main_ptr = &cpu_features();
  EXPECT_EQ(main_ptr, &cpu_features());
  std::vector<const CpuFeatures*> seen(4, nullptr);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&seen, i] { seen[i] = &cpu_features(); });
  }
  for (auto& t : threads) t.join();
  for (const CpuFeatures* p : seen) {
    EXPECT_EQ(p, main_ptr);
  }
  // Detection is deterministic while the affinity mask and online set do not change.
  EXPECT_EQ(detect_cpu_features(), cpu_features());
}

TEST(CpuFeatures, FlagsMatchProcCpuinfo) {
  const CpuFeatures& f = cpu_features();
#if defined(__x86_64__) || defined(__i386__)
  const auto cpuinfo = read_cpuinfo();
  if (!cpuinfo) GTEST_SKIP() << "/proc/cpuinfo is unreadable; cannot cross-check cpuid flags";
  const auto flags_line = first_value(*cpuinfo, "flags");
  if (!flags_line) GTEST_SKIP() << "/proc/cpuinfo has no 'flags' line; cannot cross-check cpuid flags";
  const std::set<std::string> kernel_flags = split_words(*flags_line);
  for (const FlagSpec& spec : kFlags) {
    const bool detected = f.*spec.member;
    const bool listed = kernel_flags.count(spec.name) == 1;
    EXPECT_EQ(detected, listed) << "flag '" << spec.name << "': cpuid+xgetbv says " << (detected ? "yes" : "no")
                                << ", /proc/cpuinfo says " << (listed ? "yes" : "no")
                                << (detected ? " (or the kernel predates this flag name)" : "");
  }
  if (const auto vendor = first_value(*cpuinfo, "vendor_id")) {
    EXPECT_EQ(f.vendor, *vendor);
  }
  // The brand is not cross-checked byte for byte: virtual machines show the kernel another one than
  // cpuid gives a process (seen: cpuid "Oxide Virtual Turin-like Processor", /proc "AMD EPYC").
  const auto model = first_value(*cpuinfo, "model name");
  if (model && !model->empty()) {
    EXPECT_FALSE(f.brand.empty()) << "/proc/cpuinfo names the CPU '" << *model << "' but cpuid gave no brand";
    if (f.brand != *model) std::printf("note: cpuid brand '%s', /proc/cpuinfo '%s'\n", f.brand.c_str(), model->c_str());
  }
  EXPECT_FALSE(f.vendor.empty());
#else
  for (const FlagSpec& spec : kFlags) {
    EXPECT_FALSE(f.*spec.member) << spec.name << " set off x86";
  }
#endif
}

TEST(CpuFeatures, BrandIsTrimmed) {
  const std::string& brand = cpu_features().brand;
  if (brand.empty()) GTEST_SKIP() << "cpuid brand string unavailable on this CPU";
  EXPECT_NE(brand.front(), ' ');
  EXPECT_NE(brand.back(), ' ');
  EXPECT_EQ(brand.find('\0'), std::string::npos);
}

// Real CPUs (and sane hypervisors) never expose a wider tier without the narrower one.
TEST(CpuFeatures, ImplicationsHold) {
  const CpuFeatures& f = cpu_features();
  if (f.supports_avx2_tier()) {
    EXPECT_TRUE(f.avx);
    EXPECT_TRUE(f.sse42);
  }
  if (f.avx) {
    EXPECT_TRUE(f.sse42);
  }
  if (f.fma || f.f16c || f.avx2) {
    EXPECT_TRUE(f.avx);
  }
  if (f.avx_vnni) {
    EXPECT_TRUE(f.avx2);
  }
  if (f.avx512f) {
    EXPECT_TRUE(f.avx2);
    EXPECT_TRUE(f.supports_avx2_tier());
  }
  for (bool sub : {f.avx512bw, f.avx512vl, f.avx512dq, f.avx512_vnni, f.avx512_bf16}) {
    if (sub) {
      EXPECT_TRUE(f.avx512f);
    }
  }
  if (f.supports_avx512_tier()) {
    EXPECT_TRUE(f.supports_avx2_tier());
  }
  if (f.amx_int8 || f.amx_bf16) {
    EXPECT_TRUE(f.amx_tile);
  }
}

TEST(CpuFeatures, CountsAreInRange) {
  const CpuFeatures& f = cpu_features();
  EXPECT_GE(f.logical_cpus, 1);
  EXPECT_GE(f.physical_cores, 1);
  EXPECT_LE(f.physical_cores, f.logical_cpus);
  EXPECT_GE(f.usable_cpus, 1);
  EXPECT_LE(f.usable_cpus, f.logical_cpus);
}

// Independent sources: cpuinfo's processor entries and (physical id, core id) pairs, and the
// affinity list in /proc/self/status.
TEST(CpuFeatures, CountsMatchProcfs) {
  const CpuFeatures& f = cpu_features();
  const auto cpuinfo = read_cpuinfo();
  if (!cpuinfo) GTEST_SKIP() << "/proc/cpuinfo is unreadable; cannot cross-check CPU counts";
  int processors = 0;
  std::set<std::pair<std::string, std::string>> cores;
  std::string package;
  bool have_core_ids = false;
  for (const auto& [key, value] : *cpuinfo) {
    if (key == "processor") ++processors;
    if (key == "physical id") package = value;
    if (key == "core id") {
      cores.emplace(package, value);
      have_core_ids = true;
    }
  }
  if (processors > 0) {
    EXPECT_EQ(f.logical_cpus, processors) << "online CPUs vs /proc/cpuinfo processor entries";
  }
  if (have_core_ids) {
    EXPECT_EQ(f.physical_cores, static_cast<int>(cores.size())) << "vs /proc/cpuinfo (physical id, core id)";
  }

  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Cpus_allowed_list:", 0) != 0) continue;
    const int allowed = count_cpu_list(trimmed(line.substr(line.find(':') + 1)));
    ASSERT_GT(allowed, 0) << line;
    EXPECT_EQ(f.usable_cpus, allowed) << "vs /proc/self/status " << line;
  }
}

TEST(CpuFeatures, TierPredicatesFollowTheirDefinition) {
  CpuFeatures f;
  EXPECT_FALSE(f.supports_avx2_tier());
  EXPECT_FALSE(f.supports_avx512_tier());

  f.avx = f.avx2 = f.fma = true;
  EXPECT_FALSE(f.supports_avx2_tier()) << "f16c is required";
  f.f16c = true;
  EXPECT_TRUE(f.supports_avx2_tier());

  f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = f.avx512_vnni = f.avx512_bf16 = true;
  EXPECT_TRUE(f.supports_avx512_tier());
  for (bool CpuFeatures::*member : {&CpuFeatures::avx512f, &CpuFeatures::avx512bw, &CpuFeatures::avx512vl,
                                    &CpuFeatures::avx512dq, &CpuFeatures::avx512_vnni, &CpuFeatures::avx512_bf16}) {
    CpuFeatures g = f;
    g.*member = false;
    EXPECT_FALSE(g.supports_avx512_tier());
  }
}

TEST(CpuFeatures, ToStringNamesExactlyTheSetFlags) {
  const CpuFeatures& f = cpu_features();
  const std::string s = f.to_string();
  EXPECT_EQ(s.find('\n'), std::string::npos) << s;
  if (set_flag_names(f).empty()) {
    EXPECT_NE(s.find("no simd flags"), std::string::npos) << s;
  } else {
    EXPECT_EQ(flags_in_string(s), set_flag_names(f)) << s;
  }
  if (!f.vendor.empty()) {
    EXPECT_EQ(s.rfind(f.vendor, 0), 0u) << s;
  }
  if (!f.brand.empty()) {
    EXPECT_NE(s.find(f.brand), std::string::npos) << s;
  }
  const std::string counts = std::to_string(f.logical_cpus) + " logical, " + std::to_string(f.physical_cores) +
                             " physical, " + std::to_string(f.usable_cpus) + " usable";
  EXPECT_NE(s.find(counts), std::string::npos) << s;

  // Each flag alone, and all together, on synthetic values.
  CpuFeatures all;
  all.vendor = "TestVendor";
  all.brand = "Test CPU";
  for (const FlagSpec& spec : kFlags) {
    CpuFeatures one;
    one.vendor = "TestVendor";
    one.*spec.member = true;
    EXPECT_EQ(flags_in_string(one.to_string()), std::set<std::string>{spec.name}) << one.to_string();
    all.*spec.member = true;
  }
  EXPECT_EQ(flags_in_string(all.to_string()), set_flag_names(all)) << all.to_string();
  EXPECT_EQ(set_flag_names(all).size(), std::size(kFlags));
  EXPECT_EQ(all.to_string().rfind("TestVendor Test CPU | ", 0), 0u) << all.to_string();
}

TEST(CpuFeatures, PrintsWhatWasDetected) {
  // Not a check: puts the detection result in the test log for bug reports.
  std::cout << "[ cpu      ] " << cpu_features().to_string() << "\n";
}

}  // namespace
}  // namespace ember
