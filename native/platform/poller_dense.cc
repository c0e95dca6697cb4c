// poller_dense.cc — the poller for the poll() and WSAPoll backends, written
// once over the primitives of internal.h (posix/poller_poll.cc,
// win32/poller_wsapoll.cc). The array handed to the OS is kept dense:
// removal swaps the last entry in. Entry 0 is the wake-up channel. Each entry
// remembers the data pointer and the EC_POLL_* interest it was registered
// with. An entry can be parked: left out of the array (so a condition the OS
// reports whatever was asked, such as WSAPoll's POLLHUP after a FIN alone,
// cannot make every wait return) until ec_poller_modify() registers it again.
//
// The input gate (EC_POLL_GATED) costs no system call here: closing or
// opening it rewrites the OS events of the entries with gated input in the
// array, and dense_ready() sees the interest as the gate leaves it. An entry
// parked while its input was gated off is put back when the gate opens (its
// input is what it waits for).
#include <algorithm>
#include <atomic>
#include <new>
#include <unordered_map>
#include <unordered_set>
#include <utility>
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
  // Parked while the gate was closed, with what to register again when it opens.
  std::unordered_map<ec_socket_t, std::pair<unsigned, void*>> gate_parked;
  std::size_t rotate = 0;  // Where reporting starts, for fairness.
  bool gate_open = true;
};

namespace {

// The interest as the gate leaves it.
unsigned effective(const ec_poller* p, unsigned interest) {
  if (p->gate_open || (interest & EC_POLL_GATED) == 0) return interest;
  return interest & ~static_cast<unsigned>(EC_POLL_IN);
}

void push(ec_poller* p, ec_socket_t s, unsigned interest, void* data) {
  ec_pollfd f;
  f.fd = s;
  f.events = dense_events(effective(p, interest));
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
  std::vector<std::size_t> to_park;
  if (p->rotate >= total) p->rotate = 0;
  for (std::size_t j = 0; j < total && k < max; ++j) {
    std::size_t i = 1 + (p->rotate + j) % total;
    if (p->fds[i].revents == 0) continue;
    bool park = false;
    unsigned e = dense_ready(p->fds[i], effective(p, p->interest[i]), &park);
    if (park) to_park.push_back(i);
    if (e == 0) continue;
    out[k].data = p->data[i];
    out[k].events = e;
    ++k;
  }
  p->rotate += 1;
  // Highest index first: removal swaps the last entry in.
  std::sort(to_park.begin(), to_park.end());
  for (auto it = to_park.rbegin(); it != to_park.rend(); ++it) {
    ec_socket_t s = p->fds[*it].fd;
    unsigned interest = p->interest[*it];
    void* data = p->data[*it];
    ec_poller_remove(p, s);
    if (effective(p, interest) != interest) {
      p->gate_parked[s] = std::make_pair(interest, data);
    } else {
      p->parked.insert(s);
    }
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
  if (p->index.count(s) != 0 || p->parked.count(s) != 0 || p->gate_parked.count(s) != 0)
    return make_error(EC_EINVAL);
  p->index[s] = p->fds.size();
  push(p, s, events, data);
  return ec_error();
}

ec_error ec_poller_modify(ec_poller* p, ec_socket_t s, unsigned events, void* data) {
  if (p->parked.erase(s) != 0 || p->gate_parked.erase(s) != 0)
    return ec_poller_add(p, s, events, data);
  auto it = p->index.find(s);
  if (it == p->index.end()) return make_error(EC_EBADF);
  p->fds[it->second].events = dense_events(effective(p, events));
  p->interest[it->second] = events;
  p->data[it->second] = data;
  return ec_error();
}

void ec_poller_remove(ec_poller* p, ec_socket_t s) {
  p->parked.erase(s);
  p->gate_parked.erase(s);
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

void ec_poller_gate_input(ec_poller* p, bool open) {
  if (open == p->gate_open) return;
  p->gate_open = open;
  for (std::size_t i = 1; i < p->fds.size(); ++i)
    if (p->interest[i] & EC_POLL_GATED)
      p->fds[i].events = dense_events(effective(p, p->interest[i]));
  if (!open || p->gate_parked.empty()) return;
  std::unordered_map<ec_socket_t, std::pair<unsigned, void*>> back;
  back.swap(p->gate_parked);
  for (const auto& kv : back) ec_poller_add(p, kv.first, kv.second.first, kv.second.second);
}

bool ec_poller_sub_ms(ec_poller*) { return dense_sub_ms(); }

void ec_poller_wake(ec_poller* p) {
  if (p->wake_pending.exchange(true, std::memory_order_acq_rel)) return;
  wake_poke(p->wake_w);
}
