#!/usr/bin/env bash
# test-tsan.sh — build the addon with ThreadSanitizer (cmake-js, into
# build-tsan/), run the C++ unit tests (both engines over real sockets) and
# the smoke test under it, then the mocha conformance suite on every native
# engine against that build. Any ThreadSanitizer report fails the run.
#
# Node itself is not instrumented, so libtsan is preloaded into node (it has
# to come first in the process). Only node gets it: sh, bash and coreutils
# crash with libtsan preloaded, so mocha is started as `node .../mocha.js`
# (not npx, which goes through a shell). native/test/tsan.supp silences
# reports that lie wholly inside Node/V8/libuv, which TSan cannot see
# synchronize; each entry says why, and none names echocast code.
# If this kernel's mmap randomization is too wide for libtsan ("unexpected
# memory mapping"), the node runs go through `setarch <arch> -R` (ASLR off).
#   usage: scripts/native/test-tsan.sh [mocha args...]   (default: the
#          conformance suite, dist-test/conformance/*.test.js; build it first
#          with `npm run build && npm run build:test`)
#   env:   ECHOCAST_TEST_ENGINES (default: native-threads,native-poll)
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=build-tsan
# configure, then build: `cmake-js build` alone keeps an existing cache, and
# build-tsan/ may hold a plain-CMake configuration without the cmake-js paths.
npx cmake-js configure -d native -O "$OUT" --CDECHOCAST_SANITIZE=thread >/dev/null
npx cmake-js build -d native -O "$OUT" --CDECHOCAST_SANITIZE=thread
ADDON="$PWD/$OUT/Release/echocast.node"
LIBTSAN="$(${CXX:-g++} -print-file-name=libtsan.so)"
if [ ! -e "$LIBTSAN" ]; then
  echo "test-tsan: libtsan.so not found (got '$LIBTSAN')" >&2
  exit 1
fi
SUPP="$PWD/native/test/tsan.supp"
# halt_on_error=0: print every report, then exit 66 at the end (any report
# fails the run). history_size: keep enough to show the earlier access.
export TSAN_OPTIONS="halt_on_error=0:exitcode=66:second_deadlock_stack=1:history_size=4:suppressions=$SUPP${TSAN_EXTRA_OPTIONS:+:$TSAN_EXTRA_OPTIONS}"

echo "== C++ unit tests (ThreadSanitizer)"
"./$OUT/echocast_unit_tests"

# node with libtsan preloaded; with ASLR off only if it is needed here.
RUN=(env LD_PRELOAD="$LIBTSAN" node)
probe="$(env LD_PRELOAD="$LIBTSAN" node -e 0 2>&1 || true)"
if [[ "$probe" == *"unexpected memory mapping"* ]]; then
  echo "== libtsan cannot map its shadow memory with ASLR on: running node under setarch -R"
  RUN=(setarch "$(uname -m)" -R "${RUN[@]}")
fi

export ECHOCAST_ADDON="$ADDON"
# Tests that cannot hold under a sanitizer runtime read this (test/conformance/descriptors.test.ts).
export ECHOCAST_SANITIZER=thread
export ECHOCAST_TEST_ENGINES="${ECHOCAST_TEST_ENGINES:-native-threads,native-poll}"

echo "== smoke test against $ADDON"
"${RUN[@]}" native/test/smoke.js "$ADDON"

if [ $# -eq 0 ]; then
  if ! ls dist-test/conformance/*.test.js >/dev/null 2>&1; then
    echo "test-tsan: dist-test/conformance is missing; run npm run build && npm run build:test" >&2
    exit 1
  fi
  # --no-config: .mocharc.json's spec would add every other suite.
  set -- --no-config --timeout 60000 --slow 5000 --reporter spec dist-test/conformance/*.test.js
fi
echo "== mocha ($ECHOCAST_TEST_ENGINES) against $ADDON, ThreadSanitizer"
"${RUN[@]}" node_modules/mocha/bin/mocha.js "$@"
