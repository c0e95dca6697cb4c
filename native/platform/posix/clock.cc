// clock.cc (POSIX) — monotonic clocks and the per-thread CPU clock.
#include <time.h>

#include "../bench.h"
#include "posix.h"

namespace {

std::uint64_t micros(clockid_t clock) {
  timespec ts;
  if (clock_gettime(clock, &ts) != 0) return 0;
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace

namespace ec_internal {

timespec timespec_from_us(std::int64_t us) {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(us / 1000000);
  ts.tv_nsec = static_cast<long>((us % 1000000) * 1000);
  return ts;
}

}  // namespace ec_internal

std::uint64_t ec_now_ms() { return micros(CLOCK_MONOTONIC) / 1000u; }

std::uint64_t ec_now_micros() { return micros(CLOCK_MONOTONIC); }

std::uint64_t ec_thread_cpu_micros() { return micros(CLOCK_THREAD_CPUTIME_ID); }
