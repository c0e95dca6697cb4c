// poller_dense.cc — the poller for the poll() and WSAPoll backends, written
// once over the primitives of internal.h (posix/poller_poll.cc,
// win32/poller_wsapoll.cc). The array handed to the OS is kept dense:
// removal swaps the last entry in. Entry 0 is the wake-up channel. Each entry
// remembers the data pointer and the EC_POLL_* interest it was registered
// with. An entry can be parked: left out of the array (so a condition the OS
// reports whatever was asked, such as WSAPoll's POLLHUP after a FIN alone,
// cannot make every wait return) until ec_poller_modify() registers it again.
#include <atomic>
#include <new>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "internal.h"

using namespace ec_internal;

struct ec_poller {
  ec_socket_t wake_r = EC_INVALID_SOCKET;
  ec_socket_t wake_w = EC_INVALID_SOCKET;
  std::atomic<bool> wake_pending{false};
  std::vector<ec_pollfd> fds;
  std::vector<void*> data;
  std::vector<unsigned> interest;
  std::unordered_map<ec_socket_t, std::size_t> index;
  std::unordered_set<ec_socket_t> parked;  // Registered but out of the array.
  std::size_t rotate = 0;                  // Where reporting starts, for fairness.
};

namespace {

void push(ec_poller* p, ec_socket_t s, unsigned interest, void* data) {
  ec_pollfd f;
  f.fd = s;
  f.events = dense_events(interest);
  f.revents = 0;
  p->fds.push_back(f);
  p->data.push_back(data);
  p->interest.push_back(interest);
}

// Writes up to max ready entries to out, starting one further on each call,
// and parks the entries dense_ready() asks to.
std::size_t collect(ec_poller* p, ec_poll_event* out, std::size_t max) {
  std::size_t total = p->fds.size() - 1;
  std::size_t k = 0;
  std::vector<ec_socket_t> to_park;
  if (p->rotate >= total) p->rotate = 0;
  for (std::size_t j = 0; j < total && k < max; ++j) {
    std::size_t i = 1 + (p->rotate + j) % total;
    if (p->fds[i].revents == 0) continue;
    bool park = false;
    unsigned e = dense_ready(p->fds[i], p->interest[i], &park);
    if (park) to_park.push_back(p->fds[i].fd);
    if (e == 0) continue;
    out[k].data = p->data[i];
    out[k].events = e;
    ++k;
  }
  p->rotate += 1;
  for (ec_socket_t s : to_park) {
    ec_poller_remove(p, s);
    p->parked.insert(s);
  }
  return k;
}

// One wait of up to timeout_us; retry_eintr: wait again when interrupted
// (ec_poller_wait), or return early with nothing (ec_poller_wait_us).
ec_error wait(ec_poller* p, std::int64_t timeout_us, bool retry_eintr, ec_poll_event* out,
              std::size_t max, std::size_t* count, bool* woken) {
  *count = 0;
  *woken = false;
  if (max == 0) return make_error(EC_EINVAL);
  int n;
  ec_error err;
  while ((n = dense_poll(p->fds.data(), p->fds.size(), timeout_us, &err)) < 0) {
    if (err.code != EC_EINTR) return err;
    if (!retry_eintr) return ec_error();
  }
  if (n == 0) return ec_error();
  if (p->fds[0].revents != 0) {
    wake_drain(p->wake_r);
    p->wake_pending.store(false, std::memory_order_release);
    *woken = true;
  }
  *count = collect(p, out, max);
  return ec_error();
}

}  // namespace

ec_error ec_poller_create(ec_poller** out) {
  *out = nullptr;
  ec_socket_t r, w;
  ec_error err = wake_open(&r, &w);
  if (!err.ok()) return err;
  ec_poller* p = new (std::nothrow) ec_poller;
  if (p == nullptr) {
    wake_close(r, w);
    return make_error(EC_ENOMEM);
  }
  p->wake_r = r;
  p->wake_w = w;
  push(p, r, EC_POLL_IN, nullptr);
  *out = p;
  return ec_error();
}

void ec_poller_destroy(ec_poller* p) {
  if (p == nullptr) return;
  wake_close(p->wake_r, p->wake_w);
  delete p;
}

ec_error ec_poller_add(ec_poller* p, ec_socket_t s, unsigned events, void* data) {
  if (p->index.count(s) != 0 || p->parked.count(s) != 0) return make_error(EC_EINVAL);
  p->index[s] = p->fds.size();
  push(p, s, events, data);
  return ec_error();
}

ec_error ec_poller_modify(ec_poller* p, ec_socket_t s, unsigned events, void* data) {
  if (p->parked.erase(s) != 0) return ec_poller_add(p, s, events, data);
  auto it = p->index.find(s);
  if (it == p->index.end()) return make_error(EC_EBADF);
  p->fds[it->second].events = dense_events(events);
  p->interest[it->second] = events;
  p->data[it->second] = data;
  return ec_error();
}

void ec_poller_remove(ec_poller* p, ec_socket_t s) {
  p->parked.erase(s);
  auto it = p->index.find(s);
  if (it == p->index.end()) return;
  std::size_t i = it->second;
  std::size_t last = p->fds.size() - 1;
  p->index.erase(it);
  if (i != last) {
    p->fds[i] = p->fds[last];
    p->data[i] = p->data[last];
    p->interest[i] = p->interest[last];
    p->index[p->fds[i].fd] = i;
  }
  p->fds.pop_back();
  p->data.pop_back();
  p->interest.pop_back();
}

ec_error ec_poller_wait(ec_poller* p, ec_poll_event* out, std::size_t max, int timeout_ms,
                        std::size_t* count, bool* woken) {
  std::int64_t us = timeout_ms < 0 ? -1 : std::int64_t{timeout_ms} * 1000;
  return wait(p, us, true, out, max, count, woken);
}

ec_error ec_poller_wait_us(ec_poller* p, ec_poll_event* out, std::size_t max,
                           std::int64_t timeout_us, std::size_t* count, bool* woken) {
  return wait(p, timeout_us, false, out, max, count, woken);
}

bool ec_poller_sub_ms(ec_poller*) { return dense_sub_ms(); }

void ec_poller_wake(ec_poller* p) {
  if (p->wake_pending.exchange(true, std::memory_order_acq_rel)) return;
  wake_poke(p->wake_w);
}
