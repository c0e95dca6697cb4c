// thread.cc (POSIX) — threads, mutexes and condition variables over
// pthreads; timed waits measure CLOCK_MONOTONIC where the OS allows it.
#include <limits.h>
#include <pthread.h>
#include <time.h>

#include "posix.h"

using namespace ec_internal;

static_assert(FitsOpaqueStorage<pthread_mutex_t, pthread_cond_t, pthread_t>::value,
              "pthread types in the opaque storage");

namespace {

void* thread_main(void* start) {
  run_thread_start(start);
  return nullptr;
}

pthread_mutex_t* native(ec_mutex_t* m) { return reinterpret_cast<pthread_mutex_t*>(m->storage); }
pthread_cond_t* native(ec_cond_t* c) { return reinterpret_cast<pthread_cond_t*>(c->storage); }

}  // namespace

ec_error ec_thread_create(ec_thread_t* t, ec_thread_fn fn, void* arg, std::size_t stack_bytes) {
  ThreadStart* start = new_thread_start(fn, arg);
  if (start == nullptr) return make_error(EC_ENOMEM);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  if (stack_bytes < static_cast<std::size_t>(PTHREAD_STACK_MIN)) stack_bytes = PTHREAD_STACK_MIN;
  pthread_attr_setstacksize(&attr, stack_bytes);
  pthread_t tid;
  int rc = pthread_create(&tid, &attr, thread_main, start);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    delete start;
    return from_os(rc);
  }
  t->handle = (std::uintptr_t)tid;
  return ec_error();
}

void ec_thread_join(ec_thread_t* t) {
  pthread_join((pthread_t)t->handle, nullptr);
  t->handle = 0;
}

void ec_mutex_init(ec_mutex_t* m) { pthread_mutex_init(native(m), nullptr); }
void ec_mutex_destroy(ec_mutex_t* m) { pthread_mutex_destroy(native(m)); }
void ec_mutex_lock(ec_mutex_t* m) { pthread_mutex_lock(native(m)); }
void ec_mutex_unlock(ec_mutex_t* m) { pthread_mutex_unlock(native(m)); }

void ec_cond_init(ec_cond_t* c) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
#if !defined(__APPLE__)
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
  pthread_cond_init(native(c), &attr);
  pthread_condattr_destroy(&attr);
}

void ec_cond_destroy(ec_cond_t* c) { pthread_cond_destroy(native(c)); }

void ec_cond_wait(ec_cond_t* c, ec_mutex_t* m) { pthread_cond_wait(native(c), native(m)); }

bool ec_cond_timed_wait(ec_cond_t* c, ec_mutex_t* m, std::uint64_t timeout_ms) {
  const std::uint64_t most = ~static_cast<std::uint64_t>(0) / 1000;
  return ec_cond_timed_wait_us(c, m, (timeout_ms < most ? timeout_ms : most) * 1000);
}

bool ec_cond_timed_wait_us(ec_cond_t* c, ec_mutex_t* m, std::uint64_t timeout_us) {
#if defined(__APPLE__)
  // macOS has no condattr clock; its relative wait is immune to clock jumps.
  timespec rel;
  rel.tv_sec = static_cast<time_t>(timeout_us / 1000000);
  rel.tv_nsec = static_cast<long>((timeout_us % 1000000) * 1000);
  return pthread_cond_timedwait_relative_np(native(c), native(m), &rel) == 0;
#else
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += static_cast<time_t>(timeout_us / 1000000);
  ts.tv_nsec += static_cast<long>((timeout_us % 1000000) * 1000);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec += 1;
    ts.tv_nsec -= 1000000000L;
  }
  return pthread_cond_timedwait(native(c), native(m), &ts) == 0;
#endif
}

bool ec_cond_fine_waits() { return true; }

void ec_cond_signal(ec_cond_t* c) { pthread_cond_signal(native(c)); }
void ec_cond_broadcast(ec_cond_t* c) { pthread_cond_broadcast(native(c)); }
