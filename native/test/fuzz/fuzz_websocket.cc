// fuzz_websocket.cc — libFuzzer target for native/core/ws/: the Decoder in
// both roles (whole and in chunks), encode/decode round trips, the Handshake
// and message_to_frames, checked by websocket_check.h (which also documents
// the input format). A violated invariant prints why and aborts
// (fuzz_harness.h), so libFuzzer keeps the input as a crash.
//   scripts/native/fuzz.sh [seconds]      builds this with clang and runs it
#include "fuzz_harness.h"
#include "websocket_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return fuzz_harness::run(&websocket_check::check_case, "websocket", data, size);
}
