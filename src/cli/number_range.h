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
      const auto out_of_range = [&] { return fmt::format("{} is not in the range {} to {}", input, min, max); };
      char* stop = nullptr;
      errno = 0;
      if constexpr (std::is_integral_v<T>) {
        // As CLI11 reads the value it stores: strtoll / strtoull in base 0 ("+4", "0x10", "010" = 8).
        using Wide = std::conditional_t<std::is_signed_v<T>, long long, unsigned long long>;
        Wide parsed = 0;
        if constexpr (std::is_signed_v<T>) {
          parsed = std::strtoll(input.c_str(), &stop, 0);
        } else {
          parsed = std::strtoull(input.c_str(), &stop, 0);
        }
        if (input.empty() || stop != input.c_str() + input.size()) {
          return fmt::format("'{}' is not a whole number", input);
        }
        // (strtoull takes "-1" as 2^64 - 1: the sign is refused instead)
        const size_t first = input.find_first_not_of(" \t\n\v\f\r");
        const bool negative_unsigned = std::is_unsigned_v<T> && parsed != 0 && input[first] == '-';
        if (errno == ERANGE || negative_unsigned || parsed < static_cast<Wide>(min) ||
            parsed > static_cast<Wide>(max)) {
          return out_of_range();
        }
      } else {
        const double parsed = std::strtod(input.c_str(), &stop);
        if (input.empty() || stop != input.c_str() + input.size()) return fmt::format("'{}' is not a number", input);
        if (!(parsed >= min && parsed <= max)) return out_of_range();  // NaN too
      }
      return {};
    };
  }
};

}  // namespace ember::cli
