// Small string helpers shared across libraries.
#pragma once

#include <cctype>
#include <string_view>

namespace ember {

// ASCII case-insensitive equality ("Q4_K_M" == "q4_k_m").
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

}  // namespace ember
