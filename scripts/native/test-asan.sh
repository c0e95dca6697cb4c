#!/usr/bin/env bash
# test-asan.sh — build the addon with AddressSanitizer + UndefinedBehaviorSanitizer
# (cmake-js, into build-asan/), run the C++ unit tests and the smoke test under
# it, then the mocha suite against that build.
#
# Node itself is not instrumented, so libasan must be preloaded (it has to
# come first in the process), and leak detection is off for node (node
# leaks at exit on purpose); the C++ unit tests run with leak detection on.
# UBSan findings are fatal (-fno-sanitize-recover=all).
#   usage: scripts/native/test-asan.sh [extra mocha args...]
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=build-asan
npx cmake-js build -d native -O "$OUT" --CDECHOCAST_SANITIZE=address,undefined
ADDON="$PWD/$OUT/Release/echocast.node"
LIBASAN="$(${CXX:-g++} -print-file-name=libasan.so)"
if [ ! -e "$LIBASAN" ]; then
  echo "test-asan: libasan.so not found (got '$LIBASAN')" >&2
  exit 1
fi

echo "== C++ unit tests (ASan+UBSan, leak detection on)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "./$OUT/echocast_unit_tests"

export ECHOCAST_ADDON="$ADDON"
# Tests that cannot hold under a sanitizer runtime read this (test/conformance/descriptors.test.ts).
export ECHOCAST_SANITIZER=address
export LD_PRELOAD="$LIBASAN"
# A small quarantine: ASan's default (256 MiB of freed memory held back to
# catch use-after-free) would swamp the suite's server-memory assertions.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:quarantine_size_mb=8:thread_local_quarantine_size_kb=64"
# Only the addon is instrumented, so by default only its engine is tested.
export ECHOCAST_TEST_ENGINES="${ECHOCAST_TEST_ENGINES:-native-threads}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

echo "== smoke test against $ADDON"
node native/test/smoke.js "$ADDON"

echo "== mocha ($ECHOCAST_TEST_ENGINES) against $ADDON"
npx mocha "$@"
