// GPT-2's byte-level alphabet: byte-level BPE vocabularies spell every byte as one printable
// character (bytes that are printable Latin-1 stand for themselves; the others map to U+0100 and
// up, in byte order), so token texts are valid UTF-8 whatever bytes they hold.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ember::byte_level {

// The stand-in character of a byte, as UTF-8.
std::string_view char_of(uint8_t byte) noexcept;

// Appends the stand-in spelling of `bytes`.
void encode(std::string_view bytes, std::string& out);

// Appends the bytes a byte-level token text stands for. Returns false (appending nothing) when the
// text holds a character outside the alphabet (a text that was never byte-level, e.g. an added
// token); the caller then uses the text as it is.
bool decode(std::string_view text, std::string& out);

}  // namespace ember::byte_level
