// fuzz_framer.cc — libFuzzer target for native/core/framer: all three
// framings, any max_frame_bytes, any chunking, a connection reset, checked
// against the reference splitter in framer_check.h (which also documents the
// input format). A violated invariant prints why and aborts (fuzz_harness.h),
// so libFuzzer keeps the input as a crash.
//   scripts/native/fuzz.sh [seconds]      builds this with clang and runs it
#include "framer_check.h"
#include "fuzz_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return fuzz_harness::run(&framer_check::check_case, "framer", data, size);
}
