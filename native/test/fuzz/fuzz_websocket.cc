// fuzz_websocket.cc — libFuzzer target for native/core/websocket: the
// Decoder in both roles (whole and in chunks), encode/decode round trips, the
// Handshake and message_to_frames, checked by websocket_check.h (which also
// documents the input format). A violated invariant prints why and aborts,
// so libFuzzer keeps the input as a crash.
//   scripts/native/fuzz.sh [seconds]      builds this with clang and runs it
#include <cstdio>
#include <cstdlib>
#include <string>

#include "websocket_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string violation = websocket_check::check_case(data, size);
  if (!violation.empty()) {
    std::fprintf(stderr, "websocket invariant violated: %s\n", violation.c_str());
    std::abort();
  }
  return 0;
}
