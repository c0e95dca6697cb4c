// fuzz_framer.cc — libFuzzer target for native/core/framer: all three
// framings, any max_frame_bytes, any chunking, a connection reset, checked
// against the reference splitter in framer_check.h (which also documents the
// input format). A violated invariant prints why and aborts, so libFuzzer
// keeps the input as a crash.
//   scripts/native/fuzz.sh [seconds]      builds this with clang and runs it
#include <cstdio>
#include <cstdlib>
#include <string>

#include "framer_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string violation = framer_check::check_case(data, size);
  if (!violation.empty()) {
    std::fprintf(stderr, "framer invariant violated: %s\n", violation.c_str());
    std::abort();
  }
  return 0;
}
