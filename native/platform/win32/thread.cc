// thread.cc (Windows) — _beginthreadex threads with reserved small stacks,
// CRITICAL_SECTION and CONDITION_VARIABLE.
#include <process.h>

#include "win32.h"

using namespace ec_internal;

static_assert(FitsOpaqueStorage<CRITICAL_SECTION, CONDITION_VARIABLE, HANDLE>::value,
              "Windows types in the opaque storage");

namespace {

unsigned __stdcall thread_main(void* start) {
  run_thread_start(start);
  return 0;
}

CRITICAL_SECTION* native(ec_mutex_t* m) { return reinterpret_cast<CRITICAL_SECTION*>(m->storage); }
CONDITION_VARIABLE* native(ec_cond_t* c) {
  return reinterpret_cast<CONDITION_VARIABLE*>(c->storage);
}

}  // namespace

ec_error ec_thread_create(ec_thread_t* t, ec_thread_fn fn, void* arg, std::size_t stack_bytes) {
  ThreadStart* start = new_thread_start(fn, arg);
  if (start == nullptr) return make_error(EC_ENOMEM);
  // _beginthreadex (not CreateThread) so the C runtime is set up for the
  // thread; the stack size is a reservation, committed as it is used.
  std::uintptr_t h = _beginthreadex(nullptr, static_cast<unsigned>(stack_bytes), thread_main, start,
                                    STACK_SIZE_PARAM_IS_A_RESERVATION, nullptr);
  if (h == 0) {
    delete start;
    return last_windows_error();
  }
  t->handle = h;
  return ec_error();
}

void ec_thread_join(ec_thread_t* t) {
  HANDLE h = reinterpret_cast<HANDLE>(t->handle);
  WaitForSingleObject(h, INFINITE);
  CloseHandle(h);
  t->handle = 0;
}

void ec_mutex_init(ec_mutex_t* m) { InitializeCriticalSection(native(m)); }
void ec_mutex_destroy(ec_mutex_t* m) { DeleteCriticalSection(native(m)); }
void ec_mutex_lock(ec_mutex_t* m) { EnterCriticalSection(native(m)); }
void ec_mutex_unlock(ec_mutex_t* m) { LeaveCriticalSection(native(m)); }

void ec_cond_init(ec_cond_t* c) { InitializeConditionVariable(native(c)); }
void ec_cond_destroy(ec_cond_t*) {}  // CONDITION_VARIABLE needs no cleanup.

void ec_cond_wait(ec_cond_t* c, ec_mutex_t* m) {
  SleepConditionVariableCS(native(c), native(m), INFINITE);
}

bool ec_cond_timed_wait(ec_cond_t* c, ec_mutex_t* m, std::uint64_t timeout_ms) {
  DWORD ms = timeout_ms >= 0xFFFFFFFEu ? 0xFFFFFFFEu : static_cast<DWORD>(timeout_ms);
  return SleepConditionVariableCS(native(c), native(m), ms) != 0;
}

bool ec_cond_timed_wait_us(ec_cond_t* c, ec_mutex_t* m, std::uint64_t timeout_us) {
  return ec_cond_timed_wait(c, m, (timeout_us + 999) / 1000);
}

// The system timer ticks every 15.6 ms unless a process asks for more.
bool ec_cond_fine_waits() { return false; }

void ec_cond_signal(ec_cond_t* c) { WakeConditionVariable(native(c)); }
void ec_cond_broadcast(ec_cond_t* c) { WakeAllConditionVariable(native(c)); }
