// clock.cc (Windows) — GetTickCount64, QueryPerformanceCounter and the
// per-thread CPU clock.
#include "../bench.h"
#include "win32.h"

std::uint64_t ec_now_ms() { return GetTickCount64(); }

std::uint64_t ec_now_micros() {
  static const std::uint64_t freq = [] {
    LARGE_INTEGER f;
    QueryPerformanceFrequency(&f);
    return static_cast<std::uint64_t>(f.QuadPart);
  }();
  LARGE_INTEGER c;
  QueryPerformanceCounter(&c);
  std::uint64_t t = static_cast<std::uint64_t>(c.QuadPart);
  return (t / freq) * 1000000u + (t % freq) * 1000000u / freq;
}

std::uint64_t ec_thread_cpu_micros() {
  FILETIME created, exited, kernel, user;
  if (!GetThreadTimes(GetCurrentThread(), &created, &exited, &kernel, &user)) return 0;
  std::uint64_t k =
      (static_cast<std::uint64_t>(kernel.dwHighDateTime) << 32) | kernel.dwLowDateTime;
  std::uint64_t u = (static_cast<std::uint64_t>(user.dwHighDateTime) << 32) | user.dwLowDateTime;
  return (k + u) / 10u;  // 100 ns units.
}
