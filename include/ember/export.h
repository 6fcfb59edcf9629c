// EMBER_API: marks what libember.so exports; the library builds with hidden visibility, so
// nothing else (no internal class, no template instance) is part of its ABI.
#pragma once

#if defined(_WIN32)
#define EMBER_API
#else
#define EMBER_API __attribute__((visibility("default")))
#endif
