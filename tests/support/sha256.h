// SHA-256 (FIPS 180-4) for comparing tensor bytes with the digests in ../shared/data.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace ember::test {

// Lower-case hex digest of `data`.
std::string sha256_hex(std::span<const std::byte> data);

}  // namespace ember::test
