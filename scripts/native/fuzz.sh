#!/usr/bin/env bash
# fuzz.sh — build the libFuzzer targets with clang
# (-fsanitize=fuzzer,address,undefined, into build-fuzz/), replay their
# committed regressions and seed corpora, then fuzz each for a bounded time:
#   fuzz_framer     native/core/framer     seeds test/fuzz/corpus/
#   fuzz_websocket  native/core/ws/        seeds test/fuzz/corpus-websocket/
# The time budget is shared: the framer gets the first half (rounded up),
# the websocket target the rest, so the whole run takes [seconds].
#
# Each fuzzer works on a temporary copy of its seeds, so the committed seeds
# are never bloated; the inputs it finds are thrown away. A crash (an
# invariant of native/test/fuzz/framer_check.h or websocket_check.h broken,
# or an ASan/UBSan finding) is kept in build-fuzz/artifacts/ and the script
# exits non-zero. Fix the code, then copy the crash file into
# native/test/fuzz/regressions/ (framer) or corpus-websocket/ (websocket);
# the C++ unit tests replay those folders.
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
mkdir -p "$OUT/artifacts"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/echocast-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# fuzz_target NAME SECONDS SEEDS DICT REGRESSIONS SOURCES...: build, replay
# REGRESSIONS (a folder, or - for none) and SEEDS, then fuzz.
fuzz_target() {
  local name="$1" budget="$2" seeds="$3" dict="$4" regressions="$5"
  shift 5
  local bin="$OUT/$name"
  echo "== build $bin with $("$CXX_FUZZ" --version | head -1)"
  "$CXX_FUZZ" -std=c++17 -g -O1 -Wall -Wextra -Werror \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
    -o "$bin" "$@"

  # Replay first: every regression and seed must pass before new inputs count.
  local replay=() f
  for f in "$regressions"/* "$seeds"/*; do
    [ -f "$f" ] && replay+=("$f")
  done
  echo "== $name: replay ${#replay[@]} regression and seed files"
  "$bin" "${replay[@]}" >"$OUT/$name.replay.log" 2>&1 || { cat "$OUT/$name.replay.log"; exit 1; }

  if [ "$budget" -eq 0 ]; then
    echo "== $name: no time left in the budget, not fuzzed"
    return 0
  fi
  local work="$WORK/$name"
  mkdir -p "$work"
  cp "$seeds"/* "$work"/
  echo "== $name: fuzz for ${budget} s (working corpus $work, seeds copied from $seeds)"
  local rc
  set +e
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$budget" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -dict="$dict" -artifact_prefix="$OUT/artifacts/$name-" -print_final_stats=1 \
    ${FUZZ_ARGS:-} "$work" >"$OUT/$name.log" 2>&1
  rc=$?
  set -e
  # The last status line (execs, coverage, corpus) and the final stats.
  grep -E '^#[0-9]+' "$OUT/$name.log" | tail -1 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$OUT/$name.log" || true
  if [ "$rc" -ne 0 ]; then
    echo "== fuzz.sh: $name failed (exit $rc); log $OUT/$name.log, inputs in $OUT/artifacts/:" >&2
    grep -E 'ERROR|invariant violated|SUMMARY|Test unit written' "$OUT/$name.log" >&2 || tail -30 "$OUT/$name.log" >&2
    ls -l "$OUT/artifacts/" >&2
    exit 1
  fi
  echo "== $name: no crash in ${budget} s ($(ls "$work" | wc -l) inputs in the working corpus, discarded)"
}

FRAMER_SECONDS=$(( (SECONDS_BUDGET + 1) / 2 ))
WEBSOCKET_SECONDS=$(( SECONDS_BUDGET - FRAMER_SECONDS ))

fuzz_target fuzz_framer "$FRAMER_SECONDS" "$FUZZ_DIR/corpus" "$FUZZ_DIR/framer.dict" "$FUZZ_DIR/regressions" \
  "$FUZZ_DIR/fuzz_framer.cc" native/core/framer.cc
fuzz_target fuzz_websocket "$WEBSOCKET_SECONDS" "$FUZZ_DIR/corpus-websocket" "$FUZZ_DIR/websocket.dict" - \
  "$FUZZ_DIR/fuzz_websocket.cc" native/core/ws/*.cc native/core/access.cc \
  native/core/framer.cc
echo "== fuzz.sh: no crash in ${SECONDS_BUDGET} s (framer ${FRAMER_SECONDS} s, websocket ${WEBSOCKET_SECONDS} s)"
