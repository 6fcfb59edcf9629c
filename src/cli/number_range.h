// NumberRange: CLI11's Range with errors that say what is wrong ("'abc' is not a whole number",
// "2000 is not in the range 1 to 1024") and NaN refused.
#pragma once

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <type_traits>

#include <fmt/format.h>

namespace ember::cli {

// CLI11's Range calls any text it cannot convert "not in range" ("Value 1e3 not in range 0 to
// 1073741824" for a count that is in range but not an integer) and lets NaN through. The --help
// text is Range's ("INT in [0 - 1024]").
class NumberRange : public CLI::Validator {
 public:
  template <class T>
  NumberRange(T min, T max) : CLI::Validator(fmt::format("{} in [{} - {}]", CLI::detail::type_name<T>(), min, max)) {
    func_ = [min, max](std::string& input) -> std::string {
      const char* const begin = input.data();
      const char* const end = begin + input.size();
      T value{};
      if constexpr (std::is_integral_v<T>) {
        // As CLI11 reads the value it stores: strtoll / strtoull in base 0 ("+4", "0x10", "010" = 8).
        char* stop = nullptr;
        errno = 0;
        const size_t sign = input.find_first_not_of(" \t\n\v\f\r");
        const bool negative = sign != std::string::npos && input[sign] == '-';
        if constexpr (std::is_signed_v<T>) {
          const long long parsed = input.empty() ? 0 : std::strtoll(begin, &stop, 0);
          if (input.empty() || stop != end) return fmt::format("'{}' is not a whole number", input);
          if (errno == ERANGE || parsed < static_cast<long long>(min) || parsed > static_cast<long long>(max)) {
            return fmt::format("{} is not in the range {} to {}", input, min, max);
          }
          value = static_cast<T>(parsed);
        } else {
          const unsigned long long parsed = input.empty() ? 0 : std::strtoull(begin, &stop, 0);
          if (input.empty() || stop != end) return fmt::format("'{}' is not a whole number", input);
          // (strtoull takes "-1" as 2^64 - 1: the sign is refused instead)
          if (errno == ERANGE || (negative && parsed != 0) || parsed < static_cast<unsigned long long>(min) ||
              parsed > static_cast<unsigned long long>(max)) {
            return fmt::format("{} is not in the range {} to {}", input, min, max);
          }
          value = static_cast<T>(parsed);
        }
      } else {
        char* stop = nullptr;
        const double parsed = input.empty() ? 0.0 : std::strtod(begin, &stop);
        if (input.empty() || stop != end) return fmt::format("'{}' is not a number", input);
        value = static_cast<T>(parsed);
      }
      if (!(value >= min && value <= max)) return fmt::format("{} is not in the range {} to {}", input, min, max);
      return {};
    };
  }
};

}  // namespace ember::cli
