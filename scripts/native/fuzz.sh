#!/usr/bin/env bash
# fuzz.sh — build the libFuzzer target for native/core/framer with clang
# (-fsanitize=fuzzer,address,undefined, into build-fuzz/), replay the
# committed regressions and seed corpus, then fuzz for a bounded time.
#
# The fuzzer works on a temporary copy of native/test/fuzz/corpus/, so the
# committed seeds are never bloated; the inputs it finds are thrown away.
# A crash (an invariant of native/test/fuzz/framer_check.h broken, or an
# ASan/UBSan finding) is kept in build-fuzz/artifacts/ and the script exits
# non-zero. Fix the framer, then copy the crash file into
# native/test/fuzz/regressions/ (the C++ unit tests replay that folder).
#   needs: apt-get install clang libclang-rt-14-dev   (Debian 12's clang)
#   usage: scripts/native/fuzz.sh [seconds]           (default 60)
#   env:   CLANGXX (default: clang++, else clang++-NN), FUZZ_ARGS (extra
#          libFuzzer flags)
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_BUDGET="${1:-60}"
case "$SECONDS_BUDGET" in
  ''|*[!0-9]*) echo "fuzz.sh: seconds must be a whole number (got '$SECONDS_BUDGET')" >&2; exit 2 ;;
esac

CXX_FUZZ="${CLANGXX:-}"
if [ -z "$CXX_FUZZ" ]; then
  for c in clang++ clang++-19 clang++-16 clang++-15 clang++-14; do
    if command -v "$c" >/dev/null; then CXX_FUZZ="$c"; break; fi
  done
fi
if [ -z "$CXX_FUZZ" ]; then
  echo "fuzz.sh: no clang++ (apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi

FUZZ_DIR=native/test/fuzz
OUT=build-fuzz
BIN="$OUT/fuzz_framer"
mkdir -p "$OUT/artifacts"

echo "== build $BIN with $("$CXX_FUZZ" --version | head -1)"
"$CXX_FUZZ" -std=c++17 -g -O1 -Wall -Wextra -Werror \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
  -o "$BIN" "$FUZZ_DIR/fuzz_framer.cc" native/core/framer.cc

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Replay first: every regression and seed must pass before new inputs count.
replay=()
for f in "$FUZZ_DIR"/regressions/* "$FUZZ_DIR"/corpus/*; do
  [ -f "$f" ] && replay+=("$f")
done
echo "== replay ${#replay[@]} regression and seed files"
"$BIN" "${replay[@]}" >"$OUT/replay.log" 2>&1 || { cat "$OUT/replay.log"; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/echocast-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cp "$FUZZ_DIR"/corpus/* "$WORK"/

echo "== fuzz for ${SECONDS_BUDGET} s (working corpus $WORK, seeds copied from $FUZZ_DIR/corpus)"
set +e
# shellcheck disable=SC2086
"$BIN" -max_total_time="$SECONDS_BUDGET" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -dict="$FUZZ_DIR/framer.dict" -artifact_prefix="$OUT/artifacts/" -print_final_stats=1 \
  ${FUZZ_ARGS:-} "$WORK" >"$OUT/fuzz.log" 2>&1
rc=$?
set -e
# The last status line (execs, coverage, corpus) and the final stats.
grep -E '^#[0-9]+' "$OUT/fuzz.log" | tail -1 || true
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$OUT/fuzz.log" || true
if [ "$rc" -ne 0 ]; then
  echo "== fuzz.sh: the fuzzer failed (exit $rc); log $OUT/fuzz.log, inputs in $OUT/artifacts/:" >&2
  grep -E 'ERROR|invariant violated|SUMMARY|Test unit written' "$OUT/fuzz.log" >&2 || tail -30 "$OUT/fuzz.log" >&2
  ls -l "$OUT/artifacts/" >&2
  exit 1
fi
echo "== fuzz.sh: no crash in ${SECONDS_BUDGET} s ($(ls "$WORK" | wc -l) inputs in the working corpus, discarded)"
