// fuzz_harness.h — what the libFuzzer targets (fuzz_framer.cc,
// fuzz_websocket.cc) share: run one input through a target's checks and, on
// a violated invariant, print why and abort, so libFuzzer keeps the input as
// a crash. Each target's checks live in its own *_check.h (which the unit
// tests replay); this header owns only the entry's behaviour
// (docs/architecture.md).
#ifndef ECHOCAST_TEST_FUZZ_HARNESS_H
#define ECHOCAST_TEST_FUZZ_HARNESS_H

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace fuzz_harness {

// A target's checks: "" or what went wrong.
using Check = std::string (*)(const std::uint8_t* data, std::size_t size);

// Runs `check` on one input; aborts with "<what> invariant violated: ..." on
// a failure. Returns 0 (libFuzzer's "keep going").
inline int run(Check check, const char* what, const std::uint8_t* data, std::size_t size) {
  std::string violation = check(data, size);
  if (!violation.empty()) {
    std::fprintf(stderr, "%s invariant violated: %s\n", what, violation.c_str());
    std::abort();
  }
  return 0;
}

}  // namespace fuzz_harness

#endif  // ECHOCAST_TEST_FUZZ_HARNESS_H
