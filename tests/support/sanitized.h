// EMBER_TEST_SANITIZED: defined when the test is built with AddressSanitizer (`make test`'s
// sanitize build), where a few tests check smaller inputs than the release build does: the same
// code paths, at the instrumented build's cost.
#pragma once

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMBER_TEST_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(EMBER_TEST_SANITIZED)
#define EMBER_TEST_SANITIZED 1
#endif
