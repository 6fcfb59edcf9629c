// NumberRange: CLI11's Range with errors that say what is wrong ("'abc' is not a whole number",
// "2000 is not in the range 1 to 1024") and NaN refused.
#pragma once

#include <CLI/CLI.hpp>

#include <charconv>
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
        const auto [stop, error] = std::from_chars(begin, end, value);
        const bool negative_for_unsigned = std::is_unsigned_v<T> && !input.empty() && input[0] == '-';
        if (error == std::errc::result_out_of_range || negative_for_unsigned) {
          return fmt::format("{} is not in the range {} to {}", input, min, max);
        }
        if (error != std::errc() || stop != end) return fmt::format("'{}' is not a whole number", input);
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
